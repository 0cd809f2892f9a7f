// Messages, presence and IQs between real clients (RFC 6120 §10, RFC 6121 §8).
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import type { Element } from 'ltx';
import { startServer } from '../helpers/server.js';
import { barrier, connect, expectStanza, expectNothing, isMessage, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';

const chat = (to: string, body: string, type = 'chat') => xml('message', { to, type }, xml('body', {}, body));

describe('routing (e2e)', () => {
  let server: Server;
  let alice: XmppClient, bob: XmppClient, bob2: XmppClient;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    alice = await connect(server, 'alice', { resource: 'phone' });
    bob = await connect(server, 'bob', { resource: 'pc' });
    bob2 = await connect(server, 'bob', { resource: 'tablet' });
    // initial presences have been broadcast to own resources (each sent, then each received): drop them
    await barrier(alice, bob, bob2, alice, bob);
    for (const c of [alice, bob, bob2]) c.received.length = 0;
  });
  after(async () => {
    await stopAll(alice, bob, bob2);
    await server.stop();
  });

  it('alice sends bob a message to his full JID; the server stamps from', async () => {
    await alice.send(chat('bob@localhost/pc', 'hello pc'));
    const m = await expectStanza(bob, isMessage('hello pc'));
    assert.equal(m.attrs.from, 'alice@localhost/phone');
    await expectNothing(bob2, isMessage('hello pc'), { after: [alice] });
  });

  it('one stream alternating addresses (the parsed address it reuses): each stanza goes where its own to says', async () => {
    const seq: [string, string][] = [
      ['bob@localhost/pc', 'alt 1'],
      ['bob@localhost/pc', 'alt 2'],
      ['bob@localhost/tablet', 'alt 3'],
      ['bob@localhost/pc', 'alt 4'],
      ['BOB@localhost/tablet', 'alt 5'],
    ];
    for (const [to, body] of seq) await alice.send(chat(to, body));
    await alice.send(chat('a@b@c', 'malformed'));
    await alice.send(chat('bob@localhost/pc', 'alt 6'));
    for (const body of ['alt 1', 'alt 2', 'alt 4', 'alt 6']) await expectStanza(bob, isMessage(body));
    for (const body of ['alt 3', 'alt 5']) await expectStanza(bob2, isMessage(body));
    await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error' && !!s.getChild('error')?.getChild('jid-malformed'));
    await expectNothing(bob2, (s) => ['alt 1', 'alt 2', 'alt 4', 'alt 6'].includes(s.getChildText('body') ?? ''), { after: [alice] });
    await expectNothing(bob, (s) => ['alt 3', 'alt 5'].includes(s.getChildText('body') ?? ''), { after: [alice] });
  });

  it('a message to the bare JID goes to every resource of the highest priority', async () => {
    await alice.send(chat('bob@localhost', 'to both'));
    await expectStanza(bob, isMessage('to both'));
    await expectStanza(bob2, isMessage('to both'));
  });

  it('priority picks the resource; negative priority never gets bare-JID messages', async () => {
    try {
      await bob2.send(xml('presence', {}, xml('priority', {}, '5')));
      await barrier(bob2);
      await alice.send(chat('bob@localhost', 'to the priority one'));
      await expectStanza(bob2, isMessage('to the priority one'));
      await expectNothing(bob, isMessage('to the priority one'), { after: [alice] });
      await bob2.send(xml('presence', {}, xml('priority', {}, '-1')));
      await bob.send(xml('presence', {}, xml('priority', {}, '-1')));
      await barrier(bob2, bob);
      // RFC 6121 §8.5.2.1.1: with only negative priorities the user counts as offline: stored, no error
      await alice.send(chat('bob@localhost', 'nobody non-negative'));
      await expectNothing(alice, (s) => s.is('message') && s.attrs.type === 'error', { after: [] });
      await expectNothing(bob, isMessage('nobody non-negative'), { after: [] });
      // a full-JID message still reaches a negative-priority resource
      await alice.send(chat('bob@localhost/pc', 'direct'));
      await expectStanza(bob, isMessage('direct'));
    } finally {
      // back to the default priority (0) for the other tests on this server
      await bob.send(xml('presence'));
      await bob2.send(xml('presence'));
      await barrier(bob, bob2);
    }
  });

  it('messages between two resources of one user', async () => {
    await bob.send(chat('bob@localhost/tablet', 'note to self'));
    const m = await expectStanza(bob2, isMessage('note to self'));
    assert.equal(m.attrs.from, 'bob@localhost/pc');
  });

  it('self-presence is broadcast to the user’s own resources, sender included', async () => {
    bob.received.length = 0;
    bob2.received.length = 0;
    await bob.send(xml('presence', {}, xml('status', {}, 'busy')));
    const p = await expectStanza(bob2, (s) => s.is('presence') && s.getChildText('status') === 'busy');
    assert.equal(p.attrs.from, 'bob@localhost/pc');
    await expectStanza(bob, (s) => s.is('presence') && s.getChildText('status') === 'busy');
  });

  it('a message to an offline user gets service-unavailable when offline storage is disabled', async () => {
    const bare = await startServer({ users: { alice: 'secret', carol: 'secret' }, config: { modules: { disabled: ['offline'] } } });
    const alice = await connect(bare, 'alice');
    await alice.send(chat('carol@localhost', 'are you there'));
    const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.equal(err.attrs.from, 'carol@localhost');
    assert.equal(err.getChild('error')?.attrs.type, 'cancel');
    assert.ok(err.getChild('error')?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    assert.equal(err.getChildText('body'), 'are you there');
    await stopAll(alice);
    await bare.stop();
  });

  it('a message to a user that does not exist gets service-unavailable', async () => {
    await alice.send(chat('nobody@localhost', 'hello?'));
    const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.equal(err.attrs.from, 'nobody@localhost');
    assert.ok(err.getChild('error')?.getChild('service-unavailable'));
  });

  it('chat to a missing resource is treated as bare; headline to a missing resource is dropped', async () => {
    await alice.send(chat('bob@localhost/gone', 'fallback'));
    await expectStanza(bob, isMessage('fallback'));
    await expectStanza(bob2, isMessage('fallback'));
    await alice.send(chat('bob@localhost/gone', 'headline', 'headline'));
    await expectNothing(bob, isMessage('headline'), { after: [alice] });
    await expectNothing(alice, (s) => s.is('message') && s.attrs.type === 'error', { after: [] });
  });

  it('groupchat to a bare JID is an error; error messages are never bounced', async () => {
    await alice.send(chat('bob@localhost', 'gc', 'groupchat'));
    const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.ok(err.getChild('error')?.getChild('service-unavailable'));
    await alice.send(chat('nobody@localhost', 'err', 'error'));
    await expectNothing(alice, (s) => s.is('message') && s.getChildText('body') === 'err', { after: [] });
  });

  it('a remote domain gets remote-server-not-found', async () => {
    await alice.send(chat('romeo@montague.example', 'hi'));
    const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.equal(err.attrs.from, 'romeo@montague.example');
    assert.ok(err.getChild('error')?.getChild('remote-server-not-found'));
  });

  it('a malformed to gets jid-malformed', async () => {
    await alice.send(chat('bad@@jid', 'x'));
    const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.ok(err.getChild('error')?.getChild('jid-malformed'));
    assert.equal(err.getChild('error')?.attrs.type, 'modify');
  });

  it('IQ between resources is delivered; results come back; a missing resource gets service-unavailable', async () => {
    const p = expectStanza(bob, (s) => s.is('iq') && s.attrs.type === 'get');
    const resP = iq(alice, xml('iq', { type: 'get', to: 'bob@localhost/pc' }, xml('query', { xmlns: 'jabber:iq:version' })));
    const req = await p;
    assert.equal(req.attrs.from, 'alice@localhost/phone');
    await bob.send(
      xml(
        'iq',
        { type: 'result', id: req.attrs.id, to: req.attrs.from },
        xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'bobclient')),
      ),
    );
    const res = await resP;
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.getChild('query')?.getChildText('name'), 'bobclient');
    const miss = await iq(alice, xml('iq', { type: 'get', to: 'bob@localhost/nowhere' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(miss.attrs.type, 'error');
    assert.ok(miss.getChild('error')?.getChild('service-unavailable'));
  });

  it('IQ results and errors to nowhere are dropped, never bounced', async () => {
    await alice.send(xml('iq', { type: 'result', id: 'x1', to: 'bob@localhost/nowhere' }));
    await alice.send(xml('iq', { type: 'error', id: 'x2', to: 'localhost' }));
    await expectNothing(alice, (s) => s.is('iq') && (s.attrs.id === 'x1' || s.attrs.id === 'x2'), { after: [] });
  });

  it('unknown IQ namespace gets service-unavailable; IQ without a child gets bad-request', async () => {
    const r = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'urn:example:nothing' })));
    assert.ok(r.getChild('error')?.getChild('service-unavailable'));
    const r2 = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }));
    assert.ok(r2.getChild('error')?.getChild('bad-request'));
  });

  it('presence with an out-of-range priority gets bad-request', async () => {
    await alice.send(xml('presence', {}, xml('priority', {}, '300')));
    const err = await expectStanza(alice, (s) => s.is('presence') && s.attrs.type === 'error');
    assert.ok(err.getChild('error')?.getChild('bad-request'));
  });
});

