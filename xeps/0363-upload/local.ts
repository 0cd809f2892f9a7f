// Uploaded files on local disk (the default store).
//
// Layout: <dir>/<owner tag>/<slot id>/<file name>, with the file's metadata beside it in
// <dir>/<owner tag>/<slot id>/.meta.json, and the key in <dir>/.key. The slot directory
// is created by the first PUT (mkdir is atomic), so a second PUT finds it and is refused
// (single use); a directory without .meta.json is an upload under way or abandoned.
import { randomBytes } from 'node:crypto';
import { close as closeFd, createWriteStream, open as openFd, read } from 'node:fs';
import { promisify } from 'node:util';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { bounded, UNFINISHED_MS, validParts, type FileInfo, type FileStore, type Range, type Slot } from './files.js';

interface FileMeta {
  owner: string;
  size: number;
  type: string;
  /** ms since the epoch */
  created: number;
}

/**
 * Bytes read from a file at once in a download, into two buffers used in turn (smaller for
 * a smaller range): 512 KiB per download of a large file. Fewer, larger reads make fewer
 * short-lived objects per GiB (a 1 GiB download on a fresh server: about +3 to +7 MiB of
 * RSS with 256 KiB reads, +10 to +19 MiB with 64 KiB ones, as V8 grows its young generation).
 */
const READ_SIZE = 262_144;

export class LocalStore implements FileStore {
  private constructor(
    readonly dir: string,
    readonly key: Buffer,
  ) {}

  /** The key kept in <dir>/.key (made on first use): slots and owner tags survive restarts. */
  static async open(dir: string): Promise<LocalStore> {
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
    return new LocalStore(dir, key);
  }

  private slotDir(tag: string, id: string): string {
    return join(this.dir, tag, id);
  }

  async put(s: Slot, body: Readable): Promise<'ok' | 'taken' | 'size'> {
    const dir = this.slotDir(s.tag, s.id);
    await mkdir(join(this.dir, s.tag), { recursive: true });
    try {
      await mkdir(dir); // not recursive: it exists if the slot was used (single use)
    } catch {
      return 'taken';
    }
    const part = join(dir, '.part');
    const b = bounded(body, s.size);
    const file = createWriteStream(part);
    file.once('error', b.storeFailed); // before pipeline's own listener: the first error decides
    try {
      await pipeline(b.stream, file as Writable);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (b.bodyFailed()) return 'size';
      throw err;
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

  private async meta(tag: string, id: string, name: string): Promise<FileMeta | undefined> {
    if (!validParts(tag, id, name)) return undefined;
    const dir = this.slotDir(tag, id);
    try {
      const meta = JSON.parse(await readFile(join(dir, '.meta.json'), 'utf8')) as FileMeta;
      await stat(join(dir, name));
      return meta;
    } catch {
      return undefined;
    }
  }

  async head(tag: string, id: string, name: string): Promise<FileInfo | undefined> {
    const m = await this.meta(tag, id, name);
    return m && { size: m.size, type: m.type, created: m.created };
  }

  /**
   * Reads into two buffers used in turn, each read into again only once the socket has
   * taken its bytes (the write's callback): a download allocates no buffer per chunk. (A
   * file read stream allocates a new 64 KiB buffer per read, which V8 frees only at its
   * next scavenge: +35 MiB of RSS during a 1 GiB download.) Callbacks rather than
   * promises: fewer short-lived objects per chunk.
   */
  async send(tag: string, id: string, name: string, range: Range, to: Writable): Promise<void> {
    if (!validParts(tag, id, name)) throw new Error('not a stored file');
    const fd = await promisify(openFd)(join(this.slotDir(tag, id), name), 'r');
    return new Promise<void>((resolve, reject) => {
      const size = Math.min(READ_SIZE, range.end + 1 - range.start);
      const bufs = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
      const writing = [false, false];
      let pos = range.start;
      let turn = 0;
      let reading = false;
      let over = false;
      const finish = (err?: Error | null): void => {
        if (over) return;
        over = true;
        to.off('close', gone);
        closeFd(fd, () => (err ? reject(err) : resolve()));
      };
      // a response whose client went away calls no more write callbacks: its 'close' ends the copy
      const gone = (): void => finish(new Error('the client went away'));
      const pump = (): void => {
        if (over || reading) return;
        if (pos > range.end) {
          if (!writing[0] && !writing[1]) {
            to.end();
            finish();
          }
          return;
        }
        const k = turn;
        if (writing[k]) return; // its write's callback pumps again
        reading = true;
        read(fd, bufs[k]!, 0, Math.min(size, range.end + 1 - pos), pos, (err, n) => {
          reading = false;
          if (over) return;
          if (err || n === 0) return finish(err ?? new Error('the file is shorter than its metadata says'));
          pos += n;
          turn ^= 1;
          writing[k] = true;
          to.write(bufs[k]!.subarray(0, n), (werr) => {
            writing[k] = false;
            if (werr) finish(werr);
            else pump();
          });
          pump();
        });
      };
      to.once('close', gone);
      if (to.destroyed) gone();
      else pump();
    });
  }

  async usedSince(tag: string, since: number): Promise<number> {
    if (!validParts(tag)) return 0;
    const base = join(this.dir, tag);
    let sum = 0;
    for (const id of await readdir(base).catch(() => [] as string[])) {
      const meta = await readFile(join(base, id, '.meta.json'), 'utf8').catch(() => undefined);
      if (!meta) continue;
      const m = JSON.parse(meta) as FileMeta;
      if (m.created >= since) sum += m.size;
    }
    return sum;
  }

  async removeOwner(tag: string): Promise<void> {
    if (validParts(tag)) await rm(join(this.dir, tag), { recursive: true, force: true });
  }

  async sweep(maxAgeMs: number): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const tag of await readdir(this.dir).catch(() => [] as string[])) {
      if (tag.startsWith('.')) continue;
      for (const id of await readdir(join(this.dir, tag)).catch(() => [] as string[])) {
        const dir = join(this.dir, tag, id);
        const meta = await readFile(join(dir, '.meta.json'), 'utf8').catch(() => undefined);
        const created = meta ? (JSON.parse(meta) as FileMeta).created : ((await stat(dir).catch(() => undefined))?.mtimeMs ?? now);
        const limit = meta ? maxAgeMs : UNFINISHED_MS;
        if (limit > 0 && now - created > limit) {
          await rm(dir, { recursive: true, force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  async close(): Promise<void> {}
}
