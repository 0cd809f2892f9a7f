// RFC 6121 subscriptions and presence between real clients.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, dropConnection, expectNothing, expectStanza, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';

const presenceFrom = (from: string, type?: string) => (s: Element) =>
  s.is('presence') && (s.attrs.from === from || s.attrs.from?.startsWith(from + '/')) && s.attrs.type === type;
const push =
  (jid: string, pred: (item: Element) => boolean = () => true) =>
  (s: Element) => {
    const item = s.is('iq') && s.attrs.type === 'set' ? s.getChild('query', 'jabber:iq:roster')?.getChild('item') : undefined;
    return !!item && item.attrs.jid === jid && pred(item);
  };

async function rosterOf(c: XmppClient): Promise<Record<string, Record<string, string>>> {
  const r = await iq(c, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  return Object.fromEntries(
    r
      .getChild('query')!
      .getChildren('item')
      .map((i: Element) => [i.attrs.jid, i.attrs]),
  );
}

async function online(server: Server, user: string, resource = 'r'): Promise<XmppClient> {
  const c = await connect(server, user, { resource, presence: false });
  await rosterOf(c); // ask for the roster: this resource is interested in pushes
  await c.send(xml('presence'));
  return c;
}

/** alice and bob subscribed both ways, as the handshake test leaves them (stored before they log in). */
async function befriend(server: Server): Promise<void> {
  const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };
  await server.storage.roster.put('alice', { jid: 'bob@localhost', ...both });
  await server.storage.roster.put('bob', { jid: 'alice@localhost', ...both });
}

