// Unit tests for src/api/pending-iqs.ts: IQs sent on someone's behalf wait for
// their answer under an id, within a bound and a timeout, and are handed back
// when their party goes away (components, MUC IQ forwarding).
import assert from 'node:assert/strict';
import { PendingIqs } from '../../src/api/pending-iqs.js';

const T0 = 1_700_000_000_000;

interface Asked {
  requester: string;
  id: string;
}

function tracker(max = 3, timeoutMs = 1000): { pending: PendingIqs<Asked>; timedOut: Asked[] } {
  const timedOut: Asked[] = [];
  const pending = new PendingIqs<Asked>({ max: () => max, timeoutMs: () => timeoutMs }, (iq) => timedOut.push(iq));
  return { pending, timedOut };
}

describe('PendingIqs', () => {
  it('hands back the waiting IQ once, when its answer comes', () => {
    const { pending } = tracker();
    assert.equal(pending.add('a', { requester: 'romeo@example.org/orchard', id: 'q1' }, T0), true);
    assert.deepEqual(pending.take('a'), { requester: 'romeo@example.org/orchard', id: 'q1' });
    assert.equal(pending.take('a'), undefined);
    assert.equal(pending.size, 0);
  });

  it('keeps an IQ whose answer comes from the wrong party', () => {
    const { pending } = tracker();
    pending.add('a', { requester: 'romeo@example.org/orchard', id: 'q1' }, T0);
    assert.equal(
      pending.take('a', (iq) => iq.requester === 'juliet@example.org/balcony'),
      undefined,
    );
    assert.equal(pending.size, 1);
    assert.equal(pending.take('a', (iq) => iq.requester === 'romeo@example.org/orchard')?.id, 'q1');
  });

  it('times out what waited as long as the timeout, oldest first, and nothing younger', () => {
    const { pending, timedOut } = tracker(10, 1000);
    pending.add('a', { requester: 'r', id: '1' }, T0);
    pending.add('b', { requester: 'r', id: '2' }, T0 + 100);
    pending.add('c', { requester: 'r', id: '3' }, T0 + 600);
    pending.sweep(T0 + 999);
    assert.equal(timedOut.length, 0);
    pending.sweep(T0 + 1100);
    assert.deepEqual(
      timedOut.map((iq) => iq.id),
      ['1', '2'],
    );
    assert.equal(pending.size, 1);
    assert.equal(pending.take('a'), undefined);
  });

  it('refuses more than the bound, after dropping what timed out', () => {
    const { pending, timedOut } = tracker(2, 1000);
    assert.equal(pending.add('a', { requester: 'r', id: '1' }, T0), true);
    assert.equal(pending.add('b', { requester: 'r', id: '2' }, T0 + 500), true);
    assert.equal(pending.add('c', { requester: 'r', id: '3' }, T0 + 900), false);
    assert.equal(pending.size, 2);
    // 'a' is past its time: it makes room (and is answered with a timeout)
    assert.equal(pending.add('c', { requester: 'r', id: '3' }, T0 + 1000), true);
    assert.deepEqual(
      timedOut.map((iq) => iq.id),
      ['1'],
    );
  });

  it('a repeated id replaces the waiting IQ and counts as new', () => {
    const { pending, timedOut } = tracker(2, 1000);
    pending.add('a', { requester: 'r', id: 'old' }, T0);
    pending.add('b', { requester: 'r', id: 'b' }, T0 + 100);
    assert.equal(pending.add('a', { requester: 'r', id: 'new' }, T0 + 500), true);
    pending.sweep(T0 + 1200);
    assert.deepEqual(
      timedOut.map((iq) => iq.id),
      ['b'],
    );
    assert.equal(pending.take('a')?.id, 'new');
  });

  it('hands back everything, or what one party asked, when a party goes away', () => {
    const { pending, timedOut } = tracker(10);
    pending.add('a', { requester: 'romeo', id: '1' }, T0);
    pending.add('b', { requester: 'juliet', id: '2' }, T0);
    pending.add('c', { requester: 'romeo', id: '3' }, T0);
    assert.deepEqual(
      pending.drain((iq) => iq.requester === 'romeo').map((iq) => iq.id),
      ['1', '3'],
    );
    assert.deepEqual(
      pending.drain().map((iq) => iq.id),
      ['2'],
    );
    assert.equal(pending.size, 0);
    pending.sweep(T0 + 10_000);
    assert.deepEqual(timedOut, []);
  });

  it('reads its limits when it uses them, so a reload applies', () => {
    let timeout = 10_000;
    const timedOut: string[] = [];
    const pending = new PendingIqs<string>({ max: () => 10, timeoutMs: () => timeout }, (iq) => timedOut.push(iq));
    pending.add('a', 'x', T0);
    pending.sweep(T0 + 2000);
    timeout = 1000;
    pending.sweep(T0 + 2000);
    assert.deepEqual(timedOut, ['x']);
  });
});
