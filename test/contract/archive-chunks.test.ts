// The chunked archive (src/storage/sql/archive-chunks.ts) against a plain model: many
// messages with several contacts and resources, written in batches of different sizes
// so that chunks hold one to hundreds of messages and cross each other in time, then
// random queries (with, start/end, after/before, ids, max, direction, count limits),
// a moderation rewrite inside a chunk, and purges across chunks: every answer must be
// the model's. The messages span weeks with gaps of days and start just before a UTC
// midnight (so chunks cross days): `with` pages and counts read days (mam_with_days,
// migration 11), whose counts must stay those of the chunks. On SQLite the day counts'
// changes wait in mam_day_delta until the writer folds them in (migration 12): the model
// runs with them never folded (reads add both tables), and a store that folds with
// every batch must leave mam_with_days alone exact. SQLite finds the chunks through
// their keys (migration 13), the new ones in mam_chunk_keys_new until a fold merges them
// into mam_chunk_keys: the model's archive has half its keys in each (a purge of nothing
// folds midway), and the keys must stay the chunks' after every change.
import assert from 'node:assert/strict';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { ARCHIVE_DEFAULTS } from '../../src/storage/sql/archive.js';
import type { ArchiveQuery } from '../../src/storage/types.js';
import type { Sql } from '../../src/storage/sql/sql.js';
import { BACKEND, newStorageSlot } from '../helpers/server.js';

interface Msg {
  id: string;
  n: number;
  ts: number;
  with: string;
  full: string;
  stanza: string;
}

/** a small deterministic PRNG (mulberry32): the same queries on every run */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** the day counts as reads see them: on SQLite mam_with_days plus the changes not folded yet */
const EFFECTIVE_DAYS =
  BACKEND === 'postgres'
    ? 'SELECT owner, with_jid, day, n FROM mam_with_days'
    : `SELECT owner, with_jid, day, sum(n) AS n FROM (SELECT owner, with_jid, day, n FROM mam_with_days
        UNION ALL SELECT owner, with_jid, day, n FROM mam_day_delta) GROUP BY owner, with_jid, day HAVING sum(n) <> 0`;

/** SQLite: the chunks' keys, merged and new, are exactly the chunks' (migration 13) */
async function keysMatchChunks(sql: Sql): Promise<void> {
  if (BACKEND === 'postgres') return;
  const cols = 'owner, first_seq, with_jid, last_seq, n';
  const rows = async (text: string): Promise<string[]> =>
    (await sql.query<Record<string, unknown>>(text)).map((r) => Object.values(r).map(String).join(' ')).sort();
  const chunks = await rows(`SELECT ${cols}, id FROM mam_chunks`);
  const keys = await rows(`SELECT ${cols}, chunk FROM mam_chunk_keys UNION ALL SELECT ${cols}, chunk FROM mam_chunk_keys_new`);
  assert.deepEqual(keys, chunks, 'the keys are the chunks');
}

/** each owner's, contact's and day's message count, by the chunks (migration 11's day of first_seq) and by `daysQuery` */
async function dayCounts(sql: Sql, daysQuery: string): Promise<{ want: string[]; got: string[] }> {
  const day = 86_400_000 * 4096;
  const want = new Map<string, number>();
  for (const r of await sql.query<{ owner: string; with_jid: string; first_seq: number | string; n: number | string }>(
    'SELECT owner, with_jid, first_seq, n FROM mam_chunks',
  )) {
    const k = `${r.owner} ${r.with_jid} ${Math.floor(Number(r.first_seq) / day)}`;
    want.set(k, (want.get(k) ?? 0) + Number(r.n));
  }
  const got = new Map<string, number>();
  for (const r of await sql.query<{ owner: string; with_jid: string; day: number | string; n: number | string }>(daysQuery))
    got.set(`${r.owner} ${r.with_jid} ${Number(r.day)}`, Number(r.n));
  return { want: [...want].map(String).sort(), got: [...got].map(String).sort() };
}