describe('server features (e2e)', () => {
  let server: Server;
  let alice: XmppClient, bob: XmppClient;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    alice = await connect(server, 'alice');
    bob = await connect(server, 'bob');
  });
  after(async () => {
    await stopAll(alice, bob);
    await server.stop();
  });

  it('XEP-0199 ping to the server', async () => {
    const r = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'localhost');
  });

  it('XEP-0092 version', async () => {
    const r = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
    assert.equal(r.getChild('query')?.getChildText('name'), 'Uzzap');
    assert.match(r.getChild('query')?.getChildText('version') ?? '', /^\d+\.\d+\.\d+/);
  });

  it('XEP-0202 entity time', async () => {
    const r = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('time', { xmlns: 'urn:xmpp:time' })));
    const t = r.getChild('time');
    assert.match(t?.getChildText('tzo') ?? '', /^[+-]\d\d:\d\d$/);
    assert.ok(Math.abs(Date.parse(t?.getChildText('utc') ?? '') - Date.now()) < 5000);
  });

  it('XEP-0030 disco#info lists every module’s features; disco#items answers; unknown node item-not-found', async () => {
    const r = await iq(
      alice,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
    );
    const q = r.getChild('query')!;
    assert.deepEqual(
      q.getChildren('identity').map((i: Element) => `${i.attrs.category}/${i.attrs.type}`),
      ['server/im', 'pubsub/pep'], // XEP-0223 §5: PEP is looked for on the server's JID
    );
    const features = q.getChildren('feature').map((f: Element) => f.attrs.var);
    for (const f of [
      'http://jabber.org/protocol/disco#info',
      'http://jabber.org/protocol/disco#items',
      'jabber:iq:version',
      'urn:xmpp:ping',
      'urn:xmpp:time',
      'urn:xmpp:carbons:2',
      'urn:xmpp:blocking',
      'msgoffline',
      // served on accounts, and advertised on the server too, where clients look (XEP-0054 §5)
      'vcard-temp',
      'jabber:iq:private',
      'urn:xmpp:mam:2',
    ]) {
      assert.ok(features.includes(f), `missing ${f}`);
    }
    const items = await iq(
      alice,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })),
    );
    assert.equal(items.attrs.type, 'result');
    const node = await iq(
      alice,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'nope' })),
    );
    assert.ok(node.getChild('error')?.getChild('item-not-found'));
    const acct = await iq(
      alice,
      xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
    );
    assert.equal(acct.getChild('query')?.getChild('identity')?.attrs.category, 'account');
  });

  it('XEP-0054 vCard: set own, read own and another’s, others cannot write it', async () => {
    const empty = await iq(bob, xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal(empty.attrs.type, 'result');
    const set = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Liddell'), xml('NICKNAME', {}, 'ali'))),
    );
    assert.equal(set.attrs.type, 'result');
    const own = await iq(alice, xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal(own.getChild('vCard')?.getChildText('FN'), 'Alice Liddell');
    const other = await iq(bob, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal(other.attrs.from, 'alice@localhost');
    assert.equal(other.getChild('vCard')?.getChildText('NICKNAME'), 'ali');
    const forbidden = await iq(
      bob,
      xml('iq', { type: 'set', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Mallory'))),
    );
    assert.ok(forbidden.getChild('error')?.getChild('forbidden'));
    const nobody = await iq(bob, xml('iq', { type: 'get', to: 'nobody@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.ok(nobody.getChild('error')?.getChild('service-unavailable'));
  });

  it('XEP-0049 private XML storage: store, fetch, reserved namespaces, only own account', async () => {
    const NS = 'jabber:iq:private';
    const set = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('query', { xmlns: NS }, xml('exodus', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'Hamlet')))),
    );
    assert.equal(set.attrs.type, 'result');
    const get = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: NS }, xml('exodus', { xmlns: 'exodus:prefs' }))));
    assert.equal(get.getChild('query')?.getChild('exodus', 'exodus:prefs')?.getChildText('defaultnick'), 'Hamlet');
    const none = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: NS }, xml('other', { xmlns: 'urn:example:none' }))));
    assert.equal(none.getChild('query')?.getChild('other')?.children.length, 0);
    const reserved = await iq(alice, xml('iq', { type: 'set' }, xml('query', { xmlns: NS }, xml('x', { xmlns: 'jabber:iq:roster' }))));
    assert.ok(reserved.getChild('error')?.getChild('not-acceptable'));
    const others = await iq(
      bob,
      xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: NS }, xml('exodus', { xmlns: 'exodus:prefs' }))),
    );
    assert.ok(others.getChild('error')?.getChild('forbidden'));
  });
});
