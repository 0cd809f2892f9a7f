import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Sql } from './sql.js';
import { SqliteBatchWriter } from './sqlite-writer.js';

/** better-sqlite3 is synchronous; it is fast enough (~25k writes/s) that wrapping in promises costs little. */
export class SqliteSql implements Sql {
  readonly dialect = 'sqlite' as const;
  private db: Database.Database;
  private stmts = new Map<string, Database.Statement>();
  private busy: Promise<void> | undefined;
  /** bulk writes off the event loop (not for an in-memory database: a second connection would see another one) */
  private writer: SqliteBatchWriter | undefined;

  constructor(
    private readonly file: string,
    private readonly busyTimeoutMs: number,
    /** page cache of the archive writer's connection */
    private readonly writerCacheMb = 32,
    /** write-ahead log the archive writer lets grow before it checkpoints (sqlite-writer.ts says why) */
    private readonly checkpointMb = 64,
  ) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file, { timeout: busyTimeoutMs });
    // 8 KiB pages for a new database (an existing one keeps its size: changing it takes a
    // VACUUM): the archive writer's batches touch one index leaf per owner, and with
    // twice the entries per leaf they split half as often. Measured
    // (bench/archive-writer-replay.cjs, V=day): 9.5 -> 7.9 µs of the writer per message.
    this.db.pragma('page_size = 8192');
    // WAL lets the CLI write while a server runs on the same file.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
  }

  private prepare(text: string): Database.Statement {
    let st = this.stmts.get(text);
    if (!st) {
      st = this.db.prepare(text.replace(/\$(\d+)/g, '@p$1'));
      this.stmts.set(text, st);
    }
    return st;
  }

  async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
    if (this.busy) await this.idle();
    return this.prepare(text).all(named(params)) as T[];
  }

  async exec(text: string, params: unknown[] = []): Promise<number> {
    if (this.busy) await this.idle();
    return this.prepare(text).run(named(params)).changes;
  }

  async script(text: string): Promise<void> {
    if (this.busy) await this.idle();
    this.db.exec(text);
  }

  async execBuilt<I>(
    text: string,
    build: (input: I) => unknown[],
    input: I,
    width: number,
    transfer: ArrayBuffer[] = [],
    after: readonly string[] = [],
  ): Promise<number> {
    if (this.file !== ':memory:') {
      if (!this.writer) {
        this.writer = new SqliteBatchWriter(this.file, this.busyTimeoutMs, this.writerCacheMb, this.checkpointMb);
        // from now on the writer thread checkpoints, by size and on a timer: a commit of this
        // connection must not copy the writer's log on the event loop (with the log this
        // large, a roster write would stop the server for the whole checkpoint)
        this.db.pragma('wal_autocheckpoint = 0');
      }
      return this.writer.execBuilt(text.replace(/\$\d+/g, '?'), build, input, width, transfer, after);
    }
    if (this.busy) await this.idle();
    // one prepared statement, one transaction: SQLite's fast path for bulk inserts
    const values = build(input);
    const st = this.prepare(text);
    let n = 0;
    this.db.transaction(() => {
      for (let i = 0; i < values.length; i += width) n += st.run(named(values.slice(i, i + width))).changes;
      for (const a of after) this.prepare(a).run();
    })();
    return n;
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    // better-sqlite3 transactions must be synchronous; ours may await, so we
    // manage BEGIN/COMMIT ourselves. There is one connection: while a
    // transaction is open every other statement waits for it, so nothing from
    // another caller slips into it (and is rolled back with it).
    while (this.busy) await this.busy;
    let done!: () => void;
    this.busy = new Promise<void>((r) => (done = r));
    const tx: Sql = {
      dialect: 'sqlite',
      query: async <R>(text: string, params: unknown[] = []) => this.prepare(text).all(named(params)) as R[],
      exec: async (text: string, params: unknown[] = []) => this.prepare(text).run(named(params)).changes,
      script: async (text: string) => void this.db.exec(text),
      execBuilt: async <I>(
        text: string,
        build: (input: I) => unknown[],
        input: I,
        width: number,
        _transfer?: ArrayBuffer[],
        after: readonly string[] = [],
      ) => {
        const values = build(input);
        const st = this.prepare(text);
        let n = 0;
        for (let i = 0; i < values.length; i += width) n += st.run(named(values.slice(i, i + width))).changes;
        for (const a of after) this.prepare(a).run();
        return n;
      },
      transaction: <R>(inner: (t: Sql) => Promise<R>) => inner(tx),
      close: async () => undefined,
    };
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const r = await fn(tx);
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.busy = undefined;
      done();
    }
  }

  private async idle(): Promise<void> {
    while (this.busy) await this.busy;
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.db.close();
  }
}

// $1, $2 ... become @p1, @p2 ... so a parameter may appear several times.
function named(params: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < params.length; i++) {
    const v = params[i];
    o[`p${i + 1}`] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return o;
}
