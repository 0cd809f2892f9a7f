// Bulk writes to SQLite on a worker thread with its own connection (WAL lets it
// write beside the main connection). better-sqlite3 is synchronous: a batch of
// archive rows, and above all its commit and checkpoint I/O, would otherwise
// stop the event loop (measured: chat throughput fell to a tenth with the archive
// on). The worker is inline code so it runs the same from src/ (tsx) and dist/.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: workerData.busyTimeout });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
// Each batch touches the newest pages of two indexes for every owner that got mail
// (one entry per chunk); storage.sqlite_archive_cache_mb (8 MB) holds them for thousands
// of active owners.
db.pragma('cache_size = -' + workerData.cacheKib);
// Temporary data in memory, not in files: each chunk's insert fires triggers that write
// other tables, so SQLite keeps a statement journal for it, and a fold sorts the new keys;
// in files (this build's default) they were most of this thread's writes: replaying the
// chat bench's batches, 20 KB written and 6.6 µs of system time per message, against 2.2 KB
// and 1.6 µs (bench/archive-writer-replay.cjs V=real TEMP=2). Both are small and bounded
// (a statement's few pages; a fold's keys, storage.sqlite_archive_fold_ms of chunks).
db.pragma('temp_store = MEMORY');
// Checkpoints. A batch dirties the newest index pages of every archive that got mail
// (two per active owner) and each commit appends them all to the log again; with
// SQLite's default (a checkpoint once the log holds 1,000 pages) every batch of the
// chat bench was followed by a checkpoint that copied the same pages to the database
// file and fsynced twice: 2,700 writes and 850 reads per batch, most of this thread's
// time. Letting the log grow to storage.sqlite_checkpoint_mb (64 MB) copies each
// page once per checkpoint, however many batches rewrote it. Measured: replaying the
// chat bench's batches alone, 24 -> 16 µs per message on this thread; in the server
// at 5,000 msgs/s, its system time from 0.37 to 0.23 s per 10 s, user 0.46 -> 0.50 (one run each)
// (BENCHMARKS.md, "Issue 14, this session"). This connection
// checkpoints for both (the main one stops: sqlite.ts), and every few seconds too, so
// that the main connection's own writes are copied while the archive is quiet.
const pageSize = db.pragma('page_size', { simple: true });
db.pragma('wal_autocheckpoint = ' + Math.max(100, Math.round(workerData.checkpointBytes / pageSize)));
db.pragma('journal_size_limit = ' + workerData.checkpointBytes);
const idleCheckpoint = setInterval(() => {
  // PASSIVE copies what no reader holds and never waits; one that fails is the next one's work
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
}, 5000);
idleCheckpoint.unref();
// Same priority as the event loop: once the archive queue is full the senders wait
// for this thread (backpressure), so starving it (it ran at nice 5 before) only
// made them wait longer: p99 497 -> 65 ms, max 880 -> 204 ms at the same
// throughput (chat, archive on, one core, BENCHMARKS.md).
const stmts = new Map();
// Sql.execBuilt: the rows' builder comes as source text, compiled once. tsx (the tests
// run the TypeScript sources) wraps inner functions in __name(fn, "name"); a no-op here.
globalThis.__name = (fn) => fn;
const builders = new Map();
parentPort.on('message', ({ id, text, width, build, input, after }) => {
  try {
    let fn = builders.get(build);
    if (!fn) builders.set(build, (fn = (0, eval)('(' + build + ')')));
    const values = fn(input);
    let st = stmts.get(text);
    if (!st) stmts.set(text, (st = db.prepare(text)));
    let changes = 0;
    const row = new Array(width);
    db.transaction(() => {
      for (let i = 0; i < values.length; i += width) {
        for (let j = 0; j < width; j++) row[j] = typeof values[i + j] === 'boolean' ? +values[i + j] : values[i + j];
        changes += st.run(row).changes;
      }
      for (const a of after) {
        let s = stmts.get(a);
        if (!s) stmts.set(a, (s = db.prepare(a)));
        s.run();
      }
    })();
    parentPort.postMessage({ id, changes });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e) });
  }
});
`;

export class SqliteBatchWriter {
  private readonly worker: Worker;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();

  constructor(file: string, busyTimeoutMs: number, cacheMb: number, checkpointMb = 64) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: { file, busyTimeout: busyTimeoutMs, driver, cacheKib: cacheMb * 1024, checkpointBytes: checkpointMb * 1024 * 1024 },
    });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; changes?: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.changes ?? 0);
    });
    this.worker.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  /**
   * `text` (? placeholders) run for each `width` values of `build(input)`, all in one
   * transaction, `build` run on the writer thread: see Sql.execBuilt.
   */
  execBuilt<I>(
    text: string,
    build: (input: I) => unknown[],
    input: I,
    width: number,
    transfer: ArrayBuffer[] = [],
    after: readonly string[] = [],
  ): Promise<number> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, text, build: build.toString(), input, width, after }, transfer);
    });
  }

  async close(): Promise<void> {
    while (this.pending.size) await new Promise((r) => setTimeout(r, 5));
    await this.worker.terminate();
  }
}
