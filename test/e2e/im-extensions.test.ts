// Offline storage, carbons, blocking, registration, last activity and account
// deletion, over real sockets.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, isMessage, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { openToSasl, scramLogin } from '../helpers/raw.js';

const chat = (to: string, body: string, ...extra: Element[]) => xml('message', { to, type: 'chat' }, xml('body', {}, body), ...extra);

async function befriend(server: Server, a: string, b: string): Promise<void> {
  const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };
  await server.storage.roster.put(a, { jid: `${b}@localhost`, ...both });
  await server.storage.roster.put(b, { jid: `${a}@localhost`, ...both });
}

describe('offline messages (XEP-0160)', () => {
  it('stores chat messages for an offline user, with a delay stamp, and delivers them in order after a server restart', async () => {
    const slot = await newStorageSlot();
    let server = await startServer({ slot, users: { alice: 'secret', bob: 'secret' } });
    const alice = await connect(server, 'alice');
    for (let i = 1; i <= 3; i++) await alice.send(chat('bob@localhost', `offline ${i}`));
    await alice.send(
      xml('message', { to: 'bob@localhost', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })),
    );
    await expectNothing(alice, (s) => s.is('message') && s.attrs.type === 'error', { after: [] });
    await stopAll(alice);
    await server.stop();
    server = await startServer({ slot });
    const bob = await connect(server, 'bob');
    const got: Element[] = [];
    for (let i = 1; i <= 3; i++) got.push(await expectStanza(bob, isMessage(`offline ${i}`)));
    assert.deepEqual(
      got.map((m) => m.getChildText('body')),
      ['offline 1', 'offline 2', 'offline 3'],
    );
    const delay = got[0]!.getChild('delay', 'urn:xmpp:delay')!;
    assert.equal(delay.attrs.from, 'localhost');
    assert.ok(Math.abs(Date.parse(delay.attrs.stamp) - Date.now()) < 60_000);
    assert.equal(got[0]!.attrs.from, 'alice@localhost/' + got[0]!.attrs.from.split('/')[1]);
    await expectNothing(bob, (s) => s.is('message') && !!s.getChild('composing'), { after: [] });
    assert.equal(await server.storage.offline.count('bob'), 0, 'delivered messages are removed');
    await stopAll(bob);
    await server.stop();
  });

  it('refuses messages beyond the per-user bound with service-unavailable', async () => {
    const server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: { modules: { offline: { max_per_user: 2 } } } });
    const alice = await connect(server, 'alice');
    for (let i = 1; i <= 3; i++) await alice.send(chat('bob@localhost', `n${i}`));
    const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.equal(err.getChildText('body'), 'n3');
    assert.ok(err.getChild('error')?.getChild('service-unavailable'));
    assert.equal(await server.storage.offline.count('bob'), 2);
    await stopAll(alice);
    await server.stop();
  });

  it('a full queue refuses every message of a flood, and takes messages again as soon as they were delivered', async () => {
    const server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: { modules: { offline: { max_per_user: 2 } } } });
    const alice = await connect(server, 'alice');
    for (let i = 1; i <= 40; i++) await alice.send(chat('bob@localhost', `f${i}`));
    for (let i = 3; i <= 40; i++) {
      const err = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error' && s.getChildText('body') === `f${i}`);
      assert.ok(err.getChild('error')?.getChild('service-unavailable'), `f${i}`);
    }
    assert.equal(await server.storage.offline.count('bob'), 2);
    // bob comes online: the two are delivered, and the queue has room again at once
    const bob = await connect(server, 'bob');
    await expectStanza(bob, isMessage('f1'));
    await expectStanza(bob, isMessage('f2'));
    await stopAll(bob);
    await until(async () => (await server.storage.offline.count('bob')) === 0 && server.sessions.size === 1, 'bob gone, his queue empty');
    await alice.send(chat('bob@localhost', 'after'));
    await until(async () => (await server.storage.offline.count('bob')) === 1, 'the new message stored');
    await expectNothing(alice, (s) => s.is('message') && s.attrs.type === 'error' && s.getChildText('body') === 'after', { after: [alice] });
    await stopAll(alice);
    await server.stop();
  });

  it('keeps messages while only negative-priority resources are online, delivers on a non-negative one', async () => {
    const server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    const bobHidden = await connect(server, 'bob', { resource: 'hidden', presence: false });
    await bobHidden.send(xml('presence', {}, xml('priority', {}, '-5')));
    const alice = await connect(server, 'alice');
    await alice.send(chat('bob@localhost', 'for later'));
    await expectNothing(bobHidden, isMessage('for later'), { after: [alice] });
    const bob = await connect(server, 'bob', { resource: 'visible' });
    await expectStanza(bob, isMessage('for later'));
    await stopAll(alice, bob, bobHidden);
    await server.stop();
  });
});

