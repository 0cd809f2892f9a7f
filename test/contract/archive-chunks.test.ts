// The chunked archive (src/storage/sql/archive-chunks.ts) against a plain model: many
// messages with several contacts and resources, written in batches of different sizes
// so that chunks hold one to hundreds of messages and cross each other in time, then
// random queries (with, start/end, after/before, ids, max, direction, count limits),
// a moderation rewrite inside a chunk, and purges across chunks: every answer must be
// the model's.
import assert from 'node:assert/strict';
import { openStorage, type Storage } from '../../src/storage/index.js';
import type { ArchiveQuery } from '../../src/storage/types.js';
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

describe(`archive chunks against a model (${BACKEND === 'postgres' ? 'Postgres' : 'SQLite'})`, () => {
  let s: Storage;
  const owner = 'ann@localhost';
  const contacts = ['bob@localhost', 'cat@localhost', 'dan@localhost'];
  const model: Msg[] = [];
  const base = Date.UTC(2026, 0, 1);
  const rand = rng(42);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;

  before(async () => {
    const slot = await newStorageSlot();
    s = await openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });
    // 1,200 messages over ~40 s of archive time; batches of 1..300 rows
    let ts = base;
    let sinceFlush = 0;
    let batch = 1 + Math.floor(rand() * 300);
    for (let n = 0; n < 1200; n++) {
      ts += Math.floor(rand() * 70);
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
    }
    await s.archive.flush();
  });
  after(() => s.close());

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
      if (rand() < 0.3) q.start = base + Math.floor(rand() * 40_000);
      if (rand() < 0.3) q.end = (q.start ?? base) + Math.floor(rand() * 20_000);
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
    assert.equal(await s.archive.deleteAll(owner), model.length);
  });
});
