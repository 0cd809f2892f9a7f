// Seeds Uzzap's message archive (table mam_chunks) in a Postgres bench
// database for the `mam` workload: `size` messages for the queried user
// (u1@localhost) interleaved with other owners' messages up to `total`, made
// by the database itself (INSERT ... SELECT over generate_series, no client
// round trips). Each message is a chunk of its own (src/storage/sql/archive-chunks.ts):
// what a quiet archive looks like, and the most rows a reader can meet for a page.
// Stanzas look like what the server writes (xeps/0313-mam/index.ts): the
// recipient's copy with a <stanza-id/>, the sender's without one. Ids are not
// stored: an id is the message's seq under the deployment's key (mam_keys,
// written here first so the workload can compute ids). Secondary indexes are dropped for the load
// and rebuilt from their own definitions afterwards (so a changed migration
// is rebuilt as it is), then VACUUM ANALYZE, as autovacuum would have left a
// long-lived table. A marker row (table bench_mam_seed) lets the next run with
// the same parameters reuse the data.
import { openUzzapStorage } from './uzzap-seed.mjs';

const FORMAT = 4; // bump when the generated rows change (4: mam_with_days, migration 11)
const CHUNK = 500_000;
const BODY = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore';
const log = (...a) => console.error('[bench]', ...a);

/** Bare JID of contact c (0-based) of the queried user: u2..u(1+contacts). */
export const contactJid = (c, domain) => `u${2 + c}@${domain}`;

/**
 * @param {string} url  Postgres URL (checked by the caller: loopback, uzzap_bench*)
 * @param {{owner:string, domain:string, size:number, total:number, contacts:number}} o
 * @returns {Promise<{reused:boolean, seconds:number, rows:number, owner_rows:number, index_build_s?:number, table_mib:number, indexes_mib:number}>}
 */
