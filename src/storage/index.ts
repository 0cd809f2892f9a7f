import { join } from 'node:path';
import type { Storage } from './types.js';
import type { Sql } from './sql/sql.js';
import { SqliteSql } from './sql/sqlite.js';
import { migrate } from './sql/migrate.js';
import { SqlAccountStore, SqlOfflineStore, SqlUserDataStore } from './sql/stores.js';
import { SqlRosterStore } from './sql/roster.js';
import { SqlRoomStore } from './sql/rooms.js';
import { SqlArchiveStore } from './sql/archive.js';

export * from './types.js';

export interface StorageOptions {
  postgresUrl?: string;
  dataDir: string;
  sqliteBusyTimeout?: number;
  postgresPool?: number;
}

class SqlStorage implements Storage {
  readonly accounts: SqlAccountStore;
  readonly userData: SqlUserDataStore;
  readonly roster: SqlRosterStore;
  readonly offline: SqlOfflineStore;
  readonly rooms: SqlRoomStore;
  readonly archive: SqlArchiveStore;
  constructor(readonly sql: Sql) {
    this.archive = new SqlArchiveStore(sql);
    this.rooms = new SqlRoomStore(sql);
    this.offline = new SqlOfflineStore(sql);
    this.accounts = new SqlAccountStore(sql);
    this.userData = new SqlUserDataStore(sql);
    this.roster = new SqlRosterStore(sql);
  }
  get kind(): 'sqlite' | 'postgres' {
    return this.sql.dialect;
  }
  async ping(): Promise<number> {
    const t = performance.now();
    await this.sql.query('SELECT 1');
    return performance.now() - t;
  }
  async close(): Promise<void> {
    // nothing queued for the archive is lost on a clean shutdown
    await this.archive.flush();
    return this.sql.close();
  }
}

/** Open Postgres when a URL is given, else SQLite in dataDir; migrations applied. */
export async function openStorage(opts: StorageOptions): Promise<Storage & { sql: Sql }> {
  const sql = opts.postgresUrl
    ? await (await import('./sql/postgres.js')).openPostgres(opts.postgresUrl, opts.postgresPool ?? 10)
    : new SqliteSql(opts.dataDir === ':memory:' ? ':memory:' : join(opts.dataDir, 'uzzap.sqlite'), opts.sqliteBusyTimeout ?? 5000);
  try {
    await migrate(sql);
  } catch (e) {
    await sql.close();
    throw e;
  }
  return new SqlStorage(sql);
}
