// SQLite's write-ahead log with the archive writer thread (src/storage/sql/sqlite-writer.ts):
// the writer checkpoints once the log reaches storage.sqlite_checkpoint_mb, the main
// connection no longer does (a checkpoint of that size must not run on the event loop).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteSql } from '../../src/storage/sql/sqlite.js';

describe('SQLite checkpoints with the archive writer', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'uzzap-wal-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the log near storage.sqlite_checkpoint_mb however much is written, and the main connection leaves checkpoints to the writer', async () => {
    const file = join(dir, 'uzzap.sqlite');
    const sql = new SqliteSql(file, 5000, 8, 1);
    try {
      await sql.script('CREATE TABLE t (k INTEGER NOT NULL, body TEXT NOT NULL); CREATE INDEX t_k ON t (k)');
      const [before] = await sql.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint');
      assert.equal(before!.wal_autocheckpoint, 1000, "SQLite's default until the writer exists");
      const rows = (n: { from: number; count: number }): unknown[] => {
        const out: unknown[] = [];
        for (let i = 0; i < n.count; i++) out.push(n.from + i, 'x'.repeat(2000));
        return out;
      };
      // 12 MB of rows in 24 batches, against a 1 MB log
      let largest = 0;
      for (let b = 0; b < 24; b++) {
        assert.equal(await sql.execBuilt('INSERT INTO t (k, body) VALUES ($1, $2)', rows, { from: b * 250, count: 250 }, 2), 250);
        largest = Math.max(largest, statSync(`${file}-wal`).size);
      }
      const [after] = await sql.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint');
      assert.equal(after!.wal_autocheckpoint, 0);
      // a batch (~0.5 MB of pages) past the threshold at most, then truncated back
      assert.ok(largest < 2.5 * 1024 * 1024, `log grew to ${largest} bytes`);
      const [count] = await sql.query<{ n: number }>('SELECT count(*) AS n FROM t');
      assert.equal(count!.n, 24 * 250);
    } finally {
      await sql.close();
    }
  });
});
