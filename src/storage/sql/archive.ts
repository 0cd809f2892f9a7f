// The XEP-0313 archive on SQL (SQLite or Postgres). Writes are queued in memory
// and written in batches up to `batch_ms` (100 ms) later, or at once when
// `batch_rows` (10,000) are queued: one unnest INSERT on Postgres, one prepared
// statement run per row in one transaction on SQLite. So a burst of messages never
// waits on the database per message; queries flush first, so a client always sees
// what it was sent. Over `queue_rows` queued, senders wait (pressure()): nothing
// is ever dropped.
// Rows are keyed by (owner, seq); seq is the archive time with a counter and the
// archive id is seq under a keyed permutation (archive-ids.ts), so there is no
// index on ids nor on time: pages, start/end filters and lookups by id are all
// keyset queries on (owner, seq) or (owner, with_jid, seq), and a page costs the
// same at a thousand or a million messages.
import { randomBytes } from 'node:crypto';
import type { Sql } from './sql.js';
import { ArchiveIds, seqTime, timeSeq } from './archive-ids.js';
import { ArchiveIdNotFound, type ArchiveQuery, type ArchiveRow, type ArchiveStore, type ArchivedMessage } from '../types.js';

// Big batches are what makes the archive cheap: on SQLite (WAL) a row costs
// 74 µs in batches of 100 and 32 µs in batches of 2,000 for 500 owners, as
// every commit rewrites each index page it touched (200k rows, this machine);
// Postgres likewise prefers fewer, larger statements. So rows wait up to
// `batch_ms` and one writer loop (pump) writes them in batches of `batch_rows`.

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
}

export const ARCHIVE_DEFAULTS: ArchiveLimits = { batch_rows: 10_000, batch_ms: 100, queue_rows: 30_000, source_rows: 1_000 };

/** What the store tells its owner (logs, metrics). */
export interface ArchiveEvents {
  /** a background write failed (the rows stay queued and are retried) */
  error(err: unknown): void;
  /** one batch written */
  batch(seconds: number, rows: number): void;
  /** senders started (true) or stopped (false) waiting for the writer */
  pressure(on: boolean, queued: number): void;
}

interface Row {
  seq: number | string;
  legacy_id: string | null;
  with_jid: string;
  stanza: string;
}

/** A row waiting for its batch: the key already decided. */
interface Queued {
  owner: string;
  seq: number;
  with: string;
  withFull: string | null;
  legacy: string | null;
  stanza: string;
  source: string | undefined;
}

