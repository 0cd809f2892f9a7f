// The archive's off-heap write queue (src/storage/sql/archive-queue.ts): what goes in
// comes out the same, through growth, replacements and reuse.
import assert from 'node:assert/strict';
import { Segment, type Queued } from '../../src/storage/sql/archive-queue.js';

/** a row with stanzas of every UTF-8 length: ASCII, 2-byte, 3-byte, astral (surrogate pairs) */
function row(i: number): Queued {
  const texts = ['plain', 'café ñ', '中文字符', '🤖 emoji 😀', ''];
  return {
    owner: `u${i % 7}@localhost`,
    seq: 1_000_000 + i * 3,
    with: `u${(i + 1) % 5}@localhost`,
    withFull: i % 3 === 0 ? null : `u${(i + 1) % 5}@localhost/r${i % 2}`,
    legacy: i % 11 === 0 ? `old-${i}` : null,
    stanza: `<message id="${i}"><body>${texts[i % texts.length]!.repeat(1 + (i % 40))}</body></message>`,
    source: i % 4 === 0 ? undefined : `u${i % 7}@localhost/r`,
  };
}

describe('archive write queue (Segment)', () => {
  it('gives back every row as it was queued, past its first array and buffer sizes', () => {
    const seg = new Segment(1024); // a small buffer: grown many times on the way
    const want: Queued[] = [];
    for (let i = 0; i < 3000; i++) {
      const r = row(i);
      want.push(r);
      seg.push(r);
    }
    // a stanza bigger than everything so far, at once
    const big = { ...row(3000), stanza: `<message><body>${'é'.repeat(200_000)}</body></message>` };
    want.push(big);
    seg.push(big);
    assert.equal(seg.n, want.length);
    assert.deepEqual(seg.rows(), want);
    assert.deepEqual(
      seg.sources(),
      want.flatMap((r) => (r.source === undefined ? [] : [r.source])),
    );
  });

  it('replaces the stanza of the row a match picks, by seq or by an older id', () => {
    const seg = new Segment();
    for (let i = 0; i < 30; i++) seg.push(row(i));
    const bySeq = row(5);
    assert.equal(
      seg.replace((o, s, legacy) => o === bySeq.owner && s === bySeq.seq && legacy === null, '<message>tombstone</message>'),
      true,
    );
    assert.equal(
      seg.replace((_o, _s, legacy) => legacy === 'old-22', '<message>gone</message>'),
      true,
    );
    assert.equal(
      seg.replace((_o, s) => s === 42, 'x'),
      false,
    );
    const rows = seg.rows();
    assert.equal(rows[5]!.stanza, '<message>tombstone</message>');
    assert.equal(rows[22]!.stanza, '<message>gone</message>');
    assert.deepEqual(rows[6], row(6));
  });

  it('is empty after a reset and holds new rows without any of the old ones', () => {
    const seg = new Segment(512);
    for (let i = 0; i < 500; i++) seg.push(row(i));
    seg.replace((_o, s) => s === row(3).seq, 'replaced');
    seg.reset();
    assert.equal(seg.n, 0);
    assert.deepEqual(seg.rows(), []);
    const again = [row(3), row(1000), row(11)];
    for (const r of again) seg.push(r);
    assert.deepEqual(seg.rows(), again);
  });
});
