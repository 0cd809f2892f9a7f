import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Sql } from './sql.js';

/** better-sqlite3 is synchronous; it is fast enough (~25k writes/s) that wrapping in promises costs little. */
export class SqliteSql implements Sql {
  readonly dialect = 'sqlite' as const;
  private db: Database.Database;
  private stmts = new Map<string, Database.Statement>();
  private inTx = false;

  constructor(file: string, busyTimeoutMs: number) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file, { timeout: busyTimeoutMs });
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
    return this.prepare(text).all(named(params)) as T[];
  }

  async exec(text: string, params: unknown[] = []): Promise<number> {
    return this.prepare(text).run(named(params)).changes;
  }

  async script(text: string): Promise<void> {
    this.db.exec(text);
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    // better-sqlite3 transactions must be synchronous; ours may await (always
    // on this same connection), so manage BEGIN/COMMIT ourselves. Nested calls
    // join the outer transaction.
    if (this.inTx) return fn(this);
    this.db.exec('BEGIN IMMEDIATE');
    this.inTx = true;
    try {
      const r = await fn(this);
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.inTx = false;
    }
  }

  async close(): Promise<void> {
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
