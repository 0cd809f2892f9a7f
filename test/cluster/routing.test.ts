// Two nodes of one cluster in this process (same Postgres schema, same Redis prefix):
// clients on node A and node B talk as if on one server (issue 15). Runs in the
// Postgres + Redis pass of `npm test` only (a cluster needs Redis).
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { rawSession } from '../helpers/raw.js';
import { barrier, connect, expectNothing, expectStanza, iq, isMessage, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';

const chat = (to: string, body: string, type = 'chat') => xml('message', { to, type }, xml('body', {}, body));

/** node `n` mirrors the session `full` (bound on another node) */
const knows = (n: Server, full: string, available = true) =>
  until(() => {
    const [bare, res] = [full.slice(0, full.indexOf('/')), full.slice(full.indexOf('/') + 1)];
    const s = n.sessions.get(bare, res);
    return s !== undefined && (!available || s.available);
  }, `${n.nodeId} knows ${full}`);

describe('cluster: routing across nodes (two nodes, Postgres + Redis)', function () {
  this.timeout(20_000);
  let slot: StorageSlot;
  let a: Server, b: Server;
  let alice: XmppClient, bob: XmppClient;
  before(async () => {
    slot = await newStorageSlot();
    a = await startServer({ slot, users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    b = await startServer({ slot });
    alice = await connect(a, 'alice', { resource: 'phone' });
    bob = await connect(b, 'bob', { resource: 'pc' });
    await knows(a, 'bob@localhost/pc');
    await knows(b, 'alice@localhost/phone');
    alice.received.length = 0;
    bob.received.length = 0;
  });
  after(async () => {
    await stopAll(alice, bob);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('each node lists the other in its cluster view', async () => {
    const names = (await a.cluster!.nodes()).map((n) => n.name);
    assert.ok(names.includes(a.nodeId) && names.includes(b.nodeId), names.join(','));
  });

  it('a message to a full JID on another node arrives, and the answer comes back', async () => {
    await alice.send(chat('bob@localhost/pc', 'hi from A'));
    const m = await expectStanza(bob, isMessage('hi from A'));
    assert.equal(m.attrs.from, 'alice@localhost/phone');
    await bob.send(chat('alice@localhost/phone', 'hi from B'));
    await expectStanza(alice, isMessage('hi from B'));
  });

  it('a message to a bare JID goes by priority over the resources of every node', async () => {
    const bob2 = await connect(a, 'bob', { resource: 'tablet' });
    try {
      await knows(b, 'bob@localhost/tablet');
      await bob2.send(xml('presence', {}, xml('priority', {}, '5')));
      await until(() => b.sessions.get('bob@localhost', 'tablet')?.priority === 5, 'priority 5 known on B');
      await alice.send(chat('bob@localhost', 'to the higher one'));
      await expectStanza(bob2, isMessage('to the higher one'));
      await expectNothing(bob, isMessage('to the higher one'), { after: [alice, bob2] });
      // equal priorities: both nodes' resources get it
      await bob2.send(xml('presence', {}, xml('priority', {}, '0')));
      await until(
        () => a.sessions.get('bob@localhost', 'tablet')?.priority === 0 && b.sessions.get('bob@localhost', 'tablet')?.priority === 0,
        'priority 0',
      );
      await alice.send(chat('bob@localhost', 'to both'));
      await expectStanza(bob, isMessage('to both'));
      await expectStanza(bob2, isMessage('to both'));
    } finally {
      await stopAll(bob2);
    }
  });

  it("carbons: a message to one resource is copied to the user's resource on the other node", async () => {
    const bob2 = await connect(a, 'bob', { resource: 'laptop' });
    try {
      for (const c of [bob, bob2]) {
        const r = await iq(c, xml('iq', { type: 'set', id: 'cb' }, xml('enable', { xmlns: 'urn:xmpp:carbons:2' })));
        assert.equal(r.attrs.type, 'result');
      }
      await until(() => a.sessions.get('bob@localhost', 'pc')?.flags.carbons === true, 'A knows bob/pc enabled carbons');
      await alice.send(chat('bob@localhost/pc', 'carbon me'));
      await expectStanza(bob, isMessage('carbon me'));
      const copy = await expectStanza(bob2, (s) => s.is('message') && !!s.getChild('received', 'urn:xmpp:carbons:2'));
      assert.equal(copy.getChild('received')?.getChild('forwarded')?.getChild('message')?.getChildText('body'), 'carbon me');
    } finally {
      await stopAll(bob2);
    }
  });

  it("roster pushes reach the user's resource on the other node; a block made on one node holds on the other", async () => {
    const bob2 = await connect(a, 'bob', { resource: 'desk' });
    const carol = await connect(b, 'carol', { resource: 'x' });
    try {
      // bob/pc (node B) asks for the roster: it gets pushes for changes made on node A
      await iq(bob, xml('iq', { type: 'get', id: 'r1' }, xml('query', { xmlns: 'jabber:iq:roster' })));
      await until(() => a.sessions.get('bob@localhost', 'pc')?.flags.roster === true, 'A knows bob/pc wants pushes');
      await iq(
        bob2,
        xml(
          'iq',
          { type: 'set', id: 'r2' },
          xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'dave@localhost', name: 'Dave' })),
        ),
      );
      await expectStanza(
        bob,
        (s) => s.is('iq') && s.attrs.type === 'set' && s.getChild('query')?.getChild('item')?.attrs.jid === 'dave@localhost',
      );
      // carol (node B) reaches bob; node B has read bob's blocklist by then
      await carol.send(chat('bob@localhost/pc', 'not blocked yet'));
      await expectStanza(bob, isMessage('not blocked yet'));
      // bob blocks carol from node A: node B must not use its cached copy
      const r = await iq(
        bob2,
        xml('iq', { type: 'set', id: 'b1' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'carol@localhost' }))),
      );
      assert.equal(r.attrs.type, 'result');
      await until(async () => {
        await carol.send(chat('bob@localhost/pc', 'blocked?'));
        const e = await expectStanza(carol, (s) => s.is('message') && s.getChildText('body') === 'blocked?', 1000).catch(() => undefined);
        return e?.attrs.type === 'error';
      }, 'node B refuses carol once bob blocked her');
    } finally {
      await stopAll(bob2, carol);
    }
  });

  it('an IQ to a full JID on another node is answered across', async () => {
    bob.on('stanza', (s) => {
      if (s.is('iq') && s.attrs.type === 'get' && s.getChild('query', 'jabber:iq:version'))
        void bob.send(
          xml(
            'iq',
            { type: 'result', id: s.attrs.id, to: s.attrs.from },
            xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'bob-client')),
          ),
        );
    });
    const res = await iq(alice, xml('iq', { type: 'get', to: 'bob@localhost/pc', id: 'v1' }, xml('query', { xmlns: 'jabber:iq:version' })));
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.getChild('query')?.getChildText('name'), 'bob-client');
  });

  it('presence: a subscription across nodes, then broadcasts and the unavailable on disconnect', async () => {
    const carol = await connect(b, 'carol', { resource: 'web' });
    try {
      await knows(a, 'carol@localhost/web');
      // alice subscribes to carol, carol approves; carol subscribes back, alice approves
      await alice.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
      await expectStanza(carol, (s) => s.is('presence') && s.attrs.type === 'subscribe');
      await carol.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
      // carol is online: alice gets her presence (the server probes across nodes)
      await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'carol@localhost/web' && !s.attrs.type);
      await carol.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await expectStanza(alice, (s) => s.is('presence') && s.attrs.type === 'subscribe');
      await alice.send(xml('presence', { to: 'carol@localhost', type: 'subscribed' }));
      await expectStanza(carol, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/phone' && !s.attrs.type);
      // a broadcast from carol reaches alice on the other node
      await carol.send(xml('presence', {}, xml('show', {}, 'away')));
      await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'carol@localhost/web' && s.getChildText('show') === 'away');
    } finally {
      await stopAll(carol);
    }
    await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'carol@localhost/web' && s.attrs.type === 'unavailable');
    await until(() => a.sessions.get('carol@localhost', 'web') === undefined, 'A forgot carol');
  });

  it('a message to a user with no resource anywhere is stored, and flushed on the other node at login', async () => {
    await alice.send(chat('carol@localhost', 'while you were out'));
    await barrier(alice);
    await until(async () => (await a.storage.offline.users()).includes('carol'), 'stored offline');
    const carol = await connect(b, 'carol', { resource: 'later' });
    try {
      await expectStanza(carol, isMessage('while you were out'));
    } finally {
      await stopAll(carol);
    }
  });

  // RFC 6120 bind (§7.7.2.2: the newer session wins), and Bind 2 for the same client
  // (its user-agent id travels with the session to every node)
  for (const [what, bind2] of [
    ['the same full JID bound on another node: the older session gets <conflict/>', false],
    ['Bind 2: the same client (user-agent id) binding its tag on another node replaces its older session there', true],
  ] as const) {
    it(what, async () => {
      const ua = randomUUID();
      const opts = (): { sasl: 1 } | { userAgent: string } => (bind2 ? { userAgent: ua } : { sasl: 1 });
      const first = await connect(a, 'carol', { resource: 'dup', ...opts() });
      await knows(b, 'carol@localhost/dup');
      const closed = new Promise<string>((resolve) => {
        first.on('error', (e: Error & { condition?: string }) => resolve(e.condition ?? e.message));
      });
      const second = await connect(b, 'carol', { resource: 'dup', ...opts() });
      try {
        assert.equal(await closed, 'conflict');
        await until(() => a.sessions.getLocal('carol@localhost', 'dup') === undefined, 'A ended the old session');
        await until(() => a.sessions.get('carol@localhost', 'dup') !== undefined, 'A routes to the new one');
        await alice.send(chat('carol@localhost/dup', 'to the new one'));
        await expectStanza(second, isMessage('to the new one'));
      } finally {
        await stopAll(first, second);
      }
    });
  }

  it('the nodes share one dialback secret (a remote server may check a key with any of them)', () => {
    const secret = (n: Server): string => n.s2s!.settings().dialback_secret;
    assert.equal(secret(a), secret(b));
    assert.equal(secret(a).length, 64);
  });

  it('a stopped node leaves: the other forgets its sessions at once', async () => {
    const c = await startServer({ slot });
    const dave = await connect(c, 'carol', { resource: 'onc' });
    await knows(a, 'carol@localhost/onc');
    await stopAll(dave);
    await c.stop();
    await until(() => a.sessions.get('carol@localhost', 'onc') === undefined, 'A forgot the session of the stopped node');
    await until(async () => !(await a.cluster!.nodes()).some((n) => n.name === c.nodeId), 'the node left');
  });

  it('what another node posts to a stopping node after its last read is routed again by that node (here: offline storage)', async () => {
    const c = await startServer({ slot, users: { dora: 'secret' } });
    const dora = await rawSession(c.ports.c2s, 'dora', 'secret', 'phone');
    dora.send('<presence/>');
    await knows(a, 'dora@localhost/phone');
    await until(() => a.cluster!.isLive(c.nodeId), 'A sees C alive');
    // c stops reading its inbox (how a clean stop begins); a does not know it yet
    await c.cluster!.quiesce();
    const posted = a.cluster!.counts.batches;
    await alice.send(chat('dora@localhost/phone', 'while c stops'));
    await until(() => a.cluster!.counts.batches > posted, 'A posted it to C');
    dora.socket.destroy();
    await c.stop();
    // when A learns that C left, it takes back what lies unread in C's inbox from it
    const again = await rawSession(a.ports.c2s, 'dora', 'secret', 'phone');
    try {
      again.send('<presence/>');
      await again.waitFor('<body>while c stops</body>', 5000);
    } finally {
      again.socket.destroy();
    }
  });
});

