// Unit tests for src/router/hooks.ts: handlers run by priority, `true` stops the
// chain, synchronous chains stay synchronous, a failing handler is logged and
// skipped except in the fail-closed (security) hooks, where it refuses.
import assert from 'node:assert/strict';
import { HookBus, HookFailedError, FAIL_CLOSED } from '../../src/router/hooks.js';
import { Jid } from '../../src/jid.js';
import { x } from '../../src/xml/index.js';
import type { Hooks, StanzaEvent } from '../../src/api/module.js';
import { capturingLogger, deferred, silentLogger } from '../helpers/mock-context.js';

const romeo = Jid.parse('romeo@example.com/orchard');
const juliet = Jid.parse('juliet@example.com');
const event = (): StanzaEvent => ({ stanza: x('message', { to: juliet.full }, x('body', null, 'hi')), from: romeo, to: juliet });

describe('HookBus', () => {
  describe('order and claiming', () => {
    it('runs handlers by priority, highest first; equal priorities in the order added', () => {
      const bus = new HookBus(silentLogger());
      const ran: string[] = [];
      bus.add('message/bare', () => void ran.push('p0'), 0, 'a');
      bus.add('message/bare', () => void ran.push('p10'), 10, 'b');
      bus.add('message/bare', () => void ran.push('p5-first'), 5, 'c');
      bus.add('message/bare', () => void ran.push('p5-second'), 5, 'd');
      bus.add('message/bare', () => void ran.push('p-1'), -1, 'e');
      assert.equal(bus.run('message/bare', event()), false);
      assert.deepEqual(ran, ['p10', 'p5-first', 'p5-second', 'p0', 'p-1']);
    });

    it('a handler returning true stops the chain and the run returns true', () => {
      const bus = new HookBus(silentLogger());
      const ran: string[] = [];
      bus.add('message/bare', () => void ran.push('high'), 10, 'a');
      bus.add('message/bare', () => (ran.push('claims'), true), 5, 'b');
      bus.add('message/bare', () => void ran.push('low'), 0, 'c');
      assert.equal(bus.run('message/bare', event()), true);
      assert.deepEqual(ran, ['high', 'claims']);
    });

    it('only true claims: false and other values let the chain go on', () => {
      const bus = new HookBus(silentLogger());
      let reached = false;
      bus.add('message/bare', () => false, 3, 'a');
      bus.add('message/bare', (() => 1) as unknown as Hooks['message/bare'], 2, 'b');
      bus.add('message/bare', () => void (reached = true), 1, 'c');
      assert.equal(bus.run('message/bare', event()), false);
      assert.ok(reached);
    });

    it('passes the arguments through to every handler', () => {
      const bus = new HookBus(silentLogger());
      const seen: unknown[][] = [];
      bus.add('privacy/blocks', (owner, other) => void seen.push([owner, other.full]), 1, 'a');
      bus.add('privacy/blocks', (owner, other) => void seen.push([owner, other.full]), 0, 'b');
      assert.equal(bus.run('privacy/blocks', 'juliet', romeo), false);
      assert.deepEqual(seen, [
        ['juliet', romeo.full],
        ['juliet', romeo.full],
      ]);
    });
  });

  describe('synchronous and asynchronous handlers', () => {
    it('with no handlers, run returns false (not a promise) and has() is false', () => {
      const bus = new HookBus(silentLogger());
      assert.equal(bus.has('message/bare'), false);
      assert.equal(bus.run('message/bare', event()), false);
    });

    it('allocates no promise when every handler is synchronous', () => {
      const bus = new HookBus(silentLogger());
      bus.add('message/bare', () => false, 1, 'a');
      bus.add('message/bare', () => undefined, 0, 'b');
      const r = bus.run('message/bare', event());
      assert.equal(typeof r, 'boolean');
      assert.equal(r, false);
      bus.add('message/bare', () => true, 2, 'c');
      assert.equal(bus.run('message/bare', event()), true);
    });

    it('an asynchronous handler makes the run a promise; the handlers after it wait for it', async () => {
      const bus = new HookBus(silentLogger());
      const ran: string[] = [];
      const gate = deferred<boolean>();
      bus.add('message/bare', () => void ran.push('sync first'), 3, 'a');
      bus.add('message/bare', () => (ran.push('async'), gate.promise), 2, 'b');
      bus.add('message/bare', () => void ran.push('after'), 1, 'c');
      const r = bus.run('message/bare', event());
      assert.ok(r instanceof Promise);
      assert.deepEqual(ran, ['sync first', 'async']);
      gate.resolve(false);
      assert.equal(await r, false);
      assert.deepEqual(ran, ['sync first', 'async', 'after']);
    });

    it('an asynchronous true stops the chain; a later synchronous true is the result too', async () => {
      const bus = new HookBus(silentLogger());
      let after = false;
      bus.add('message/bare', () => Promise.resolve(true), 2, 'a');
      bus.add('message/bare', () => void (after = true), 1, 'b');
      assert.equal(await bus.run('message/bare', event()), true);
      assert.equal(after, false);

      const bus2 = new HookBus(silentLogger());
      bus2.add('message/bare', () => Promise.resolve(false), 2, 'a');
      bus2.add('message/bare', () => true, 1, 'b');
      assert.equal(await bus2.run('message/bare', event()), true);
    });
  });

  describe('a failing handler in a fail-open hook', () => {
    it('a throwing handler is logged with its hook and module; the rest still run', () => {
      const { log, lines } = capturingLogger();
      const bus = new HookBus(log);
      const ran: string[] = [];
      bus.add('message/bare', () => void ran.push('before'), 2, 'a');
      bus.add(
        'message/bare',
        () => {
          throw new Error('boom');
        },
        1,
        'broken-module',
      );
      bus.add('message/bare', () => void ran.push('after'), 0, 'c');
      assert.equal(bus.run('message/bare', event()), false);
      assert.deepEqual(ran, ['before', 'after']);
      const logged = lines.filter((l) => l.msg === 'hook failed');
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.hook, 'message/bare');
      assert.equal(logged[0]!.module, 'broken-module');
      assert.match(JSON.stringify(logged[0]!.err), /boom/);
    });

    it('a rejecting handler is logged; the rest still run and may still claim', async () => {
      const { log, lines } = capturingLogger();
      const bus = new HookBus(log);
      bus.add('message/undelivered', () => Promise.reject(new Error('storage down')), 1, 'offline');
      bus.add('message/undelivered', () => true, 0, 'fallback');
      assert.equal(await bus.run('message/undelivered', event()), true);
      assert.deepEqual(
        lines.filter((l) => l.msg === 'hook failed').map((l) => [l.hook, l.module]),
        [['message/undelivered', 'offline']],
      );
    });
  });

  describe('fail-closed hooks (security decisions)', () => {
    it('are exactly route/user and privacy/blocks', () => {
      assert.deepEqual([...FAIL_CLOSED].sort(), ['privacy/blocks', 'route/user']);
    });

    it('route/user: a throwing handler makes run throw HookFailedError; no later handler runs', () => {
      const { log, lines } = capturingLogger();
      const bus = new HookBus(log);
      const cause = new Error('blocklist unreadable');
      let later = false;
      bus.add(
        'route/user',
        () => {
          throw cause;
        },
        1,
        'blocking',
      );
      bus.add('route/user', () => void (later = true), 0, 'other');
      assert.throws(
        () => bus.run('route/user', event()),
        (e: unknown) => e instanceof HookFailedError && e.hook === 'route/user' && e.module === 'blocking' && e.cause === cause,
      );
      assert.equal(later, false);
      assert.equal(lines.filter((l) => l.msg === 'hook failed').length, 1, 'the failure is logged too');
    });

    it('privacy/blocks: a rejecting handler makes the run reject with HookFailedError', async () => {
      const bus = new HookBus(silentLogger());
      const cause = new Error('timeout');
      let later = false;
      bus.add('privacy/blocks', () => Promise.reject(cause), 1, 'privacy');
      bus.add('privacy/blocks', () => void (later = true), 0, 'other');
      const r = bus.run('privacy/blocks', 'juliet', romeo);
      assert.ok(r instanceof Promise);
      await assert.rejects(r, (e: unknown) => e instanceof HookFailedError && e.hook === 'privacy/blocks' && e.cause === cause);
      assert.equal(later, false);
    });

    it('a synchronous throw after an asynchronous handler rejects the run', async () => {
      const bus = new HookBus(silentLogger());
      bus.add('route/user', () => Promise.resolve(false), 1, 'async');
      bus.add(
        'route/user',
        () => {
          throw new Error('late');
        },
        0,
        'late-thrower',
      );
      await assert.rejects(
        Promise.resolve(bus.run('route/user', event())),
        (e: unknown) => e instanceof HookFailedError && e.module === 'late-thrower',
      );
    });

    it('handlers that do not fail decide as usual', () => {
      const bus = new HookBus(silentLogger());
      bus.add('privacy/blocks', (owner, other) => owner === 'juliet' && other.bare === romeo.bare, 0, 'privacy');
      assert.equal(bus.run('privacy/blocks', 'juliet', romeo), true);
      assert.equal(bus.run('privacy/blocks', 'nurse', romeo), false);
    });
  });

  describe('the unhook function returned by add', () => {
    it('removes only its own registration, even of the same function', () => {
      const bus = new HookBus(silentLogger());
      let calls = 0;
      const fn = (): void => void calls++;
      const off1 = bus.add('message/bare', fn, 0, 'a');
      bus.add('message/bare', fn, 0, 'b');
      off1();
      assert.equal(bus.run('message/bare', event()), false);
      assert.equal(calls, 1);
    });

    it('after the last one is removed the hook is gone; a second call is harmless', () => {
      const bus = new HookBus(silentLogger());
      let calls = 0;
      const offA = bus.add('message/bare', () => void calls++, 1, 'a');
      const offB = bus.add('message/bare', () => void calls++, 0, 'b');
      offA();
      assert.equal(bus.has('message/bare'), true);
      offB();
      assert.equal(bus.has('message/bare'), false);
      offB();
      offA();
      assert.equal(bus.run('message/bare', event()), false);
      assert.equal(calls, 0);
      // a handler added later is not affected by stale unhook calls
      const offC = bus.add('message/bare', () => void calls++, 0, 'c');
      offA();
      assert.equal(bus.run('message/bare', event()), false);
      assert.equal(calls, 1);
      offC();
    });

    it('does not disturb other hooks', () => {
      const bus = new HookBus(silentLogger());
      const off = bus.add('message/bare', () => true, 0, 'a');
      bus.add('message/full', () => true, 0, 'a');
      off();
      assert.equal(bus.run('message/full', event()), true);
    });
  });
});
