// The SQLite archive writer's pattern without the server: batches of chunks (one per
// owner, as the chat bench makes them: OWNERS owners, PER messages per chunk, one
// transaction per batch) into a table shaped like mam_chunks (migration 8), and the
// writing thread's CPU per message. Variants (V): base (both indexes), nowith (no
// (owner, with_jid, ...) index), noseq (no (owner, first_seq, ...) index), none (no index), wor (a
// WITHOUT ROWID table), day (migration 11), delta (migration 12), lsm (the keys apart, new
// ones merged every FOLD batches, kept by row triggers), lsm2 (the same copied by statements
// after the batch, as migration 13 does), real (the server's own schema and statements: see
// below; DROP= drops some of its triggers or indexes, to see what each costs). WARM sets the
// batches written before the measured ones (60): an archive of WARM × OWNERS chunks. TEMP=2
// keeps SQLite's temporary data in memory (as the server's writer does). Prints CPU, wall,
// and bytes and write calls per message (/proc/self/io); SHOW=1 each table's pages. WAC=pages sets wal_autocheckpoint, PAGE the page size, SYNC
// the synchronous mode, CACHE the page cache (KiB), AGED (V=day) a days table as a long-lived
// archive has it (see below). Run each variant several times,
// alternating: this machine's speed drifts.
//
//   V=base node bench/archive-writer-replay.cjs; WAC=16384 V=base node bench/archive-writer-replay.cjs
const path = require('path');
const os = require('os');
const Database = require(path.join(__dirname, '..', 'node_modules', 'better-sqlite3'));
const fs = require('fs');
const V = process.env.V || 'base';
const OWNERS = +(process.env.OWNERS || 500), PER = +(process.env.PER || 5), BATCHES = +(process.env.BATCHES || 120);
const file = path.join(os.tmpdir(), 'uzzap-archive-replay-' + V + '-' + process.pid + '.sqlite');
for (const s of ['', '-wal', '-shm']) try { fs.unlinkSync(file + s); } catch {}
// V=real: the schema the server makes (dist/'s migrations; SRC=another checkout's), its
// insert, what follows it (AFTER_INSERT_SQLITE) and its fold (FOLD_SQLITE, or migration
// 12's FOLD_DAYS_SQLITE in older builds)
let realFold = [], realAfter = [];
if (V === 'real') {
  const src = process.env.SRC || path.join(__dirname, '..');
  const code = `
    const { SqliteSql } = await import(${JSON.stringify(path.join(src, 'dist/src/storage/sql/sqlite.js'))});
    const { migrate } = await import(${JSON.stringify(path.join(src, 'dist/src/storage/sql/migrate.js'))});
    const m = await import(${JSON.stringify(path.join(src, 'dist/src/storage/migrations/index.js'))});
    const sql = new SqliteSql(${JSON.stringify(file)}, 5000);
    await migrate(sql);
    await sql.close();
    console.log(JSON.stringify([m.AFTER_INSERT_SQLITE ?? [], m.FOLD_SQLITE ?? m.FOLD_DAYS_SQLITE ?? []]));`;
  [realAfter, realFold] = JSON.parse(require('child_process').execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }));
}
const db = new Database(file);
if (process.env.PAGE) db.pragma('page_size = ' + process.env.PAGE);
db.pragma('journal_mode = WAL'); db.pragma('synchronous = ' + (process.env.SYNC || 'NORMAL'));
if (process.env.TEMP) db.pragma('temp_store = ' + process.env.TEMP);
db.pragma('cache_size = -' + (process.env.CACHE || 8192)); if (process.env.WAC) db.pragma('wal_autocheckpoint = ' + process.env.WAC);
const noWith = V === 'nowith' || V === 'none', noSeq = V === 'noseq' || V === 'none';
if (V === 'wor') {
  db.exec(`CREATE TABLE mam_chunks (owner TEXT NOT NULL, first_seq BIGINT NOT NULL, with_jid TEXT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (owner, first_seq, with_jid)) WITHOUT ROWID;
  CREATE UNIQUE INDEX mam_chunks_with ON mam_chunks (owner, with_jid, first_seq, last_seq, n);`);
} else if (V === 'delta') {
  // the days table fed through an append-only delta table folded in every FOLD batches
  db.exec(`CREATE TABLE mam_chunks (owner TEXT NOT NULL, with_jid TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE UNIQUE INDEX mam_chunks_seq ON mam_chunks (owner, first_seq, with_jid, last_seq, n);
  CREATE TABLE mam_with_days (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (owner, with_jid, day)) WITHOUT ROWID;
  CREATE TABLE mam_day_delta (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL);
  CREATE TRIGGER mam_with_days_insert AFTER INSERT ON mam_chunks BEGIN
    INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, new.first_seq / 353894400000, new.n);
  END;`);
} else if (V === 'real') {
  // made above; DROP=name,... drops triggers or indexes of it (to see what each costs)
  for (const d of (process.env.DROP || '').split(',').filter(Boolean)) db.exec(`DROP ${d.startsWith('mam_chunk_keys_new_') ? 'INDEX' : 'TRIGGER'} ${d}`);
} else if (V === 'lsm2') {
  // migration 13's tables without row triggers: the batch's keys and day changes copied
  // from its rows by two statements after them, one guard probe per batch
  db.exec(`CREATE TABLE mam_chunks (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, with_jid TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE TABLE mam_keys (owner TEXT NOT NULL, first_seq BIGINT NOT NULL, with_jid TEXT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (owner, first_seq, with_jid, last_seq, n)) WITHOUT ROWID;
  CREATE TABLE mam_with_days (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (owner, with_jid, day)) WITHOUT ROWID;
  CREATE TABLE mam_day_delta (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL);
  CREATE TABLE mam_keys_recent (owner TEXT NOT NULL, first_seq BIGINT NOT NULL, with_jid TEXT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, id INTEGER NOT NULL);
  CREATE INDEX mam_keys_recent_owner ON mam_keys_recent (owner, first_seq);`);
} else if (V === 'lsm') {
  // the chunks' keys written apart from their rows: a batch appends them to an unindexed
  // table; every FOLD batches they are merged into the keys' index in key order (each
  // owner's newest leaf written once per fold instead of once per batch)
  db.exec(`CREATE TABLE mam_chunks (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, with_jid TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE TABLE mam_keys (owner TEXT NOT NULL, first_seq BIGINT NOT NULL, with_jid TEXT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (owner, first_seq, with_jid)) WITHOUT ROWID;
  CREATE TABLE mam_with_days (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (owner, with_jid, day)) WITHOUT ROWID;
  CREATE TABLE mam_day_delta (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL);
  CREATE TABLE mam_keys_recent (owner TEXT NOT NULL, first_seq BIGINT NOT NULL, with_jid TEXT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, id INTEGER NOT NULL);
  CREATE INDEX mam_keys_recent_owner ON mam_keys_recent (owner, first_seq);
  CREATE TRIGGER mam_chunks_guard BEFORE INSERT ON mam_chunks
    WHEN EXISTS (SELECT 1 FROM mam_keys WHERE owner = new.owner AND first_seq = new.first_seq AND with_jid = new.with_jid)
      OR EXISTS (SELECT 1 FROM mam_keys_recent WHERE owner = new.owner AND first_seq = new.first_seq AND with_jid = new.with_jid)
  BEGIN SELECT RAISE(IGNORE); END;
  CREATE TRIGGER mam_with_days_insert AFTER INSERT ON mam_chunks BEGIN
    INSERT INTO mam_day_delta (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, new.first_seq / 353894400000, new.n);
    INSERT INTO mam_keys_recent (owner, first_seq, with_jid, last_seq, n, id) VALUES (new.owner, new.first_seq, new.with_jid, new.last_seq, new.n, new.id);
  END;`);
} else if (V === 'day' || V === 'seqw') {
  db.exec(`CREATE TABLE mam_chunks (owner TEXT NOT NULL, with_jid TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE UNIQUE INDEX mam_chunks_seq ON mam_chunks (owner, first_seq, with_jid, last_seq, n);`);
  if (V === 'day') db.exec(`CREATE TABLE mam_with_days (owner TEXT NOT NULL, with_jid TEXT NOT NULL, day BIGINT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (owner, with_jid, day)) WITHOUT ROWID;
  CREATE TRIGGER mam_with_days_insert AFTER INSERT ON mam_chunks BEGIN
    INSERT INTO mam_with_days (owner, with_jid, day, n) VALUES (new.owner, new.with_jid, new.first_seq / 353894400000, new.n)
      ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = n + excluded.n;
  END;`);
} else {
  db.exec(`CREATE TABLE mam_chunks (owner TEXT NOT NULL, with_jid TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);`);
  if (!noWith) db.exec(`CREATE UNIQUE INDEX mam_chunks_with ON mam_chunks (owner, with_jid, first_seq, last_seq, n);`);
  if (!noSeq) db.exec(`CREATE INDEX mam_chunks_seq ON mam_chunks (owner, first_seq, last_seq, n);`);
}
const st = db.prepare('INSERT INTO mam_chunks (owner, with_jid, first_seq, last_seq, n, body) VALUES (?, ?, ?, ?, ?, CAST(? AS TEXT)) ON CONFLICT DO NOTHING');
const stanza = Buffer.from('<message xmlns="jabber:client" to="u123@localhost/bench" from="u124@localhost/bench" type="chat" id="abcdefgh12345"><body>' + 'x'.repeat(+(process.env.BODY || 100)) + '</body><stanza-id xmlns="urn:xmpp:sid:0" by="u123@localhost" id="AbCdEfGhIjKlMnOp"/></message>');
const body = Buffer.concat(Array.from({ length: PER }, () => stanza));
let seq = 1e12;
// warm: fill some history
const FOLD = +(process.env.FOLD || 40);
let batches = 0;
const lsm2 = V === 'lsm2' && {
  max: db.prepare('SELECT coalesce(max(id), 0) AS m FROM mam_chunks'),
  guard: db.prepare('SELECT 1 FROM mam_keys WHERE owner = ? AND first_seq = ? UNION ALL SELECT 1 FROM mam_keys_recent WHERE owner = ? AND first_seq = ?'),
  keys: db.prepare('INSERT INTO mam_keys_recent (owner, first_seq, with_jid, last_seq, n, id) SELECT owner, first_seq, with_jid, last_seq, n, id FROM mam_chunks WHERE id > ?'),
  days: db.prepare('INSERT INTO mam_day_delta (owner, with_jid, day, n) SELECT owner, with_jid, first_seq / 353894400000, n FROM mam_chunks WHERE id > ?'),
};
const foldKeys = (V === 'lsm' || V === 'lsm2') && [
  db.prepare(`INSERT INTO mam_keys (owner, first_seq, with_jid, last_seq, n, id) SELECT owner, first_seq, with_jid, last_seq, n, id FROM mam_keys_recent WHERE true ORDER BY owner, first_seq, with_jid`),
  db.prepare('DELETE FROM mam_keys_recent'),
];
const fold = (V === 'delta' || V === 'lsm' || V === 'lsm2') && db.prepare(`INSERT INTO mam_with_days (owner, with_jid, day, n) SELECT owner, with_jid, day, sum(n) FROM mam_day_delta WHERE true GROUP BY owner, with_jid, day ORDER BY owner, with_jid, day
  ON CONFLICT (owner, with_jid, day) DO UPDATE SET n = mam_with_days.n + excluded.n`);
