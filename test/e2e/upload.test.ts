// XEP-0363 HTTP File Upload: slots over XMPP (@xmpp/client), PUT and GET over real HTTP
// (fetch) on the server's HTTP listener; the same tests on both stores: the local disk,
// and an S3-compatible object store (s3rver, a real S3 API server in Node, on loopback;
// not AWS S3 or MinIO).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Server } from '../../src/server.js';
import type { FileStore, Slot } from '../../xeps/0363-upload/files.js';
import { Slots } from '../../xeps/0363-upload/files.js';
import { LocalStore } from '../../xeps/0363-upload/local.js';
import { S3Store, type S3Settings } from '../../xeps/0363-upload/s3.js';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../helpers/server.js';
import { connect, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';

const NS = 'urn:xmpp:http:upload:0';
const SERVICE = 'upload.localhost';
const BUCKET = 'uzzap-test';
/** a second bucket, for the store's own tests (a sweep there touches none of the server's files) */
const STORE_BUCKET = 'uzzap-test-store';

interface S3rverLike {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
// s3rver ships no types; it is a CommonJS class
const S3rver = createRequire(import.meta.url)('s3rver') as new (o: Record<string, unknown>) => S3rverLike;

/** An S3 API server on loopback for the duration of a suite, with two empty buckets. */
function useS3rver(): { settings: (bucket?: string) => S3Settings; client: () => S3Client } {
  let s3rver: S3rverLike;
  let dir: string;
  let port = 0;
  let client: S3Client | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uzzap-s3rver-'));
    s3rver = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory: dir,
      configureBuckets: [{ name: BUCKET }, { name: STORE_BUCKET }],
    });
    port = (await s3rver.run()).port;
  });
  after(async () => {
    client?.destroy();
    await s3rver.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const settings = (bucket = BUCKET): S3Settings => ({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    bucket,
    access_key: 'S3RVER',
    secret_key: 'S3RVER',
    path_style: true,
  });
  return {
    settings,
    client: () =>
      (client ??= new S3Client({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      })),
  };
}

/** Every key in the test bucket. */
async function bucketKeys(client: S3Client): Promise<string[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (r.Contents ?? []).map((o) => o.Key!);
}

const local = (u: string): string => u.replace('localhost', '127.0.0.1');

/** A body sent chunked (no content-length): only the server's byte counter sees its size. */
const chunked = (text: string): RequestInit =>
  ({
    method: 'PUT',
    duplex: 'half',
    body: new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(text));
        c.close();
      },
    }),
  }) as RequestInit;

