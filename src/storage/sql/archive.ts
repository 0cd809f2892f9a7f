// The XEP-0313 archive on SQL (SQLite or Postgres). Writes are queued in memory
// and written in batches up to `batch_ms` (100 ms) later, or at once when
// `batch_rows` (10,000) are queued: one unnest INSERT on Postgres, one prepared
// statement run per row in one transaction on SQLite. So a burst of messages never
// waits on the database per message; queries flush first, so a client always sees
// what it was sent. Over `queue_rows` queued, senders wait (pressure()): nothing
// is ever dropped.
// Order is archive time, ties broken by the insertion sequence: (ts, seq).
// Pages are keyset queries on the (owner, ts, seq) and (owner, with_jid, ts, seq)
// indexes, which also serve the start/end filters, so a page costs the same at
// a thousand or a million messages (three indexes in all, for cheap writes).
import type { Sql } from './sql.js';
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
}

export const ARCHIVE_DEFAULTS: ArchiveLimits = { batch_rows: 10_000, batch_ms: 100, queue_rows: 30_000 };

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
  id: string;
  ts: number | string;
  with_jid: string;
  stanza: string;
}

const toMessage = (r: Row): ArchivedMessage => ({ id: r.id, ts: Number(r.ts), with: r.with_jid, stanza: r.stanza });

