// Uploaded files: the signed slots that let a client PUT one, and the storage they go to.
//
// A slot is stateless: its PUT URL carries the owner, size, content type and expiry, signed
// with the store's key (HMAC-SHA256). A file is named by the owner's tag (a keyed hash of
// the owner's bare JID: deleting an account deletes everything under its tag; the tag says
// nothing of the owner), the slot id and the file name. The first PUT claims the slot
// (single use); a failed upload leaves nothing and frees the slot.
//
// Two stores implement FileStore: the local disk (./local.ts, the default) and an
// S3-compatible object store (./s3.ts). What a PUT may carry (the byte count) is checked
// here, the same for both.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { pipeline } from 'node:stream';
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

/** A stored file, as a GET needs it. */
export interface FileInfo {
  size: number;
  type: string;
  /** ms since the epoch: when the upload completed */
  created: number;
}

/** Byte range, both ends included. */
export interface Range {
  start: number;
  end: number;
}

/** Where uploaded files are kept. Every method refuses names that are not a stored file's (path tricks). */
export interface FileStore {
  /** the secret that signs slots and makes owner tags, shared by every node using this store */
  readonly key: Buffer;
  /**
   * Store the body of a PUT for slot `s`, streamed (never whole in memory), at most
   * `s.size` bytes. 'taken' when the slot was used already; 'size' when the body was not
   * exactly `s.size` bytes or the client went away (nothing is kept, the slot stays free).
   * A storage failure throws (nothing is kept either).
   */
  put(s: Slot, body: Readable): Promise<'ok' | 'taken' | 'size'>;
  /** A complete stored file's size, type and age; undefined if there is none. */
  head(tag: string, id: string, name: string): Promise<FileInfo | undefined>;
  /**
   * Write bytes `range` of the file to `to`, then end it; backpressured. Rejects when `to`
   * closes first (a client that went away) and when the file cannot be read.
   */
  send(tag: string, id: string, name: string, range: Range, to: Writable): Promise<void>;
  /** Bytes stored under `tag` (one owner) by uploads completed since `since` (ms), for the daily quota. */
  usedSince(tag: string, since: number): Promise<number>;
  /** Delete every file of the owner with this tag. */
  removeOwner(tag: string): Promise<void>;
  /** Delete files older than `maxAgeMs` (0: none) and uploads left unfinished for a day; returns how many slots went. */
  sweep(maxAgeMs: number): Promise<number>;
  close(): Promise<void>;
}

/** How long an unfinished upload's claim is kept before a sweep frees it. */
export const UNFINISHED_MS = 86_400_000;

/** A file name as stored and put in URLs: no path, no control characters, at most 200 bytes. */
export function safeName(name: string): string | undefined {
  const n = name
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_')
    .trim();
  if (!n || n === '.' || n === '..' || n.startsWith('.')) return undefined;
  const chars = Array.from(n); // code points: never half of a surrogate pair
  while (Buffer.byteLength(chars.join('')) > 200) chars.pop();
  return chars.join('');
}

/** A content type we pass on: type/subtype with token characters only. */
export const safeType = (t: string | undefined): string =>
  t && /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i.test(t) ? t.toLowerCase() : 'application/octet-stream';

/** Parts of a file's address that can name a stored file: no separator, nothing hidden (.key, .meta.json, .claim). */
export const validParts = (...parts: string[]): boolean =>
  parts.every((p) => p && !p.includes('/') && !p.includes('\\') && !p.startsWith('.'));

/** Signs and checks slots with a store's key. */
export class Slots {
  constructor(private readonly key: Buffer) {}

  tag(owner: string): string {
    return createHmac('sha256', this.key)
      .update('owner\n' + owner)
      .digest('base64url')
      .slice(0, 16);
  }

  newSlot(owner: string, name: string, size: number, type: string, ttlSeconds: number, typed: boolean): Slot {
    return {
      owner,
      tag: this.tag(owner),
      id: randomBytes(12).toString('base64url'),
      name,
      size,
      type,
      typed,
      expires: Math.floor(Date.now() / 1000) + ttlSeconds,
    };
  }

  sign(s: Slot): string {
    return createHmac('sha256', this.key)
      .update(`put\n${s.owner}\n${s.tag}\n${s.id}\n${s.name}\n${s.size}\n${s.type}\n${s.typed ? 1 : 0}\n${s.expires}`)
      .digest('base64url');
  }

  verify(s: Slot, sig: string): boolean {
    const want = Buffer.from(this.sign(s));
    const got = Buffer.from(sig);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/**
 * The body of a PUT through a byte counter: the returned stream errors past `size` bytes,
 * and at its end if it got fewer. `failed()` tells, after a failed upload, whether the body
 * was to blame (wrong size, client gone: the answer is 400) or the storage (500): the first
 * error seen decides; the storage's sink reports its own with `storeFailed`.
 */
export function bounded(body: Readable, size: number): { stream: Readable; bodyFailed: () => boolean; storeFailed: () => void } {
  let first: 'body' | 'store' | undefined;
  let n = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      if (n <= size) return done(null, chunk);
      first ??= 'body';
      done(new Error(`more than ${size} bytes`));
    },
    flush(done) {
      if (n === size) return done();
      first ??= 'body';
      done(new Error(`${n} bytes, not ${size}`));
    },
  });
  body.once('error', () => (first ??= 'body'));
  pipeline(body, stream, () => {});
  return { stream, bodyFailed: () => first === 'body', storeFailed: () => void (first ??= 'store') };
}
