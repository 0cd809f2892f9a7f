// Unit tests for src/router/router.ts on a real HookBus, IqTable and SessionTable
// with fake sessions: who gets a message (RFC 6121 §8.5), what an IQ nobody
// handles gets (RFC 6120 §8.2.3, RFC 6121 §8.5.3), which errors come back and
// from which address (RFC 6120 §8.3), and the fail-closed 'route/user' hook.
import assert from 'node:assert/strict';
import { Router } from '../../src/router/router.js';
import { HookBus } from '../../src/router/hooks.js';
import { IqTable } from '../../src/router/iq-table.js';
import { SessionTable } from '../../src/session/table.js';
import { Metrics } from '../../src/metrics.js';
import { Jid } from '../../src/jid.js';
import { x, type Element } from '../../src/xml/index.js';
import { StanzaError } from '../../src/api/errors.js';
import type { StanzaEvent } from '../../src/api/module.js';
import { FakeSession, errorOf, silentLogger } from '../helpers/mock-context.js';

const HOST = 'example.com';

function setup(): { router: Router; hooks: HookBus; iqs: IqTable; sessions: SessionTable<FakeSession>; romeo: FakeSession } {
  const sessions = new SessionTable<FakeSession>();
  const hooks = new HookBus(silentLogger());
  const iqs = new IqTable();
  const router = new Router(HOST, sessions, hooks, iqs, silentLogger(), new Metrics(false));
  const romeo = new FakeSession('romeo@example.com/orchard');
  sessions.add(romeo);
  return { router, hooks, iqs, sessions, romeo };
}

/** add resources of juliet@example.com: name -> priority (null: bound but no initial presence) */
function julietWith(sessions: SessionTable<FakeSession>, resources: Record<string, number | null>): Map<string, FakeSession> {
  const out = new Map<string, FakeSession>();
  for (const [res, prio] of Object.entries(resources)) {
    const s = new FakeSession(`juliet@example.com/${res}`, { priority: prio ?? 0, available: prio !== null });
    sessions.add(s);
    out.set(res, s);
  }
  return out;
}

function message(to: string, type?: string, body = 'wherefore art thou'): Element {
  return x('message', { to, type, id: 'm1' }, x('body', null, body));
}

/** A stanza from romeo's client, as the stream hands it to the router ('from' stamped). */
function fromRomeo(router: Router, romeo: FakeSession, stanza: Element): void | Promise<void> {
  stanza.attrs.from = romeo.jid.full;
  return router.fromClient(stanza, romeo.jid, romeo);
}

const bodies = (s: FakeSession): string[] => s.received('message').map((m) => m.getChildText('body') ?? '');