describe(`archive chunks against a model (${BACKEND === 'postgres' ? 'Postgres' : 'SQLite'})`, () => {
  let s: Storage & { sql: Sql };
  const owner = 'ann@localhost';
  const contacts = ['bob@localhost', 'cat@localhost', 'dan@localhost'];
  const model: Msg[] = [];
  // 1.5 s before a UTC midnight: the first batches' chunks cross it
  const base = Date.UTC(2026, 0, 1) - 1500;
  let span = 0;
  const rand = rng(42);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;

  before(async () => {
    const slot = await newStorageSlot();
    // (SQLite: batches never fold, so every read adds the changes table until a purge folds them)
    s = await openStorage({
      postgresUrl: slot.postgresUrl || undefined,
      dataDir: slot.dataDir,
      archive: { ...ARCHIVE_DEFAULTS, fold_ms: 1e12 },
    });
    // 1,200 messages over weeks of archive time (~40 s of traffic with ~12 gaps of up to
    // 3 days); batches of 1..300 rows
    let ts = base;
    let sinceFlush = 0;
    let batch = 1 + Math.floor(rand() * 300);
    for (let n = 0; n < 1200; n++) {
      ts += Math.floor(rand() * 70) + (rand() < 0.01 && n > 100 ? Math.floor(rand() * 3 * 86_400_000) : 0);
      const w = pick(contacts);
      const full = `${w}/${pick(['phone', 'desk'])}`;
      const id = s.archive.newId(owner, ts);
      const stanza = `<message xmlns="jabber:client" type="chat"><body>m${n} "quoted" &amp; ünï 💬</body></message>`;
      model.push({ id, n, ts, with: w, full, stanza });
      s.archive.add({ owner, id, ts, with: w, withFull: full, stanza });
      if (++sinceFlush >= batch) {
        await s.archive.flush();
        sinceFlush = 0;
        batch = 1 + Math.floor(rand() * 300);
      }
      // a purge of nothing folds what is written so far (SQLite): the later chunks' keys stay new
      if (n === 600) {
        await s.archive.flush();
        assert.equal(await s.archive.purge(base - 86_400_000), 0);
      }
    }
    await s.archive.flush();
    span = ts - base;
    if (BACKEND !== 'postgres') {
      const [merged] = await s.sql.query<{ c: number | string }>('SELECT count(*) AS c FROM mam_chunk_keys WHERE owner = $1', [owner]);
      const [fresh] = await s.sql.query<{ c: number | string }>('SELECT count(*) AS c FROM mam_chunk_keys_new WHERE owner = $1', [owner]);
      assert.ok(Number(merged!.c) > 0 && Number(fresh!.c) > 0, `keys merged ${merged!.c}, new ${fresh!.c}`);
    }
  });
  after(() => s.close());

  /** the day counts as reads see them are the chunks' */
  async function daysMatchChunks(): Promise<void> {
    const { want, got } = await dayCounts(s.sql, EFFECTIVE_DAYS);
    assert.deepEqual(got, want);
    await keysMatchChunks(s.sql);
  }

  it('spreads the messages over many days, with chunks across midnight', async () => {
    const days = await s.sql.query<{ day: number | string }>(`SELECT DISTINCT day FROM (${EFFECTIVE_DAYS}) AS d WHERE owner = $1`, [owner]);
    assert.ok(days.length >= 8, `${days.length} days`);
    const [across] = await s.sql.query<{ c: number | string }>(
      'SELECT count(*) AS c FROM mam_chunks WHERE owner = $1 AND first_seq < $2 AND last_seq >= $2',
      [owner, (Date.UTC(2026, 0, 1) - Date.UTC(2000, 0, 1)) * 4096],
    );
    assert.ok(Number(across!.c) >= 1, 'a chunk crosses the first midnight');
    await daysMatchChunks();
  });

  /** what the archive must answer, from the model */
  function expected(q: ArchiveQuery): { ids: string[]; complete: boolean; count: number | undefined } {
    const idx = (id: string): number => model.findIndex((m) => m.id === id);
    let all = model.filter(
      (m) =>
        (q.with === undefined || (q.with.includes('/') ? m.full === q.with : m.with === q.with)) &&
        (q.start === undefined || m.ts >= q.start) &&
        (q.end === undefined || m.ts <= q.end) &&
        (q.ids === undefined || q.ids.includes(m.id)),
    );
    const count = q.countLimit !== undefined && all.length > q.countLimit ? undefined : all.length;
    if (q.after !== undefined) all = all.filter((m) => m.n > idx(q.after!));
    if (q.before !== undefined) all = all.filter((m) => m.n < idx(q.before!));
    const page = q.fromEnd ? all.slice(Math.max(0, all.length - q.max)) : all.slice(0, q.max);
    return { ids: page.map((m) => m.id), complete: q.max === 0 ? count === 0 : all.length <= q.max, count };
  }

  it('answers 300 random queries as the model does', async () => {
    for (let i = 0; i < 300; i++) {
      const q: ArchiveQuery = { owner, max: pick([0, 1, 5, 20, 50]), fromEnd: rand() < 0.5 };
      if (rand() < 0.4) q.with = rand() < 0.5 ? pick(contacts) : `${pick(contacts)}/${pick(['phone', 'desk'])}`;
      if (rand() < 0.3) q.start = base + Math.floor(rand() * span);
      if (rand() < 0.3) q.end = (q.start ?? base) + Math.floor(rand() * (rand() < 0.5 ? 20_000 : span / 2));
      if (rand() < 0.3) q.after = pick(model).id;
      if (rand() < 0.3) q.before = pick(model).id;
      if (rand() < 0.1) q.ids = [pick(model).id, pick(model).id, pick(model).id];
      if (rand() < 0.3) q.countLimit = pick([0, 10, 100, 1000]);
      const got = await s.archive.query(q);
      const want = expected(q);
      const what = JSON.stringify(q);
      assert.deepEqual(
        got.items.map((m) => m.id),
        want.ids,
        `items of ${what}`,
      );
      assert.equal(got.count, want.count, `count of ${what}`);
      assert.equal(got.complete, want.complete, `complete of ${what}`);
      for (const m of got.items) {
        const w = model.find((x) => x.id === m.id)!;
        assert.equal(m.stanza, w.stanza);
        assert.equal(m.with, w.with);
        assert.equal(m.ts, w.ts);
      }
    }
  });

  it('rewrites one message inside a chunk and leaves its neighbours', async () => {
    const target = model[600]!;
    assert.equal(await s.archive.replace(owner, target.id, '<message><retracted/></message>'), true);
    target.stanza = '<message><retracted/></message>';
    const near = await s.archive.query({ owner, max: 5, fromEnd: false, after: model[597]!.id });
    assert.deepEqual(
      near.items.map((m) => m.stanza),
      model.slice(598, 603).map((m) => m.stanza),
    );
  });

  it('writes a batch of many chunks whole', async () => {
    // 450 owners × 2 contacts = 900 chunks in one batch
    const ids: { owner: string; id: string }[] = [];
    for (let o = 0; o < 450; o++)
      for (const w of ['bob@localhost', 'cat@localhost']) {
        const ownerJid = `many${o}@localhost`;
        const id = s.archive.newId(ownerJid);
        ids.push({ owner: ownerJid, id });
        s.archive.add({ owner: ownerJid, id, ts: Date.now(), with: w, stanza: `<message><body>${o} ${w}</body></message>` });
      }
    await s.archive.flush();
    for (const { owner: ownerJid, id } of [ids[0]!, ids[451]!, ids.at(-1)!]) {
      const got = await s.archive.query({ owner: ownerJid, max: 10, fromEnd: false, ids: [id] });
      assert.equal(got.items.length, 1);
    }
    let total = 0;
    for (let o = 0; o < 450; o++) total += (await s.archive.query({ owner: `many${o}@localhost`, max: 0, fromEnd: false })).count!;
    assert.equal(total, 900);
  });

  it('purges across chunks: the count is exact and later messages stay', async () => {
    const cut = model[700]!.ts;
    const older = model.filter((m) => m.ts < cut).length;
    assert.equal(await s.archive.purge(cut, owner), older);
    model.splice(0, older);
    model.forEach((m, i) => (m.n = i));
    const b = await s.archive.bounds(owner);
    assert.equal(b.first?.id, model[0]!.id);
    assert.equal(b.last?.id, model.at(-1)!.id);
    const all = await s.archive.query({ owner, max: 2000, fromEnd: false });
    assert.deepEqual(
      all.items.map((m) => m.id),
      model.map((m) => m.id),
    );
    assert.equal(all.count, model.length);
    await daysMatchChunks();
    assert.equal(await s.archive.deleteAll(owner), model.length);
    await daysMatchChunks();
  });

  it('moves a chunk to its next day when a purge keeps only its messages after midnight', async () => {
    const who = 'eve@localhost';
    const midnight = Date.UTC(2030, 0, 1); // later than any id made so far: seqs at their exact times
    const ids: string[] = [];
    // one batch: 10 messages with bob from 500 ms before midnight to 400 ms after (one chunk)
    for (let i = 0; i < 10; i++) {
      const ts = midnight - 500 + i * 100;
      const id = s.archive.newId(who, ts);
      ids.push(id);
      s.archive.add({ owner: who, id, ts, with: 'bob@localhost', stanza: `<message><body>${i}</body></message>` });
    }
    await s.archive.flush();
    const q = { owner: who, with: 'bob@localhost', max: 50, fromEnd: false };
    assert.equal((await s.archive.query(q)).count, 10);
    assert.equal(await s.archive.purge(midnight, who), 5);
    await daysMatchChunks();
    const after = await s.archive.query(q);
    assert.deepEqual(
      after.items.map((m) => m.id),
      ids.slice(5),
    );
    assert.equal(after.count, 5);
    // a count that starts and ends on whole days, and one from the middle of the kept messages
    assert.equal((await s.archive.query({ ...q, start: midnight - 86_400_000, end: midnight + 2 * 86_400_000 })).count, 5);
    assert.equal((await s.archive.query({ ...q, start: midnight + 200 })).count, 3);
    // the chunk now starts at midnight itself, the first seq of the day after the whole days counted
    // (the two days before: the range ends a CHUNK_SPAN, 2 s, after midnight)
    assert.equal((await s.archive.query({ ...q, start: midnight - 2 * 86_400_000, end: midnight + 2500 })).count, 5);
    assert.equal(
      (await s.archive.query({ ...q, fromEnd: true, max: 2, end: midnight + 250 })).items.map((m) => m.id).join(),
      ids.slice(6, 8).join(),
    );
  });
});

