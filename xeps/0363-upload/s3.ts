// Uploaded files in an S3-compatible object store (modules.upload.s3_bucket set).
//
// Keys: <owner tag>/<slot id>/<file name> for a file, <owner tag>/<slot id>/.claim for the
// slot's claim, and .key for the store's key (shared by every node using the bucket).
// A PUT first claims its slot: the claim is written only if it is not there (a check,
// then If-None-Match: * on the write, which S3 and MinIO enforce; a store that ignores it
// still refuses a used slot, and this node never runs two uploads of one slot). The body
// goes through lib-storage's Upload, in parts of PART_SIZE, QUEUE parts in flight at most:
// memory per upload is bounded by those, whatever the file's size. A file's type is its
// Content-Type, its age its LastModified; the daily quota sums an owner's objects.
// Downloads stream through the server (GetObject with the range), so URLs, headers and
// ranges are those of the local store and the bucket stays private.
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { bounded, UNFINISHED_MS, validParts, type FileInfo, type FileStore, type Range, type Slot } from './files.js';

export interface S3Settings {
  endpoint: string;
  region: string;
  bucket: string;
  access_key: string;
  secret_key: string;
  path_style: boolean;
}

/** Bytes per part of a multipart upload (S3's least is 5 MiB; more for files past 50 GB, at most 10,000 parts). */
const PART_SIZE = 5 * 1048576;
/** Parts of one upload sent at once. */
const QUEUE = 2;
const CLAIM = '.claim';

/** The SDK's logger: each level takes what it logs */
type Logger = Record<'debug' | 'info' | 'warn' | 'error', (...content: unknown[]) => void>;

const status = (err: unknown): number | undefined => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const notFound = (err: unknown): boolean => status(err) === 404 || ['NotFound', 'NoSuchKey'].includes((err as Error).name);

export class S3Store implements FileStore {
  private readonly uploading = new Set<string>();

