// mam: XEP-0313 query latency on a large archive (Uzzap on Postgres only).
//
// Before the server starts, the archive table of a Postgres bench database is
// seeded (lib/mam-seed.mjs): `size` messages for u1@localhost among `total`
// rows of all owners, reused by the next run with the same parameters. Then
// u1 logs in (SCRAM) and times, one query in flight, `queries` MAM queries of
// each kind (after `warmupQueries` of each, untimed):
//   first   no RSM <set/>: the oldest page (the server's default page, 50; with
//           --page other than 50, <set><max>P</max></set>)
//   last    <set><max>P</max><before/></set>: the newest page
//   middle  <set><max>P</max><after>ID</after></set>, ID taken from around the
//           middle of u1's archive (a different one per query)
//   with    a form with with=<contact> (10 contacts in turn), <max>P</max>
// Latency = IQ sent -> IQ result received (every <result/> message comes before
// it). The <fin/> carries an RSM <count/>: the server sums the chunks' counts
// over the query's filter for every page, so afterwards the page and count SQL
// (same text as src/storage/sql/archive-read.ts) are timed straight on Postgres
// and EXPLAIN ANALYZEd, to show which part grows with the archive.
import { attr } from '../lib/xmpp-lite.mjs';
import { contactJid, seedArchive } from '../lib/mam-seed.mjs';
import { benchPgUrl, ensureDatabase } from '../lib/uzzap-pg.mjs';
import { cpuMeter, percentile, round } from '../lib/proc.mjs';
import { ArchiveIds } from '../../dist/src/storage/sql/archive-ids.js';
import { CHUNK_SPAN } from '../../dist/src/storage/sql/archive-chunks.js';

export const targets = ['uzzap'];
export const keepDatabase = true; // the seeded archive stays for the next run
export const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/uzzap_bench_mam';
export const defaults = { size: 100_000, queries: 200, warmupQueries: 10, page: 50, contacts: 10, sqlRepeats: 20 };
export const quick = { size: 10_000, queries: 20, warmupQueries: 3, sqlRepeats: 5 };
export const usersNeeded = () => 1; // u1 queries; the archive's other owners need no accounts
export const uzzapEnv = () => ({ UZZAP_POSTGRES_URL: DEFAULT_URL });

const KINDS = ['first', 'last', 'middle', 'with'];
const NS_MAM = 'urn:xmpp:mam:2';
const NS_RSM = 'http://jabber.org/protocol/rsm';
const DOMAIN = 'localhost';
const OWNER = `u1@${DOMAIN}`;
const QUERY_TIMEOUT_MS = 30_000;