for (const storeName of ['local disk', 'S3 (s3rver)'] as const) {
  describe(`HTTP File Upload (XEP-0363), files on ${storeName}`, function () {
    this.timeout(30_000);
    const s3 = storeName === 'local disk' ? undefined : useS3rver();
    let server: Server;
    let alice: XmppClient;
    let bob: XmppClient;

    before(async () => {
      // S3 settings through their public environment names (UZZAP_UPLOAD_S3_*)
      const st = s3?.settings();
      const s3config = st
        ? (
            loadConfig({
              env: {
                UZZAP_UPLOAD_S3_ENDPOINT: st.endpoint,
                UZZAP_UPLOAD_S3_REGION: st.region,
                UZZAP_UPLOAD_S3_BUCKET: st.bucket,
                UZZAP_UPLOAD_S3_ACCESS_KEY: st.access_key,
                UZZAP_UPLOAD_S3_SECRET_KEY: st.secret_key,
                UZZAP_UPLOAD_S3_PATH_STYLE: 'true',
              },
            }).config.modules as unknown as Record<string, Record<string, unknown>>
          ).upload
        : {};
      server = await startServer({
        users: { alice: 'secret', bob: 'secret' },
        config: { modules: { upload: { max_file_size: 1_000_000, daily_quota: 1_500_000, ...s3config } } },
      });
      alice = await connect(server, 'alice');
      bob = await connect(server, 'bob');
    });
    after(async () => {
      await stopAll(alice, bob);
      await server.stop();
    });

    const request = (c: XmppClient, attrs: Record<string, string>) =>
      iq(c, xml('iq', { type: 'get', to: SERVICE }, xml('request', { xmlns: NS, ...attrs })));

    async function slot(c: XmppClient, filename: string, size: number, type?: string): Promise<{ put: string; get: string }> {
      const r = await request(c, { filename, size: String(size), ...(type ? { 'content-type': type } : {}) });
      assert.equal(r.attrs.type, 'result', r.toString());
      const s = r.getChild('slot', NS)!;
      return { put: s.getChild('put')!.attrs.url!, get: s.getChild('get')!.attrs.url! };
    }

    if (s3)
      it('takes its settings from UZZAP_UPLOAD_* (the UZZAP_MODULES_UPLOAD_* form wins); a secret of digits stays as written', () => {
        const { config } = loadConfig({
          env: {
            UZZAP_UPLOAD_S3_BUCKET: 'files',
            UZZAP_UPLOAD_S3_SECRET_KEY: '007',
            UZZAP_UPLOAD_S3_REGION: 'x',
            UZZAP_MODULES_UPLOAD_S3_REGION: 'eu-west-1',
          },
        });
        const mods = config.modules as unknown as Record<string, Record<string, unknown>>;
        assert.deepEqual(mods.upload, { s3_bucket: 'files', s3_secret_key: '007', s3_region: 'eu-west-1' });
      });

    it('is found through disco, with its size limit', async () => {
      const items = await iq(
        alice,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })),
      );
      assert.ok(
        items
          .getChild('query')!
          .getChildren('item')
          .some((i) => i.attrs.jid === SERVICE),
      );
      const info = await iq(
        alice,
        xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      const q = info.getChild('query')!;
      assert.equal(q.getChild('identity')?.attrs.category, 'store');
      assert.ok(q.getChildren('feature').some((f) => f.attrs.var === NS));
      const max = q
        .getChild('x')!
        .getChildren('field')
        .find((f) => f.attrs.var === 'max-file-size');
      assert.equal(max?.getChildText('value'), '1000000');
    });

    it('uploads a photo and serves it with its type, nosniff, CORS and byte ranges', async () => {
      const body = Buffer.alloc(5000, 7);
      for (let i = 0; i < body.length; i++) body[i] = i % 251;
      const s = await slot(alice, 'holiday photo.jpg', body.length, 'image/jpeg');
      assert.match(s.get, /^http:\/\/localhost:\d+\/upload\//);
      const put = await fetch(local(s.put), { method: 'PUT', body, headers: { 'content-type': 'image/jpeg' } });
      assert.equal(put.status, 201);
      const get = await fetch(local(s.get));
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), 'image/jpeg');
      assert.equal(get.headers.get('content-length'), '5000');
      assert.equal(get.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(get.headers.get('access-control-allow-origin'), '*');
      assert.equal(get.headers.get('content-disposition'), 'inline');
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), body);
      const head = await fetch(local(s.get), { method: 'HEAD' });
      assert.equal(head.headers.get('content-length'), '5000');
      const part = await fetch(local(s.get), { headers: { range: 'bytes=10-19' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), 'bytes 10-19/5000');
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), body.subarray(10, 20));
      const tail = await fetch(local(s.get), { headers: { range: 'bytes=-100' } });
      assert.equal(tail.headers.get('content-range'), 'bytes 4900-4999/5000');
      assert.deepEqual(Buffer.from(await tail.arrayBuffer()), body.subarray(4900));
      const bad = await fetch(local(s.get), { headers: { range: 'bytes=9000-' } });
      assert.equal(bad.status, 416);
      // a second PUT to the same slot is refused (single use), the file is unchanged
      const again = await fetch(local(s.put), { method: 'PUT', body: Buffer.alloc(5000, 1), headers: { 'content-type': 'image/jpeg' } });
      assert.equal(again.status, 409);
      assert.deepEqual(Buffer.from(await (await fetch(local(s.get))).arrayBuffer()), body);
    });

    it('a file larger than one read comes back whole, and its ranges', async () => {
      const body = Buffer.alloc(900_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 256;
      const s = await slot(bob, 'video.mp4', body.length, 'video/mp4');
      assert.equal((await fetch(local(s.put), { method: 'PUT', body, headers: { 'content-type': 'video/mp4' } })).status, 201);
      assert.deepEqual(Buffer.from(await (await fetch(local(s.get))).arrayBuffer()), body);
      const mid = await fetch(local(s.get), { headers: { range: 'bytes=65530-200000' } });
      assert.deepEqual(Buffer.from(await mid.arrayBuffer()), body.subarray(65530, 200001));
      // a download the client gives up mid-way ends only that download
      const ac = new AbortController();
      const partial = await fetch(local(s.get), { signal: ac.signal });
      const reader = partial.body!.getReader();
      await reader.read();
      ac.abort();
      await reader.read().catch(() => undefined);
      assert.deepEqual(Buffer.from(await (await fetch(local(s.get))).arrayBuffer()), body);
    });

    it('two PUTs to one slot at once: one is stored, the other refused', async () => {
      const s = await slot(alice, 'race.txt', 8, 'text/plain');
      const [a, b] = await Promise.all(
        ['AAAAAAAA', 'BBBBBBBB'].map((body) => fetch(local(s.put), { method: 'PUT', body, headers: { 'content-type': 'text/plain' } })),
      );
      assert.deepEqual([a!.status, b!.status].sort(), [201, 409]);
      assert.match(await (await fetch(local(s.get))).text(), /^(AAAAAAAA|BBBBBBBB)$/);
    });

    it('a slot asked for without a type takes the type the PUT names', async () => {
      const s = await slot(alice, 'note.ogg', 3);
      assert.equal((await fetch(local(s.put), { method: 'PUT', body: 'ogg', headers: { 'content-type': 'audio/ogg' } })).status, 201);
      assert.equal((await fetch(local(s.get))).headers.get('content-type'), 'audio/ogg');
    });

    it('serves other types as attachments', async () => {
      const s = await slot(alice, 'page.html', 20, 'text/html');
      assert.equal(
        (await fetch(local(s.put), { method: 'PUT', body: '<script>x()</script>!', headers: { 'content-type': 'text/html' } })).status,
        400,
        '21 bytes for a 20-byte slot',
      );
      const s2 = await slot(alice, 'page.html', 21, 'text/html');
      assert.equal(
        (await fetch(local(s2.put), { method: 'PUT', body: '<script>x()</script>!', headers: { 'content-type': 'text/html' } })).status,
        201,
      );
      const get = await fetch(local(s2.get));
      assert.match(get.headers.get('content-disposition') ?? '', /^attachment/);
      assert.match(get.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    });

    it('refuses what the slot does not allow, and bad requests with the XEP-0363 errors', async () => {
      const tooBig = await request(alice, { filename: 'big.bin', size: '2000000' });
      const e = tooBig.getChild('error')!;
      assert.ok(e.getChild('not-acceptable'));
      assert.equal(e.getChild('file-too-large', NS)?.getChildText('max-file-size'), '1000000');
      assert.ok((await request(alice, { filename: '', size: '10' })).getChild('error')?.getChild('bad-request'));
      assert.ok((await request(alice, { filename: 'x', size: '-1' })).getChild('error')?.getChild('bad-request'));
      // path tricks: refused, or the name loses its directory part
      assert.ok((await request(alice, { filename: '../../etc/passwd', size: '4' })).getChild('error')?.getChild('bad-request'));
      const s = await slot(alice, 'dir/evil.txt', 4);
      assert.match(s.get, /\/dir_evil\.txt$/);
      // forged signature, wrong type, wrong size: refused, nothing stored
      const ok = await slot(alice, 'a.txt', 4, 'text/plain');
      const forged = ok.put.replace(/sig=[^&]+/, 'sig=AAAA');
      assert.equal((await fetch(local(forged), { method: 'PUT', body: 'abcd', headers: { 'content-type': 'text/plain' } })).status, 403);
      const bigger = ok.put.replace(/([?&])s=4/, '$1s=5');
      assert.equal((await fetch(local(bigger), { method: 'PUT', body: 'abcde', headers: { 'content-type': 'text/plain' } })).status, 403);
      assert.equal((await fetch(local(ok.put), { method: 'PUT', body: 'abcd', headers: { 'content-type': 'image/png' } })).status, 400);
      assert.equal((await fetch(local(ok.get))).status, 404, 'nothing stored');
    });

    it('a body of the wrong size without content-length is refused, nothing kept, and the slot can be used again', async () => {
      const s = await slot(alice, 'b.txt', 5, 'text/plain');
      const short = await fetch(local(s.put), { ...chunked('abcd'), headers: { 'content-type': 'text/plain' } });
      assert.equal(short.status, 400);
      assert.equal((await fetch(local(s.get))).status, 404, 'nothing stored');
      const long = await fetch(local(s.put), { ...chunked('abcdef'), headers: { 'content-type': 'text/plain' } }).catch(() => undefined);
      // refused: 400, or the connection closed while the client still sent
      assert.ok(!long || long.status === 400, String(long?.status));
      assert.equal((await fetch(local(s.get))).status, 404, 'nothing stored');
      assert.equal((await fetch(local(s.put), { ...chunked('abcde'), headers: { 'content-type': 'text/plain' } })).status, 201);
      assert.equal(await (await fetch(local(s.get))).text(), 'abcde');
    });

    it('GETs only stored files: hidden names, other paths and slots are 404', async () => {
      const s = await slot(alice, 'c.txt', 3, 'text/plain');
      assert.equal((await fetch(local(s.put), { method: 'PUT', body: 'abc', headers: { 'content-type': 'text/plain' } })).status, 201);
      const u = new URL(local(s.get));
      const [tag, id] = u.pathname.split('/').slice(2);
      const base = `${u.protocol}//${u.host}/upload`;
      for (const path of [
        `${tag}/${id}/.meta.json`,
        `${tag}/${id}/.claim`,
        `${tag}/${id}/.part`,
        `${tag}/${id}/..%2F..%2F.key`,
        `${tag}/${id}/%2E%2E`,
        `${tag}/${id}/c.txt%2F..%2F..%2F..%2F.key`,
        `${tag}/${id}`,
        `.key/x/y`,
        `${tag}/..%2F${id}/c.txt`,
        `${tag}/other/c.txt`,
      ])
        assert.equal((await fetch(`${base}/${path}`)).status, 404, path);
      // a PUT with a path trick is not a slot of this server
      const trick = s.put.replace('/c.txt?', '/..%2Fc.txt?');
      assert.equal((await fetch(local(trick), { method: 'PUT', body: 'abc' })).status, 403);
    });

    it('holds each user to the daily quota (resource-constraint), others unaffected', async () => {
      const s = await slot(alice, 'q1.bin', 900_000);
      assert.equal(
        (await fetch(local(s.put), { method: 'PUT', body: Buffer.alloc(900_000), headers: { 'content-type': 'application/octet-stream' } }))
          .status,
        201,
      );
      const over = await request(alice, { filename: 'q2.bin', size: '900000' });
      assert.equal(over.getChild('error')?.attrs.type, 'wait');
      assert.ok(over.getChild('error')?.getChild('resource-constraint'));
      assert.equal((await request(bob, { filename: 'q2.bin', size: '90000' })).attrs.type, 'result');
    });

    it("deleting an account deletes the user's files", async () => {
      await server.accounts.create('carol', 'secret');
      const carol = await connect(server, 'carol');
      const s = await slot(carol, 'c.txt', 3, 'text/plain');
      assert.equal((await fetch(local(s.put), { method: 'PUT', body: 'abc', headers: { 'content-type': 'text/plain' } })).status, 201);
      const other = await slot(bob, 'b.txt', 3, 'text/plain');
      assert.equal((await fetch(local(other.put), { method: 'PUT', body: 'bob', headers: { 'content-type': 'text/plain' } })).status, 201);
      await stopAll(carol);
      await server.accounts.delete('carol');
      assert.equal((await fetch(local(s.get))).status, 404);
      assert.equal(await (await fetch(local(other.get))).text(), 'bob');
      const tag = new URL(s.get).pathname.split('/')[2]!;
      if (s3) assert.ok(!(await bucketKeys(s3.client())).some((k) => k.startsWith(`${tag}/`)));
      else assert.ok(!(await readdir(join(server.config.data_dir, 'upload'))).includes(tag));
    });

    describe('the store itself', () => {
      let store: FileStore;
      let dir: string;
      before(async () => {
        dir = mkdtempSync(join(tmpdir(), 'uzzap-upload-store-'));
        store = s3 ? await S3Store.open(s3.settings(STORE_BUCKET)) : await LocalStore.open(dir);
      });
      after(async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      });

      const sink = (): { out: Writable; text: () => string; bytes: () => Buffer } => {
        const chunks: Buffer[] = [];
        const out = new Writable({
          write(c: Buffer, _e, done) {
            chunks.push(Buffer.from(c)); // the local store reuses its buffers
            done();
          },
        });
        return { out, text: () => Buffer.concat(chunks).toString(), bytes: () => Buffer.concat(chunks) };
      };

      if (s3)
        // s3rver checks the access key id, not SigV4 signatures: a wrong secret would pass there
        it('is refused with an unknown access key', async () => {
          await assert.rejects(S3Store.open({ ...s3.settings(STORE_BUCKET), access_key: 'NOBODY' }), /Access Key Id/i);
        });

      it('keeps one key across opens (slots signed before a restart stay valid)', async () => {
        const again = s3 ? await S3Store.open(s3.settings(STORE_BUCKET)) : await LocalStore.open(dir);
        assert.deepEqual(again.key, store.key);
        assert.equal(store.key.length, 32);
        await again.close();
      });

      it('a file of several S3 parts (11 MiB) goes in and comes back whole, ranges across parts too', async function () {
        this.timeout(60_000);
        const slots = new Slots(store.key);
        const size = 11 * 1048576 + 123;
        const body = Buffer.alloc(size);
        for (let i = 0; i + 4 <= size; i += 4) body.writeUInt32BE(i, i);
        const s = slots.newSlot('frank@localhost', 'big.bin', size, 'application/octet-stream', 60, true);
        const { Readable } = await import('node:stream');
        // 64 KiB pieces, as a socket would give them
        const pieces = Array.from({ length: Math.ceil(size / 65536) }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536));
        assert.equal(await store.put(s, Readable.from(pieces)), 'ok');
        assert.equal((await store.head(s.tag, s.id, 'big.bin'))?.size, size);
        const all = sink();
        await store.send(s.tag, s.id, 'big.bin', { start: 0, end: size - 1 }, all.out);
        assert.ok(all.bytes().equals(body));
        const across = sink();
        await store.send(s.tag, s.id, 'big.bin', { start: 5 * 1048576 - 10, end: 10 * 1048576 + 10 }, across.out);
        assert.ok(across.bytes().equals(body.subarray(5 * 1048576 - 10, 10 * 1048576 + 11)));
        await store.removeOwner(s.tag);
      });

      it('counts usage per owner since a time, sends ranges, sweeps old files and unfinished uploads, removes an owner', async () => {
        const slots = new Slots(store.key);
        const { Readable } = await import('node:stream');
        const put = (s: Slot, text: string) => store.put(s, Readable.from([Buffer.from(text)]));
        const a1 = slots.newSlot('dave@localhost', 'one.txt', 5, 'text/plain', 60, true);
        const a2 = slots.newSlot('dave@localhost', 'two.txt', 3, 'text/plain', 60, true);
        const e1 = slots.newSlot('erin@localhost', 'e.txt', 4, 'text/plain', 60, true);
        assert.equal(await put(a1, 'hello'), 'ok');
        assert.equal(await put(a1, 'hello'), 'taken');
        assert.equal(await put(a2, 'toolong'), 'size');
        assert.equal(await put(a2, 'abc'), 'ok');
        assert.equal(await put(e1, 'erin'), 'ok');
        assert.equal(await store.usedSince(a1.tag, Date.now() - 60_000), 8);
        assert.equal(await store.usedSince(a1.tag, Date.now() + 60_000), 0);
        assert.equal(await store.usedSince(e1.tag, 0), 4);
        assert.deepEqual(await store.head(a1.tag, a1.id, 'one.txt').then((f) => f && { size: f.size, type: f.type }), {
          size: 5,
          type: 'text/plain',
        });
        assert.equal(await store.head(a1.tag, a1.id, 'two.txt'), undefined);
        assert.equal(await store.head(a1.tag, a1.id, '.claim'), undefined);
        const s = sink();
        await store.send(a1.tag, a1.id, 'one.txt', { start: 1, end: 3 }, s.out);
        assert.equal(s.text(), 'ell');
        // a failed body frees the slot: an upload that got a wrong size left nothing behind
        const e2 = slots.newSlot('erin@localhost', 'f.txt', 4, 'text/plain', 60, true);
        assert.equal(await put(e2, 'xy'), 'size');
        assert.equal(await store.sweep(0), 0, 'nothing unfinished, nothing expires with 0');
        await new Promise((r) => setTimeout(r, 1100)); // S3 times have a resolution of one second
        assert.equal(await store.sweep(100_000), 0, 'files newer than that are kept');
        assert.equal(await store.sweep(500), 3);
        assert.equal(await store.usedSince(a1.tag, 0), 0);
        assert.equal(await put(e2, 'abcd'), 'ok');
        await store.removeOwner(e2.tag);
        assert.equal(await store.head(e2.tag, e2.id, 'f.txt'), undefined);
        assert.equal(await store.usedSince(e2.tag, 0), 0);
      });
    });
  });
}
