import { join } from 'node:path';
import type { Storage } from './types.js';
import type { Sql } from './sql/sql.js';
import { SqliteSql } from './sql/sqlite.js';
import { migrate } from './sql/migrate.js';
import { SqlAccountStore, SqlOfflineStore, SqlUserDataStore } from './sql/stores.js';
import { SqlRosterStore } from './sql/roster.js';
import { SqlRoomStore } from './sql/rooms.js';
import { ARCHIVE_DEFAULTS, SqlArchiveStore, type ArchiveEvents, type ArchiveLimits } from './sql/archive.js';
import { ShardedArchiveStore } from './sql/sharded-archive.js';
import { SqlCapsStore, SqlPubSubStore } from './sql/pubsub.js';
import { SqlInviteStore } from './sql/invites.js';
import type { ArchiveStore, CapsStore, InviteStore, PubSubStore } from './types.js';

export * from './types.js';

export interface StorageOptions {
  postgresUrl?: string;
  dataDir: string;
  sqliteBusyTimeout?: number;
  postgresPool?: number;
  /** MB of page cache for SQLite's archive writer connection */
  sqliteArchiveCacheMb?: number;
  /** SQLite: MB of write-ahead log the archive writer lets grow before it checkpoints */
  sqliteCheckpointMb?: number;
  /** shard the archive over these Postgres servers (by owner) */
  archiveUrls?: string[];
  /** called when a background (batched) write fails */
  onError?: (err: unknown, what: string) => void;
  /** the archive queue's bounds (storage.archive_* in the configuration) */
  archive?: ArchiveLimits;
  /** observes each archive batch written (seconds, rows) */
  onArchiveBatch?: (seconds: number, rows: number) => void;
  /** senders started (true) or stopped (false) waiting for the archive writer */
  onArchivePressure?: (on: boolean, queued: number) => void;
}

class SqlStorage implements Storage {
  readonly accounts: SqlAccountStore;
  readonly userData: SqlUserDataStore;
  readonly roster: SqlRosterStore;
  readonly offline: SqlOfflineStore;
  readonly rooms: SqlRoomStore;
  readonly archive: ArchiveStore;
  readonly pubsub: PubSubStore;
  readonly caps: CapsStore;
  readonly invites: InviteStore;
  constructor(
    readonly sql: Sql,
    private readonly shards: Sql[] = [],
    onError: (err: unknown, what: string) => void = () => undefined,
    opts: Pick<StorageOptions, 'archive' | 'onArchiveBatch' | 'onArchivePressure'> = {},
  ) {
    const events: Partial<ArchiveEvents> = {
      error: (err) => onError(err, 'archive write'),
      batch: opts.onArchiveBatch,
      pressure: opts.onArchivePressure,
    };
    const limits = opts.archive ?? ARCHIVE_DEFAULTS;
    this.archive = shards.length
      ? new ShardedArchiveStore(shards.map((s) => new SqlArchiveStore(s, events, limits)))
      : new SqlArchiveStore(sql, events, limits);
    this.rooms = new SqlRoomStore(sql);
    this.offline = new SqlOfflineStore(sql);
    this.accounts = new SqlAccountStore(sql);
    this.userData = new SqlUserDataStore(sql);
    this.roster = new SqlRosterStore(sql);
    this.pubsub = new SqlPubSubStore(sql);
    this.caps = new SqlCapsStore(sql);
    this.invites = new SqlInviteStore(sql);
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
    await Promise.all(this.shards.map((s) => s.close()));
    return this.sql.close();
  }
}

/** Open Postgres when a URL is given, else SQLite in dataDir; migrations applied. */
export async function openStorage(opts: StorageOptions): Promise<Storage & { sql: Sql }> {
  const sql = opts.postgresUrl
    ? await (await import('./sql/postgres.js')).openPostgres(opts.postgresUrl, opts.postgresPool ?? 10)
    : new SqliteSql(opts.dataDir === ':memory:' ? ':memory:' : join(opts.dataDir, 'uzzap.sqlite'), opts.sqliteBusyTimeout ?? 5000, opts.sqliteArchiveCacheMb, opts.sqliteCheckpointMb);
  const shards: Sql[] = [];
  try {
    await migrate(sql);
    if (opts.archiveUrls?.length) {
      if (!opts.postgresUrl) throw new Error('postgres_archive_urls needs postgres_url: the archive is sharded over Postgres only');
      const { openPostgres } = await import('./sql/postgres.js');
      for (const url of opts.archiveUrls) {
        const shard = await openPostgres(url, opts.postgresPool ?? 10);
        shards.push(shard);
        // each shard carries the same schema; only its archive table is used
        await migrate(shard);
      }
    }
  } catch (e) {
    await Promise.all([sql, ...shards].map((s) => s.close()));
    throw e;
  }
  const storage = new SqlStorage(sql, shards, opts.onError, opts);
  await storage.archive.init();
  return storage;
}