describe('carbons (XEP-0280)', () => {
  let server: Server;
  let phone: XmppClient, laptop: XmppClient, old: XmppClient, bob: XmppClient;
  const enable = (c: XmppClient) => iq(c, xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:carbons:2' })));
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    phone = await connect(server, 'alice', { resource: 'phone' });
    laptop = await connect(server, 'alice', { resource: 'laptop' });
    old = await connect(server, 'alice', { resource: 'old' }); // never enables carbons
    bob = await connect(server, 'bob', { resource: 'b' });
    assert.equal((await enable(phone)).attrs.type, 'result');
    assert.equal((await enable(laptop)).attrs.type, 'result');
  });
  after(async () => {
    await stopAll(phone, laptop, old, bob);
    await server.stop();
  });

  it('advertises urn:xmpp:carbons:2', async () => {
    const r = await iq(
      phone,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
    );
    assert.ok(
      r
        .getChild('query')!
        .getChildren('feature')
        .some((f: Element) => f.attrs.var === 'urn:xmpp:carbons:2'),
    );
  });

  it('a message received by one resource is copied to the other enabled ones', async () => {
    await bob.send(chat('alice@localhost/phone', 'to the phone'));
    await expectStanza(phone, isMessage('to the phone'));
    const c = await expectStanza(laptop, (s) => s.is('message') && !!s.getChild('received', 'urn:xmpp:carbons:2'));
    assert.equal(c.attrs.from, 'alice@localhost');
    const fwd = c.getChild('received')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message', 'jabber:client')!;
    assert.equal(fwd.getChildText('body'), 'to the phone');
    assert.equal(fwd.attrs.from, 'bob@localhost/b');
    await expectNothing(old, (s) => s.is('message'), { after: [bob] });
  });

  it('a message sent by one resource is copied to the other enabled ones', async () => {
    await laptop.send(chat('bob@localhost/b', 'from the laptop'));
    await expectStanza(bob, isMessage('from the laptop'));
    const c = await expectStanza(phone, (s) => s.is('message') && !!s.getChild('sent', 'urn:xmpp:carbons:2'));
    assert.equal(c.getChild('sent')!.getChild('forwarded')!.getChild('message')!.attrs.to, 'bob@localhost/b');
    await expectNothing(laptop, (s) => s.is('message') && !!s.getChild('sent'), { after: [] });
  });

  it('<private/> and the no-copy hint keep a message out of carbons on both sides', async () => {
    await laptop.send(chat('bob@localhost/b', 'secret one', xml('private', { xmlns: 'urn:xmpp:carbons:2' })));
    await expectStanza(bob, isMessage('secret one'));
    await phone.send(chat('alice@localhost/laptop', 'self note'));
    await expectStanza(laptop, isMessage('self note'));
    await bob.send(chat('alice@localhost/phone', 'no copy please', xml('no-copy', { xmlns: 'urn:xmpp:hints' })));
    await expectStanza(phone, isMessage('no copy please'));
    await expectNothing(laptop, (s) => s.is('message') && !!(s.getChild('sent') || s.getChild('received')), { after: [phone, bob] });
  });

  it('disable stops the copies', async () => {
    await iq(laptop, xml('iq', { type: 'set' }, xml('disable', { xmlns: 'urn:xmpp:carbons:2' })));
    try {
      await bob.send(chat('alice@localhost/phone', 'after disable'));
      await expectStanza(phone, isMessage('after disable'));
      await expectNothing(laptop, (s) => s.is('message'), { after: [bob] });
    } finally {
      assert.equal((await enable(laptop)).attrs.type, 'result'); // as the other tests expect it
    }
  });
});

