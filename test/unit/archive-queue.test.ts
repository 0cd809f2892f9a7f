// The archive's off-heap write queue (src/storage/sql/archive-queue.ts): what goes in
// comes out the same, through growth, replacements and reuse.
import assert from 'node:assert/strict';
import { Segment, type Queued } from '../../src/storage/sql/archive-queue.js';
import { chunkRows, decodeChunk, encodeChunk, type Entry } from '../../src/storage/sql/archive-chunks.js';

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

  it('makes chunks (chunkRows) that are encodeChunk\'s text byte for byte, grouped, in seq order, split at span and max', () => {
    const seg = new Segment(256);
    const want: Queued[] = [];
    // seqs out of order, so the sort matters; spread so that span splits some groups
    for (let i = 0; i < 400; i++) {
      const r = { ...row(i), seq: 5_000_000 + ((i * 7919) % 400) * 10 };
      want.push(r);
      seg.push(r);
    }
    const tomb = '<message>🪦 moderated</message>';
    seg.replace((_o, s) => s === want[17]!.seq, tomb);
    want[17] = { ...want[17]!, stanza: tomb };
    const values = chunkRows({ ...seg.columns(), span: 500, max: 6 });
    assert.equal(values.length % 6, 0);
    const seen: Queued[] = [];
    for (let c = 0; c < values.length; c += 6) {
      const [owner, withJid, first, last, n, body] = values.slice(c, c + 6) as [string, string, number, number, number, Buffer];
      const text = body.toString('utf8');
      const entries = decodeChunk(text);
      assert.equal(entries.length, n);
      assert.ok(n <= 6);
      assert.equal(entries[0]!.seq, first);
      assert.equal(entries.at(-1)!.seq, last);
      assert.ok(last - first <= 500);
      for (let k = 1; k < entries.length; k++) assert.ok(entries[k]!.seq > entries[k - 1]!.seq);
      assert.equal(encodeChunk(entries), text);
      for (const e of entries) {
        const r = want.find((w) => w.owner === owner && w.with === withJid && w.seq === e.seq && w.legacy === null);
        assert.ok(r, `no queued row for ${owner} ${withJid} ${e.seq}`);
        assert.deepEqual(e, { seq: r.seq, full: r.withFull, stanza: r.stanza, legacy: null } satisfies Entry);
        seen.push(r);
      }
    }
    // every row but those under an old id (written apart) is in exactly one chunk
    assert.equal(seen.length, want.filter((r) => r.legacy === null).length);
    assert.equal(new Set(seen).size, seen.length);
    assert.deepEqual(
      seg.legacyRows().map((r) => r.legacy),
      want.filter((r) => r.legacy !== null).map((r) => r.legacy),
    );
  });

  it('keeps the two copies of a message (the same text, one row after the other) as one stanza\'s bytes, each row readable and replaceable alone', () => {
    const seg = new Segment(1024);
    const text = `<message id="m1"><body>${'né'.repeat(300)}</body></message>`;
    const recipient: Queued = { owner: 'b@localhost', seq: 10, with: 'a@localhost', withFull: 'a@localhost/r', legacy: null, stanza: text, source: 'a@localhost/r' };
    const sender: Queued = { owner: 'a@localhost', seq: 11, with: 'b@localhost', withFull: 'b@localhost', legacy: null, stanza: text, source: 'a@localhost/r' };
    seg.push(recipient);
    seg.push(sender);
    assert.equal(seg.columns().bytes.length, Buffer.byteLength(text), 'the text is encoded once');
    // another text after them is encoded again, and so is the first text once another came between
    const other: Queued = { ...sender, seq: 12, stanza: '<message id="m2"><body>x</body></message>' };
    seg.push(other);
    seg.push({ ...recipient, seq: 13 });
    assert.equal(seg.columns().bytes.length, 2 * Buffer.byteLength(text) + Buffer.byteLength(other.stanza));
    assert.deepEqual(seg.rows(), [recipient, sender, other, { ...recipient, seq: 13 }]);
    // the chunks of both owners carry the whole text
    const values = chunkRows({ ...seg.columns(), span: 1e9, max: 256 });
    const bodies = new Map<string, Entry[]>();
    for (let i = 0; i < values.length; i += 6) bodies.set(String(values[i]), decodeChunk((values[i + 5] as Buffer).toString('utf8')));
    assert.deepEqual(bodies.get('a@localhost')!.map((e) => e.stanza), [text, other.stanza]);
    assert.deepEqual(bodies.get('b@localhost')!.map((e) => e.stanza), [text, text]);
    // a moderation (XEP-0425) of the recipient's copy leaves the sender's as it was
    assert.equal(seg.replace((o, q) => o === 'b@localhost' && q === 10, '<message>tombstone</message>'), true);
    assert.equal(seg.rows()[0]!.stanza, '<message>tombstone</message>');
    assert.equal(seg.rows()[1]!.stanza, text);
    // a reset forgets the last text: the first row after it is encoded anew
    seg.reset();
    seg.push(sender);
    assert.equal(seg.columns().bytes.length, Buffer.byteLength(text));
    assert.deepEqual(seg.rows(), [sender]);
  });
});