const clear = (V === 'delta' || V === 'lsm' || V === 'lsm2') && db.prepare('DELETE FROM mam_day_delta');
function batch() {
  db.transaction(() => {
    let before = 0;
    if (lsm2) {
      before = lsm2.max.get().m;
      if (lsm2.guard.get(`u0@localhost`, seq, `u0@localhost`, seq)) return;
    }
    for (let o = 0; o < OWNERS; o++) { const f = seq; seq += PER; st.run([`u${o}@localhost`, `u${o ^ 1}@localhost`, f, seq - 1, PER, body]); }
    if (lsm2) { lsm2.keys.run(before); lsm2.days.run(before); }
    if (V === 'real') for (const f of realAfter) db.prepare(f).run();
    if (V === 'real' && ++batches % FOLD === 0) for (const f of realFold) db.prepare(f).run();
    if (fold && ++batches % FOLD === 0) {
      fold.run(); clear.run();
      if (foldKeys) for (const f of foldKeys) f.run();
    }
  })();
}
// AGED=D (V=day): the days table as an archive D days old makes it, each owner with
// CONTACTS contacts (the replayed one among them) talked to on each of those days: the
// rows a batch updates (today's, per owner and contact) lie apart, as in a long-lived
// database, not in the few pages a fresh one packs them into
if (process.env.AGED && (V === 'day' || V === 'delta' || V === 'lsm' || V === 'lsm2')) {
  const D = +process.env.AGED, C = +(process.env.CONTACTS || 20), today = Math.floor(seq / 353894400000);
  const ins = db.prepare('INSERT INTO mam_with_days (owner, with_jid, day, n) VALUES (?, ?, ?, 1)');
  db.transaction(() => {
    for (let o = 0; o < OWNERS; o++)
      for (let c = 0; c < C; c++)
        for (let d = 1; d <= D; d++) ins.run(`u${o}@localhost`, c === 0 ? `u${o ^ 1}@localhost` : `c${c}-${o}@localhost`, today - d);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
}
for (let i = 0; i < +(process.env.WARM || 60); i++) batch();
const io = () => Object.fromEntries(fs.readFileSync('/proc/self/io', 'utf8').trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k, +v]));
const io0 = io();
const t0 = process.cpuUsage(), w0 = Date.now();
for (let i = 0; i < BATCHES; i++) batch();
const c = process.cpuUsage(t0);
const msgs = BATCHES * OWNERS * PER / 2; // two rows per message
console.log(V, process.env.PAGE || '', 'per msg µs: user', (c.user / msgs).toFixed(2), 'sys', (c.system / msgs).toFixed(2), 'wall', ((Date.now() - w0) * 1000 / msgs).toFixed(2), 'wal MB', (fs.statSync(file + '-wal').size / 1e6).toFixed(1), 'written KB/msg', ((io().wchar - io0.wchar) / 1024 / msgs).toFixed(2), 'writes/msg', ((io().syscw - io0.syscw) / msgs).toFixed(2));
if (process.env.SHOW) for (const t of ['mam_chunks', 'mam_chunk_keys', 'mam_chunk_keys_new', 'mam_chunks_seq', 'mam_chunk_keys_new_seq', 'mam_day_delta', 'mam_with_days']) { try { console.log(' ', t, 'pages', db.prepare('SELECT count(*) AS p FROM dbstat WHERE name = ?').get(t).p); } catch {} }
db.close();
for (const s of ['', '-wal', '-shm']) try { fs.unlinkSync(file + s); } catch {}
