// The XEP-0313 archive on SQL (SQLite or Postgres). Writes are queued in memory
// and written in batches up to `batch_ms` (250 ms) later, or at once when
// `batch_rows` (10,000) are queued, by one writer loop: one unnest INSERT on
// Postgres, one prepared statement run per chunk in one transaction on SQLite (on
// its own thread). So a burst of messages never waits on the database per message;
// queries flush first, so a client always sees what it was sent. Over `queue_rows`
// queued, senders wait (pressure()): nothing is ever dropped.
//
// Messages are stored in chunks (archive-chunks.ts): the messages of one batch
// that one owner exchanged with one contact are one row, keyed by (owner, first_seq,
// with_jid). seq is the archive time with a counter and the archive id is seq
// under a keyed permutation (archive-ids.ts), so there is no index on ids nor on
// time: pages, start/end filters and lookups by id are keyset range reads on
// (owner, first_seq), and a page costs the same at a thousand or a million messages.
// There is no index per contact (it was ~40% of the writer's work, migration 11):
// triggers keep mam_with_days, per owner, contact and UTC day how many messages,
// and a `with` page or count reads through it (archive-read.ts). On SQLite each batch
// appends its changes to mam_day_delta and its chunks' keys to mam_chunk_keys_new
// (mam_chunks itself has no index), both folded in with a batch every fold_ms
// (migrations 12 and 13, insertChunks).
import { randomBytes } from 'node:crypto';
import type { Sql } from './sql.js';
import { ArchiveIds, seqTime, timeSeq } from './archive-ids.js';
import { MAX_SEQ, MIN_SEQ, chunkSql, collect, count as countMessages, oneChunk, type ChunkRow } from './archive-read.js';
import { CHUNK_MAX, CHUNK_SPAN, chunkRows, decodeChunk, encodeChunk, transfer, type Columns, type Entry } from './archive-chunks.js';
import { Segment, type Queued } from './archive-queue.js';
import { AFTER_INSERT_SQLITE, FOLD_SQLITE } from '../migrations/index.js';
import { ArchiveIdNotFound, type ArchiveQuery, type ArchiveRow, type ArchiveStore, type ArchivedMessage } from '../types.js';

// Big batches are what makes the archive cheap: every row costs an insert into the
// table and into each index, and every commit rewrites each index page it touched.
// Measured on this machine (SQLite, WAL, 500 owners, 300k messages, one core): one
// row per message and owner cost 23 µs per message (16 µs CPU); chunks of 20 cost
// 6.7 µs (5 µs). So rows wait up to `batch_ms` and the writer loop writes them in
// batches of `batch_rows`, grouped into chunks. In the chat bench (250 pairs) a
// batch of 100 ms made chunks of ~5 and cost the writer thread 9-12 µs per message;
// 250 ms makes chunks of ~13 and costs 5-6 µs (500 ms: no better), so 250 ms it is.

/** The archive queue's bounds (`storage.archive_*` in the configuration). */
export interface ArchiveLimits {
  /** rows per written batch */
  batch_rows: number;
  /** ms a row waits at most for its batch */
  batch_ms: number;
  /** queued rows above which senders wait for the writer (backpressure); they go on below half of it */
  queue_rows: number;
  /**
   * rows one sender may have queued: past it that sender alone waits until half of them
   * are written, so one flood slows its sender, not everyone (the queue_rows wait is for all)
   */
  source_rows: number;
  /**
   * SQLite: ms between folds of mam_day_delta into mam_with_days (migration 12) and of
   * mam_chunk_keys_new into mam_chunk_keys (migration 13), done with the next batch: what
   * a query reads from the small tables besides the large ones
   */
  fold_ms: number;
}

export const ARCHIVE_DEFAULTS: ArchiveLimits = { batch_rows: 10_000, batch_ms: 250, queue_rows: 30_000, source_rows: 1_000, fold_ms: 5000 };