describe('blocking (XEP-0191)', () => {
  let server: Server;
  let alice: XmppClient, mallory: XmppClient;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', mallory: 'secret' } });
    await befriend(server, 'alice', 'mallory');
    alice = await connect(server, 'alice', { resource: 'a', presence: false });
    await iq(alice, xml('iq', { type: 'get' }, xml('blocklist', { xmlns: 'urn:xmpp:blocking' })));
    await alice.send(xml('presence'));
    mallory = await connect(server, 'mallory', { resource: 'm' });
  });
  after(async () => {
    await stopAll(alice, mallory);
    await server.stop();
  });

  it('block: pushed, the blocked contact sees us go offline and cannot reach us; we cannot reach them', async () => {
    await expectStanza(mallory, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/a' && !s.attrs.type);
    const r = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'mallory@localhost' }))),
    );
    assert.equal(r.attrs.type, 'result');
    await expectStanza(alice, (s) => s.is('iq') && s.attrs.type === 'set' && !!s.getChild('block', 'urn:xmpp:blocking'));
    await expectStanza(mallory, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/a' && s.attrs.type === 'unavailable');
    await mallory.send(chat('alice@localhost', 'spam'));
    const err = await expectStanza(mallory, (s) => s.is('message') && s.attrs.type === 'error');
    assert.ok(err.getChild('error')?.getChild('service-unavailable'));
    await expectNothing(alice, isMessage('spam'), { after: [mallory] });
    await alice.send(chat('mallory@localhost', 'oops'));
    const out = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error');
    assert.ok(out.getChild('error')?.getChild('not-acceptable'));
    assert.ok(out.getChild('error')?.getChild('blocked', 'urn:xmpp:blocking:errors'));
    // presence changes no longer reach mallory
    await alice.send(xml('presence', {}, xml('status', {}, 'hidden from mallory')));
    await expectNothing(mallory, (s) => s.is('presence') && s.getChildText('status') === 'hidden from mallory', { after: [alice] });
    const list = await iq(alice, xml('iq', { type: 'get' }, xml('blocklist', { xmlns: 'urn:xmpp:blocking' })));
    assert.deepEqual(
      list
        .getChild('blocklist')!
        .getChildren('item')
        .map((i: Element) => i.attrs.jid),
      ['mallory@localhost'],
    );
  });

  it('unblock (all): pushed, messages flow again', async () => {
    const r = await iq(alice, xml('iq', { type: 'set' }, xml('unblock', { xmlns: 'urn:xmpp:blocking' })));
    assert.equal(r.attrs.type, 'result');
    await expectStanza(alice, (s) => s.is('iq') && s.attrs.type === 'set' && !!s.getChild('unblock', 'urn:xmpp:blocking'));
    await mallory.send(chat('alice@localhost/a', 'sorry'));
    await expectStanza(alice, isMessage('sorry'));
  });

  it('empty block and bad JIDs are errors', async () => {
    const empty = await iq(alice, xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' })));
    assert.ok(empty.getChild('error')?.getChild('bad-request'));
    const bad = await iq(alice, xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'a@@b' }))));
    assert.ok(bad.getChild('error')?.getChild('jid-malformed'));
  });
});