describe(`archive written by two nodes at once (${BACKEND === 'postgres' ? 'Postgres' : 'SQLite'})`, () => {
  // Two stores on one database, as two cluster nodes are: each writes its batches for the
  // same owners and contacts on the same days at the same time, so the triggers of
  // migration 11 update the same mam_with_days rows from two connections.
  let a: Storage & { sql: Sql };
  let b: Storage & { sql: Sql };
  before(async () => {
    const slot = await newStorageSlot();
    a = await openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });
    b = await openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });
    a.archive.useLane(0, 2);
    b.archive.useLane(1, 2);
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('keeps every row and the days counts exact', async () => {
    const owners = Array.from({ length: 40 }, (_, i) => `o${i}@localhost`);
    const contacts = ['x@localhost', 'y@localhost', 'z@localhost'];
    const rounds = 20;
    await Promise.all(
      [a, b].map(async (s) => {
        for (let r = 0; r < rounds; r++) {
          // owners in a different order on each node: the rows their batches touch overlap, in other orders
          const order = s === a ? owners : [...owners].reverse();
          for (const owner of order)
            for (const w of contacts) {
              const ts = Date.now();
              s.archive.add({ owner, id: s.archive.newId(owner, ts), ts, with: w, stanza: `<message><body>${r}</body></message>` });
            }
          await s.archive.flush();
        }
      }),
    );
    const want = 2 * rounds;
    for (const owner of [owners[0]!, owners[17]!, owners.at(-1)!])
      for (const w of contacts) {
        const got = await a.archive.query({ owner, with: w, max: 100, fromEnd: false });
        assert.equal(got.items.length, want, `${owner} with ${w}: page`);
        assert.equal(got.count, want, `${owner} with ${w}: count`);
      }
    const [days] = await a.sql.query<{ s: number | string }>(`SELECT sum(n) AS s FROM (${EFFECTIVE_DAYS}) AS d`);
    const [chunks] = await a.sql.query<{ s: number | string }>('SELECT sum(n) AS s FROM mam_chunks');
    assert.equal(Number(days!.s), owners.length * contacts.length * want);
    assert.equal(Number(chunks!.s), owners.length * contacts.length * want);
  });
});