describe('subscriptions and presence (e2e)', () => {
  // a server per test: each starts from empty rosters and the default configuration
  let server: Server;
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret', erin: 'secret' } });
  });
  afterEach(() => server.stop());

  it('the subscription handshake ends in both, and each side then sees the other’s presence', async () => {
    const alice = await online(server, 'alice');
    const bob = await online(server, 'bob');
    // alice adds bob and asks for his presence
    const added = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bob@localhost', name: 'Bob' }, xml('group', {}, 'Friends'))),
      ),
    );
    assert.equal(added.attrs.type, 'result');
    await expectStanza(
      alice,
      push('bob@localhost', (i) => i.attrs.subscription === 'none' && i.attrs.name === 'Bob'),
    );
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    await expectStanza(
      alice,
      push('bob@localhost', (i) => i.attrs.ask === 'subscribe'),
    );
    const req = await expectStanza(bob, (s) => s.is('presence') && s.attrs.type === 'subscribe');
    assert.equal(req.attrs.from, 'alice@localhost', 'subscription requests carry the bare JID');
    // bob approves
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    await expectStanza(
      bob,
      push('alice@localhost', (i) => i.attrs.subscription === 'from'),
    );
    await expectStanza(
      alice,
      push('bob@localhost', (i) => i.attrs.subscription === 'to' && i.attrs.ask === undefined),
    );
    await expectStanza(alice, (s) => s.is('presence') && s.attrs.type === 'subscribed' && s.attrs.from === 'bob@localhost');
    // RFC 6121 §3.1.5: alice then gets bob's current presence
    await expectStanza(alice, presenceFrom('bob@localhost/r'));
    // and the other way round
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await expectStanza(alice, (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost');
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await expectStanza(
      bob,
      push('alice@localhost', (i) => i.attrs.subscription === 'both'),
    );
    await expectStanza(
      alice,
      push('bob@localhost', (i) => i.attrs.subscription === 'both'),
    );
    assert.equal((await rosterOf(alice))['bob@localhost']!.subscription, 'both');
    assert.equal((await rosterOf(bob))['alice@localhost']!.subscription, 'both');
    // presence updates now flow both ways
    await alice.send(xml('presence', {}, xml('show', {}, 'away')));
    const p = await expectStanza(bob, (s) => presenceFrom('alice@localhost/r')(s) && s.getChildText('show') === 'away');
    assert.equal(p.attrs.to, 'bob@localhost');
    await stopAll(alice, bob);
  });

  it('initial presence probes contacts: a late login sees who is online', async () => {
    await befriend(server);
    const bob = await online(server, 'bob', 'b1');
    await bob.send(xml('presence', {}, xml('status', {}, 'at work')));
    const alice = await online(server, 'alice', 'late');
    const p = await expectStanza(alice, presenceFrom('bob@localhost/b1'));
    assert.equal(p.getChildText('status'), 'at work');
    // and bob learns alice came online
    await expectStanza(bob, presenceFrom('alice@localhost/late'));
    await stopAll(alice, bob);
  });

  it('an abrupt disconnect is broadcast as unavailable to subscribers once the resume window ends', async () => {
    await befriend(server);
    server.config.sm.resume_timeout = 1; // @xmpp/client enables resumable stream management (this test's own server)
    const bob = await online(server, 'bob', 'watcher');
    const alice = await online(server, 'alice', 'flaky');
    await expectStanza(bob, presenceFrom('alice@localhost/flaky'));
    // kill alice's socket without a stream close
    const t0 = Date.now();
    dropConnection(alice);
    // a fixed wait: what is measured is time (the session outlives its socket for the resume window)
    await expectNothing(bob, presenceFrom('alice@localhost/flaky', 'unavailable'), 500);
    await expectStanza(bob, presenceFrom('alice@localhost/flaky', 'unavailable'), 3000);
    assert.ok(Date.now() - t0 >= 900, 'shown online while the session could be resumed');
    await stopAll(bob);
  });

  it('a subscription request to an offline user is stored and delivered at next login', async () => {
    const carol = await online(server, 'carol');
    await carol.send(xml('presence', { to: 'dave@localhost', type: 'subscribe' }, xml('status', {}, 'it is carol')));
    await expectStanza(
      carol,
      push('dave@localhost', (i) => i.attrs.ask === 'subscribe'),
    );
    const dave = await online(server, 'dave');
    const req = await expectStanza(dave, (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'carol@localhost');
    assert.ok(req);
    // dave denies
    await dave.send(xml('presence', { to: 'carol@localhost', type: 'unsubscribed' }));
    await expectStanza(carol, (s) => s.is('presence') && s.attrs.type === 'unsubscribed' && s.attrs.from === 'dave@localhost');
    await expectStanza(
      carol,
      push('dave@localhost', (i) => i.attrs.ask === undefined && i.attrs.subscription === 'none'),
    );
    // nothing pending any more
    await stopAll(dave);
    const again = await online(server, 'dave', 'again');
    await expectNothing(again, (s) => s.is('presence') && s.attrs.type === 'subscribe', { after: [] });
    await stopAll(carol, again);
  });

  it('pre-approval: a subscribed sent first makes the later subscribe succeed at once', async () => {
    const erin = await online(server, 'erin');
    const carol = await online(server, 'carol', 'c2');
    await erin.send(xml('presence', { to: 'carol@localhost', type: 'subscribed' }));
    await expectStanza(
      erin,
      push('carol@localhost', (i) => i.attrs.subscription === 'none'),
    );
    await carol.send(xml('presence', { to: 'erin@localhost', type: 'subscribe' }));
    await expectStanza(carol, (s) => s.is('presence') && s.attrs.type === 'subscribed' && s.attrs.from === 'erin@localhost');
    await expectStanza(
      erin,
      push('carol@localhost', (i) => i.attrs.subscription === 'from'),
    );
    await expectNothing(erin, (s) => s.is('presence') && s.attrs.type === 'subscribe', { after: [carol] });
    await stopAll(erin, carol);
  });

  it('unsubscribe and roster removal cancel subscriptions on both sides', async () => {
    await befriend(server);
    const alice = await online(server, 'alice', 'u');
    const bob = await online(server, 'bob', 'u');
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'unsubscribe' }));
    await expectStanza(
      alice,
      push('bob@localhost', (i) => i.attrs.subscription === 'from'),
    );
    await expectStanza(
      bob,
      push('alice@localhost', (i) => i.attrs.subscription === 'to'),
    );
    await expectStanza(bob, (s) => s.is('presence') && s.attrs.type === 'unsubscribe');
    // bob removes alice entirely: alice loses her 'from' too
    const r = await iq(
      bob,
      xml(
        'iq',
        { type: 'set' },
        xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'alice@localhost', subscription: 'remove' })),
      ),
    );
    assert.equal(r.attrs.type, 'result');
    await expectStanza(
      bob,
      push('alice@localhost', (i) => i.attrs.subscription === 'remove'),
    );
    await expectStanza(
      alice,
      push('bob@localhost', (i) => i.attrs.subscription === 'none'),
    );
    await stopAll(alice, bob);
  });

  it('directed presence reaches a non-contact, and its unavailable follows on logout', async () => {
    const dave = await online(server, 'dave', 'dp');
    const erin = await online(server, 'erin', 'dp');
    await dave.send(xml('presence', { to: 'erin@localhost/dp' }, xml('status', {}, 'hi erin')));
    await expectStanza(erin, (s) => presenceFrom('dave@localhost/dp')(s) && s.getChildText('status') === 'hi erin');
    await dave.stop();
    await expectStanza(erin, presenceFrom('dave@localhost/dp', 'unavailable'));
    await stopAll(erin);
  });

  it('roster set errors: bad JID, several items, duplicate or empty groups, another user’s roster', async () => {
    const c = await online(server, 'carol', 'errs');
    const set = (...items: Element[]) => iq(c, xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, ...items)));
    assert.ok((await set(xml('item', { jid: 'bad@@x' }))).getChild('error')?.getChild('jid-malformed'));
    assert.ok(
      (await set(xml('item', { jid: 'a@localhost' }), xml('item', { jid: 'b@localhost' }))).getChild('error')?.getChild('bad-request'),
    );
    assert.ok(
      (await set(xml('item', { jid: 'a@localhost' }, xml('group', {}, 'G'), xml('group', {}, 'G'))))
        .getChild('error')
        ?.getChild('bad-request'),
    );
    assert.ok((await set(xml('item', { jid: 'a@localhost' }, xml('group', {})))).getChild('error')?.getChild('not-acceptable'));
    assert.ok((await set(xml('item', { jid: 'nobody@localhost', subscription: 'remove' }))).getChild('error')?.getChild('item-not-found'));
    await stopAll(c);
  });
});

describe('roster size cap (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { alice: 'secret' }, config: { modules: { im: { max_roster_items: 2 } } } });
  });
  after(() => server.stop());

  it('refuses one item more than the cap with not-allowed', async () => {
    const c = await online(server, 'alice');
    const add = (jid: string) => iq(c, xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid }))));
    assert.equal((await add('a@localhost')).attrs.type, 'result');
    assert.equal((await add('b@localhost')).attrs.type, 'result');
    assert.ok((await add('c@localhost')).getChild('error')?.getChild('not-allowed'));
    assert.equal((await add('a@localhost')).attrs.type, 'result', 'updating an existing item still works');
    await stopAll(c);
  });
});