describe('in-band registration (XEP-0077)', () => {
  const registerOn = async (server: Server, username: string, password: string): Promise<string> => {
    const c = await openToSasl(server.ports.c2s);
    c.send(
      `<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${username}</username><password>${password}</password></query></iq>`,
    );
    const out = await c.waitFor(/<iq[^>]*id=.reg1.[\s\S]*?(\/>|<\/iq>)/);
    c.end();
    return out;
  };

  it('is closed by default: service-unavailable without an invitation token (the feature is offered for tokens, XEP-0445)', async () => {
    const server = await startServer();
    const c = await openToSasl(server.ports.c2s);
    assert.match(c.data, /<register xmlns='http:\/\/jabber.org\/features\/iq-register'\/><register xmlns='urn:xmpp:invite'\/><register xmlns='urn:xmpp:ibr-token:0'\/>/);
    c.end();
    assert.match(await registerOn(server, 'newbie', 'pw'), /service-unavailable/);
    assert.equal(await server.storage.accounts.get('newbie'), undefined);
    await server.stop();
  });

  it('closed, without the invitations module: no feature at all', async () => {
    const server = await startServer({ config: { modules: { disabled: ['invites'] } } });
    const c = await openToSasl(server.ports.c2s);
    assert.doesNotMatch(c.data, /iq-register|urn:xmpp:invite|ibr-token/);
    c.end();
    assert.match(await registerOn(server, 'newbie', 'pw'), /service-unavailable/);
    await server.stop();
  });

  describe('when open', () => {
    // a server per test: registrations count against the address's allowance
    let server: Server;
    beforeEach(async () => {
      server = await startServer({
        users: { taken: 'secret' },
        config: { registration: 'open', modules: { register: { per_address: 3 } } },
      });
    });
    afterEach(() => server.stop());

    it('advertises the feature and the form, registers, and the new account logs in', async () => {
      const c = await openToSasl(server.ports.c2s);
      assert.match(c.data, /<register xmlns='http:\/\/jabber.org\/features\/iq-register'\/>/);
      c.send("<iq type='get' id='f1'><query xmlns='jabber:iq:register'/></iq>");
      await c.waitFor(/<username\/><password\/>/);
      c.end();
      assert.match(await registerOn(server, 'newbie', 'pw1'), /type="result"/);
      const login = await openToSasl(server.ports.c2s);
      assert.match(await scramLogin(login, 'SCRAM-SHA-256', 'newbie', 'pw1'), /^<success/);
      login.end();
    });

    it('refuses taken names (conflict), missing fields (not-acceptable), and too many from one address', async () => {
      assert.match(await registerOn(server, 'taken', 'x'), /<conflict/);
      const c = await openToSasl(server.ports.c2s);
      c.send("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>x</username></query></iq>");
      await c.waitFor('<not-acceptable');
      c.end();
      assert.match(await registerOn(server, 'first', 'pw'), /type="result"/);
      assert.match(await registerOn(server, 'second', 'pw'), /type="result"/);
      assert.match(await registerOn(server, 'third', 'pw'), /type="result"/);
      assert.match(await registerOn(server, 'fourth', 'pw'), /resource-constraint/);
    });

    it('a logged-in user changes the password, then cancels the account', async () => {
      assert.match(await registerOn(server, 'newbie', 'pw1'), /type="result"/);
      const c = await connect(server, 'newbie', { password: 'pw1' });
      const ch = await iq(
        c,
        xml(
          'iq',
          { type: 'set' },
          xml('query', { xmlns: 'jabber:iq:register' }, xml('username', {}, 'newbie'), xml('password', {}, 'pw2')),
        ),
      );
      assert.equal(ch.attrs.type, 'result');
      const closed = new Promise<string>((r) => c.on('error', (e: Error) => r(e.message)));
      const rm = await iq(c, xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('remove'))));
      assert.equal(rm.attrs.type, 'result');
      assert.match(await closed, /not-authorized/);
      // the sessions close first, then the data goes
      await until(async () => (await server.storage.accounts.get('newbie')) === undefined, 'account removed');
    });
  });
});

describe('last activity (XEP-0012) and account deletion', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    await befriend(server, 'alice', 'bob');
  });
  after(() => server.stop());

  it('tells a subscriber how long ago a contact logged out, with the status; 0 while online; forbidden otherwise', async () => {
    const bob = await connect(server, 'bob');
    const alice = await connect(server, 'alice');
    const online = await iq(alice, xml('iq', { type: 'get', to: 'bob@localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
    assert.equal(online.getChild('query')!.attrs.seconds, '0');
    await bob.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'Heading home')));
    await stopAll(bob);
    // asked until the answer counts a whole second since the logout (the last activity counts up)
    let r = online;
    await until(async () => {
      r = await iq(alice, xml('iq', { type: 'get', to: 'bob@localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
      return Number(r.getChild('query')?.attrs.seconds) >= 1;
    }, 'a second of last activity since the logout');
    assert.equal(r.getChild('query')!.getText(), 'Heading home');
    const carol = await connect(server, 'carol');
    const no = await iq(carol, xml('iq', { type: 'get', to: 'bob@localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
    assert.ok(no.getChild('error')?.getChild('forbidden'));
    const uptime = await iq(carol, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
    assert.match(uptime.getChild('query')!.attrs.seconds, /^\d+$/);
    await stopAll(alice, carol);
  });

  it('deleting an account removes its data and its roster entries on both sides, with a push to online contacts', async () => {
    const alice = await connect(server, 'alice', { presence: false });
    await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await alice.send(xml('presence'));
    await server.storage.userData.set('bob', 'vcard', '', '<vCard xmlns="vcard-temp"/>');
    await server.storage.offline.push('bob', '<message/>', 10);
    await server.accounts.delete('bob');
    await expectStanza(alice, (s) => s.is('iq') && s.getChild('query')?.getChild('item')?.attrs.subscription === 'remove');
    assert.equal((await server.storage.roster.get('alice')).items.length, 0);
    assert.equal((await server.storage.roster.get('bob')).items.length, 0);
    assert.equal(await server.storage.userData.get('bob', 'vcard', ''), undefined);
    assert.equal(await server.storage.offline.count('bob'), 0);
    await stopAll(alice);
  });
});