describe(`archive day counts folded with every batch (${BACKEND === 'postgres' ? 'Postgres' : 'SQLite'})`, () => {
  // fold_ms 1: every batch folds the changes so far (SQLite; Postgres has no changes table)
  let s: Storage & { sql: Sql };
  before(async () => {
    const slot = await newStorageSlot();
    s = await openStorage({
      postgresUrl: slot.postgresUrl || undefined,
      dataDir: slot.dataDir,
      archive: { ...ARCHIVE_DEFAULTS, fold_ms: 1 },
    });
  });
  after(() => s.close());

  it('leaves mam_with_days alone exact after writes, a purge and a delete, and the changes table empty', async () => {
    const base = Date.UTC(2026, 2, 1) - 2000;
    const add = (owner: string, w: string, ts: number): void =>
      s.archive.add({ owner, id: s.archive.newId(owner, ts), ts, with: w, stanza: `<message><body>${ts}</body></message>` });
    for (let i = 0; i < 300; i++)
      add(i % 2 ? 'ann@localhost' : 'bea@localhost', ['x@localhost', 'y@localhost'][i % 3 ? 0 : 1]!, base + i * 20);
    await s.archive.flush();
    // a purge across midnight and a whole archive deleted: their changes wait for the next batch
    await s.archive.purge(base + 3000);
    await s.archive.deleteAll('bea@localhost');
    const before = await dayCounts(s.sql, EFFECTIVE_DAYS);
    assert.deepEqual(before.got, before.want, 'as reads see them, before the fold');
    add('ann@localhost', 'x@localhost', base + 10_000);
    await s.archive.flush();
    const after = await dayCounts(s.sql, 'SELECT owner, with_jid, day, n FROM mam_with_days');
    assert.deepEqual(after.got, after.want, 'mam_with_days alone');
    assert.ok(after.want.length >= 2, after.want.join());
    await keysMatchChunks(s.sql);
    if (BACKEND !== 'postgres') {
      for (const t of ['mam_day_delta', 'mam_chunk_keys_new']) {
        const [left] = await s.sql.query<{ c: number | string }>(`SELECT count(*) AS c FROM ${t}`);
        assert.equal(Number(left!.c), 0, t);
      }
    }
    const page = await s.archive.query({ owner: 'ann@localhost', with: 'x@localhost', max: 1000, fromEnd: false });
    assert.equal(page.count, page.items.length);
    assert.equal(page.items.at(-1)?.ts, base + 10_000);
  });

  it('keys the chunks written after the newest ones were deleted (an id is never given again)', async () => {
    const base = Date.UTC(2026, 2, 2);
    const add = (ts: number): void =>
      s.archive.add({ owner: 'zed@localhost', id: s.archive.newId('zed@localhost', ts), ts, with: 'x@localhost', stanza: `<message><body>${ts}</body></message>` });
    add(base);
    add(base + 5000);
    await s.archive.flush();
    assert.equal(await s.archive.deleteAll('zed@localhost'), 2); // the highest ids
    add(base + 10_000);
    await s.archive.flush();
    const page = await s.archive.query({ owner: 'zed@localhost', max: 10, fromEnd: false });
    assert.deepEqual(
      page.items.map((m) => m.ts),
      [base + 10_000],
    );
    await keysMatchChunks(s.sql);
  });
});
