// S2SPolicy (src/s2s/policy.ts) alone, on a fake core: who the server federates with
// (configured and stored black/white lists, a domain with its subdomains, fail closed
// until the stored lists are read, a change followed by the other nodes), and which
// messages s2s.refuse_strangers refuses.
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { S2SPolicy } from '../../src/s2s/policy.js';
import { HookBus } from '../../src/router/hooks.js';
import { Jid } from '../../src/jid.js';
import { parseXml } from '../../src/xml/index.js';
import type { Core } from '../../src/core.js';
import type { RosterItem } from '../../src/storage/types.js';
import { deferred, silentLogger } from '../helpers/mock-context.js';

type Rows = Map<string, string>;

/** The other nodes of a cluster as the policy sees them: 'inv' events of a topic reach every node but the sender. */
class Bus {
  private readonly subs: { node: object; topic: string; fn: (key: string) => void }[] = [];
  node(): { invalidate(topic: string, key: string): void; onInvalidate(topic: string, fn: (key: string) => void): () => void } {
    const me = {};
    return {
      invalidate: (topic, key) => {
        for (const s of this.subs) if (s.node !== me && s.topic === topic) s.fn(key);
      },
      onInvalidate: (topic, fn) => {
        this.subs.push({ node: me, topic, fn });
        return () => undefined;
      },
    };
  }
}

interface FakeOptions {
  blacklist?: string[];
  whitelist?: string[];
  refuse_strangers?: boolean;
  rows?: Rows;
  roster?: Record<string, RosterItem>;
  bus?: Bus;
  /** the first read of the stored lists waits on this */
  gate?: Promise<void>;
  failReads?: number;
  rosterFails?: boolean;
}

function fakeCore(o: FakeOptions = {}) {
  const rows = o.rows ?? new Map<string, string>();
  const registry = new Registry();
  let rosterReads = 0;
  let failReads = o.failReads ?? 0;
  const config = {
    domain: 'here.test',
    s2s: { blacklist: o.blacklist ?? [], whitelist: o.whitelist ?? [], refuse_strangers: o.refuse_strangers ?? false },
  };
  const core = {
    config,
    log: silentLogger(),
    metrics: { registry },
    hooks: new HookBus(silentLogger()),
    cluster: o.bus?.node(),
    storage: {
      userData: {
        get: async (user: string, kind: string, key: string) => {
          await o.gate;
          if (failReads > 0) {
            failReads--;
            throw new Error('database away');
          }
          return rows.get(`${user}/${kind}/${key}`);
        },
        set: async (user: string, kind: string, key: string, value: string) => void rows.set(`${user}/${kind}/${key}`, value),
        remove: async (user: string, kind: string, key: string) => rows.delete(`${user}/${kind}/${key}`),
      },
      roster: {
        getItem: async (user: string, jid: string) => {
          rosterReads++;
          if (o.rosterFails) throw new Error('database away');
          return o.roster?.[`${user} ${jid}`];
        },
      },
    },
  };
  return {
    core: core as unknown as Core,
    config,
    rows,
    rosterReads: () => rosterReads,
    refused: async () => (await registry.getSingleMetric('uzzap_s2s_strangers_refused_total')!.get()).values[0]?.value ?? 0,
  };
}

const item = (jid: string, subscription: RosterItem['subscription'], ask = false): RosterItem => ({
  jid,
  subscription,
  ask,
  approved: false,
  groups: [],
});

