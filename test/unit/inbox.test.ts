// Unit tests for src/stream/inbox.ts: a stream's elements are handled strictly in
// order; one that needs asynchronous work makes the next ones wait in a bounded
// queue; a full queue or an exceeded rate pauses reading from the transport.
import assert from 'node:assert/strict';
import { Inbox, type InboxOwner } from '../../src/stream/inbox.js';
import { RateLimiter } from '../../src/stream/rate.js';
import type { Config } from '../../src/config/schema.js';
import type { Transport } from '../../src/transport/types.js';
import { x, type Element } from '../../src/xml/index.js';
import { capturingLogger, deferred } from '../helpers/mock-context.js';

/** Records pause/resume; `resumed()` resolves at the next resume. */
class FakeTransport {
  readonly calls: ('pause' | 'resume')[] = [];
  private waiting: (() => void)[] = [];
  get paused(): boolean {
    return this.calls.at(-1) === 'pause';
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
    for (const w of this.waiting.splice(0)) w();
  }
  resumed(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

type Handler = (el: Element) => void | Promise<void>;

/** An owner whose handler a test sets per element: by default synchronous. */
class Owner implements InboxOwner {
  open = true;
  shaped = true;
  readonly handled: string[] = [];
  readonly logged = capturingLogger();
  get log(): InboxOwner['log'] {
    return this.logged.log;
  }
  /** element id -> what handling it returns (a pending promise makes the rest wait) */
  readonly plan = new Map<string, Handler>();
  handle(el: Element): void | Promise<void> {
    const id = el.attrs.id as string;
    this.handled.push(id);
    return this.plan.get(id)?.(el);
  }
}

const el = (id: string): Element => x('message', { id });

const RATES = (stanzas: number, bytes: number, burst: number): Config['rate_limits'] => ({
  c2s: { stanzas, bytes },
  component: { stanzas: 0, bytes: 0 },
  s2s: { stanzas: 0, bytes: 0 },
  burst,
  exempt: [],
  overrides: {},
});

function inbox(opts: { bound?: number; rates?: Config['rate_limits'] } = {}) {
  const owner = new Owner();
  const transport = new FakeTransport();
  const rates = opts.rates ?? RATES(0, 0, 1);
  let throttles = 0;
  const box = new Inbox(
    owner,
    transport as unknown as Transport,
    () => opts.bound ?? 100,
    new RateLimiter(() => rates, 'c2s'),
    () => void throttles++,
  );
  return { box, owner, transport, throttles: () => throttles };
}

/** Wait until every promise callback queued so far has run (no timer involved). */
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Inbox', () => {
  describe('order', () => {
    it('synchronous handlers: each element is handled at once, in order, and nothing pauses', () => {
      const { box, owner, transport } = inbox({ bound: 2 });
      for (const id of ['a', 'b', 'c', 'd', 'e']) box.push(el(id));
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd', 'e']);
      assert.deepEqual(transport.calls, []);
    });

    it('an element whose handling is asynchronous makes the next ones wait for it, in order', async () => {
      const { box, owner } = inbox();
      const a = deferred();
      const c = deferred();
      owner.plan.set('a', () => a.promise);
      owner.plan.set('c', () => c.promise);
      for (const id of ['a', 'b', 'c', 'd']) box.push(el(id));
      assert.deepEqual(owner.handled, ['a']);
      a.resolve();
      await drain();
      assert.deepEqual(owner.handled, ['a', 'b', 'c'], 'b is synchronous, c waits again');
      box.push(el('e'));
      assert.deepEqual(owner.handled, ['a', 'b', 'c'], 'a new element queues behind d');
      c.resolve();
      await drain();
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd', 'e']);
    });

    it('a rejected handling is logged and the next elements are still handled', async () => {
      const { box, owner } = inbox();
      const a = deferred();
      owner.plan.set('a', () => a.promise);
      box.push(el('a'));
      box.push(el('b'));
      a.reject(new Error('storage down'));
      await drain();
      assert.deepEqual(owner.handled, ['a', 'b']);
      const lines = owner.logged.lines.filter((l) => l.msg === 'stanza processing failed');
      assert.equal(lines.length, 1);
      assert.match(JSON.stringify(lines[0]!.err), /storage down/);
    });

    it('an element that throws synchronously while the queue drains is logged; the ones after it are still handled', async () => {
      const { box, owner } = inbox();
      const a = deferred();
      owner.plan.set('a', () => a.promise);
      owner.plan.set('b', () => {
        throw new Error('bug');
      });
      for (const id of ['a', 'b', 'c']) box.push(el(id));
      a.resolve();
      await drain();
      box.push(el('d'));
      await drain();
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd']);
      assert.equal(owner.logged.lines.filter((l) => l.msg === 'stanza processing failed').length, 1);
    });

    it('once the owner is closed, queued elements are not handled', async () => {
      const { box, owner } = inbox();
      const a = deferred();
      owner.plan.set('a', () => a.promise);
      box.push(el('a'));
      box.push(el('b'));
      owner.open = false;
      a.resolve();
      await drain();
      assert.deepEqual(owner.handled, ['a']);
    });

    it('afterAll runs at once when idle, else after everything received so far', async () => {
      const { box, owner } = inbox();
      const order: string[] = [];
      box.afterAll(() => order.push('idle'), 60_000);
      assert.deepEqual(order, ['idle']);
      const a = deferred();
      owner.plan.set('a', () => a.promise);
      box.push(el('a'));
      box.push(el('b'));
      box.afterAll(() => order.push(`after ${owner.handled.join(',')}`), 60_000);
      assert.deepEqual(order, ['idle']);
      a.resolve();
      await drain();
      assert.deepEqual(order, ['idle', 'after a,b']);
    });

    it('afterAll twice while busy: both run once everything received is handled', async () => {
      // e.g. the client's </stream:stream> and then its connection closing (src/stream/c2s.ts onClose, onTransportClosed)
      const { box, owner } = inbox();
      const a = deferred();
      owner.plan.set('a', () => a.promise);
      box.push(el('a'));
      const ran: string[] = [];
      box.afterAll(() => ran.push('first'), 60_000);
      box.afterAll(() => ran.push('second'), 60_000);
      a.resolve();
      await drain();
      assert.deepEqual(ran.sort(), ['first', 'second']);
    });
  });

  describe('the bounded queue', () => {
    it('pauses reading once the queue reaches the bound, once, and resumes when it is under half of it', async () => {
      const { box, owner, transport } = inbox({ bound: 4 });
      const gates = new Map(['a', 'b', 'c', 'd'].map((id) => [id, deferred()]));
      for (const [id, g] of gates) owner.plan.set(id, () => g.promise);
      box.push(el('a')); // handled, busy
      for (const id of ['b', 'c', 'd']) box.push(el(id));
      assert.deepEqual(transport.calls, [], 'three waiting: under the bound');
      box.push(el('e'));
      assert.deepEqual(transport.calls, ['pause'], 'four waiting: the bound');
      box.push(el('f')); // bytes already read still arrive; no second pause
      assert.deepEqual(transport.calls, ['pause']);

      const step = async (id: string): Promise<void> => {
        gates.get(id)!.resolve();
        await drain();
      };
      await step('a'); // b handled (busy); c d e f wait: 4
      await step('b'); // c handled; d e f wait: 3
      await step('c'); // d handled; e f wait: 2, not under half of 4
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd']);
      assert.deepEqual(transport.calls, ['pause']);
      gates.set('e', deferred());
      owner.plan.set('e', () => gates.get('e')!.promise);
      await step('d'); // e handled (busy); f waits: 1, under half
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd', 'e']);
      assert.deepEqual(transport.calls, ['pause', 'resume'], 'reading resumes before the queue is empty');
      await step('e');
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd', 'e', 'f']);
      assert.deepEqual(transport.calls, ['pause', 'resume']);
    });

    it('clear() drops what waits; what comes next is handled as usual', async () => {
      const { box, owner } = inbox();
      const a = deferred();
      owner.plan.set('a', () => a.promise);
      box.push(el('a'));
      box.push(el('b'));
      box.clear();
      a.resolve();
      await drain();
      box.push(el('c'));
      assert.deepEqual(owner.handled, ['a', 'c']);
    });
  });

  describe('the rate limit', () => {
    // 200 stanzas/s with a burst of 0.005 s: a bucket of one stanza, refilled in 5 ms
    it('over the stanza rate: reading pauses, later elements wait, and all are handled in order after the pause', async () => {
      const { box, owner, transport, throttles } = inbox({ rates: RATES(200, 0, 0.005) });
      box.push(el('a')); // takes the one token
      box.push(el('b')); // over: handled, but reading pauses and what follows waits
      assert.deepEqual(owner.handled, ['a', 'b']);
      assert.equal(throttles(), 1);
      assert.ok(transport.paused);
      box.push(el('c'));
      box.push(el('d'));
      assert.deepEqual(owner.handled, ['a', 'b'], 'c and d wait for the pause to end');
      while (owner.handled.length < 4 || transport.paused) await transport.resumed();
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd']);
      assert.equal(transport.calls.at(-1), 'resume');
    });

    it('over the byte rate (read before parsing): reading pauses until the bucket refills', async () => {
      const { box, owner, transport, throttles } = inbox({ rates: RATES(0, 100_000, 0.01) }); // 1000 bytes, 10 ms
      box.read(600);
      assert.deepEqual(transport.calls, []);
      box.read(600);
      assert.equal(throttles(), 1);
      assert.deepEqual(transport.calls, ['pause']);
      box.push(el('a'));
      assert.deepEqual(owner.handled, [], 'an element parsed from those bytes waits too');
      await transport.resumed();
      assert.deepEqual(owner.handled, ['a']);
    });

    it('an unshaped stream (before authentication) is not limited by stanza count', () => {
      const { box, owner, transport, throttles } = inbox({ rates: RATES(200, 0, 0.005) });
      owner.shaped = false;
      for (const id of ['a', 'b', 'c', 'd']) box.push(el(id));
      assert.deepEqual(owner.handled, ['a', 'b', 'c', 'd']);
      assert.equal(throttles(), 0);
      assert.deepEqual(transport.calls, []);
    });

    it('no limit configured: never pauses', () => {
      const { box, owner, transport } = inbox({ rates: RATES(0, 0, 1) });
      for (let i = 0; i < 1000; i++) box.push(el(String(i)));
      box.read(10_000_000);
      assert.equal(owner.handled.length, 1000);
      assert.deepEqual(transport.calls, []);
    });
  });
});