describe('Router', () => {
  describe('message to a bare JID (RFC 6121 §8.5.2)', () => {
    // resources of juliet -> who gets a chat message to juliet@example.com
    const cases: { name: string; resources: Record<string, number | null>; gets: string[] }[] = [
      { name: 'one resource at priority 0', resources: { balcony: 0 }, gets: ['balcony'] },
      { name: 'the highest priority wins', resources: { balcony: 5, garden: 1 }, gets: ['balcony'] },
      { name: 'ties at the highest priority all get it', resources: { balcony: 5, garden: 5, tomb: 1 }, gets: ['balcony', 'garden'] },
      { name: 'a negative priority never gets it', resources: { balcony: -1, garden: 0 }, gets: ['garden'] },
      { name: 'a resource without initial presence never gets it', resources: { balcony: null, garden: 1 }, gets: ['garden'] },
    ];
    for (const c of cases) {
      it(`${c.name} (§8.5.2.1.1)`, () => {
        const { router, sessions, romeo } = setup();
        const juliet = julietWith(sessions, c.resources);
        assert.equal(fromRomeo(router, romeo, message('juliet@example.com', 'chat')), undefined, 'synchronous without hooks');
        const got = [...juliet].filter(([, s]) => bodies(s).length > 0).map(([r]) => r);
        assert.deepEqual(got.sort(), c.gets);
        for (const [r] of juliet) if (c.gets.includes(r)) assert.deepEqual(bodies(juliet.get(r)!), ['wherefore art thou']);
        assert.deepEqual(romeo.sent, [], 'no error to the sender');
      });
    }

    it('a headline goes to every available resource with a non-negative priority', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 5, garden: 0, tomb: -1 });
      await fromRomeo(router, romeo, message('juliet@example.com', 'headline'));
      assert.deepEqual(
        [...juliet].map(([r, s]) => [r, bodies(s).length]),
        [
          ['balcony', 1],
          ['garden', 1],
          ['tomb', 0],
        ],
      );
    });

    it('several targets of one delivery are each told the others (peers); one target is told none', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 5, garden: 5 });
      await fromRomeo(router, romeo, message('juliet@example.com', 'chat'));
      const a = juliet.get('balcony')!;
      const b = juliet.get('garden')!;
      assert.equal(a.writes.length, 1);
      assert.deepEqual(a.writes[0]!.kind, 'message');
      assert.deepEqual(new Set(a.writes[0]!.peers), new Set([a, b]));
      assert.deepEqual(new Set(b.writes[0]!.peers), new Set([a, b]));

      const { router: r2, sessions: s2, romeo: romeo2 } = setup();
      const single = julietWith(s2, { balcony: 5, garden: 1 });
      await fromRomeo(r2, romeo2, message('juliet@example.com', 'chat'));
      assert.equal(single.get('balcony')!.writes[0]!.peers, undefined);
    });

    it('a message to a full JID is never sent with peers, even through deliver() to several sessions', async () => {
      const { router, sessions } = setup();
      const juliet = julietWith(sessions, { balcony: 0, garden: 0 });
      const targets = [...juliet.values()];
      router.deliver(x('message', { from: 'romeo@example.com/orchard', to: 'juliet@example.com/balcony' }), targets);
      assert.deepEqual(
        targets.map((t) => t.writes[0]!.peers),
        [undefined, undefined],
      );
      router.deliver(x('message', { from: 'romeo@example.com/orchard', to: 'juliet@example.com' }), targets);
      assert.deepEqual(new Set(targets[0]!.writes[1]!.peers), new Set(targets));
    });

    it('no available resource: the message/undelivered hook takes it (offline storage), no error', async () => {
      const { router, hooks, sessions, romeo } = setup();
      julietWith(sessions, { balcony: -1 });
      const taken: StanzaEvent[] = [];
      hooks.add('message/undelivered', (ev) => (taken.push(ev), true), 0, 'offline');
      await fromRomeo(router, romeo, message('juliet@example.com', 'chat'));
      assert.equal(taken.length, 1);
      assert.equal(taken[0]!.to.full, 'juliet@example.com');
      assert.equal(taken[0]!.from.full, romeo.jid.full);
      assert.deepEqual(romeo.sent, []);
    });

    it('no resource and nobody takes it: service-unavailable to the sender, after every undelivered hook, as they left it', async () => {
      const { router, hooks, romeo } = setup();
      const asked: string[] = [];
      hooks.add('message/undelivered', () => (asked.push('offline'), Promise.resolve(false)), 0, 'offline');
      // the sid module removes the id it added (xeps/0359-sid), last
      hooks.add(
        'message/undelivered',
        (ev) => {
          asked.push('sid');
          ev.stanza.children = ev.stanza.children.filter((c) => typeof c === 'string' || c.name !== 'stanza-id');
          return false;
        },
        -10_000,
        'sid',
      );
      const m = message('juliet@example.com', 'chat');
      m.cnode(x('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: 'juliet@example.com', id: 'archived-1' }));
      m.cnode(x('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'romeo-1' }));
      await fromRomeo(router, romeo, m);
      assert.deepEqual(asked, ['offline', 'sid'], 'the hooks are asked, in priority order, before the bounce');
      const [err] = romeo.received('message', 'error');
      assert.deepEqual(errorOf(err), { condition: 'service-unavailable', type: 'cancel' });
      assert.equal(err!.attrs.from, 'juliet@example.com');
      assert.equal(err!.attrs.to, romeo.jid.full);
      assert.equal(err!.attrs.id, 'm1');
      assert.equal(err!.getChild('stanza-id'), undefined);
      assert.equal(err!.getChild('origin-id')?.attrs.id, 'romeo-1');
    });

    it('groupchat to a bare JID: service-unavailable; error to a bare JID: dropped silently', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 0 });
      await fromRomeo(router, romeo, message('juliet@example.com', 'groupchat'));
      assert.equal(errorOf(romeo.received('message', 'error')[0])?.condition, 'service-unavailable');
      await fromRomeo(router, romeo, message('nobody@example.com', 'error'));
      await fromRomeo(router, romeo, message('juliet@example.com', 'error'));
      assert.equal(romeo.sent.length, 1);
      assert.deepEqual(juliet.get('balcony')!.sent, []);
    });
  });

  describe('message to the full JID of a resource that is not there (RFC 6121 §8.5.3.2.1)', () => {
    it('the resource that is there gets a message to its full JID, even at a negative priority', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: -1, garden: 5 });
      await fromRomeo(router, romeo, message('juliet@example.com/balcony', 'chat'));
      assert.deepEqual(bodies(juliet.get('balcony')!), ['wherefore art thou']);
      assert.deepEqual(bodies(juliet.get('garden')!), []);
    });

    it('chat: delivered as if to the bare JID (highest non-negative priority)', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { garden: 1, tomb: -1 });
      await fromRomeo(router, romeo, message('juliet@example.com/balcony', 'chat'));
      assert.deepEqual(bodies(juliet.get('garden')!), ['wherefore art thou']);
      assert.deepEqual(bodies(juliet.get('tomb')!), []);
    });

    // normal, groupchat, headline: "the server MUST either (a) silently ignore the
    // stanza or (b) return an error stanza to the sender"; error: silently ignored
    for (const type of ['normal', 'groupchat', 'headline', 'error']) {
      it(`${type}: not delivered to the user's other resources`, async () => {
        const { router, sessions, romeo } = setup();
        const juliet = julietWith(sessions, { garden: 1 });
        await fromRomeo(router, romeo, message('juliet@example.com/balcony', type === 'normal' ? undefined : type));
        assert.deepEqual(juliet.get('garden')!.sent, []);
        for (const e of romeo.received('message', 'error')) assert.equal(e.attrs.from, 'juliet@example.com/balcony');
      });
    }
  });

  describe('IQ (RFC 6120 §8.2.3, §10.5.4; RFC 6121 §8.5.3)', () => {
    const ping = (to: string, attrs: Record<string, string> = {}): Element =>
      x('iq', { type: 'get', id: 'q1', to, ...attrs }, x('ping', { xmlns: 'urn:xmpp:ping' }));

    it('to a full JID with no handler for it: delivered to that session as is', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: -1, garden: 5 });
      await fromRomeo(router, romeo, ping('juliet@example.com/balcony'));
      const [iq] = juliet.get('balcony')!.received('iq');
      assert.equal(iq?.attrs.id, 'q1');
      assert.equal(iq?.attrs.from, romeo.jid.full);
      assert.equal(iq?.getChild('ping')?.attrs.xmlns, 'urn:xmpp:ping');
      assert.deepEqual(juliet.get('garden')!.sent, []);
      assert.deepEqual(romeo.sent, []);
    });

    it('to a full JID with no session: service-unavailable from that full JID', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { garden: 5 });
      await fromRomeo(router, romeo, ping('juliet@example.com/balcony'));
      const [err] = romeo.received('iq', 'error');
      assert.deepEqual(errorOf(err), { condition: 'service-unavailable', type: 'cancel' });
      assert.equal(err!.attrs.from, 'juliet@example.com/balcony');
      assert.equal(err!.attrs.id, 'q1');
      assert.deepEqual(juliet.get('garden')!.sent, []);
    });

    it('a result or error to a session is delivered; to nobody it is dropped, never answered', async () => {
      const { router, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 0 });
      await fromRomeo(router, romeo, x('iq', { type: 'result', id: 'q1', to: 'juliet@example.com/balcony' }));
      await fromRomeo(router, romeo, x('iq', { type: 'result', id: 'q2', to: 'juliet@example.com/gone' }));
      await fromRomeo(router, romeo, x('iq', { type: 'error', id: 'q3', to: 'juliet@example.com/gone' }));
      assert.deepEqual(
        juliet
          .get('balcony')!
          .received('iq')
          .map((i) => i.attrs.id),
        ['q1'],
      );
      assert.deepEqual(romeo.sent, []);
    });

    it('a handler answers: its payload comes back as the result, to the sender', async () => {
      const { router, iqs, romeo } = setup();
      iqs.add('get', 'urn:xmpp:ping', 'ping', 'host', async () => x('pong', { xmlns: 'urn:example' }), 'ping');
      await fromRomeo(router, romeo, ping(HOST));
      const [res] = romeo.received('iq', 'result');
      assert.equal(res?.attrs.id, 'q1');
      assert.equal(res?.attrs.from, HOST);
      assert.equal(res?.getChild('pong')?.attrs.xmlns, 'urn:example');
    });

    it('a handler that throws StanzaError answers with it; any other exception is internal-server-error', async () => {
      const { router, iqs, romeo } = setup();
      iqs.add(
        'get',
        'urn:example:a',
        'q',
        'host',
        () => {
          throw new StanzaError('item-not-found');
        },
        'a',
      );
      iqs.add(
        'get',
        'urn:example:b',
        'q',
        'host',
        () => {
          throw new TypeError('bug');
        },
        'b',
      );
      await fromRomeo(router, romeo, x('iq', { type: 'get', id: 'a1', to: HOST }, x('q', { xmlns: 'urn:example:a' })));
      await fromRomeo(router, romeo, x('iq', { type: 'get', id: 'b1', to: HOST }, x('q', { xmlns: 'urn:example:b' })));
      assert.deepEqual(
        romeo.received('iq', 'error').map((e) => [e.attrs.id, errorOf(e)?.condition]),
        [
          ['a1', 'item-not-found'],
          ['b1', 'internal-server-error'],
        ],
      );
    });

    const bad: { name: string; iq: () => Element; condition: string }[] = [
      {
        name: 'get without id',
        iq: () => x('iq', { type: 'get', to: HOST }, x('ping', { xmlns: 'urn:xmpp:ping' })),
        condition: 'bad-request',
      },
      {
        name: 'get with two children',
        iq: () =>
          x('iq', { type: 'get', id: 'b2', to: HOST }, x('ping', { xmlns: 'urn:xmpp:ping' }), x('query', { xmlns: 'jabber:iq:version' })),
        condition: 'bad-request',
      },
      { name: 'set without a child', iq: () => x('iq', { type: 'set', id: 'b3', to: HOST }), condition: 'bad-request' },
      {
        name: 'an unknown type',
        iq: () => x('iq', { type: 'query', id: 'b4', to: HOST }, x('ping', { xmlns: 'urn:xmpp:ping' })),
        condition: 'bad-request',
      },
      {
        name: 'a payload nobody handles',
        iq: () => x('iq', { type: 'get', id: 'b5', to: HOST }, x('nope', { xmlns: 'urn:example' })),
        condition: 'service-unavailable',
      },
    ];
    for (const c of bad) {
      it(`${c.name}: ${c.condition}`, async () => {
        const { router, iqs, romeo } = setup();
        let handled = false;
        iqs.add('get', 'urn:xmpp:ping', 'ping', 'host', () => void (handled = true), 'ping');
        await fromRomeo(router, romeo, c.iq());
        const errs = romeo.received('iq', 'error');
        assert.equal(errs.length, 1);
        assert.equal(errorOf(errs[0])?.condition, c.condition);
        assert.equal(errs[0]!.attrs.from, HOST);
        assert.equal(handled, false);
      });
    }
  });

  describe("a malformed 'to' (RFC 6120 §8.3.3.8 jid-malformed)", () => {
    // the error comes from the nearest valid address: the bare part, else the domain, else us
    const cases: { to: string; from: string }[] = [
      { to: 'juliet@example.com/', from: 'juliet@example.com' },
      { to: `juliet@example.com/${'r'.repeat(1100)}`, from: 'juliet@example.com' },
      { to: 'mercutio@verona.example/', from: 'mercutio@verona.example' },
      { to: '@verona.example', from: 'verona.example' },
      { to: 'bad"local@verona.example/r', from: 'verona.example' },
      { to: 'bad@@verona.example', from: 'verona.example' },
      { to: 'juliet@exa mple.com', from: HOST },
      { to: 'juliet@', from: HOST },
      { to: '/r', from: HOST },
    ];
    for (const c of cases) {
      it(`${JSON.stringify(c.to.length > 40 ? c.to.slice(0, 30) + '…' : c.to)}: error from ${c.from}`, async () => {
        const { router, sessions, romeo } = setup();
        const juliet = julietWith(sessions, { balcony: 0 });
        await fromRomeo(router, romeo, message(c.to, 'chat'));
        const errs = romeo.received('message', 'error');
        assert.equal(errs.length, 1);
        assert.deepEqual(errorOf(errs[0]), { condition: 'jid-malformed', type: 'modify' });
        assert.equal(errs[0]!.attrs.from, c.from);
        assert.equal(errs[0]!.attrs.to, romeo.jid.full);
        assert.deepEqual(juliet.get('balcony')!.sent, []);
      });
    }
  });

  describe("a failing 'route/user' hook (blocking) refuses the stanza", () => {
    const failures: { name: string; fn: () => boolean | Promise<boolean> }[] = [
      {
        name: 'throwing',
        fn: () => {
          throw new Error('blocklist unreadable');
        },
      },
      { name: 'rejecting', fn: () => Promise.reject(new Error('blocklist unreadable')) },
    ];
    for (const f of failures) {
      it(`${f.name}: internal-server-error (wait) to the sender, nothing to the recipient`, async () => {
        const { router, hooks, sessions, romeo } = setup();
        const juliet = julietWith(sessions, { balcony: 0 });
        hooks.add('route/user', f.fn, 0, 'blocking');
        await fromRomeo(router, romeo, message('juliet@example.com', 'chat'));
        assert.deepEqual(juliet.get('balcony')!.sent, []);
        const errs = romeo.received('message', 'error');
        assert.equal(errs.length, 1);
        assert.deepEqual(errorOf(errs[0]), { condition: 'internal-server-error', type: 'wait' });
        assert.equal(errs[0]!.attrs.from, 'juliet@example.com');
      });
    }

    it('an IQ result is refused without an answer (no error to a response)', async () => {
      const { router, hooks, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 0 });
      hooks.add('route/user', () => Promise.reject(new Error('down')), 0, 'blocking');
      await fromRomeo(router, romeo, x('iq', { type: 'result', id: 'r1', to: 'juliet@example.com/balcony' }));
      assert.deepEqual(juliet.get('balcony')!.sent, []);
      assert.deepEqual(romeo.sent, []);
    });

    it('a hook that decides (true) takes the stanza; false lets it through', async () => {
      const { router, hooks, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 0 });
      hooks.add('route/user', (ev) => ev.stanza.getChildText('body') === 'blocked', 0, 'blocking');
      await fromRomeo(router, romeo, message('juliet@example.com', 'chat', 'blocked'));
      await fromRomeo(router, romeo, message('juliet@example.com', 'chat', 'allowed'));
      assert.deepEqual(bodies(juliet.get('balcony')!), ['allowed']);
      assert.deepEqual(romeo.sent, []);
    });
  });

  describe('other destinations and filters', () => {
    it('the stanza/out hook drops a stanza for one session only', async () => {
      const { router, hooks, sessions, romeo } = setup();
      const juliet = julietWith(sessions, { balcony: 0, garden: 0 });
      hooks.add('stanza/out', (ev) => ev.session.jid.resource === 'garden', 0, 'csi');
      await fromRomeo(router, romeo, message('juliet@example.com', 'chat'));
      assert.deepEqual(bodies(juliet.get('balcony')!), ['wherefore art thou']);
      assert.deepEqual(bodies(juliet.get('garden')!), []);
    });

    it('a remote domain nobody serves: remote-server-not-found; a served one goes to its service', async () => {
      const { router, romeo } = setup();
      const got: [string, string][] = [];
      router.services.set('bridge.example.com', (stanza, _from, to) => void got.push([stanza.name, to.full]));
      await fromRomeo(router, romeo, message('mercutio@verona.example', 'chat'));
      await fromRomeo(router, romeo, message('tybalt@sub.bridge.example.com', 'chat'));
      assert.deepEqual(errorOf(romeo.received('message', 'error')[0])?.condition, 'remote-server-not-found');
      assert.deepEqual(got, [['message', 'tybalt@sub.bridge.example.com']]);
      assert.equal(Jid.parse(romeo.received('message', 'error')[0]!.attrs.from as string).domain, 'verona.example');
    });
  });
});