export async function seedArchive(url, o) {
  const { owner, domain, size, total, contacts } = o;
  if (!(total % size === 0 && total >= size)) throw new Error(`mam: total (${total}) must be a multiple of size (${size})`);
  const k = total / size; // every k-th row is the queried user's
  // other owners: u(2+contacts+r) for r = g mod 5000 where g is not the queried user's (k does not divide r):
  // 4,500 owners of 200 rows each at 1M rows / k=10, 4,000 owners of 1,000 rows each at 5M / k=5
  const others = 5000;
  const want = JSON.stringify({ format: FORMAT, owner, domain, size, total, contacts });
  const t0 = performance.now();
  const storage = await openUzzapStorage({ dataDir: '/nonexistent', postgresUrl: url }); // migrations applied
  const sql = storage.sql;
  const sizes = async () => {
    const [r] = await sql.query(
      `SELECT pg_table_size('mam_chunks') AS t, pg_indexes_size('mam_chunks') AS i, (SELECT coalesce(sum(n), 0) FROM mam_chunks) AS n`,
    );
    return { rows: Number(r.n), table_mib: Math.round(Number(r.t) / 1048576), indexes_mib: Math.round(Number(r.i) / 1048576) };
  };
  try {
    await sql.script('CREATE TABLE IF NOT EXISTS bench_mam_seed (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
    const [have] = await sql.query("SELECT v FROM bench_mam_seed WHERE k = 'seed'");
    if (have?.v === want) {
      const s = await sizes();
      const [c] = await sql.query('SELECT coalesce(sum(n), 0) AS n FROM mam_chunks WHERE owner = $1', [owner]);
      if (s.rows === total && Number(c.n) === size) {
        log(`mam: reusing the seeded archive (${total} rows, ${size} for ${owner})`);
        return { reused: true, seconds: 0, ...s, owner_rows: size };
      }
      log(`mam: seeded archive changed (${s.rows} rows, ${c.n} for ${owner}): seeding again`);
    }
    await sql.script("DELETE FROM bench_mam_seed; TRUNCATE mam_chunks, mam_with_days");
    // secondary indexes: drop for the load, rebuild from their definitions
    const defs = await sql.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'mam_chunks'
         AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'mam_chunks'::regclass)`,
    );
    for (const d of defs) await sql.script(`DROP INDEX "${d.indexname}"`);
    const span = 365 * 86_400_000; // the table covers a year, ts strictly increasing with seq
    const step = Math.floor(span / total);
    const ts0 = Date.now() - span - 60_000;
    // g: global row number (= seq order); the queried user's j-th message is g = j*k.
    // Its contact: a hash of j among `contacts`; odd j incoming (recipient copy), even j outgoing.
    // body: the chunk format `seq,fullLength,-1,stanzaLength;` + full JID + stanza (all ASCII here,
    // so Postgres' character lengths are the UTF-16 lengths the server reads)
    const insert = `
      INSERT INTO mam_chunks (owner, with_jid, first_seq, last_seq, n, body)
      SELECT owner, with_jid, seq, seq, 1, seq || ',' || length(with_full) || ',-1,' || length(stanza) || ';' || with_full || stanza
      FROM (
        SELECT g, owner, with_jid, with_full, (ts - 946684800000) * 4096 + (g % 4096) AS seq,
          CASE WHEN incoming THEN
            '<message type="chat" to="' || owner || '/chat" id="m' || g || '" from="' || with_full || '"><body>' || body ||
            '</body><stanza-id xmlns="urn:xmpp:sid:0" id="seeded" by="' || owner || '"/></message>'
          ELSE
            '<message type="chat" to="' || with_full || '" id="m' || g || '" from="' || owner || '/chat"><body>' || body || '</body></message>'
          END AS stanza
        FROM (
          SELECT g, owner, $3::bigint + g * $4::bigint AS ts,
                 with_jid, with_jid || '/phone' AS with_full, (g / $5) % 2 = 1 AS incoming,
                 'msg ' || g || ' ' || $6 AS body
          FROM (
            SELECT g,
              CASE WHEN g % $5 = 0 THEN $7 ELSE 'u' || (2 + $8 + g % $9) || '@' || $10 END AS owner,
              CASE WHEN g % $5 = 0 THEN 'u' || (2 + (hashint8(g / $5) & 2147483647) % $8) || '@' || $10
                   ELSE 'u' || (2 + (hashint8(g) & 2147483647) % 1000) || '@' || $10 END AS with_jid
            FROM generate_series($1::bigint, $2::bigint) g
          ) a
        ) b
      ) c
      ORDER BY g`;
    for (let a = 1; a <= total; a += CHUNK) {
      const b = Math.min(total, a + CHUNK - 1);
      await sql.exec(insert, [a, b, ts0, step, k, BODY, owner, contacts, others, domain]);
      log(`mam: ${b} / ${total} rows inserted (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    const ti = performance.now();
    await sql.transaction(async (tx) => {
      await tx.exec("SET LOCAL maintenance_work_mem = '512MB'");
      for (const d of defs) await tx.exec(d.indexdef);
    });
    const indexBuildS = (performance.now() - ti) / 1000;
    log(`mam: ${defs.length} indexes rebuilt in ${indexBuildS.toFixed(0)} s`);
    await sql.script('VACUUM ANALYZE mam_chunks');
    await sql.exec("INSERT INTO bench_mam_seed (k, v) VALUES ('seed', $1)", [want]);
    const s = await sizes();
    const seconds = (performance.now() - t0) / 1000;
    log(`mam: seeded ${s.rows} rows in ${seconds.toFixed(0)} s (table ${s.table_mib} MiB, indexes ${s.indexes_mib} MiB)`);
    return { reused: false, seconds: Math.round(seconds * 10) / 10, index_build_s: Math.round(indexBuildS * 10) / 10, ...s, owner_rows: size };
  } finally {
    await storage.close();
  }
}
