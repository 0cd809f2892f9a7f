// Numbered schema migrations, applied in order at start (and by `uzzap migrate`).
// SQL here is portable between SQLite and Postgres: TEXT, BIGINT, ON CONFLICT.
// Dialect differences: an auto-increment key is written {{serial}}, SQLite's WITHOUT
// ROWID {{without_rowid}}; what cannot be portable (triggers) goes in `dialect`, run
// after `sql`.
export interface Migration {
  version: number;
  name: string;
  sql: string;
  dialect?: { sqlite: string; postgres: string };
}

// Migration 11's day of an archive seq (seq = ms since 2000 × 4096, archive-ids.ts):
// floor division written so that SQLite and Postgres (whose / truncates) agree for
// any sign. Frozen with the migration: src/storage/sql/archive.ts has the same DAY.
const DAY = 86_400_000 * 4096;
const dayOf = (seq: string): string => `((${seq} - (((${seq} % ${DAY}) + ${DAY}) % ${DAY})) / ${DAY})`;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'accounts and per-user data',
    sql: `
      CREATE TABLE accounts (
        username TEXT PRIMARY KEY,
        credentials TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE user_data (
        username TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (username, kind, key)
      );
    `,
  },
  {
    version: 2,
    name: 'rosters and pending subscription requests',
    sql: `
      CREATE TABLE roster_items (
        username TEXT NOT NULL,
        jid TEXT NOT NULL,
        name TEXT,
        subscription TEXT NOT NULL DEFAULT 'none',
        ask INTEGER NOT NULL DEFAULT 0,
        approved INTEGER NOT NULL DEFAULT 0,
        groups TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (username, jid)
      );
      CREATE INDEX roster_items_jid ON roster_items (jid);
      CREATE TABLE roster_versions (
        username TEXT PRIMARY KEY,
        version BIGINT NOT NULL
      );
      CREATE TABLE roster_pending (
        username TEXT NOT NULL,
        jid TEXT NOT NULL,
        stanza TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (username, jid)
      );
    `,
  },
  {
    version: 3,
    name: 'offline messages',
    sql: `
      CREATE TABLE offline_messages (
        id {{serial}},
        username TEXT NOT NULL,
        stanza TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX offline_messages_user ON offline_messages (username, id);
    `,
  },
  {
    version: 4,
    name: 'multi-user chat rooms',
    sql: `
      CREATE TABLE muc_rooms (
        service TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (service, name)
      );
      CREATE TABLE muc_affiliations (
        service TEXT NOT NULL,
        room TEXT NOT NULL,
        jid TEXT NOT NULL,
        affiliation TEXT NOT NULL,
        nick TEXT,
        reason TEXT,
        PRIMARY KEY (service, room, jid)
      );
    `,
  },
  {
    version: 5,
    name: 'message archive',
    sql: `
      CREATE TABLE mam_archive (
        seq {{serial}},
        owner TEXT NOT NULL,
        id TEXT NOT NULL,
        ts BIGINT NOT NULL,
        with_jid TEXT NOT NULL,
        with_full TEXT,
        stanza TEXT NOT NULL
      );
      CREATE UNIQUE INDEX mam_archive_id ON mam_archive (owner, id);
      CREATE INDEX mam_archive_time ON mam_archive (owner, ts, seq);
      CREATE INDEX mam_archive_with ON mam_archive (owner, with_jid, ts, seq);
    `,
  },
  {
    version: 6,
    name: 'account admin flag and last login',
    sql: `
      ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE accounts ADD COLUMN last_login BIGINT;
    `,
  },
  {
    version: 7,
    name: 'message archive keyed by (owner, seq), ids derived from seq',
    // seq = (ms since 2000-01-01) * 4096 + counter (src/storage/sql/archive-ids.ts): the
    // archive needs no index on ids nor on time. Existing rows keep their ids (legacy_id).
    sql: `
      CREATE TABLE mam_messages (
        owner TEXT NOT NULL,
        seq BIGINT NOT NULL,
        with_jid TEXT NOT NULL,
        with_full TEXT,
        legacy_id TEXT,
        stanza TEXT NOT NULL
      );
      INSERT INTO mam_messages (owner, seq, with_jid, with_full, legacy_id, stanza)
        SELECT owner, (ts - 946684800000) * 4096 + (seq % 4096), with_jid, with_full, id, stanza FROM mam_archive;
      DROP TABLE mam_archive;
      CREATE UNIQUE INDEX mam_messages_seq ON mam_messages (owner, seq);
      CREATE INDEX mam_messages_with ON mam_messages (owner, with_jid, seq);
      CREATE UNIQUE INDEX mam_messages_legacy ON mam_messages (owner, legacy_id) WHERE legacy_id IS NOT NULL;
      CREATE TABLE mam_keys (k INTEGER PRIMARY KEY, secret TEXT NOT NULL);
    `,
  },
  {
    version: 8,
    name: 'message archive in chunks (one row per owner, contact and written batch)',
    // src/storage/sql/archive-chunks.ts: a row holds the messages one owner exchanged with one
    // contact in one written batch, as a JSON array of [seq, with_full, stanza, legacy_id].
    // Existing messages become chunks of one; ids of older builds move to mam_legacy.
    // Both indexes end in (last_seq, n) so that a count, sum(n) over a range, reads no rows
    // (a `with` page's count of 10,000 took 30 ms on Postgres reading them). The unique one
    // makes a retried batch's chunks (the same rows again) no second write.
    sql: `
      CREATE TABLE mam_chunks (
        owner TEXT NOT NULL,
        with_jid TEXT NOT NULL,
        first_seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        n INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      INSERT INTO mam_chunks (owner, with_jid, first_seq, last_seq, n, body)
        SELECT owner, with_jid, seq, seq, 1, {{json_array}}({{json_array}}(seq, with_full, stanza, legacy_id)) FROM mam_messages;
      CREATE TABLE mam_legacy (owner TEXT NOT NULL, legacy_id TEXT NOT NULL, seq BIGINT NOT NULL);
      INSERT INTO mam_legacy (owner, legacy_id, seq) SELECT owner, legacy_id, seq FROM mam_messages WHERE legacy_id IS NOT NULL;
      DROP TABLE mam_messages;
      CREATE UNIQUE INDEX mam_chunks_with ON mam_chunks (owner, with_jid, first_seq, last_seq, n);
      CREATE INDEX mam_chunks_seq ON mam_chunks (owner, first_seq, last_seq, n);
      CREATE UNIQUE INDEX mam_legacy_id ON mam_legacy (owner, legacy_id);
    `,
  },
  {
    version: 9,
    name: 'publish-subscribe nodes and items (PEP), entity capabilities',
    // xeps/0060-pubsub: a node's configuration, affiliations and explicit subscriptions are
    // small and change together, so they are one row (JSON); items are rows of their own,
    // ordered by seq (publication order; a re-published id moves to the newest).
    // entity_caps: XEP-0115 verification strings whose disco#info answer verified, shared
    // by the nodes of a cluster.
    sql: `
      CREATE TABLE pubsub_nodes (
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        config TEXT NOT NULL,
        affiliations TEXT NOT NULL,
        subscriptions TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (service, node)
      );
      CREATE TABLE pubsub_items (
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        publisher TEXT NOT NULL,
        payload TEXT NOT NULL,
        published_at BIGINT NOT NULL,
        PRIMARY KEY (service, node, id)
      );
      CREATE INDEX pubsub_items_seq ON pubsub_items (service, node, seq);
      CREATE TABLE entity_caps (
        ver TEXT PRIMARY KEY,
        info TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
    `,
  },
  {
    version: 10,
    name: 'invitations (XEP-0401, XEP-0445, XEP-0379)',
    // xeps/0401-invites: one row per invitation, keyed by a hash of its token (the token
    // itself is never stored); uses counts down at each registration.
    sql: `
      CREATE TABLE invites (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        inviter TEXT NOT NULL,
        username TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        register INTEGER NOT NULL DEFAULT 1,
        uses INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      );
      CREATE INDEX invites_inviter ON invites (inviter);
    `,
  },
  {
    version: 11,
    name: 'archive: days per contact instead of an index per contact',
    // The (owner, with_jid, ...) index cost the archive writer ~40% of its work (a random
    // insert into a large index per chunk; bench/archive-writer-replay.cjs: 17 µs per
    // message with it, 10 without it and with this table). mam_with_days has one row
    // per owner, contact and day (UTC) holding that day's message count, kept by
    // triggers, so a chat's rows touch a few hot pages; a `with` page reads the days
    // that have messages and scans (owner, first_seq) over them, and a `with` count
    // is a sum of days (src/storage/sql/archive.ts). The seq index now covers with_jid
    // and is the unique one (the same columns: a retried batch is still no second write).
    sql: `
      DROP INDEX mam_chunks_with;
      DROP INDEX mam_chunks_seq;
      CREATE UNIQUE INDEX mam_chunks_seq ON mam_chunks (owner, first_seq, with_jid, last_seq, n);
      CREATE TABLE mam_with_days (
        owner TEXT NOT NULL,
        with_jid TEXT NOT NULL,
        day BIGINT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (owner, with_jid, day)
      ) {{without_rowid}};
      INSERT INTO mam_with_days (owner, with_jid, day, n)
        SELECT owner, with_jid, ${dayOf('first_seq')}, sum(n) FROM mam_chunks GROUP BY 1, 2, 3;
    `,
    dialect: {
      sqlite: `
      CREATE TRIGGER mam_with_days_insert AFTER INSERT ON mam_chunks BEGIN
        INSERT INTO mam_with_days (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, ${dayOf('new.first_seq')}, new.n)
          ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = n + excluded.n;
      END;
      CREATE TRIGGER mam_with_days_delete AFTER DELETE ON mam_chunks BEGIN
        UPDATE mam_with_days SET n = n - old.n WHERE owner = old.owner AND with_jid = old.with_jid AND day = ${dayOf('old.first_seq')};
        DELETE FROM mam_with_days WHERE owner = old.owner AND with_jid = old.with_jid AND day = ${dayOf('old.first_seq')} AND n <= 0;
      END;
      CREATE TRIGGER mam_with_days_update AFTER UPDATE OF owner, with_jid, first_seq, n ON mam_chunks BEGIN
        UPDATE mam_with_days SET n = n - old.n WHERE owner = old.owner AND with_jid = old.with_jid AND day = ${dayOf('old.first_seq')};
        DELETE FROM mam_with_days WHERE owner = old.owner AND with_jid = old.with_jid AND day = ${dayOf('old.first_seq')} AND n <= 0;
        INSERT INTO mam_with_days (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, ${dayOf('new.first_seq')}, new.n)
          ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = n + excluded.n;
      END;
    `,
      // statement triggers over transition tables: one grouped upsert per batch, in key
      // order so that two writers (two nodes) take the rows' locks in the same order
      postgres: `
      CREATE FUNCTION mam_with_days_add() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO mam_with_days (owner, with_jid, day, n)
          SELECT owner, with_jid, ${dayOf('first_seq')}, sum(n) FROM fresh GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
          ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = mam_with_days.n + excluded.n;
        RETURN NULL;
      END $$;
      CREATE FUNCTION mam_with_days_sub() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE mam_with_days d SET n = d.n - g.n
          FROM (SELECT owner, with_jid, ${dayOf('first_seq')} AS day, sum(n) AS n FROM gone GROUP BY 1, 2, 3) g
          WHERE d.owner = g.owner AND d.with_jid = g.with_jid AND d.day = g.day;
        DELETE FROM mam_with_days d USING (SELECT DISTINCT owner, with_jid, ${dayOf('first_seq')} AS day FROM gone) g
          WHERE d.owner = g.owner AND d.with_jid = g.with_jid AND d.day = g.day AND d.n <= 0;
        RETURN NULL;
      END $$;
      -- a chunk rewritten (a purge keeps its later messages): row by row, rare
      CREATE FUNCTION mam_with_days_move() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE mam_with_days SET n = n - OLD.n WHERE owner = OLD.owner AND with_jid = OLD.with_jid AND day = ${dayOf('OLD.first_seq')};
        DELETE FROM mam_with_days WHERE owner = OLD.owner AND with_jid = OLD.with_jid AND day = ${dayOf('OLD.first_seq')} AND n <= 0;
        INSERT INTO mam_with_days (owner, with_jid, day, n) VALUES (NEW.owner, NEW.with_jid, ${dayOf('NEW.first_seq')}, NEW.n)
          ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = mam_with_days.n + excluded.n;
        RETURN NULL;
      END $$;
      CREATE TRIGGER mam_with_days_insert AFTER INSERT ON mam_chunks REFERENCING NEW TABLE AS fresh
        FOR EACH STATEMENT EXECUTE FUNCTION mam_with_days_add();
      CREATE TRIGGER mam_with_days_delete AFTER DELETE ON mam_chunks REFERENCING OLD TABLE AS gone
        FOR EACH STATEMENT EXECUTE FUNCTION mam_with_days_sub();
      CREATE TRIGGER mam_with_days_update AFTER UPDATE ON mam_chunks FOR EACH ROW
        WHEN (OLD.owner <> NEW.owner OR OLD.with_jid <> NEW.with_jid OR OLD.first_seq <> NEW.first_seq OR OLD.n <> NEW.n)
        EXECUTE FUNCTION mam_with_days_move();
    `,
    },
  },
  {
    version: 12,
    name: 'archive (SQLite): the days table fed through a delta table, folded in every few seconds',
    // In a long-lived archive each owner's and contact's row of today lies on a page of
    // its own (the contact's earlier days fill the pages around it), so the insert
    // trigger's upsert dirtied one more page per chunk, in every batch: 8.2 µs of the
    // writer per message on a fresh database, 16.5-19.1 with 100 days of 20 contacts per
    // owner behind it (bench/archive-writer-replay.cjs AGED=100). Now the triggers append
    // each change to mam_day_delta (no index: consecutive pages) and the archive writer
    // folds it into mam_with_days every storage.sqlite_archive_fold_ms, one grouped upsert
    // in key order (src/storage/sql/archive.ts); reads add both (archive-read.ts).
    // Measured, fold every 10 s: 7.1-7.5 µs aged, 6.8-7.4 fresh. Postgres keeps its
    // statement triggers (one grouped upsert per batch already).
    sql: '',
    dialect: {
      sqlite: `
      CREATE TABLE mam_day_delta (
        owner TEXT NOT NULL,
        with_jid TEXT NOT NULL,
        day BIGINT NOT NULL,
        n INTEGER NOT NULL
      );
      DROP TRIGGER mam_with_days_insert;
      DROP TRIGGER mam_with_days_delete;
      DROP TRIGGER mam_with_days_update;
      CREATE TRIGGER mam_with_days_insert AFTER INSERT ON mam_chunks BEGIN
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, ${dayOf('new.first_seq')}, new.n);
      END;
      CREATE TRIGGER mam_with_days_delete AFTER DELETE ON mam_chunks BEGIN
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (old.owner, old.with_jid, ${dayOf('old.first_seq')}, -old.n);
      END;
      CREATE TRIGGER mam_with_days_update AFTER UPDATE OF owner, with_jid, first_seq, n ON mam_chunks BEGIN
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (old.owner, old.with_jid, ${dayOf('old.first_seq')}, -old.n);
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, ${dayOf('new.first_seq')}, new.n);
      END;
    `,
      postgres: '',
    },
  },
  {
    version: 13,
    name: 'archive (SQLite): the chunks keyed apart, new keys merged into the key index every few seconds',
    // The one index on mam_chunks was most of what remained of the archive writer's work:
    // each batch inserted one entry per chunk into it, at each owner's end of a large
    // B-tree, so every batch wrote one leaf page per owner that got mail (hundreds of
    // 8 KiB pages for a few hundred small messages) to the log, and the checkpoint wrote
    // them again. Now the chunks' keys live in tables of their own, as a log-structured
    // merge: a batch's keys go to mam_chunk_keys_new (small: what the last few seconds
    // wrote, so its pages stay the same few), and the writer merges them into
    // mam_chunk_keys in key order every storage.sqlite_archive_fold_ms with the day counts
    // (FOLD_SQLITE below), writing each owner's leaf once per merge instead of once per
    // batch. Reads take both (archive-read.ts) and fetch the chunks by id.
    // No row trigger on insert: a batch's keys and day changes are copied from its new
    // rows by two statements after them (AFTER_INSERT_SQLITE below; ids above
    // mam_chunk_mark), where triggers ran a sub-program and kept a statement journal per
    // chunk (half of the writer's user time). Updates and deletes (purges, moderation:
    // rare) keep their triggers.
    // Measured (bench/archive-writer-replay.cjs V=real: this schema and the server's
    // settings, 500 owners, three messages per chunk): see BENCHMARKS.md.
    // mam_chunks is rebuilt with an id of its own (a rowid alone may change in a VACUUM),
    // AUTOINCREMENT: an id is never given again, so every row above the mark is new.
    // The unique index made a retried batch no second write; SQLite never retries a batch
    // that was written (its transaction runs in one synchronous call: it commits, or it
    // throws and rolls back), and a fold skips a key already merged. Postgres is unchanged.
    sql: '',
    dialect: {
      sqlite: `
      CREATE TABLE mam_chunks_13 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        with_jid TEXT NOT NULL,
        first_seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        n INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      INSERT INTO mam_chunks_13 (id, owner, with_jid, first_seq, last_seq, n, body)
        SELECT rowid, owner, with_jid, first_seq, last_seq, n, body FROM mam_chunks;
      DROP TABLE mam_chunks;
      ALTER TABLE mam_chunks_13 RENAME TO mam_chunks;
      CREATE TABLE mam_chunk_keys (
        owner TEXT NOT NULL,
        first_seq BIGINT NOT NULL,
        with_jid TEXT NOT NULL,
        last_seq BIGINT NOT NULL,
        n INTEGER NOT NULL,
        chunk INTEGER NOT NULL,
        PRIMARY KEY (owner, first_seq, with_jid, last_seq, n)
      ) WITHOUT ROWID;
      INSERT INTO mam_chunk_keys (owner, first_seq, with_jid, last_seq, n, chunk)
        SELECT owner, first_seq, with_jid, last_seq, n, id FROM mam_chunks ORDER BY owner, first_seq, with_jid, last_seq, n;
      CREATE TABLE mam_chunk_keys_new (
        owner TEXT NOT NULL,
        first_seq BIGINT NOT NULL,
        with_jid TEXT NOT NULL,
        last_seq BIGINT NOT NULL,
        n INTEGER NOT NULL,
        chunk INTEGER NOT NULL
      );
      CREATE INDEX mam_chunk_keys_new_seq ON mam_chunk_keys_new (owner, first_seq);
      -- the highest id whose key and day change are written
      CREATE TABLE mam_chunk_mark (id INTEGER NOT NULL);
      INSERT INTO mam_chunk_mark (id) SELECT coalesce(max(id), 0) FROM mam_chunks;
      CREATE TRIGGER mam_chunks_delete AFTER DELETE ON mam_chunks BEGIN
        DELETE FROM mam_chunk_keys WHERE owner = old.owner AND first_seq = old.first_seq AND with_jid = old.with_jid AND last_seq = old.last_seq AND n = old.n;
        DELETE FROM mam_chunk_keys_new WHERE owner = old.owner AND first_seq = old.first_seq AND chunk = old.id;
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (old.owner, old.with_jid, ${dayOf('old.first_seq')}, -old.n);
      END;
      CREATE TRIGGER mam_chunks_update AFTER UPDATE OF owner, with_jid, first_seq, last_seq, n ON mam_chunks BEGIN
        UPDATE mam_chunk_keys SET owner = new.owner, first_seq = new.first_seq, with_jid = new.with_jid, last_seq = new.last_seq, n = new.n
          WHERE owner = old.owner AND first_seq = old.first_seq AND with_jid = old.with_jid AND last_seq = old.last_seq AND n = old.n;
        UPDATE mam_chunk_keys_new SET owner = new.owner, first_seq = new.first_seq, with_jid = new.with_jid, last_seq = new.last_seq, n = new.n
          WHERE owner = old.owner AND first_seq = old.first_seq AND chunk = old.id;
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (old.owner, old.with_jid, ${dayOf('old.first_seq')}, -old.n);
        INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, ${dayOf('new.first_seq')}, new.n);
      END;
    `,
      postgres: '',
    },
  },
];