/** A promise with its resolve exposed. */
function settle(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class SqlArchiveStore implements ArchiveStore {
  private queue: Queued[] = [];
  private ids: ArchiveIds | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** rows ever queued / written: a flush waits until `written` reaches `queued` as it was */
  private added = 0;
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
    this.queue.push({
      owner: row.owner,
      seq: seq ?? ids.next(row.ts),
      with: row.with,
      withFull: row.withFull ?? null,
      legacy: seq === undefined ? row.id : null,
      stanza: row.stanza,
      source: row.source,
    });
    if (row.source !== undefined) this.bySource.set(row.source, (this.bySource.get(row.source) ?? 0) + 1);
    this.added++;
    if (this.pumping || this.failing) return;
    if (this.queue.length >= this.limits.batch_rows) this.pump();
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
  }

  private idsOrThrow(): ArchiveIds {
    if (!this.ids) throw new Error('archive store used before init()');
    return this.ids;
  }

  newId(_owner: string, ts?: number): string {
    const ids = this.idsOrThrow();
    return ids.encode(ids.next(ts));
  }

  private idOf(r: { seq: number | string; legacy_id: string | null }): string {
    return r.legacy_id ?? this.idsOrThrow().encode(Number(r.seq));
  }

  private toMessage(r: Row): ArchivedMessage {
    return { id: this.idOf(r), ts: seqTime(Number(r.seq)), with: r.with_jid, stanza: r.stanza };
  }

  /** rows waiting to be written */
  get queued(): number {
    return this.queue.length;
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
    if (this.queue.length >= this.limits.queue_rows) {
      this.drain = settle();
      this.events.pressure?.(true, this.queue.length);
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
  private release(batch: Queued[]): void {
    for (const r of batch) {
      if (r.source === undefined) continue;
      const n = (this.bySource.get(r.source) ?? 1) - 1;
      if (n > 0) this.bySource.set(r.source, n);
      else this.bySource.delete(r.source);
    }
    for (const [source, wait] of this.sourceWaits)
      if ((this.bySource.get(source) ?? 0) <= this.limits.source_rows / 2) {
        this.sourceWaits.delete(source);
        wait.resolve();
      }
  }

  /**
   * The one writer loop: full batches while there are any (or someone waits), then a
   * partial batch only when its rows have waited `batch_ms`. A failed batch goes back to
   * the front of the queue, in order, and the loop pauses for a growing backoff.
   */
  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.queue.length > 0) {
          const urgent = this.flushes.length > 0 || this.drain !== undefined || this.sourceWaits.size > 0;
          if (this.queue.length < this.limits.batch_rows && !urgent && !this.timerDue) {
            // a partial batch: let it fill for batch_ms
            this.timer = setTimeout(() => {
              this.timerDue = true;
              this.pump();
            }, this.limits.batch_ms);
            this.timer.unref();
            break;
          }
          this.timerDue = false;
          const batch = this.queue.splice(0, this.limits.batch_rows);
          try {
            const t0 = performance.now();
            await this.insert(batch);
            this.events.batch?.((performance.now() - t0) / 1000, batch.length);
          } catch (err) {
            this.queue.unshift(...batch);
            this.events.error?.(err);
            this.failing = true;
            this.timer = setTimeout(() => {
              this.failing = false;
              this.timerDue = true;
              this.pump();
            }, this.backoff);
            this.timer.unref();
            this.backoff = Math.min(this.backoff * 2, 30_000);
            // a flush (a query, the stop) does not wait for the database to come back
            this.settleFlushes(true);
            return;
          }
          this.backoff = 100;
          this.written += batch.length;
          this.release(batch);
          this.settleFlushes(false);
          if (this.drain && this.queue.length < this.limits.queue_rows / 2) {
            this.drain.resolve();
            this.drain = undefined;
            this.events.pressure?.(false, this.queue.length);
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

  private async insert(rows: Queued[]): Promise<void> {
    if (this.sql.dialect === 'postgres') {
      // one statement text whatever the batch size: six arrays, unnested (prepared once by the server)
      const cols: unknown[][] = [[], [], [], [], [], []];
      for (const r of rows) {
        cols[0]!.push(r.owner);
        cols[1]!.push(r.seq);
        cols[2]!.push(r.with);
        cols[3]!.push(r.withFull);
        cols[4]!.push(r.legacy);
        cols[5]!.push(r.stanza);
      }
      await this.sql.exec(
        `INSERT INTO mam_messages (owner, seq, with_jid, with_full, legacy_id, stanza)
         SELECT o, q, w, f, l, s FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
           AS r(o, q, w, f, l, s)
         ON CONFLICT DO NOTHING`,
        cols,
      );
      return;
    }
    // SQLite: one prepared single-row statement run for the batch in one transaction.
    // A row already there (a batch retried after an ambiguous failure) is skipped.
    const values: unknown[] = new Array(rows.length * 6);
    let i = 0;
    for (const r of rows) {
      values[i++] = r.owner;
      values[i++] = r.seq;
      values[i++] = r.with;
      values[i++] = r.withFull;
      values[i++] = r.legacy;
      values[i++] = r.stanza;
    }
    await this.sql.execMany(
      'INSERT INTO mam_messages (owner, seq, with_jid, with_full, legacy_id, stanza) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
      values,
      6,
    );
  }

  /** The key of an id in an owner's archive (after a flush), or ArchiveIdNotFound. */
  private async seqOf(owner: string, id: string): Promise<number> {
    const seq = this.idsOrThrow().decode(id);
    const [row] =
      seq !== undefined
        ? await this.sql.query<{ seq: number | string }>('SELECT seq FROM mam_messages WHERE owner = $1 AND seq = $2', [owner, seq])
        : await this.sql.query<{ seq: number | string }>('SELECT seq FROM mam_messages WHERE owner = $1 AND legacy_id = $2', [owner, id]);
    if (!row) throw new ArchiveIdNotFound(id);
    return Number(row.seq);
  }

  async query(q: ArchiveQuery): Promise<{ items: ArchivedMessage[]; complete: boolean; count: number | undefined }> {
    await this.flush();
    const params: unknown[] = [q.owner];
    const where = ['owner = $1'];
    const p = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.with !== undefined) {
      if (q.with.includes('/')) where.push(`with_full = ${p(q.with)}`);
      else where.push(`with_jid = ${p(q.with)}`);
    }
    // time is part of seq: a time range is a seq range on the same index
    if (q.start !== undefined) where.push(`seq >= ${p(timeSeq(q.start))}`);
    if (q.end !== undefined) where.push(`seq < ${p(timeSeq(q.end + 1))}`);
    if (q.ids) {
      if (q.ids.length === 0) return { items: [], complete: true, count: 0 };
      const seqs: number[] = [];
      for (const id of q.ids) seqs.push(await this.seqOf(q.owner, id));
      where.push(`seq IN (${seqs.map((s) => p(s)).join(', ')})`);
    }
    const filter = where.join(' AND ');
    const filterParams = [...params];
    if (q.after !== undefined) where.push(`seq > ${p(await this.seqOf(q.owner, q.after))}`);
    if (q.before !== undefined) where.push(`seq < ${p(await this.seqOf(q.owner, q.before))}`);
    const order = q.fromEnd ? 'DESC' : 'ASC';
    const rows =
      q.max > 0
        ? await this.sql.query<Row>(
            `SELECT seq, legacy_id, with_jid, stanza FROM mam_messages WHERE ${where.join(' AND ')} ORDER BY seq ${order} LIMIT ${q.max + 1}`,
            params,
          )
        : [];
    const complete = rows.length <= q.max;
    const page = rows.slice(0, q.max);
    if (q.fromEnd) page.reverse();
    // counting a million rows costs ~50 ms on Postgres: count up to the limit, and say nothing beyond it
    const limit = q.countLimit;
    const [c] = await this.sql.query<{ n: number | string }>(
      limit === undefined
        ? `SELECT count(*) AS n FROM mam_messages WHERE ${filter}`
        : `SELECT count(*) AS n FROM (SELECT 1 FROM mam_messages WHERE ${filter} LIMIT ${limit + 1}) AS capped`,
      filterParams,
    );
    const n = Number(c?.n ?? 0);
    const count = limit !== undefined && n > limit ? undefined : n;
    return { items: page.map((r) => this.toMessage(r)), complete: q.max === 0 ? n === 0 : complete, count };
  }

  async bounds(owner: string): Promise<{ first?: ArchivedMessage; last?: ArchivedMessage }> {
    await this.flush();
    const one = async (order: string): Promise<ArchivedMessage | undefined> => {
      const [r] = await this.sql.query<Row>(
        `SELECT seq, legacy_id, with_jid, stanza FROM mam_messages WHERE owner = $1 ORDER BY seq ${order} LIMIT 1`,
        [owner],
      );
      return r ? this.toMessage(r) : undefined;
    };
    return { first: await one('ASC'), last: await one('DESC') };
  }

  async replace(owner: string, id: string, stanza: string): Promise<boolean> {
    // a row still waiting for its batch is replaced where it waits; after a flush, rows whose
    // write failed are back in the queue, and the others are in the table
    const seq = this.idsOrThrow().decode(id);
    const queued = (): boolean => {
      const row = this.queue.find((r) => r.owner === owner && (seq !== undefined ? r.seq === seq && r.legacy === null : r.legacy === id));
      if (row) row.stanza = stanza;
      return row !== undefined;
    };
    if (queued()) return true;
    await this.flush();
    if (queued()) return true;
    return seq !== undefined
      ? (await this.sql.exec('UPDATE mam_messages SET stanza = $1 WHERE owner = $2 AND seq = $3', [stanza, owner, seq])) > 0
      : (await this.sql.exec('UPDATE mam_messages SET stanza = $1 WHERE owner = $2 AND legacy_id = $3', [stanza, owner, id])) > 0;
  }

  async purge(before: number, owner?: string): Promise<number> {
    await this.flush();
    return owner === undefined
      ? this.sql.exec('DELETE FROM mam_messages WHERE seq < $1', [timeSeq(before)])
      : this.sql.exec('DELETE FROM mam_messages WHERE owner = $1 AND seq < $2', [owner, timeSeq(before)]);
  }

  async deleteAll(owner: string): Promise<number> {
    await this.flush();
    return this.sql.exec('DELETE FROM mam_messages WHERE owner = $1', [owner]);
  }
}
