// XEP-0363 HTTP File Upload: slots over XMPP (@xmpp/client), PUT and GET over real HTTP
// (fetch) on the server's HTTP listener.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';

const NS = 'urn:xmpp:http:upload:0';
const SERVICE = 'upload.localhost';

describe('HTTP File Upload (XEP-0363)', function () {
  this.timeout(30_000);
  let server: Server;
  let alice: XmppClient;
  let bob: XmppClient;

  before(async () => {
    server = await startServer({
      users: { alice: 'secret', bob: 'secret' },
      config: { modules: { upload: { max_file_size: 1_000_000, daily_quota: 1_500_000 } } },
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

  it('is found through disco, with its size limit', async () => {
    const items = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    assert.ok(items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === SERVICE));
    const info = await iq(alice, xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const q = info.getChild('query')!;
    assert.equal(q.getChild('identity')?.attrs.category, 'store');
    assert.ok(q.getChildren('feature').some((f) => f.attrs.var === NS));
    const max = q.getChild('x')!.getChildren('field').find((f) => f.attrs.var === 'max-file-size');
    assert.equal(max?.getChildText('value'), '1000000');
  });

  it('uploads a photo and serves it with its type, nosniff, CORS and byte ranges', async () => {
    const body = Buffer.alloc(5000, 7);
    const s = await slot(alice, 'holiday photo.jpg', body.length, 'image/jpeg');
    assert.match(s.get, /^http:\/\/localhost:\d+\/upload\//);
    const put = await fetch(s.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body, headers: { 'content-type': 'image/jpeg' } });
    assert.equal(put.status, 201);
    const get = await fetch(s.get.replace('localhost', '127.0.0.1'));
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'image/jpeg');
    assert.equal(get.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(get.headers.get('access-control-allow-origin'), '*');
    assert.equal(get.headers.get('content-disposition'), 'inline');
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), body);
    const part = await fetch(s.get.replace('localhost', '127.0.0.1'), { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 10-19/5000');
    assert.equal((await part.arrayBuffer()).byteLength, 10);
    const bad = await fetch(s.get.replace('localhost', '127.0.0.1'), { headers: { range: 'bytes=9000-' } });
    assert.equal(bad.status, 416);
    // a second PUT to the same slot is refused (single use), the file is unchanged
    const again = await fetch(s.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: Buffer.alloc(5000, 1), headers: { 'content-type': 'image/jpeg' } });
    assert.equal(again.status, 409);
    assert.deepEqual(Buffer.from(await (await fetch(s.get.replace('localhost', '127.0.0.1'))).arrayBuffer()), body);
  });

  it('a slot asked for without a type takes the type the PUT names', async () => {
    const s = await slot(alice, 'note.ogg', 3);
    assert.equal((await fetch(s.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: 'ogg', headers: { 'content-type': 'audio/ogg' } })).status, 201);
  });

  it('serves other types as attachments', async () => {
    const s = await slot(alice, 'page.html', 20, 'text/html');
    assert.equal((await fetch(s.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: '<script>x()</script>!', headers: { 'content-type': 'text/html' } })).status, 400, '21 bytes for a 20-byte slot');
    const s2 = await slot(alice, 'page.html', 21, 'text/html');
    assert.equal((await fetch(s2.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: '<script>x()</script>!', headers: { 'content-type': 'text/html' } })).status, 201);
    const get = await fetch(s2.get.replace('localhost', '127.0.0.1'));
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
    assert.equal((await fetch(forged.replace('localhost', '127.0.0.1'), { method: 'PUT', body: 'abcd', headers: { 'content-type': 'text/plain' } })).status, 403);
    const bigger = ok.put.replace(/([?&])s=4/, '$1s=5');
    assert.equal((await fetch(bigger.replace('localhost', '127.0.0.1'), { method: 'PUT', body: 'abcde', headers: { 'content-type': 'text/plain' } })).status, 403);
    assert.equal((await fetch(ok.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: 'abcd', headers: { 'content-type': 'image/png' } })).status, 400);
    assert.equal((await fetch(ok.get.replace('localhost', '127.0.0.1'))).status, 404, 'nothing stored');
  });

  it('holds each user to the daily quota (resource-constraint), others unaffected', async () => {
    const s = await slot(alice, 'q1.bin', 900_000);
    assert.equal((await fetch(s.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: Buffer.alloc(900_000), headers: { 'content-type': 'application/octet-stream' } })).status, 201);
    const over = await request(alice, { filename: 'q2.bin', size: '900000' });
    assert.equal(over.getChild('error')?.attrs.type, 'wait');
    assert.ok(over.getChild('error')?.getChild('resource-constraint'));
    assert.equal((await request(bob, { filename: 'q2.bin', size: '900000' })).attrs.type, 'result');
  });

  it("deleting an account deletes the user's files", async () => {
    await server.accounts.create('carol', 'secret');
    const carol = await connect(server, 'carol');
    const s = await slot(carol, 'c.txt', 3, 'text/plain');
    assert.equal((await fetch(s.put.replace('localhost', '127.0.0.1'), { method: 'PUT', body: 'abc', headers: { 'content-type': 'text/plain' } })).status, 201);
    await stopAll(carol);
    await server.accounts.delete('carol');
    assert.equal((await fetch(s.get.replace('localhost', '127.0.0.1'))).status, 404);
    const dirs = await readdir(join(server.config.data_dir, 'upload'));
    assert.ok(dirs.every((d) => d.startsWith('.') || !s.get.includes(`/${d}/`)));
  });
});