describe('S2S policy: federation lists', () => {
  it('refuses every domain until the stored lists are read (fail closed), then follows them', async () => {
    const gate = deferred();
    const rows: Rows = new Map([['/s2s/blacklist', 'evil.test']]);
    const f = fakeCore({ rows, gate: gate.promise });
    const p = new S2SPolicy(f.core);
    assert.equal(p.allowed('friend.test'), false);
    gate.resolve();
    await p.ready;
    assert.equal(p.allowed('friend.test'), true);
    assert.equal(p.allowed('evil.test'), false);
    assert.deepEqual(p.storedList('blacklist'), ['evil.test']);
  });

  it('a listed domain covers its subdomains, not its look-alikes; config and stored lists add up', async () => {
    const f = fakeCore({ blacklist: ['spam.test'], rows: new Map([['/s2s/blacklist', 'evil.test']]) });
    const p = new S2SPolicy(f.core);
    await p.ready;
    for (const d of ['spam.test', 'chat.spam.test', 'evil.test', 'conference.evil.test']) assert.equal(p.allowed(d), false, d);
    for (const d of ['notspam.test', 'evil.test.example', 'good.test']) assert.equal(p.allowed(d), true, d);
  });

  it('a whitelist (configured or stored) allows only its domains; the blacklist wins over it', async () => {
    const f = fakeCore();
    const p = new S2SPolicy(f.core);
    await p.ready;
    assert.equal(p.allowed('anyone.test'), true);
    await p.setStored('whitelist', ['friend.test']);
    assert.equal(p.allowed('anyone.test'), false);
    assert.equal(p.allowed('muc.friend.test'), true);
    f.config.s2s.whitelist = ['partner.test'];
    assert.equal(p.allowed('partner.test'), true);
    await p.setStored('blacklist', ['muc.friend.test']);
    assert.equal(p.allowed('muc.friend.test'), false);
    assert.equal(p.allowed('friend.test'), true);
    await p.setStored('whitelist', []);
    f.config.s2s.whitelist = [];
    assert.equal(p.allowed('anyone.test'), true);
    assert.equal(f.rows.has('/s2s/whitelist'), false, 'an empty list is no row');
  });

  it('a change is stored (one row per list), and the other nodes read it when told', async () => {
    const bus = new Bus();
    const rows: Rows = new Map();
    const a = new S2SPolicy(fakeCore({ rows, bus }).core);
    const b = new S2SPolicy(fakeCore({ rows, bus }).core);
    await Promise.all([a.ready, b.ready]);
    await a.setStored('blacklist', ['Evil.test', 'evil.test', 'bad.test']);
    assert.equal(rows.get('/s2s/blacklist'), 'bad.test\nevil.test');
    assert.equal(a.allowed('evil.test'), false);
    await until(() => !b.allowed('evil.test'));
    // a node started later reads it from storage
    const c = new S2SPolicy(fakeCore({ rows }).core);
    await c.ready;
    assert.deepEqual(c.storedList('blacklist'), ['bad.test', 'evil.test']);
  });

  it('a read that started before a change does not undo it when it ends late', async () => {
    const gate = deferred();
    const rows: Rows = new Map([['/s2s/blacklist', 'old.test']]);
    const p = new S2SPolicy(fakeCore({ rows, gate: gate.promise }).core);
    await p.setStored('blacklist', ['new.test']);
    gate.resolve();
    await p.ready;
    assert.deepEqual(p.storedList('blacklist'), ['new.test']);
    assert.equal(p.allowed('old.test'), true);
    assert.equal(p.allowed('new.test'), false);
  });

  it('a first read that fails is tried again', async () => {
    const p = new S2SPolicy(fakeCore({ failReads: 1, rows: new Map([['/s2s/blacklist', 'evil.test']]) }).core, { retryMs: 10 });
    assert.equal(p.allowed('good.test'), false);
    await p.ready;
    assert.equal(p.allowed('good.test'), true);
    assert.equal(p.allowed('evil.test'), false);
  });
});

describe('S2S policy: refusing strangers (s2s.refuse_strangers)', () => {
  const from = Jid.parse('mallory@far.test/bot');
  const to = Jid.parse('alice@here.test');
  const msg = (attrs = "type='chat'", body = '<body>buy now</body>') => parseXml(`<message ${attrs}>${body}</message>`);

  it('off by default: nothing is refused and no roster is read', async () => {
    const f = fakeCore();
    const p = new S2SPolicy(f.core);
    assert.equal(p.refuses(msg(), from, to), false);
    assert.equal(f.rosterReads(), 0);
  });

  it('a message with a body from a remote user not in the roster is refused, and counted', async () => {
    const f = fakeCore({ refuse_strangers: true, roster: { 'alice mallory@far.test': item('mallory@far.test', 'none') } });
    const p = new S2SPolicy(f.core);
    for (const attrs of ["type='chat'", "type='normal'", "type='headline'", ''])
      assert.equal(await p.refuses(msg(attrs), from, to), true, attrs);
    assert.equal(await p.refuses(msg("type='chat'", '<subject>hi</subject>'), from, to), true);
    assert.equal(await p.refuses(msg(), from, Jid.parse('nobody@here.test/phone')), true);
    assert.equal(await f.refused(), 6);
  });

  it('a contact (to, from, both) or one the user asked to subscribe to is known; remembered for a while', async () => {
    const roster = {
      'alice a@far.test': item('a@far.test', 'to'),
      'alice b@far.test': item('b@far.test', 'from'),
      'alice c@far.test': item('c@far.test', 'both'),
      'alice d@far.test': item('d@far.test', 'none', true),
    };
    const f = fakeCore({ refuse_strangers: true, roster });
    const p = new S2SPolicy(f.core);
    for (const c of ['a', 'b', 'c', 'd']) assert.equal(await p.refuses(msg(), Jid.parse(`${c}@far.test/x`), to), false, c);
    const reads = f.rosterReads();
    assert.equal(p.refuses(msg(), Jid.parse('a@far.test/y'), to), false, 'answered from memory, without a read');
    assert.equal(f.rosterReads(), reads);
    assert.equal(await f.refused(), 0);
  });

  it('what is not judged: presence, IQs, groupchat, errors, messages without content, to services, from servers', async () => {
    const f = fakeCore({ refuse_strangers: true });
    const p = new S2SPolicy(f.core);
    const pass = [
      [parseXml("<presence type='subscribe'/>"), from, to],
      [parseXml("<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>"), from, to],
      [msg("type='groupchat'"), from, to],
      [msg("type='error'"), from, to],
      [msg("type='chat'", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"), from, to],
      [msg(), from, Jid.parse('room@conference.here.test')],
      [msg(), from, Jid.parse('here.test')],
      [msg(), Jid.parse('far.test'), to],
    ] as const;
    for (const [s, fr, t] of pass) assert.equal(p.refuses(s, fr, t), false, s.toString());
    assert.equal(f.rosterReads(), 0);
  });

  it('a roster that cannot be read lets the message through (a filter, not a privacy rule)', async () => {
    const f = fakeCore({ refuse_strangers: true, rosterFails: true });
    const p = new S2SPolicy(f.core);
    assert.equal(await p.refuses(msg(), from, to), false);
  });
});

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setImmediate(r));
  }
}