describe('cluster: a full offline queue (two nodes, Postgres + Redis)', function () {
  this.timeout(20_000);
  let a: Server, b: Server;
  before(async () => {
    const slot = await newStorageSlot();
    const config = { modules: { offline: { max_per_user: 2 } } };
    a = await startServer({ slot, users: { alice: 'secret', dave: 'secret' }, config });
    b = await startServer({ slot, config });
  });
  after(() => Promise.all([a?.stop(), b?.stop()]));

  it('refused on one node while full; flushed on the other, the first node stores again at once', async () => {
    const alice = await connect(a, 'alice', { resource: 'phone' });
    try {
      for (const body of ['q1', 'q2', 'q3', 'q4']) await alice.send(chat('dave@localhost', body));
      for (const body of ['q3', 'q4'])
        await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error' && s.getChildText('body') === body && !!s.getChild('error')?.getChild('service-unavailable'));
      // dave logs in on B: B delivers the two and tells A the queue has room again
      const dave = await connect(b, 'dave', { resource: 'pc' });
      await expectStanza(dave, isMessage('q1'));
      await expectStanza(dave, isMessage('q2'));
      await stopAll(dave);
      await until(async () => (await a.storage.offline.count('dave')) === 0 && a.sessions.get('dave@localhost', 'pc') === undefined, 'dave gone, queue empty');
      // well within the 5 s a node takes a full queue to stay full without asking storage
      await alice.send(chat('dave@localhost', 'q5'));
      await until(async () => (await a.storage.offline.count('dave')) === 1, 'q5 stored', 2000);
      await expectNothing(alice, (s) => s.is('message') && s.attrs.type === 'error' && s.getChildText('body') === 'q5', { after: [alice] });
    } finally {
      await stopAll(alice);
    }
  });
});