/** What the store tells its owner (logs, metrics). */
export interface ArchiveEvents {
  /** a background write failed (the rows stay queued and are retried) */
  error(err: unknown): void;
  /** one batch written */
  batch(seconds: number, rows: number): void;
  /** senders started (true) or stopped (false) waiting for the writer */
  pressure(on: boolean, queued: number): void;
}

/** A promise with its resolve exposed. */
function settle(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class SqlArchiveStore implements ArchiveStore {
  /** rows waiting, off the heap (archive-queue.ts): the last segment is the one filling, each holds one batch at most */
  private segments: Segment[] = [];
  /** rows in `segments` */
  private waiting = 0;
  /** a written segment, kept to be filled again */
  private spare: Segment | undefined;
  /** a batch whose write failed: retried alone and unchanged, so its chunks are the same (Postgres: ON CONFLICT DO NOTHING after an ambiguous failure; SQLite rolls a failed batch back whole) */
  private retry: Segment | undefined;
  private ids: ArchiveIds | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** rows ever queued / written: a flush waits until `written` reaches `queued` as it was */
  private added = 0;
  /** when the day counts' changes were last folded (SQLite: insertChunks) */
  private foldedAt = performance.now();
  private written = 0;
  private readonly flushes: { upTo: number; done: () => void }[] = [];
  /** the one writer loop is running */
  private pumping = false;
  /** senders wait on this while the queue is over `queue_rows`: one promise for all of them */
  private drain: { promise: Promise<void>; resolve: () => void } | undefined;
  /** queued rows per sender, and the senders waiting for theirs to be written */
  private readonly bySource = new Map<string, number>();
  private readonly sourceWaits = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  /** the batch timer fired: write what is queued even if it is a partial batch */
  private timerDue = false;
  /** after a failed write: no writes until the retry timer, which backs off */
  private failing = false;
  private backoff = 100;

  constructor(
    private readonly sql: Sql,
    private readonly events: Partial<ArchiveEvents> = {},
    private readonly limits: ArchiveLimits = ARCHIVE_DEFAULTS,
  ) {}

  /**
   * Never drops a row: a database that falls behind or fails makes the queue grow
   * up to `queue_rows`, and then the senders wait (`pressure()`), so what is queued
   * beyond it is bounded by the senders in flight, one stanza each.
   */
  add(row: ArchiveRow): void {
    const ids = this.idsOrThrow();
    const seq = ids.decode(row.id);
    // an id this key did not make (a row of an older build, a test) is kept as it is
    let open = this.segments.at(-1);
    if (!open || open.n >= this.limits.batch_rows) {
      open = this.spare ?? new Segment();
      this.spare = undefined;
      this.segments.push(open);
    }
    open.push({
      owner: row.owner,
      seq: seq ?? ids.next(row.ts),
      with: row.with,
      withFull: row.withFull ?? null,
      legacy: seq === undefined ? row.id : null,
      stanza: row.stanza,
      source: row.source,
    });
    this.waiting++;
    if (row.source !== undefined) this.bySource.set(row.source, (this.bySource.get(row.source) ?? 0) + 1);
    this.added++;
    if (this.pumping || this.failing) return;
    if (this.waiting >= this.limits.batch_rows) this.pump();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.pump(), this.limits.batch_ms);
      this.timer.unref();
    }
  }

  /** Load (or create) the deployment's id key: before the first add or newId. */
  async init(): Promise<void> {
    await this.sql.exec('INSERT INTO mam_keys (k, secret) VALUES (1, $1) ON CONFLICT (k) DO NOTHING', [randomBytes(16).toString('hex')]);
    const [row] = await this.sql.query<{ secret: string }>('SELECT secret FROM mam_keys WHERE k = 1');
    this.ids = new ArchiveIds(row!.secret);
    this.ids.useLane(...this.lane);
  }

  private idsOrThrow(): ArchiveIds {
    if (!this.ids) throw new Error('archive store used before init()');
    return this.ids;
  }

  useLane(lane: number, lanes: number): void {
    this.lane = [lane, lanes];
    this.ids?.useLane(lane, lanes);
  }
  private lane: [number, number] = [0, 1];

  newId(_owner: string, ts?: number): string {
    const ids = this.idsOrThrow();
    return ids.encode(ids.next(ts));
  }

  private toMessage(withJid: string, e: Entry): ArchivedMessage {
    return { id: e.legacy ?? this.idsOrThrow().encode(e.seq), ts: seqTime(e.seq), with: withJid, stanza: e.stanza };
  }

  /** rows waiting to be written */
  get queued(): number {
    return this.waiting + (this.retry?.n ?? 0);
  }

  flush(): Promise<void> {
    if (this.written >= this.added) return Promise.resolve();
    const { promise, resolve } = settle();
    this.flushes.push({ upTo: this.added, done: resolve });
    if (!this.failing) this.pump();
    return promise;
  }

  pressure(source?: string): Promise<void> | undefined {
    if (this.drain) return this.drain.promise;
    if (this.queued >= this.limits.queue_rows) {
      this.drain = settle();
      this.events.pressure?.(true, this.queued);
      if (!this.failing) this.pump();
      return this.drain.promise;
    }
    if (source === undefined || (this.bySource.get(source) ?? 0) < this.limits.source_rows) return undefined;
    let wait = this.sourceWaits.get(source);
    if (!wait) this.sourceWaits.set(source, (wait = settle()));
    if (!this.failing) this.pump();
    return wait.promise;
  }

  /** A batch was written: its senders' shares go down; those waiting go on below half their bound. */
  private release(batch: Segment): void {
    for (const source of batch.sources()) {
      const n = (this.bySource.get(source) ?? 1) - 1;
      if (n > 0) this.bySource.set(source, n);
      else this.bySource.delete(source);
    }
    for (const [source, wait] of this.sourceWaits)
      if ((this.bySource.get(source) ?? 0) <= this.limits.source_rows / 2) {
        this.sourceWaits.delete(source);
        wait.resolve();
      }
  }

  /**
   * The one writer loop: full batches while there are any (or someone waits), then a
   * partial batch only when its rows have waited `batch_ms`. A failed batch is kept
   * aside and retried alone, first, after a growing backoff.
   */
  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.retry || this.waiting > 0) {
          const urgent = this.flushes.length > 0 || this.drain !== undefined || this.sourceWaits.size > 0;
          if (!this.retry && this.waiting < this.limits.batch_rows && !urgent && !this.timerDue) {
            // a partial batch: let it fill for batch_ms
            this.timer = setTimeout(() => {
              this.timerDue = true;
              this.pump();
            }, this.limits.batch_ms);
            this.timer.unref();
            break;
          }
          this.timerDue = false;
          let batch = this.retry;
          this.retry = undefined;
          if (!batch) {
            batch = this.segments.shift()!;
            this.waiting -= batch.n;
          }
          try {
            const t0 = performance.now();
            await this.insert(batch);
            this.events.batch?.((performance.now() - t0) / 1000, batch.n);
          } catch (err) {
            this.retry = batch;
            this.events.error?.(err);
            this.failing = true;
            this.timer = setTimeout(() => {
              this.failing = false;
              this.timerDue = true;
              this.pump();
            }, this.backoff);
            this.timer.unref();
            // at most 5 s: the archive catches up within seconds of the database coming back
            this.backoff = Math.min(this.backoff * 2, 5000);
            // a flush (a query, the stop) does not wait for the database to come back
            this.settleFlushes(true);
            return;
          }
          this.backoff = 100;
          this.written += batch.n;
          this.release(batch);
          batch.reset();
          this.spare = batch;
          this.settleFlushes(false);
          if (this.drain && this.queued < this.limits.queue_rows / 2) {
            this.drain.resolve();
            this.drain = undefined;
            this.events.pressure?.(false, this.queued);
          }
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  private settleFlushes(all: boolean): void {
    while (this.flushes.length && (all || this.flushes[0]!.upTo <= this.written)) this.flushes.shift()!.done();
  }

  /**
   * Not async: the batch goes to the database in one synchronous step, so no suspended
   * frame keeps megabytes of it alive (and copied by every scavenge) during the write.
   */
  private insert(batch: Segment): Promise<void> {
    // rows under an id of an older build (rare) each go with their id's mapping, one transaction each
    const legacy = batch.legacyRows();
    if (legacy.length === 0) return this.insertChunks(batch);
    return (async () => {
      for (const r of legacy) await this.insertLegacy(r);
      await this.insertChunks(batch);
    })();
  }

  private insertChunks(batch: Segment): Promise<void> {
    const input: Columns = { ...batch.columns(), span: CHUNK_SPAN, max: CHUNK_MAX };
    if (this.sql.dialect === 'postgres') {
      // One statement text whatever the batch size: five arrays unnested, and the bodies as
      // one bytea parameter (chunkRows writes them one after another in one buffer) cut by
      // offsets. pg sends a Buffer as it is (binary), where a text[] of the bodies made it
      // escape every quote of every stanza into one large string: 80-90 ms of the event
      // loop per 10,000 rows of 1 KB (bench/pg-archive-params.cjs), against ~1 ms this way.
      // Postgres cuts and checks the UTF-8 (convert_from), on its own core.
      const values = chunkRows(input);
      if (values.length === 0) return Promise.resolve();
      const cols: unknown[][] = [[], [], [], [], [], [], []];
      const first = values[5] as Buffer;
      const last = values.at(-1) as Buffer;
      for (let i = 0; i < values.length; i += 6) {
        for (let k = 0; k < 5; k++) cols[k]!.push(values[i + k]);
        const body = values[i + 5] as Buffer;
        cols[5]!.push(body.byteOffset - first.byteOffset);
        cols[6]!.push(body.byteLength);
      }
      const all = Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.byteLength - first.byteOffset);
      return this.sql
        .exec(
          `INSERT INTO mam_chunks (owner, with_jid, first_seq, last_seq, n, body)
         SELECT o, w, f, l, n, convert_from(substring($8::bytea FROM b + 1 FOR len), 'UTF8')
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::int[], $6::int[], $7::int[]) AS r(o, w, f, l, n, b, len)
         ON CONFLICT DO NOTHING`,
          [...cols, all],
        )
        .then(() => undefined);
    }
    // SQLite: the chunks are made on the writer thread, then one prepared single-row
    // statement runs for each in one transaction. The body comes as UTF-8 bytes and is
    // stored as the same text (CAST of a BLOB to TEXT keeps its bytes). Then the batch's
    // keys and day changes are copied from its rows (migration 13: no row triggers), and
    // every fold_ms the batch also merges the new keys into the key index and folds the
    // day counts' changes (migrations 12, 13), in its transaction: each owner's pages
    // written once per fold instead of once per batch.
    const now = performance.now();
    const fold = now - this.foldedAt >= this.limits.fold_ms;
    if (fold) this.foldedAt = now;
    return this.sql
      .execBuilt(
        'INSERT INTO mam_chunks (owner, with_jid, first_seq, last_seq, n, body) VALUES ($1, $2, $3, $4, $5, CAST($6 AS TEXT)) ON CONFLICT DO NOTHING',
        chunkRows,
        input,
        6,
        transfer(input),
        fold ? [...AFTER_INSERT_SQLITE, ...FOLD_SQLITE] : AFTER_INSERT_SQLITE,
      )
      .then(() => undefined);
  }

  /** A row under an id of an older build: its id's mapping and a chunk of its own; an id already there is not a second row. */
  private async insertLegacy(r: Queued): Promise<void> {
    await this.sql.transaction(async (tx) => {
      const fresh = await tx.exec('INSERT INTO mam_legacy (owner, legacy_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
        r.owner,
        r.legacy,
        r.seq,
      ]);
      if (fresh === 0) return;
      const entry: Entry = { seq: r.seq, full: r.withFull, stanza: r.stanza, legacy: r.legacy };
      await tx.exec(
        'INSERT INTO mam_chunks (owner, with_jid, first_seq, last_seq, n, body) VALUES ($1, $2, $3, $3, 1, $4) ON CONFLICT DO NOTHING',
        [r.owner, r.with, r.seq, encodeChunk([entry])],
      );
      if (tx.dialect === 'sqlite') for (const a of AFTER_INSERT_SQLITE) await tx.exec(a);
    });
  }

  /** The key of an id in an owner's archive (after a flush), or ArchiveIdNotFound. */
  private async seqOf(owner: string, id: string): Promise<number> {
    const seq = this.idsOrThrow().decode(id);
    if (seq === undefined) {
      const legacy = await this.legacySeq(owner, id);
      if (legacy === undefined) throw new ArchiveIdNotFound(id);
      return legacy;
    }
    if (!(await this.find(this.sql, owner, seq, (e) => e.seq === seq))) throw new ArchiveIdNotFound(id);
    return seq;
  }

  /** The seq of a message under an id of an older build (mam_legacy). */
  private async legacySeq(owner: string, id: string): Promise<number | undefined> {
    const [row] = await this.sql.query<{ seq: number | string }>('SELECT seq FROM mam_legacy WHERE owner = $1 AND legacy_id = $2', [
      owner,
      id,
    ]);
    return row ? Number(row.seq) : undefined;
  }

  /**
   * The chunk holding a message at `seq` (after a flush): its row, its entries and the
   * entry's index. `lock`: row-locked for a rewrite (Postgres; SQLite's transaction is the lock).
   */
  private async find(
    sql: Sql,
    owner: string,
    seq: number,
    match: (e: Entry) => boolean,
    lock = false,
  ): Promise<{ row: ChunkRow; entries: Entry[]; at: number } | undefined> {
    const rows = await sql.query<ChunkRow>(
      chunkSql(sql.dialect, 'rows', 'owner = $1 AND first_seq <= $2 AND first_seq >= $3 AND last_seq >= $2', { lock }),
      [owner, seq, seq - CHUNK_SPAN],
    );
    for (const row of rows) {
      const entries = decodeChunk(row.body!);
      const at = entries.findIndex(match);
      if (at >= 0) return { row, entries, at };
    }
    return undefined;
  }

  async query(q: ArchiveQuery): Promise<{ items: ArchivedMessage[]; complete: boolean; count: number | undefined }> {
    await this.flush();
    const full = q.with?.includes('/') ? q.with : undefined;
    const withJid = full !== undefined ? full.slice(0, full.indexOf('/')) : q.with;
    // time is part of seq: a time range is a seq range
    const flo = q.start !== undefined ? timeSeq(q.start) : MIN_SEQ;
    const fhi = q.end !== undefined ? timeSeq(q.end + 1) - 1 : MAX_SEQ;
    let only: Set<number> | undefined;
    if (q.ids) {
      if (q.ids.length === 0) return { items: [], complete: true, count: 0 };
      only = new Set<number>();
      for (const id of q.ids) only.add(await this.seqOf(q.owner, id));
    }
    const perMessage =
      full !== undefined || only !== undefined
        ? (e: Entry) => (full === undefined || e.full === full) && (!only || only.has(e.seq))
        : undefined;
    const keep = perMessage ?? (() => true);
    let lo = flo;
    let hi = fhi;
    if (q.after !== undefined) lo = Math.max(lo, (await this.seqOf(q.owner, q.after)) + 1);
    if (q.before !== undefined) hi = Math.min(hi, (await this.seqOf(q.owner, q.before)) - 1);
    const rows = q.max > 0 ? await collect(this.sql, q.owner, withJid, lo, hi, q.fromEnd, keep, q.max + 1) : [];
    const complete = rows.length <= q.max;
    const page = rows.slice(0, q.max);
    if (q.fromEnd) page.reverse();
    // counting a million messages costs: count up to the limit, and say nothing beyond it
    const count = await countMessages(this.sql, q.owner, withJid, flo, fhi, perMessage, q.countLimit);
    return {
      items: page.map((r) => this.toMessage(r.withJid, r.entry)),
      complete: q.max === 0 ? count === 0 : complete,
      count,
    };
  }

  async bounds(owner: string): Promise<{ first?: ArchivedMessage; last?: ArchivedMessage }> {
    await this.flush();
    const one = async (desc: boolean): Promise<ArchivedMessage | undefined> => {
      const [r] = await collect(this.sql, owner, undefined, MIN_SEQ, MAX_SEQ, desc, () => true, 1);
      return r ? this.toMessage(r.withJid, r.entry) : undefined;
    };
    return { first: await one(false), last: await one(true) };
  }

  async replace(owner: string, id: string, stanza: string): Promise<boolean> {
    // a row still waiting for its batch is replaced where it waits; after a flush, rows whose
    // write failed wait for their retry, and the others are in the table
    const seq = this.idsOrThrow().decode(id);
    const queued = (): boolean => {
      const match = (o: string, s: number, legacy: string | null): boolean =>
        o === owner && (seq !== undefined ? s === seq && legacy === null : legacy === id);
      return this.segments.some((g) => g.replace(match, stanza)) || (this.retry?.replace(match, stanza) ?? false);
    };
    if (queued()) return true;
    await this.flush();
    if (queued()) return true;
    const at = seq ?? (await this.legacySeq(owner, id));
    if (at === undefined) return false;
    // read, change, write back the one chunk, in a transaction
    return this.sql.transaction(async (tx) => {
      const hit = await this.find(tx, owner, at, (x) => x.seq === at && (seq !== undefined ? x.legacy === null : x.legacy === id), true);
      if (!hit) return false;
      hit.entries[hit.at]!.stanza = stanza;
      const [which, key] = oneChunk(hit.row, owner, 2);
      await tx.exec(`UPDATE mam_chunks SET body = $1 WHERE ${which}`, [encodeChunk(hit.entries), ...key]);
      return true;
    });
  }

  async purge(before: number, owner?: string): Promise<number> {
    await this.flush();
    const cut = timeSeq(before);
    const scope = owner === undefined ? '' : ' AND owner = $2';
    const params: unknown[] = owner === undefined ? [cut] : [cut, owner];
    return this.sql.transaction(async (tx) => {
      // whole chunks before the cut
      const before = `last_seq < $1${scope}`;
      const [c] = await tx.query<{ s: number | string | null }>(chunkSql(tx.dialect, 'sum', before), params);
      let n = Number(c?.s ?? 0);
      await tx.exec(chunkSql(tx.dialect, 'delete', before), params);
      // chunks across the cut keep their later messages
      const across = await tx.query<ChunkRow & { owner: string }>(
        chunkSql(tx.dialect, 'rows', `first_seq < $1 AND last_seq >= $1${scope}`, { owner: true }),
        params,
      );
      for (const row of across) {
        const entries = decodeChunk(row.body!);
        const kept = entries.filter((e) => e.seq >= cut);
        n += entries.length - kept.length;
        const [which, key] = oneChunk(row, row.owner, 4);
        await tx.exec(`UPDATE mam_chunks SET first_seq = $1, n = $2, body = $3 WHERE ${which}`, [
          kept[0]!.seq,
          kept.length,
          encodeChunk(kept),
          ...key,
        ]);
      }
      await tx.exec(`DELETE FROM mam_legacy WHERE seq < $1${scope}`, params);
      await fold(tx);
      return n;
    });
  }

  async deleteAll(owner: string): Promise<number> {
    await this.flush();
    return this.sql.transaction(async (tx) => {
      const [c] = await tx.query<{ s: number | string | null }>(chunkSql(tx.dialect, 'sum', 'owner = $1'), [owner]);
      await tx.exec(chunkSql(tx.dialect, 'delete', 'owner = $1'), [owner]);
      await tx.exec('DELETE FROM mam_legacy WHERE owner = $1', [owner]);
      await fold(tx);
      return Number(c?.s ?? 0);
    });
  }
}

/**
 * SQLite: a purge or a deleted archive leaves a change per chunk it removed; folded at
 * once, in its transaction, so that `with` queries do not read them until the next batch
 * (a quiet server may write none for a long time); the new keys are merged with them.
 */
async function fold(tx: Sql): Promise<void> {
  if (tx.dialect === 'sqlite') for (const f of FOLD_SQLITE) await tx.exec(f);
}
