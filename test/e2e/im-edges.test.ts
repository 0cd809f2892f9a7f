// Edge cases found in review: ordering at close, re-availability, self traffic,
// deletion seen by contacts, requests to missing accounts.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { barrier, connect, expectNothing, expectStanza, isMessage, iq, stopAll, until, xml } from '../helpers/clients.js';
import { rawSession } from '../helpers/raw.js';

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));
const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };

describe('IM edge cases (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret' } });
    await server.storage.roster.put('alice', { jid: 'bob@localhost', ...both });
    await server.storage.roster.put('bob', { jid: 'alice@localhost', ...both });
  });
  after(() => server.stop());

  it('stanzas sent just before </stream:stream> are still delivered, in order', async () => {
    const bob = await connect(server, 'bob', { resource: 'listen' });
    const c = await rawSession(server.ports.c2s, 'carol', 'secret', 'bot');
    c.send(
      "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>" +
        "<message to='bob@localhost/listen' type='chat'><body>one</body></message>" +
        "<message to='bob@localhost/listen' type='chat'><body>two</body></message></stream:stream>",
    );
    const first = await expectStanza(bob, isMessage('one'));
    const second = await expectStanza(bob, isMessage('two'));
    assert.ok(first && second);
    await c.waitFor('</stream:stream>');
    await stopAll(bob);
  });

  it('offline messages are delivered whenever a connected resource becomes available again', async () => {
    const dave = await connect(server, 'dave');
    await dave.send(xml('presence', { type: 'unavailable' }));
    await barrier(dave);
    const carol = await connect(server, 'carol');
    await carol.send(chat('dave@localhost', 'while you were away'));
    await expectNothing(dave, isMessage('while you were away'), { after: [carol] });
    await dave.send(xml('presence'));
    await expectStanza(dave, isMessage('while you were away'));
    await until(async () => (await server.storage.offline.count('dave')) === 0, 'delivered messages removed');
    await stopAll(dave, carol);
    await until(async () => server.sessions.countOf('dave@localhost') === 0, 'dave gone');
  });

  it('offline storage keeps body-less receipts but not bare chat states', async () => {
    const carol = await connect(server, 'carol');
    await carol.send(xml('message', { to: 'dave@localhost', id: 'r1' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' })));
    await carol.send(
      xml('message', { to: 'dave@localhost', type: 'chat' }, xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' })),
    );
    // both handled, and whatever they started (storing offline) finished
    await barrier(carol);
    await server.background.settled();
    assert.equal(await server.storage.offline.count('dave'), 1);
    await server.storage.offline.deleteAll('dave');
    await stopAll(carol);
  });

  it('blocking one’s own domain does not break one’s own traffic with the server', async () => {
    const carol = await connect(server, 'carol', { resource: 'self' });
    await iq(carol, xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'localhost' }))));
    const roster = await iq(carol, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.equal(roster.attrs.type, 'result');
    const ping = await iq(carol, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(ping.attrs.type, 'result');
    await iq(carol, xml('iq', { type: 'set' }, xml('unblock', { xmlns: 'urn:xmpp:blocking' })));
    await stopAll(carol);
  });

  it('a message between one’s own resources produces no carbons', async () => {
    const [a1, a2, a3] = await Promise.all(['a1', 'a2', 'a3'].map((r) => connect(server, 'alice', { resource: r })));
    for (const c of [a1!, a2!, a3!]) await iq(c, xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:carbons:2' })));
    await a1!.send(chat('alice@localhost/a2', 'note to self'));
    await expectStanza(a2!, isMessage('note to self'));
    await expectNothing(a3!, (s: Element) => s.is('message'), { after: [a1!] });
    await stopAll(a1, a2, a3);
  });

  it('a new resource sees the user’s other available resources', async () => {
    const first = await connect(server, 'carol', { resource: 'first' });
    await first.send(xml('presence', {}, xml('status', {}, 'on the phone')));
    const second = await connect(server, 'carol', { resource: 'second' });
    const p = await expectStanza(second, (s: Element) => s.is('presence') && s.attrs.from === 'carol@localhost/first');
    assert.equal(p.getChildText('status'), 'on the phone');
    await stopAll(first, second);
  });

  it('a subscription request to a missing account is declined and not stored', async () => {
    const carol = await connect(server, 'carol');
    // the decline is an inbound unsubscribed: it goes to resources that asked for the roster (RFC 6121 §3.2.3)
    await iq(carol, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await carol.send(xml('presence', { to: 'ghost@localhost', type: 'subscribe' }));
    await expectStanza(carol, (s: Element) => s.is('presence') && s.attrs.type === 'unsubscribed' && s.attrs.from === 'ghost@localhost');
    assert.deepEqual(await server.storage.roster.pending('ghost'), []);
    await stopAll(carol);
  });

  it('another user’s missing vCard looks like a missing account (no enumeration)', async () => {
    const carol = await connect(server, 'carol');
    const r = await iq(carol, xml('iq', { type: 'get', to: 'dave@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.ok(r.getChild('error')?.getChild('service-unavailable'));
    await stopAll(carol);
  });

  it('a pre-approval is shown in the roster push', async () => {
    const carol = await connect(server, 'carol', { presence: false });
    await iq(carol, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await carol.send(xml('presence', { to: 'dave@localhost', type: 'subscribed' }));
    const push = await expectStanza(
      carol,
      (s: Element) => s.is('iq') && s.getChild('query')?.getChild('item')?.attrs.jid === 'dave@localhost',
    );
    assert.equal(push.getChild('query')!.getChild('item')!.attrs.approved, 'true');
    await stopAll(carol);
  });

  it('deleting an account shows it as offline to its contacts first', async () => {
    const alice = await connect(server, 'alice', { resource: 'watch' });
    const bob = await connect(server, 'bob', { resource: 'doomed' });
    await expectStanza(alice, (s: Element) => s.is('presence') && s.attrs.from === 'bob@localhost/doomed' && !s.attrs.type);
    await server.accounts.delete('bob');
    await expectStanza(
      alice,
      (s: Element) => s.is('presence') && s.attrs.from === 'bob@localhost/doomed' && s.attrs.type === 'unavailable',
    );
    assert.equal(await server.storage.userData.get('bob', 'last', ''), undefined);
    await stopAll(alice, bob);
  });
});

describe('offline queue full (e2e)', () => {
  it("a message refused because the offline queue is full bounces without the recipient's archive id", async () => {
    const server = await startServer({ config: { modules: { offline: { max_per_user: 1 } } }, users: { alice: 'secret', bob: 'secret' } });
    const alice = await connect(server, 'alice');
    try {
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'k1' }, xml('body', {}, 'kept')));
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'k2' }, xml('body', {}, 'refused')));
      const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === 'k2');
      assert.ok(err.getChild('error')!.getChild('service-unavailable'));
      assert.equal(err.getChild('stanza-id', 'urn:xmpp:sid:0'), undefined, err.toString());
      await expectNothing(alice, (s) => s.is('message') && s.attrs.id === 'k1', { after: [] });
    } finally {
      await stopAll(alice);
      await server.stop();
    }
  });
});

describe('private storage bound (e2e)', () => {
  it('refuses one namespace more than modules.private.max_items, still updates existing ones', async () => {
    const server = await startServer({ users: { alice: 'secret' }, config: { modules: { private: { max_items: 1 } } } });
    const c = await connect(server, 'alice');
    const store = (ns: string) =>
      iq(c, xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('prefs', { xmlns: ns }))));
    assert.equal((await store('urn:example:one')).attrs.type, 'result');
    assert.ok((await store('urn:example:two')).getChild('error')?.getChild('resource-constraint'));
    assert.equal((await store('urn:example:one')).attrs.type, 'result');
    await stopAll(c);
    await server.stop();
  });
});