/** A promise with its resolve exposed. */
function settle(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class SqlArchiveStore implements ArchiveStore {
  private queue: ArchiveRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** rows ever queued / written: a flush waits until `written` reaches `queued` as it was */
  private added = 0;
  private written = 0;
  private readonly flushes: { upTo: number; done: () => void }[] = [];
  /** the one writer loop is running */
  private pumping = false;
  /** senders wait on this while the queue is over `queue_rows`: one promise for all of them */
  private drain: { promise: Promise<void>; resolve: () => void } | undefined;
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
    this.queue.push(row);
    this.added++;
    if (this.pumping || this.failing) return;
    if (this.queue.length >= this.limits.batch_rows) this.pump();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.pump(), this.limits.batch_ms);
      this.timer.unref();
    }
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

  pressure(): Promise<void> | undefined {
    if (this.drain) return this.drain.promise;
    if (this.queue.length < this.limits.queue_rows) return undefined;
    this.drain = settle();
    this.events.pressure?.(true, this.queue.length);
    if (!this.failing) this.pump();
    return this.drain.promise;
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
          const urgent = this.flushes.length > 0 || this.drain !== undefined;
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
  /** the batch timer fired: write what is queued even if it is a partial batch */
  private timerDue = false;

  private settleFlushes(all: boolean): void {
    while (this.flushes.length && (all || this.flushes[0]!.upTo <= this.written)) this.flushes.shift()!.done();
  }

  private async insert(rows: ArchiveRow[]): Promise<void> {
    if (this.sql.dialect === 'postgres') {
      // one statement text whatever the batch size: six arrays, unnested (prepared once by the server)
      const cols: unknown[][] = [[], [], [], [], [], []];
      for (const r of rows) {
        cols[0]!.push(r.owner);
        cols[1]!.push(r.id);
        cols[2]!.push(r.ts);
        cols[3]!.push(r.with);
        cols[4]!.push(r.withFull ?? null);
        cols[5]!.push(r.stanza);
      }
      await this.sql.exec(
        `INSERT INTO mam_archive (owner, id, ts, with_jid, with_full, stanza)
         SELECT o, i, t, w, f, s FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
           WITH ORDINALITY AS r(o, i, t, w, f, s, n) ORDER BY n
         ON CONFLICT (owner, id) DO NOTHING`,
        cols,
      );
      return;
    }
    // SQLite: one prepared single-row statement run for the batch in one transaction
    await this.sql.execMany(
      'INSERT INTO mam_archive (owner, id, ts, with_jid, with_full, stanza) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner, id) DO NOTHING',
      rows.map((r) => [r.owner, r.id, r.ts, r.with, r.withFull ?? null, r.stanza]),
    );
  }

  private async keyOf(owner: string, id: string): Promise<[number, number]> {
    const [row] = await this.sql.query<{ seq: number | string; ts: number | string }>(
      'SELECT seq, ts FROM mam_archive WHERE owner = $1 AND id = $2',
      [owner, id],
    );
    if (!row) throw new ArchiveIdNotFound(id);
    return [Number(row.ts), Number(row.seq)];
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
    if (q.start !== undefined) where.push(`ts >= ${p(q.start)}`);
    if (q.end !== undefined) where.push(`ts <= ${p(q.end)}`);
    if (q.ids) {
      if (q.ids.length === 0) return { items: [], complete: true, count: 0 };
      const found = await this.sql.query<{ id: string }>(
        `SELECT id FROM mam_archive WHERE owner = $1 AND id IN (${q.ids.map((_, i) => `$${i + 2}`).join(', ')})`,
        [q.owner, ...q.ids],
      );
      const have = new Set(found.map((r) => r.id));
      const missing = q.ids.find((id) => !have.has(id));
      if (missing !== undefined) throw new ArchiveIdNotFound(missing);
      where.push(`id IN (${q.ids.map((id) => p(id)).join(', ')})`);
    }
    const filter = where.join(' AND ');
    const filterParams = [...params];
    if (q.after !== undefined) {
      const [ts, seq] = await this.keyOf(q.owner, q.after);
      where.push(`(ts, seq) > (${p(ts)}, ${p(seq)})`);
    }
    if (q.before !== undefined) {
      const [ts, seq] = await this.keyOf(q.owner, q.before);
      where.push(`(ts, seq) < (${p(ts)}, ${p(seq)})`);
    }
    const order = q.fromEnd ? 'DESC' : 'ASC';
    const rows =
      q.max > 0
        ? await this.sql.query<Row>(
            `SELECT seq, id, ts, with_jid, stanza FROM mam_archive WHERE ${where.join(' AND ')} ORDER BY ts ${order}, seq ${order} LIMIT ${q.max + 1}`,
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
        ? `SELECT count(*) AS n FROM mam_archive WHERE ${filter}`
        : `SELECT count(*) AS n FROM (SELECT 1 FROM mam_archive WHERE ${filter} LIMIT ${limit + 1}) AS capped`,
      filterParams,
    );
    const n = Number(c?.n ?? 0);
    const count = limit !== undefined && n > limit ? undefined : n;
    return { items: page.map(toMessage), complete: q.max === 0 ? n === 0 : complete, count };
  }

  async bounds(owner: string): Promise<{ first?: ArchivedMessage; last?: ArchivedMessage }> {
    await this.flush();
    const one = async (order: string): Promise<ArchivedMessage | undefined> => {
      const [r] = await this.sql.query<Row>(
        `SELECT seq, id, ts, with_jid, stanza FROM mam_archive WHERE owner = $1 ORDER BY ts ${order}, seq ${order} LIMIT 1`,
        [owner],
      );
      return r ? toMessage(r) : undefined;
    };
    return { first: await one('ASC'), last: await one('DESC') };
  }

  async replace(owner: string, id: string, stanza: string): Promise<boolean> {
    // a row still waiting for its batch is replaced where it waits; after a flush, rows whose
    // write failed are back in the queue, and the others are in the table
    const queued = (): boolean => {
      const row = this.queue.find((r) => r.owner === owner && r.id === id);
      if (row) row.stanza = stanza;
      return row !== undefined;
    };
    if (queued()) return true;
    await this.flush();
    if (queued()) return true;
    return (await this.sql.exec('UPDATE mam_archive SET stanza = $1 WHERE owner = $2 AND id = $3', [stanza, owner, id])) > 0;
  }

  async purge(before: number, owner?: string): Promise<number> {
    await this.flush();
    return owner === undefined
      ? this.sql.exec('DELETE FROM mam_archive WHERE ts < $1', [before])
      : this.sql.exec('DELETE FROM mam_archive WHERE owner = $1 AND ts < $2', [owner, before]);
  }

  async deleteAll(owner: string): Promise<number> {
    await this.flush();
    return this.sql.exec('DELETE FROM mam_archive WHERE owner = $1', [owner]);
  }
}
