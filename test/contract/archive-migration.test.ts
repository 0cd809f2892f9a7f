// Migration 7 (the archive keyed by (owner, seq)) on the selected backend: messages
// archived by an older build keep their ids, times and order, are found by those ids
// (RSM after/before, ids, moderation), and new messages follow them in time order.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { migrate } from '../../src/storage/sql/migrate.js';
import { MIGRATIONS } from '../../src/storage/migrations/index.js';
import { SqliteSql } from '../../src/storage/sql/sqlite.js';
import { openPostgres } from '../../src/storage/sql/postgres.js';
import type { Sql } from '../../src/storage/sql/sql.js';
import { BACKEND, newStorageSlot } from '../helpers/server.js';

describe(`archive migration to (owner, seq) keys (${BACKEND === 'postgres' ? 'Postgres' : 'SQLite'})`, () => {
  let s: Storage | undefined;
  after(() => s?.close());

  it('keeps the rows of the old table with their ids, times and order', async () => {
    const slot = await newStorageSlot();
    const old: Sql = slot.postgresUrl ? await openPostgres(slot.postgresUrl, 2) : new SqliteSql(join(slot.dataDir, 'uzzap.sqlite'), 5000);
    await migrate(
      old,
      MIGRATIONS.filter((m) => m.version < 7),
    );
    const base = Date.UTC(2025, 0, 1);
    for (let i = 1; i <= 5; i++)
      await old.exec('INSERT INTO mam_archive (owner, id, ts, with_jid, with_full, stanza) VALUES ($1, $2, $3, $4, $5, $6)', [
        'ann@localhost',
        `old-${i}`,
        base + i * 1000,
        'bob@localhost',
        'bob@localhost/phone',
        `<message><body>old ${i}</body></message>`,
      ]);
    await old.close();

    s = await openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });
    const fresh = s.archive.newId('ann@localhost');
    s.archive.add({ owner: 'ann@localhost', id: fresh, ts: Date.now(), with: 'cat@localhost', stanza: '<message><body>new</body></message>' });
    const all = await s.archive.query({ owner: 'ann@localhost', max: 10, fromEnd: false });
    assert.deepEqual(
      all.items.map((m) => m.id),
      ['old-1', 'old-2', 'old-3', 'old-4', 'old-5', fresh],
    );
    assert.deepEqual(
      all.items.slice(0, 5).map((m) => m.ts),
      [1, 2, 3, 4, 5].map((i) => base + i * 1000),
      'old rows keep their times',
    );
    assert.equal(all.count, 6);
    const after = await s.archive.query({ owner: 'ann@localhost', max: 2, fromEnd: false, after: 'old-2' });
    assert.deepEqual(
      after.items.map((m) => m.id),
      ['old-3', 'old-4'],
    );
    const before = await s.archive.query({ owner: 'ann@localhost', max: 10, fromEnd: true, before: fresh });
    assert.equal(before.items.at(-1)!.id, 'old-5');
    const range = await s.archive.query({ owner: 'ann@localhost', max: 10, fromEnd: false, start: base + 2000, end: base + 3000 });
    assert.deepEqual(
      range.items.map((m) => m.id),
      ['old-2', 'old-3'],
    );
    assert.equal(await s.archive.replace('ann@localhost', 'old-4', '<message><retracted/></message>'), true);
    const [four] = (await s.archive.query({ owner: 'ann@localhost', max: 1, fromEnd: false, ids: ['old-4'] })).items;
    assert.equal(four!.stanza, '<message><retracted/></message>');
    s.archive.add({ owner: 'ann@localhost', id: 'old-1', ts: Date.now(), with: 'dup@localhost', stanza: '<message/>' });
    assert.equal((await s.archive.query({ owner: 'ann@localhost', max: 0, fromEnd: false })).count, 6, 'an old id again is not a second row');
  });
});
