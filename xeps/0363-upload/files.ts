// Uploaded files on local disk, and the signed slots that let a client PUT one.
//
// Layout: <dir>/<owner tag>/<slot id>/<file name>, with the slot's metadata beside it in
// <dir>/<owner tag>/<slot id>/.meta.json. The owner tag is a keyed hash of the owner's bare
// JID (deleting an account deletes its directory; the tag says nothing of the owner).
// A slot is stateless: its PUT URL carries the size, content type and expiry, signed with
// the server's key (HMAC-SHA256); the slot directory is created by the first PUT, so a
// second PUT to the same slot finds it and is refused (single use).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable, type Writable } from 'node:stream';

export interface Slot {
  /** the uploader's bare JID (its tag names the directory) */
  owner: string;
  tag: string;
  id: string;
  name: string;
  size: number;
  type: string;
  /** the client named the type in its request (then a PUT must send that one) */
  typed: boolean;
  /** unix seconds after which the PUT is refused */
  expires: number;
}

export interface FileMeta {
  owner: string;
  size: number;
  type: string;
  /** ms since the epoch */
  created: number;
}

/** A file name as stored and put in URLs: no path, no control characters, at most 200 bytes. */
export function safeName(name: string): string | undefined {
  const n = name.normalize('NFC').replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_').trim();
  if (!n || n === '.' || n === '..' || n.startsWith('.')) return undefined;
  const chars = Array.from(n); // code points: never half of a surrogate pair
  while (Buffer.byteLength(chars.join('')) > 200) chars.pop();
  return chars.join('');
}

/** A content type we pass on: type/subtype with token characters only. */
export const safeType = (t: string | undefined): string =>
  t && /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i.test(t) ? t.toLowerCase() : 'application/octet-stream';

export class UploadStore {
  constructor(
    readonly dir: string,
    private readonly key: Buffer,
  ) {}

  /** The key kept in <dir>/.key (made on first use): slots and owner tags survive restarts. */
  static async open(dir: string): Promise<UploadStore> {
    await mkdir(dir, { recursive: true });
    const file = join(dir, '.key');
    let key: Buffer;
    try {
      key = await readFile(file);
    } catch {
      key = randomBytes(32);
      await writeFile(file, key, { mode: 0o600, flag: 'wx' }).catch(async () => {
        key = await readFile(file); // another node of a cluster sharing the directory was first
      });
    }
    return new UploadStore(dir, key);
  }

  tag(owner: string): string {
    return createHmac('sha256', this.key).update('owner\n' + owner).digest('base64url').slice(0, 16);
  }

  newSlot(owner: string, name: string, size: number, type: string, ttlSeconds: number, typed: boolean): Slot {
    return { owner, tag: this.tag(owner), id: randomBytes(12).toString('base64url'), name, size, type, typed, expires: Math.floor(Date.now() / 1000) + ttlSeconds };
  }

  sign(s: Slot): string {
    return createHmac('sha256', this.key).update(`put\n${s.owner}\n${s.tag}\n${s.id}\n${s.name}\n${s.size}\n${s.type}\n${s.typed ? 1 : 0}\n${s.expires}`).digest('base64url');
  }

  verify(s: Slot, sig: string): boolean {
    const want = Buffer.from(this.sign(s));
    const got = Buffer.from(sig);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private slotDir(tag: string, id: string): string {
    return join(this.dir, tag, id);
  }

  /**
   * Store the body of a PUT for slot `s`: streamed to disk (never whole in memory), at
   * most `s.size` bytes. 'taken' when the slot was used already; 'size' when the body
   * was not exactly the slot's size (nothing is kept then).
   */
  async put(s: Slot, body: Readable): Promise<'ok' | 'taken' | 'size'> {
    const dir = this.slotDir(s.tag, s.id);
    await mkdir(join(this.dir, s.tag), { recursive: true });
    try {
      await mkdir(dir); // not recursive: it exists if the slot was used (single use)
    } catch {
      return 'taken';
    }
    const part = join(dir, '.part');
    let n = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        n += chunk.length;
        if (n > s.size) return done(new Error('too big'));
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, limit, createWriteStream(part) as Writable);
    } catch {
      await rm(dir, { recursive: true, force: true });
      return 'size';
    }
    if (n !== s.size) {
      await rm(dir, { recursive: true, force: true });
      return 'size';
    }
    try {
      await rename(part, join(dir, s.name));
      const meta: FileMeta = { owner: s.owner, size: s.size, type: s.type, created: Date.now() };
      await writeFile(join(dir, '.meta.json'), JSON.stringify(meta));
    } catch (err) {
      // a full disk, or the account deleted meanwhile: no half-stored file is left
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return 'ok';
  }

  /** A stored file: its metadata and path, if it is complete. */
  async get(tag: string, id: string, name: string): Promise<{ meta: FileMeta; path: string } | undefined> {
    if (![tag, id, name].every((p) => p && !p.includes('/') && !p.includes('\\') && !p.startsWith('.'))) return undefined;
    const dir = this.slotDir(tag, id);
    try {
      const meta = JSON.parse(await readFile(join(dir, '.meta.json'), 'utf8')) as FileMeta;
      const path = join(dir, name);
      await stat(path);
      return { meta, path };
    } catch {
      return undefined;
    }
  }

  read(path: string, range?: { start: number; end: number }): Readable {
    return createReadStream(path, range);
  }

  /** Bytes `owner` stored since `since` (ms), for the daily quota. */
  async usedSince(owner: string, since: number): Promise<number> {
    const base = join(this.dir, this.tag(owner));
    let sum = 0;
    for (const id of await readdir(base).catch(() => [] as string[])) {
      const meta = await readFile(join(base, id, '.meta.json'), 'utf8').catch(() => undefined);
      if (!meta) continue;
      const m = JSON.parse(meta) as FileMeta;
      if (m.created >= since) sum += m.size;
    }
    return sum;
  }

  async removeOwner(owner: string): Promise<void> {
    await rm(join(this.dir, this.tag(owner)), { recursive: true, force: true });
  }

  /** Delete files older than `maxAgeMs` and uploads left unfinished for a day; returns how many slots went. */
  async sweep(maxAgeMs: number): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const tag of await readdir(this.dir).catch(() => [] as string[])) {
      if (tag.startsWith('.')) continue;
      for (const id of await readdir(join(this.dir, tag)).catch(() => [] as string[])) {
        const dir = join(this.dir, tag, id);
        const meta = await readFile(join(dir, '.meta.json'), 'utf8').catch(() => undefined);
        const created = meta ? (JSON.parse(meta) as FileMeta).created : (await stat(dir).catch(() => undefined))?.mtimeMs ?? now;
        const limit = meta ? maxAgeMs : 86_400_000;
        if (limit > 0 && now - created > limit) {
          await rm(dir, { recursive: true, force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}
