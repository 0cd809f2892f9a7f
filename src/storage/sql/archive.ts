// The XEP-0313 archive on SQL (SQLite or Postgres). Writes are queued in memory
// and flushed in batches up to BATCH_DELAY_MS (100 ms) later, or at once when
// BATCH_ROWS (10,000) are queued: one unnest INSERT on Postgres, one prepared
// statement run per row in one transaction on SQLite. So a burst of messages never
// waits on the database per message; queries flush first, so a client always sees
// what it was sent.
// Order is archive time, ties broken by the insertion sequence: (ts, seq).
// Pages are keyset queries on the (owner, ts, seq) and (owner, with_jid, ts, seq)
// indexes, which also serve the start/end filters, so a page costs the same at
// a thousand or a million messages (three indexes in all, for cheap writes).
import type { Sql } from './sql.js';
import { ArchiveIdNotFound, type ArchiveQuery, type ArchiveRow, type ArchiveStore, type ArchivedMessage } from '../types.js';

// Big batches are what makes the archive cheap: on SQLite (WAL) a row costs
// 74 µs in batches of 100 and 32 µs in batches of 2,000 for 500 owners, as
// every commit rewrites each index page it touched (200k rows, this machine);
// Postgres likewise prefers fewer, larger statements. So rows wait up to 100 ms
// and a flush writes what was queued when it started, not what came meanwhile.
// (With the SQLite writer thread at a lower priority, see sqlite-writer.ts,
// `chat` with the archive on went from 12.7k to 16.1-16.4k messages/s.)
const BATCH_ROWS = 10_000;
const BATCH_DELAY_MS = 100;
/** queued rows above which writers are asked to wait (backpressure) */
const HIGH_WATER = 30_000;

interface Row {
  seq: number | string;
  id: string;
  ts: number | string;
  with_jid: string;
  stanza: string;
}

const toMessage = (r: Row): ArchivedMessage => ({ id: r.id, ts: Number(r.ts), with: r.with_jid, stanza: r.stanza });

export class SqlArchiveStore implements ArchiveStore {
  private queue: ArchiveRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** a write that failed is retried with the next batch; this many rows wait at most */
  private readonly maxQueued = 100_000;

  constructor(
    private readonly sql: Sql,
    private readonly onError: (err: unknown) => void = () => undefined,
    /** observes each written batch (metrics) */
    private readonly onBatch: (seconds: number, rows: number) => void = () => undefined,
  ) {}

  /** after a failed write: no size-triggered flushes, one retry after a backoff */
  private failing = false;
  private backoff = 100;

  add(row: ArchiveRow): void {
    if (this.queue.length >= this.maxQueued) {
      // the last resort behind pressure(): never reached while writers honour it
      this.onError(new Error('archive write queue full: the database is not keeping up; dropping the oldest queued rows'));
      this.queue.splice(0, BATCH_ROWS);
    }
    this.queue.push(row);
    if (this.failing) return;
    if (this.queue.length >= BATCH_ROWS) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), BATCH_DELAY_MS);
      this.timer.unref();
    }
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      // what is queued now; rows added while it is written wait for their own batch
      for (let left = this.queue.length; left > 0;) {
        const batch = this.queue.splice(0, Math.min(BATCH_ROWS, left));
        left -= batch.length;
        try {
          const t0 = performance.now();
          await this.insert(batch);
          this.onBatch((performance.now() - t0) / 1000, batch.length);
          this.failing = false;
          this.backoff = 100;
        } catch (err) {
          // keep them for the next attempt, in order, and retry once after a growing pause
          this.queue.unshift(...batch);
          this.onError(err);
          if (!this.failing || !this.timer) {
            this.failing = true;
            this.timer = setTimeout(() => void this.flush(), this.backoff);
            this.timer.unref();
            this.backoff = Math.min(this.backoff * 2, 30_000);
          }
          return;
        }
      }
    });
    return this.writing;
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

  pressure(): Promise<void> | undefined {
    if (this.queue.length < HIGH_WATER) return undefined;
    return this.flush();
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
