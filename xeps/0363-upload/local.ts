// Uploaded files on local disk (the default store).
//
// Layout: <dir>/<owner tag>/<slot id>/<file name>, with the file's metadata beside it in
// <dir>/<owner tag>/<slot id>/.meta.json, and the key in <dir>/.key. The slot directory
// is created by the first PUT (mkdir is atomic), so a second PUT finds it and is refused
// (single use); a directory without .meta.json is an upload under way or abandoned.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
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

/** Bytes read from a file at once in a download; each download reads into two such buffers, in turn. */
const READ_SIZE = 65_536;

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
   * Reads into two buffers used in turn, each read again only once the socket has taken
   * its bytes (the write's callback): a download allocates nothing per chunk. (A file
   * read stream allocates a new 64 KiB buffer per read, which V8 frees only at its next
   * scavenge: tens of MiB of RSS during a large download.)
   */
  async send(tag: string, id: string, name: string, range: Range, to: Writable): Promise<void> {
    if (!validParts(tag, id, name)) throw new Error('not a stored file');
    if (to.destroyed) throw new Error('the client went away');
    const fh = await open(join(this.slotDir(tag, id), name), 'r');
    let onClose: (() => void) | undefined;
    // a response whose client went away calls no more write callbacks: its 'close' ends the copy
    const gone = new Promise<never>((_, reject) => {
      onClose = () => reject(new Error('the client went away'));
      to.once('close', onClose);
    });
    gone.catch(() => {});
    try {
      const bufs = [Buffer.allocUnsafeSlow(READ_SIZE), Buffer.allocUnsafeSlow(READ_SIZE)];
      const writing: (Promise<void> | undefined)[] = [undefined, undefined];
      let pos = range.start;
      for (let i = 0; pos <= range.end; i ^= 1) {
        if (writing[i]) await Promise.race([writing[i], gone]);
        const { bytesRead } = await fh.read(bufs[i]!, 0, Math.min(READ_SIZE, range.end + 1 - pos), pos);
        if (bytesRead === 0) throw new Error('the file is shorter than its metadata says');
        pos += bytesRead;
        const chunk = bufs[i]!.subarray(0, bytesRead);
        writing[i] = new Promise<void>((resolve, reject) => void to.write(chunk, (err) => (err ? reject(err) : resolve())));
        writing[i]!.catch(() => {});
      }
      await Promise.race([Promise.all(writing), gone]);
      await Promise.race([new Promise<void>((resolve) => to.end(resolve)), gone]);
    } finally {
      to.off('close', onClose!);
      await fh.close();
    }
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