  private constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    readonly key: Buffer,
  ) {}

  /** `log`: where the SDK's warnings go (else the console) */
  static async open(c: S3Settings, log?: Logger): Promise<S3Store> {
    const s3 = new S3Client({
      ...(log ? { logger: log } : {}),
      region: c.region || 'us-east-1',
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      forcePathStyle: c.path_style,
      // without keys, the SDK's usual chain (AWS_ACCESS_KEY_ID, a profile, an instance role)
      ...(c.access_key || c.secret_key ? { credentials: { accessKeyId: c.access_key, secretAccessKey: c.secret_key } } : {}),
      // checksums only where the API requires them: S3-compatible stores differ in the newer ones
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      return new S3Store(s3, c.bucket, await S3Store.loadKey(s3, c.bucket));
    } catch (err) {
      s3.destroy();
      throw err;
    }
  }

  /** The key in the bucket's `.key` object, made by the first node that finds none. */
  private static async loadKey(s3: S3Client, bucket: string): Promise<Buffer> {
    const read = async (): Promise<Buffer | undefined> => {
      try {
        const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: '.key' }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if (notFound(err)) return undefined;
        throw err;
      }
    };
    const found = await read();
    if (found?.length === 32) return found;
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: '.key', Body: randomBytes(32), IfNoneMatch: '*' }));
    } catch (err) {
      if (status(err) !== 412 && status(err) !== 409) throw err; // another node was first
    }
    const key = await read(); // what is there now, ours or the first node's
    if (key?.length !== 32) throw new Error(`the bucket ${bucket} holds no usable .key`);
    return key;
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  private async remove(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const r = await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
        }),
      );
      if (r.Errors?.length)
        throw new Error(`S3 did not delete ${r.Errors.length} objects: ${r.Errors[0]!.Code ?? ''} ${r.Errors[0]!.Message ?? ''}`);
    }
  }

  /** Every object under `prefix`, a page at a time. */
  private async *list(prefix: string): AsyncGenerator<_Object[]> {
    let token: string | undefined;
    do {
      const r = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      yield r.Contents ?? [];
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async put(s: Slot, body: Readable): Promise<'ok' | 'taken' | 'size'> {
    const slot = `${s.tag}/${s.id}/`;
    if (this.uploading.has(slot)) return 'taken';
    this.uploading.add(slot);
    try {
      if (await this.exists(slot + CLAIM)) return 'taken';
      try {
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: slot + CLAIM, Body: '', ContentLength: 0, IfNoneMatch: '*' }));
      } catch (err) {
        if (status(err) === 412 || status(err) === 409) return 'taken';
        throw err;
      }
      const b = bounded(body, s.size);
      const upload = new Upload({
        client: this.s3,
        params: {
          Bucket: this.bucket,
          Key: slot + s.name,
          Body: b.stream,
          ContentType: s.type,
          Metadata: { owner: encodeURIComponent(s.owner) },
        },
        partSize: Math.max(PART_SIZE, Math.ceil(s.size / 10_000)),
        queueSize: QUEUE,
      });
      try {
        await upload.done();
      } catch (err) {
        b.storeFailed();
        b.stream.destroy(); // S3 failed first: stop reading the body
        // lib-storage aborted a multipart upload; the claim and a single-part object go
        await this.remove([slot + s.name, slot + CLAIM]).catch(() => {});
        if (b.bodyFailed()) return 'size';
        throw err;
      }
      return 'ok';
    } finally {
      this.uploading.delete(slot);
    }
  }

  async head(tag: string, id: string, name: string): Promise<FileInfo | undefined> {
    if (!validParts(tag, id, name)) return undefined;
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: `${tag}/${id}/${name}` }));
      return { size: r.ContentLength ?? 0, type: r.ContentType ?? '', created: r.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async send(tag: string, id: string, name: string, range: Range, to: Writable): Promise<void> {
    if (!validParts(tag, id, name)) throw new Error('not a stored file');
    const r = await this.s3.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: `${tag}/${id}/${name}`, Range: `bytes=${range.start}-${range.end}` }),
    );
    // pipeline: a client that goes away closes the connection to S3 too
    await pipeline(r.Body as Readable, to);
  }

  async usedSince(tag: string, since: number): Promise<number> {
    if (!validParts(tag)) return 0;
    let sum = 0;
    for await (const page of this.list(`${tag}/`))
      for (const o of page) if (!o.Key!.endsWith('/' + CLAIM) && (o.LastModified?.getTime() ?? 0) >= since) sum += o.Size ?? 0;
    return sum;
  }

  async removeOwner(tag: string): Promise<void> {
    if (!validParts(tag)) return;
    for await (const page of this.list(`${tag}/`)) await this.remove(page.map((o) => o.Key!));
  }

  async sweep(maxAgeMs: number): Promise<number> {
    const now = Date.now();
    let removed = 0;
    // keys come sorted: a slot's objects are next to each other (a slot may span two pages)
    let slot = '';
    let objects: _Object[] = [];
    const done = async (): Promise<void> => {
      const file = objects.find((o) => !o.Key!.endsWith('/' + CLAIM));
      const age = now - Math.max(...objects.map((o) => o.LastModified?.getTime() ?? now));
      const limit = file ? maxAgeMs : UNFINISHED_MS;
      if (objects.length && limit > 0 && age > limit) {
        await this.remove(objects.map((o) => o.Key!));
        removed++;
      }
    };
    for await (const page of this.list(''))
      for (const o of page) {
        const parts = o.Key!.split('/');
        if (parts.length !== 3) continue; // .key
        const s = `${parts[0]}/${parts[1]}/`;
        if (s !== slot) {
          await done();
          slot = s;
          objects = [];
        }
        objects.push(o);
      }
    await done();
    return removed;
  }

  async close(): Promise<void> {
    this.s3.destroy();
  }
}