export function resolve(p) {
  p.total ??= p.size > 100_000 ? 5 * p.size : 10 * p.size;
  for (const k of ['size', 'total', 'queries', 'page', 'contacts'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`mam: ${k} must be a positive integer (got ${p[k]})`);
  if (p.total % p.size) throw new Error(`mam: --total must be a multiple of --size`);
  if (p.page > 250) throw new Error('mam: --page is capped at 250 by the server (modules.mam.max_page)');
  return p;
}

/** Before the server starts: the database exists and holds the archive. */
export async function prepare({ uzzapEnv }, p) {
  const url = uzzapEnv.UZZAP_POSTGRES_URL;
  if (!url) throw new Error('mam needs Postgres (UZZAP_POSTGRES_URL)');
  const { database } = benchPgUrl(url);
  if (await ensureDatabase(url)) console.error(`[bench] mam: created database ${database}`);
  return { seed: await seedArchive(url, { owner: OWNER, domain: DOMAIN, size: p.size, total: p.total, contacts: p.contacts }) };
}

// ------------------------------------------------------------ SQL, as src/storage/sql/archive.ts runs it
const COLS = 'SELECT with_jid, first_seq, last_seq, n, body FROM mam_chunks';
const MIN = Number.MIN_SAFE_INTEGER;
const MAX = Number.MAX_SAFE_INTEGER;
/** the first round trip of a page (collect), and the count's sum over whole chunks */
function sqlFor(kind, o, arg) {
  const sum = (w) => [`SELECT sum(n) AS s FROM (SELECT n FROM mam_chunks WHERE owner = $1 AND first_seq >= $2 AND last_seq <= $3${w ? ' AND with_jid = $4' : ''}) AS whole`, w ? [OWNER, MIN, MAX, w] : [OWNER, MIN, MAX]];
  switch (kind) {
    case 'first':
      return { page: [`${COLS} WHERE owner = $1 AND first_seq > $2 AND first_seq <= $3 AND last_seq >= $4 ORDER BY first_seq ASC LIMIT 64`, [OWNER, MIN - CHUNK_SPAN - 1, MAX, MIN]], count: sum() };
    case 'last':
      return { page: [`${COLS} WHERE owner = $1 AND first_seq < $2 AND first_seq >= $3 AND last_seq >= $4 ORDER BY first_seq DESC LIMIT 64`, [OWNER, MAX + 1, MIN - CHUNK_SPAN, MIN]], count: sum() };
    case 'middle':
      return {
        lookup: [`${COLS} WHERE owner = $1 AND first_seq <= $2 AND first_seq >= $3 AND last_seq >= $2`, [OWNER, arg.seq, arg.seq - CHUNK_SPAN]],
        page: [`${COLS} WHERE owner = $1 AND first_seq > $2 AND first_seq <= $3 AND last_seq >= $4 ORDER BY first_seq ASC LIMIT 64`, [OWNER, arg.seq + 1 - CHUNK_SPAN - 1, MAX, arg.seq + 1]],
        count: sum(),
      };
    case 'with':
      // the contact's days (mam_with_days), then the scan over the first run of days (the seed's
      // contacts have messages every day: one run); the count is a sum of whole days
      return {
        lookup: [`SELECT day FROM mam_with_days WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4 ORDER BY day ASC LIMIT 256`, [OWNER, arg.with, -1e6, 1e6]],
        page: [`${COLS} WHERE owner = $1 AND first_seq > $2 AND first_seq <= $3 AND last_seq >= $4 AND with_jid = $5 ORDER BY first_seq ASC LIMIT 64`, [OWNER, -1, MAX, MIN, arg.with]],
        count: ['SELECT sum(n) AS s FROM mam_with_days WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4', [OWNER, arg.with, 0, 1e6]],
      };
  }
}

/** "Limit > Index Scan (mam_messages_owner)" etc. from an EXPLAIN (FORMAT JSON) plan, plus the numbers. */
function summarizePlan(json) {
  const top = json[0];
  const nodes = [];
  let heapFetches = 0;
  const walk = (n) => {
    nodes.push(`${n['Node Type']}${n['Index Name'] ? ` (${n['Index Name']})` : ''}${n['Workers Launched'] ? ` [${n['Workers Launched']} workers]` : ''}`);
    if (n['Heap Fetches'] != null) heapFetches += n['Heap Fetches'];
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(top.Plan);
  const jit = top.JIT ? round(top.JIT.Timing?.Total ?? 0, 2) : 0;
  return {
    plan: nodes.join(' > '),
    execution_ms: round(top['Execution Time'], 3),
    planning_ms: round(top['Planning Time'], 3),
    jit_ms: jit,
    rows: top.Plan['Actual Rows'],
    shared_hit: top.Plan['Shared Hit Blocks'],
    shared_read: top.Plan['Shared Read Blocks'],
    heap_fetches: heapFetches,
  };
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(percentile(s, 50), 2), p90: round(percentile(s, 90), 2), p99: round(percentile(s, 99), 2), max: round(s[s.length - 1], 2) };
};

export async function run(ctx, o) {
  const { target, newConn, prepared } = ctx;
  const sql = target.sql;
  if (!sql) throw new Error('mam: the target has no Postgres connection');

  // --- what to ask for: ids spread over the middle 10% of u1's archive, and its contacts
  const stride = Math.max(1, Math.floor((o.size * 0.1) / o.queries));
  const span = stride * (o.queries + o.warmupQueries);
  // ids are seqs under the deployment's key (chunks of one here, so first_seq is the message's seq)
  const [key] = await sql.query('SELECT secret FROM mam_keys WHERE k = 1');
  const ids = new ArchiveIds(key.secret);
  const midRows = await sql.query(`SELECT first_seq AS seq FROM mam_chunks WHERE owner = $1 ORDER BY first_seq OFFSET $2 LIMIT $3`, [
    OWNER, Math.max(0, Math.floor(o.size / 2 - span / 2)), span,
  ]);
  const mids = midRows.filter((_, i) => i % stride === 0).map((r) => ({ id: ids.encode(Number(r.seq)), seq: Number(r.seq) }));
  if (mids.length < o.queries + o.warmupQueries) throw new Error(`mam: only ${mids.length} middle ids (archive too small?)`);
  const contacts = Array.from({ length: o.contacts }, (_, c) => contactJid(c, DOMAIN));
  const expectedCount = { first: o.size, last: o.size, middle: o.size };
  for (const [r] of await Promise.all(contacts.map((w) => sql.query('SELECT coalesce(sum(n), 0) AS n FROM mam_chunks WHERE owner = $1 AND with_jid = $2', [OWNER, w]))))
    (expectedCount.with ??= []).push(Number(r.n));

  // --- log in as u1
  const c = newConn(1);
  await c.login({ presence: false, roster: false, resource: 'mam' });
  let pending = null; // { id, results, resolve, reject, timer }
  c.onStanza = (s) => {
    if (!pending) return;
    if (s.startsWith('<message')) {
      if (s.includes(`<result`) && s.includes(pending.qid)) {
        pending.results++;
        pending.firstResult ??= s;
      }
      return;
    }
    if (s.startsWith('<iq') && attr(s, 'id') === pending.id) {
      const p = pending;
      pending = null;
      clearTimeout(p.timer);
      p.resolve({ stanza: s, results: p.results, firstResult: p.firstResult });
    }
  };
  c.onClose = (err) => {
    if (pending) pending.reject(err || new Error('connection closed'));
  };
  let seq = 0;
  const rsm = (inner) => `<set xmlns='${NS_RSM}'><max>${o.page}</max>${inner}</set>`;
  const form = (w) =>
    `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${NS_MAM}</value></field>` +
    `<field var='with'><value>${w}</value></field></x>`;
  const build = (kind, i) => {
    switch (kind) {
      case 'first':
        return o.page === 50 ? '' : rsm(''); // no <set/>: the server's default page (modules.mam.default_page, 50)
      case 'last':
        return rsm('<before/>');
      case 'middle':
        return rsm(`<after>${mids[i % mids.length].id}</after>`);
      case 'with':
        return form(contacts[i % contacts.length]) + rsm('');
    }
  };
  const query = (kind, i) =>
    new Promise((resolve, reject) => {
      const id = `q${++seq}`;
      const qid = `mq${seq}x`;
      const t0 = performance.now();
      pending = {
        id, qid, results: 0, firstResult: null,
        resolve: (r) => resolve({ ...r, ms: performance.now() - t0 }),
        reject,
        timer: setTimeout(() => {
          pending = null;
          reject(new Error(`${kind} query ${id}: no answer in ${QUERY_TIMEOUT_MS} ms`));
        }, QUERY_TIMEOUT_MS),
      };
      c.send(`<iq type='set' id='${id}'><query xmlns='${NS_MAM}' queryid='${qid}'>${build(kind, i)}</query></iq>`);
    });

  const problems = {};
  const problem = (k) => (problems[k] = (problems[k] || 0) + 1);
  const check = (kind, i, r) => {
    if (attr(r.stanza, 'type') !== 'result') {
      const cond = /<error[^>]*>\s*<([\w-]+)/.exec(r.stanza);
      problem(`${kind}: iq ${cond ? cond[1] : 'error'}`);
      if (!problems.sample) problems.sample = r.stanza.slice(0, 300);
      return;
    }
    const count = Number(/<count>(\d+)<\/count>/.exec(r.stanza)?.[1]);
    const want = kind === 'with' ? expectedCount.with[i % contacts.length] : expectedCount[kind];
    if (count !== want) problem(`${kind}: count ${count} != ${want}`);
    if (r.results !== o.page) problem(`${kind}: ${r.results} results != ${o.page}`);
  };

  // --- warm-up, untimed (the last index is used by the timed runs)
  for (const kind of KINDS) for (let i = 0; i < o.warmupQueries; i++) check(kind, o.queries + i, await query(kind, o.queries + i));

  // --- timed: each kind in turn, one query in flight
  const perKind = {};
  let sample = null;
  for (const kind of KINDS) {
    const lat = [];
    const meter = cpuMeter(target.pid, await target.dbProcs());
    for (let i = 0; i < o.queries; i++) {
      const r = await query(kind, i);
      check(kind, i, r);
      lat.push(r.ms);
      if (kind === 'middle' && i === 0) sample = { fin: r.stanza.slice(0, 600), result: r.firstResult?.slice(0, 700) };
    }
    const m = meter(await target.dbProcs());
    perKind[kind] = {
      latency_ms: stats(lat),
      mean_ms: round(lat.reduce((a, b) => a + b, 0) / lat.length, 2),
      queries_per_s: round(o.queries / m.wall, 1),
      server_cpu_ms_per_query: round((m.server_cpu_s / o.queries) * 1000, 2),
      db_cpu_ms_per_query: round((m.db_cpu_s / o.queries) * 1000, 2),
      db_exited_cpu_ms_per_query: round((m.db_exited_cpu_s / o.queries) * 1000, 2),
      server_cpu_pct: m.server_cpu_pct,
      db_cpu_pct: m.db_cpu_pct,
      db_exited_cpu_pct: m.db_exited_cpu_pct,
      generator_cpu_pct: m.generator_cpu_pct,
      other_cpu_pct: m.other_cpu_pct,
    };
    console.error(
      `[bench] mam ${kind}: p50 ${perKind[kind].latency_ms.p50} ms, p99 ${perKind[kind].latency_ms.p99} ms; ` +
        `server ${perKind[kind].server_cpu_ms_per_query} ms CPU/query, Postgres ${perKind[kind].db_cpu_ms_per_query} ms CPU/query ` +
        `(+${perKind[kind].db_exited_cpu_ms_per_query} ms in parallel workers etc.), other ${perKind[kind].other_cpu_pct}%`,
    );
  }
  c.close();

  // --- the SQL behind each kind, straight on Postgres (server idle): timed and EXPLAIN ANALYZEd
  const sqlTimes = {};
  const explain = {};
  const timeIt = async (text, params) => {
    const t = performance.now();
    const rows = await sql.query(text, params);
    return { ms: performance.now() - t, rows };
  };
  const explainOne = async ([text, params]) => summarizePlan((await sql.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, params))[0]['QUERY PLAN']);
  // the count without parallel workers too (one process: its time is its CPU cost; set on the bench's
  // own connection only, target.sql has one)
  const serial = async (fn) => {
    await sql.script('SET max_parallel_workers_per_gather = 0');
    try {
      return await fn();
    } finally {
      await sql.script('RESET max_parallel_workers_per_gather');
    }
  };
  for (const kind of KINDS) {
    const lat = { lookup: [], page: [], count: [], count_serial: [] };
    for (let i = 0; i < o.sqlRepeats; i++) {
      const arg = { id: mids[i].id, seq: mids[i].seq, with: contacts[i % contacts.length] };
      const q = sqlFor(kind, o, arg);
      for (const part of ['lookup', 'page', 'count']) if (q[part]) lat[part].push((await timeIt(...q[part])).ms);
    }
    await serial(async () => {
      for (let i = 0; i < o.sqlRepeats; i++) {
        const q = sqlFor(kind, o, { id: mids[i].id, seq: mids[i].seq, with: contacts[i % contacts.length] });
        lat.count_serial.push((await timeIt(...q.count)).ms);
      }
    });
    sqlTimes[kind] = Object.fromEntries(Object.entries(lat).filter(([, v]) => v.length).map(([k, v]) => [k, stats(v)]));
    const q = sqlFor(kind, o, { id: mids[0].id, seq: mids[0].seq, with: contacts[0] });
    explain[kind] = {};
    for (const part of ['lookup', 'page', 'count']) if (q[part]) explain[kind][part] = await explainOne(q[part]);
    explain[kind].count_serial = await serial(() => explainOne(q.count));
    const p50 = perKind[kind].latency_ms.p50;
    const countP50 = sqlTimes[kind].count.p50;
    perKind[kind].count_sql_p50_ms = countP50;
    perKind[kind].count_sql_serial_p50_ms = sqlTimes[kind].count_serial.p50;
    perKind[kind].page_sql_p50_ms = sqlTimes[kind].page.p50;
    perKind[kind].count_share_of_latency = p50 ? round(countP50 / p50, 2) : null;
  }
  // a typical small archive in the same table (one of the other owners): which plan its pages get
  const [small] = await sql.query('SELECT owner, sum(n) AS n FROM mam_chunks WHERE owner = $1 GROUP BY owner', [`u${3 + o.contacts}@${DOMAIN}`]);
  if (small) {
    const ow = small.owner;
    explain.small_owner = {
      owner: ow,
      rows: Number(small.n),
      first_page: await explainOne([`${COLS} WHERE owner = $1 ORDER BY first_seq ASC LIMIT 64`, [ow]]),
      last_page: await explainOne([`${COLS} WHERE owner = $1 ORDER BY first_seq DESC LIMIT 64`, [ow]]),
      count: await explainOne(['SELECT sum(n) AS n FROM mam_chunks WHERE owner = $1', [ow]]),
    };
  }

  const result = {
    archive: {
      owner: OWNER,
      owner_rows: o.size,
      total_rows: prepared?.seed?.rows,
      contacts: o.contacts,
      with_rows_per_contact: { min: Math.min(...expectedCount.with), max: Math.max(...expectedCount.with) },
      seed: prepared?.seed,
    },
    queries_per_kind: o.queries,
    page: o.page,
    ...Object.fromEntries(KINDS.map((k) => [k, perKind[k]])),
    sql_ms: sqlTimes,
    explain,
    // the highest over the four kinds' windows (the runner warns above 80% / 10%)
    generator_cpu_pct: Math.max(...KINDS.map((k) => perKind[k].generator_cpu_pct)),
    other_cpu_pct: Math.max(...KINDS.map((k) => perKind[k].other_cpu_pct)),
    problems,
    sample,
  };
  const summary =
    `mam ${target.name} size=${o.size} total=${prepared?.seed?.rows}: ` +
    KINDS.map((k) => `${k} p50 ${perKind[k].latency_ms.p50} / p99 ${perKind[k].latency_ms.p99} ms (count SQL ${perKind[k].count_sql_p50_ms} ms)`).join('; ') +
    (Object.keys(problems).length ? `; PROBLEMS ${JSON.stringify(problems)}` : '');
  return { result, summary };
}
