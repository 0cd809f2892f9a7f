// Unit tests for src/storage/sql/archive-ids.ts: archive ids are a keyed bijection of
// time-ordered sequence numbers.
import assert from 'node:assert/strict';
import { ArchiveIds, seqTime, timeSeq } from '../../src/storage/sql/archive-ids.js';

const KEY = '00112233445566778899aabbccddeeff';

describe('archive ids (src/storage/sql/archive-ids.ts)', () => {
  it('round-trips every kind of sequence number through 13 base-32 characters', () => {
    const ids = new ArchiveIds(KEY);
    for (const seq of [0, 1, 4095, 4096, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, 2 ** 53 - 1, timeSeq(Date.now())]) {
      const id = ids.encode(seq);
      assert.match(id, /^[0-9a-hjkmnp-tv-z]{13}$/);
      assert.equal(ids.decode(id), seq, `seq ${seq} via ${id}`);
      // another instance with the key (no memory of the ids it made: another node, a restart)
      assert.equal(new ArchiveIds(KEY).decode(id), seq, `seq ${seq} via ${id}, decoded afresh`);
    }
  });

  it('decodes the ids it made most recently, and older ones, each to its own seq', () => {
    const ids = new ArchiveIds(KEY);
    const made = [10, 20, 30, 40].map((seq) => [seq, ids.encode(seq)] as const);
    for (const [seq, id] of [...made].reverse()) assert.equal(ids.decode(id), seq, id);
    assert.equal(ids.decode(made[3]![1].slice(0, 12) + (made[3]![1].endsWith('0') ? '1' : '0')) === 40, false);
  });

  it('counts up within a millisecond and keeps the time: seq order is time order', () => {
    const ids = new ArchiveIds(KEY);
    const now = Date.now();
    const a = ids.next(now);
    const b = ids.next(now);
    const c = ids.next(now + 1);
    assert.equal(b, a + 1);
    assert.ok(c > b);
    assert.equal(seqTime(a), now);
    assert.equal(seqTime(c), now + 1);
    assert.ok(ids.next(now - 3000) > c, 'a clock step back of seconds keeps counting up');
    const old = ids.next(now - 86_400_000);
    assert.equal(seqTime(old), now - 86_400_000, 'an explicit time in the past keeps its time');
  });

  it('nodes in different lanes never allocate the same seq, and each stays time-ordered', () => {
    const lanes = [0, 1, 15].map((lane) => {
      const ids = new ArchiveIds(KEY);
      ids.useLane(lane, 16);
      return { lane, ids };
    });
    const now = Date.now();
    const seen = new Set<number>();
    for (const { lane, ids } of lanes) {
      let prev = -1;
      for (let i = 0; i < 600; i++) {
        // 600 in one ms: a lane has 256 per ms, then borrows from the next
        const seq = ids.next(now);
        assert.equal(seq % 16, lane);
        assert.ok(seq > prev);
        assert.ok(!seen.has(seq), `seq ${seq} allocated twice`);
        seen.add(seq);
        prev = seq;
      }
      assert.equal(seqTime(ids.next(now + 10)), now + 10, 'a later ms starts in that ms');
      const past = ids.next(now - 86_400_000);
      assert.equal(past % 16, lane, 'an explicit time in the past stays in the lane');
    }
    assert.throws(() => new ArchiveIds(KEY).useLane(16, 16));
    assert.throws(() => new ArchiveIds(KEY).useLane(0, 3));
  });

  it('neighbouring ids do not look alike, and another key decodes them to nothing of ours', () => {
    const ids = new ArchiveIds(KEY);
    const other = new ArchiveIds('ffeeddccbbaa99887766554433221100');
    const seq = timeSeq(Date.now());
    const [x, y] = [ids.encode(seq), ids.encode(seq + 1)];
    let same = 0;
    for (let i = 0; i < 13; i++) if (x[i] === y[i]) same++;
    assert.ok(same < 6, `${x} and ${y} share ${same} of 13 characters`);
    assert.notEqual(other.decode(x), seq);
  });

  it('refuses what it did not make: other lengths, other alphabets, a first digit over 4 bits', () => {
    const ids = new ArchiveIds(KEY);
    for (const id of ['', 'kz1abcdefghijklmnopq', '0123456789ab', 'ABCDEFGHJKMNP', 'zzzzzzzzzzzzz', 'c881b95e-7383-16ab-c6e2-b79d3994e8c6'])
      assert.equal(ids.decode(id), undefined, id);
    assert.throws(() => new ArchiveIds('short'), /32 hex digits/);
  });
});