/**
 * SQLite (migration 13), after rows are inserted into mam_chunks, in their transaction:
 * their keys to mam_chunk_keys_new and their day counts' changes to mam_day_delta, the
 * rows above the mark, then the mark moved past them.
 */
export const AFTER_INSERT_SQLITE = [
  `INSERT INTO mam_chunk_keys_new (owner, first_seq, with_jid, last_seq, n, chunk)
     SELECT owner, first_seq, with_jid, last_seq, n, id FROM mam_chunks WHERE id > (SELECT id FROM mam_chunk_mark)`,
  `INSERT INTO mam_day_delta (owner, with_jid, day, n)
     SELECT owner, with_jid, ${dayOf('first_seq')}, n FROM mam_chunks WHERE id > (SELECT id FROM mam_chunk_mark)`,
  `UPDATE mam_chunk_mark SET id = max(id, (SELECT coalesce(max(id), 0) FROM mam_chunks))`,
];

/**
 * SQLite, in one transaction: the new chunks' keys merged into mam_chunk_keys in key
 * order (migration 13; a key already there, from a batch retried after an ambiguous
 * failure, is not a second one), and mam_day_delta folded into mam_with_days (migration
 * 12): the sums per owner, contact and day upserted in key order, the days that fell to
 * zero deleted, the deltas emptied.
 */
export const FOLD_SQLITE = [
  `INSERT INTO mam_chunk_keys (owner, first_seq, with_jid, last_seq, n, chunk)
     SELECT owner, first_seq, with_jid, last_seq, n, chunk FROM mam_chunk_keys_new WHERE true ORDER BY owner, first_seq, with_jid, last_seq, n
     ON CONFLICT DO NOTHING`,
  `DELETE FROM mam_chunk_keys_new`,
  `INSERT INTO mam_with_days (owner, with_jid, day, n)
     SELECT owner, with_jid, day, sum(n) FROM mam_day_delta WHERE true GROUP BY owner, with_jid, day ORDER BY owner, with_jid, day
     ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = mam_with_days.n + excluded.n`,
  `DELETE FROM mam_with_days WHERE n <= 0 AND (owner, with_jid, day) IN (SELECT owner, with_jid, day FROM mam_day_delta WHERE n < 0)`,
  `DELETE FROM mam_day_delta`,
];
