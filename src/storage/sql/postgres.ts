import pg from 'pg';
import type { Sql } from './sql.js';

// BIGINT columns come back as strings by default; our values (ms timestamps,
// ids) fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

type Queryable = pg.Pool | pg.PoolClient;

class PgSql implements Sql {
  readonly dialect = 'postgres' as const;
  constructor(protected readonly q: Queryable) {}

  async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
    return (await this.q.query(text, params)).rows as T[];
  }
  async exec(text: string, params: unknown[] = []): Promise<number> {
    return (await this.q.query(text, params)).rowCount ?? 0;
  }
  async script(text: string): Promise<void> {
    await this.q.query(text);
  }
  async execBuilt<I>(
    text: string,
    build: (input: I) => unknown[],
    input: I,
    width: number,
    _transfer?: ArrayBuffer[],
    after: readonly string[] = [],
  ): Promise<number> {
    const values = build(input);
    return this.transaction(async (tx) => {
      let n = 0;
      for (let i = 0; i < values.length; i += width) n += await tx.exec(text, values.slice(i, i + width));
      for (const a of after) await tx.exec(a);
      return n;
    });
  }
  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    if (!('connect' in this.q) || typeof (this.q as pg.Pool).totalCount !== 'number') return fn(this);
    const client = await (this.q as pg.Pool).connect();
    try {
      await client.query('BEGIN');
      const r = await fn(new PgSql(client));
      await client.query('COMMIT');
      return r;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }
  async close(): Promise<void> {
    if ('end' in this.q && typeof (this.q as pg.Pool).totalCount === 'number') await (this.q as pg.Pool).end();
  }
}

export async function openPostgres(url: string, max: number): Promise<Sql> {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000 });
  pool.on('error', () => undefined); // idle client errors surface on the next query
  const sql = new PgSql(pool);
  await sql.query('SELECT 1'); // fail fast with a clear error if unreachable
  return sql;
}
