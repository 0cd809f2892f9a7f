// Multi-User Chat (XEP-0045 and friends) over real sockets with @xmpp/client.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer } from '../helpers/server.js';
import {
  ADMIN,
  DATA,
  MUC,
  OWNER,
  SERVICE,
  USER,
  adminSet,
  codes,
  configure,
  createRoom,
  errorOf,
  field,
  item,
  join,
  presenceFrom,
} from '../helpers/muc.js';
import {
  barrier,
  connect,
  dropConnection,
  expectNothing,
  expectStanza,
  iq,
  stopAll,
  until,
  xml,
  type XmppClient,
} from '../helpers/clients.js';

const USERS = Object.fromEntries(['alice', 'bob', 'carol', 'dave', 'eve', 'frank'].map((u) => [u, 'secret']));

describe('multi-user chat (XEP-0045)', function () {
  this.timeout(30_000);
  let server: Server;
  const open: XmppClient[] = [];
  const client = async (u: string, resource?: string): Promise<XmppClient> => {
    const c = await connect(server, u, { resource });
    open.push(c);
    return c;
  };
  beforeEach(async () => {
    server = await startServer({ users: USERS, config: { admins: ['frank@localhost'] } });
  });
  afterEach(async () => {
    await stopAll(...open.splice(0));
    await server.stop();
  });

  describe('rooms', () => {
    it('creates a locked room (201) that others cannot enter until the owner submits the instant-room form', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const j = await join(alice, 'lobby', 'Alice');
      assert.deepEqual(codes(j.self), [110, 201]);
      assert.deepEqual(item(j.self), { affiliation: 'owner', role: 'moderator', jid: alice.jid!.toString() });
      const denied = await join(bob, 'lobby', 'Bob');
      assert.equal(errorOf(denied.self), 'item-not-found');
      await configure(alice, 'lobby');
      const ok = await join(bob, 'lobby', 'Bob');
      assert.deepEqual(codes(ok.self), [110]);
      assert.equal(item(ok.self).role, 'participant');
      assert.equal(item(ok.self).affiliation, 'none');
    });

    it('offers a reserved-room configuration form and applies it', async () => {
      const alice = await client('alice');
      await join(alice, 'den', 'Alice');
      const form = await iq(alice, xml('iq', { type: 'get', to: `den@${SERVICE}` }, xml('query', { xmlns: OWNER })));
      const vars = form
        .getChild('query')!
        .getChild('x', DATA)!
        .getChildren('field')
        .map((f) => f.attrs.var);
      for (const v of [
        'muc#roomconfig_roomname',
        'muc#roomconfig_roomdesc',
        'muc#roomconfig_publicroom',
        'muc#roomconfig_persistentroom',
        'muc#roomconfig_membersonly',
        'muc#roomconfig_passwordprotectedroom',
        'muc#roomconfig_roomsecret',
        'muc#roomconfig_moderatedroom',
        'muc#roomconfig_maxusers',
        'muc#roomconfig_whois',
        'muc#maxhistoryfetch',
        'muc#roomconfig_allowpm',
        'muc#roomconfig_changesubject',
        'muc#roomconfig_allowinvites',
      ])
        assert.ok(vars.includes(v), `form has ${v}`);
      await configure(alice, 'den', {
        'muc#roomconfig_roomname': 'The Den',
        'muc#roomconfig_whois': 'anyone',
        'muc#roomconfig_publicroom': '0',
      });
      const info = await iq(
        alice,
        xml('iq', { type: 'get', to: `den@${SERVICE}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      const q = info.getChild('query')!;
      assert.equal(q.getChild('identity')!.attrs.name, 'The Den');
      const features = q.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.includes('muc_nonanonymous') && features.includes('muc_hidden') && features.includes('muc_temporary'));
      const bad = await configure(alice, 'den', { 'muc#roomconfig_whois': 'everybody' });
      assert.equal(errorOf(bad), 'not-acceptable');
      const bob = await client('bob');
      const notOwner = await iq(bob, xml('iq', { type: 'get', to: `den@${SERVICE}` }, xml('query', { xmlns: OWNER })));
      assert.equal(errorOf(notOwner), 'forbidden');
    });

    it('destroys a room with a reason and an alternate venue; only owners may', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'doomed', 'Alice');
      await join(bob, 'doomed', 'Bob');
      const destroy = (c: XmppClient) =>
        iq(
          c,
          xml(
            'iq',
            { type: 'set', to: `doomed@${SERVICE}` },
            xml('query', { xmlns: OWNER }, xml('destroy', { jid: `new@${SERVICE}` }, xml('reason', {}, 'moving'))),
          ),
        );
      assert.equal(errorOf(await destroy(bob)), 'forbidden');
      assert.equal((await destroy(alice)).attrs.type, 'result');
      const gone = await expectStanza(bob, presenceFrom(`doomed@${SERVICE}/Bob`, 'unavailable'));
      const d = gone.getChild('x', USER)!.getChild('destroy')!;
      assert.equal(d.attrs.jid, `new@${SERVICE}`);
      assert.equal(d.getChildText('reason'), 'moving');
      const info = await iq(
        bob,
        xml('iq', { type: 'get', to: `doomed@${SERVICE}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      assert.equal(errorOf(info), 'item-not-found');
    });

    it('a temporary room vanishes when its last occupant leaves', async () => {
      const alice = await client('alice');
      await createRoom(alice, 'brief', 'Alice');
      await alice.send(xml('presence', { to: `brief@${SERVICE}/Alice`, type: 'unavailable' }));
      const bye = await expectStanza(alice, presenceFrom(`brief@${SERVICE}/Alice`, 'unavailable'));
      assert.deepEqual(codes(bye), [110]);
      await until(async () => {
        const r = await iq(
          alice,
          xml('iq', { type: 'get', to: `brief@${SERVICE}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
        );
        return errorOf(r) === 'item-not-found';
      }, 'the room is gone');
    });
  });

  describe('occupants', () => {
    it('sends existing occupants, then the newcomer to all, then self-presence, history and subject, in order', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'order', 'Alice', { 'muc#roomconfig_whois': 'anyone' });
      await alice.send(xml('message', { to: `order@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'before bob')));
      await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'before bob');
      const seen: Element[] = [];
      bob.on('stanza', (s: Element) => seen.push(s));
      await join(bob, 'order', 'Bob');
      const kinds = seen.map((s) =>
        s.is('presence')
          ? codes(s).includes(110)
            ? 'self'
            : `presence:${s.attrs.from.split('/')[1]}`
          : s.getChild('subject')
            ? 'subject'
            : 'history',
      );
      assert.deepEqual(kinds, ['presence:Alice', 'self', 'history', 'subject']);
      const self = seen[1]!;
      assert.deepEqual(codes(self), [100, 110], 'non-anonymous room: 100 with 110');
      assert.ok(seen[2]!.getChild('delay', 'urn:xmpp:delay'), 'history carries a delay stamp');
      const onAlice = await expectStanza(alice, presenceFrom(`order@${SERVICE}/Bob`));
      assert.equal(item(onAlice).jid, bob.jid!.toString(), 'non-anonymous: everyone sees the real JID');
      assert.ok(onAlice.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id);
    });

    it('semi-anonymous: only moderators see real JIDs', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'semi', 'Alice');
      await join(bob, 'semi', 'Bob');
      const toAlice = await expectStanza(alice, presenceFrom(`semi@${SERVICE}/Bob`));
      assert.equal(item(toAlice).jid, bob.jid!.toString());
      await join(carol, 'semi', 'Carol');
      const toBob = await expectStanza(bob, presenceFrom(`semi@${SERVICE}/Carol`));
      assert.equal(item(toBob).jid, undefined);
    });

    it('changes nicknames (303), refuses a taken nickname (409), broadcasts presence updates and leaving', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'nicks', 'Alice');
      await join(bob, 'nicks', 'Bob');
      await alice.send(xml('presence', { to: `nicks@${SERVICE}/Bob` }));
      const conflict = await expectStanza(alice, (s) => s.is('presence') && s.attrs.type === 'error');
      assert.equal(conflict.attrs.from, `nicks@${SERVICE}/Bob`);
      assert.equal(errorOf(conflict), 'conflict');
      await bob.send(xml('presence', { to: `nicks@${SERVICE}/Robert` }));
      const out = await expectStanza(alice, presenceFrom(`nicks@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(codes(out), [303]);
      assert.equal(item(out).nick, 'Robert');
      await expectStanza(alice, presenceFrom(`nicks@${SERVICE}/Robert`));
      const selfOut = await expectStanza(bob, presenceFrom(`nicks@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(codes(selfOut), [110, 303]);
      await expectStanza(bob, (s) => presenceFrom(`nicks@${SERVICE}/Robert`)(s) && codes(s).includes(110));
      await bob.send(xml('presence', { to: `nicks@${SERVICE}/Robert` }, xml('show', {}, 'away'), xml('status', {}, 'lunch')));
      const upd = await expectStanza(alice, (s) => presenceFrom(`nicks@${SERVICE}/Robert`)(s) && s.getChildText('show') === 'away');
      assert.equal(upd.getChildText('status'), 'lunch');
      await bob.send(xml('presence', { to: `nicks@${SERVICE}/Robert`, type: 'unavailable' }, xml('status', {}, 'bye')));
      const left = await expectStanza(alice, presenceFrom(`nicks@${SERVICE}/Robert`, 'unavailable'));
      assert.equal(left.getChildText('status'), 'bye');
      assert.equal(item(left).role, 'none');
    });

    it('enforces max occupants (503), members-only (407), password (401) and bans (403)', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'small', 'Alice', { 'muc#roomconfig_maxusers': '2' });
      await join(bob, 'small', 'Bob');
      assert.equal(errorOf((await join(carol, 'small', 'Carol')).self), 'service-unavailable');

      await createRoom(alice, 'club', 'Alice', { 'muc#roomconfig_membersonly': '1' });
      assert.equal(errorOf((await join(bob, 'club', 'Bob')).self), 'registration-required');
      await adminSet(alice, 'club', xml('item', { jid: 'bob@localhost', affiliation: 'member' }));
      assert.deepEqual(codes((await join(bob, 'club', 'Bob')).self), [110]);

      await createRoom(alice, 'vault', 'Alice', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'sesame' });
      const noPw = await join(carol, 'vault', 'Carol');
      assert.equal(errorOf(noPw.self), 'not-authorized');
      assert.equal(noPw.self.getChild('error')!.attrs.type, 'auth');
      assert.equal(errorOf((await join(carol, 'vault', 'Carol', [xml('password', {}, 'wrong')])).self), 'not-authorized');
      assert.deepEqual(codes((await join(carol, 'vault', 'Carol', [xml('password', {}, 'sesame')])).self), [110]);

      await adminSet(alice, 'vault', xml('item', { jid: 'carol@localhost', affiliation: 'outcast' }, xml('reason', {}, 'spam')));
      const banned = await expectStanza(carol, presenceFrom(`vault@${SERVICE}/Carol`, 'unavailable'));
      assert.deepEqual(codes(banned), [110, 301]);
      assert.equal(errorOf((await join(carol, 'vault', 'Carol', [xml('password', {}, 'sesame')])).self), 'forbidden');
    });

    it('reserves a registered nickname (XEP-0045 §7.10) and tells its owner', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'reg', 'Alice');
      const form = await iq(bob, xml('iq', { type: 'get', to: `reg@${SERVICE}` }, xml('query', { xmlns: 'jabber:iq:register' })));
      assert.ok(form.getChild('query')!.getChild('x', DATA));
      const submit = xml(
        'x',
        { xmlns: DATA, type: 'submit' },
        ...field({ FORM_TYPE: 'http://jabber.org/protocol/muc#register', 'muc#register_roomnick': 'Bobby' }),
      );
      assert.equal(
        (await iq(bob, xml('iq', { type: 'set', to: `reg@${SERVICE}` }, xml('query', { xmlns: 'jabber:iq:register' }, submit)))).attrs.type,
        'result',
      );
      assert.equal(errorOf((await join(carol, 'reg', 'Bobby')).self), 'conflict');
      const reserved = await iq(
        bob,
        xml(
          'iq',
          { type: 'get', to: `reg@${SERVICE}` },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'x-roomuser-item' }),
        ),
      );
      assert.equal(reserved.getChild('query')!.getChild('identity')!.attrs.name, 'Bobby');
      assert.deepEqual(codes((await join(bob, 'reg', 'Bobby')).self), [110]);
      assert.equal(item(await expectStanza(alice, presenceFrom(`reg@${SERVICE}/Bobby`))).affiliation, 'member');
    });

    it('lets one user join with the same nickname from two sessions', async () => {
      const alice = await client('alice');
      const bob1 = await client('bob', 'phone');
      const bob2 = await client('bob', 'laptop');
      await createRoom(alice, 'multi', 'Alice');
      await join(bob1, 'multi', 'Bob');
      await join(bob2, 'multi', 'Bob');
      await alice.send(xml('message', { to: `multi@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'both?')));
      await expectStanza(bob1, (s) => s.getChildText('body') === 'both?');
      await expectStanza(bob2, (s) => s.getChildText('body') === 'both?');
      await bob1.send(xml('presence', { to: `multi@${SERVICE}/Bob`, type: 'unavailable' }));
      await expectStanza(bob1, presenceFrom(`multi@${SERVICE}/Bob`, 'unavailable'));
      await expectNothing(alice, presenceFrom(`multi@${SERVICE}/Bob`, 'unavailable'), { after: [bob1] });
    });
  });

  describe('roles and affiliations', () => {
    it('kicks (307) with actor and reason; participants may not kick; nobody kicks an owner', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'kicks', 'Alice');
      await join(bob, 'kicks', 'Bob');
      await join(carol, 'kicks', 'Carol');
      assert.equal(errorOf(await adminSet(bob, 'kicks', xml('item', { nick: 'Carol', role: 'none' }))), 'forbidden');
      await adminSet(alice, 'kicks', xml('item', { nick: 'Bob', role: 'moderator' }));
      await expectStanza(carol, (s) => presenceFrom(`kicks@${SERVICE}/Bob`)(s) && item(s).role === 'moderator');
      assert.equal(errorOf(await adminSet(bob, 'kicks', xml('item', { nick: 'Alice', role: 'none' }))), 'not-allowed');
      const r = await adminSet(bob, 'kicks', xml('item', { nick: 'Carol', role: 'none' }, xml('reason', {}, 'be nice')));
      assert.equal(r.attrs.type, 'result');
      const kicked = await expectStanza(carol, presenceFrom(`kicks@${SERVICE}/Carol`, 'unavailable'));
      assert.deepEqual(codes(kicked), [110, 307]);
      const it = kicked.getChild('x', USER)!.getChild('item')!;
      assert.equal(it.getChild('actor')!.attrs.nick, 'Bob');
      assert.equal(it.getChildText('reason'), 'be nice');
      assert.deepEqual(codes(await expectStanza(alice, presenceFrom(`kicks@${SERVICE}/Carol`, 'unavailable'))), [307]);
    });

    it('grants and revokes voice in a moderated room; visitors cannot speak; voice requests reach moderators', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'stage', 'Alice', { 'muc#roomconfig_moderatedroom': '1' });
      const j = await join(bob, 'stage', 'Bob');
      assert.equal(item(j.self).role, 'visitor');
      await bob.send(xml('message', { to: `stage@${SERVICE}`, type: 'groupchat', id: 'v1' }, xml('body', {}, 'hello?')));
      const err = await expectStanza(bob, (s) => s.is('message') && s.attrs.type === 'error');
      assert.equal(errorOf(err), 'forbidden');
      // voice request (§7.13) and its approval (§8.6)
      const req = xml(
        'x',
        { xmlns: DATA, type: 'submit' },
        ...field({ FORM_TYPE: 'http://jabber.org/protocol/muc#request', 'muc#role': 'participant' }),
      );
      await bob.send(xml('message', { to: `stage@${SERVICE}` }, req));
      const forward = await expectStanza(alice, (s) => s.is('message') && !!s.getChild('x', DATA));
      const fields = Object.fromEntries(
        forward
          .getChild('x', DATA)!
          .getChildren('field')
          .map((f) => [f.attrs.var, f.getChildText('value')]),
      );
      assert.equal(fields['muc#roomnick'], 'Bob');
      assert.equal(fields['muc#jid'], 'bob@localhost');
      const approve = xml(
        'x',
        { xmlns: DATA, type: 'submit' },
        ...field({
          FORM_TYPE: 'http://jabber.org/protocol/muc#request',
          'muc#role': 'participant',
          'muc#roomnick': 'Bob',
          'muc#request_allow': 'true',
        }),
      );
      await alice.send(xml('message', { to: `stage@${SERVICE}` }, approve));
      assert.equal(
        item(await expectStanza(bob, (s) => presenceFrom(`stage@${SERVICE}/Bob`)(s) && codes(s).includes(110))).role,
        'participant',
      );
      await adminSet(alice, 'stage', xml('item', { nick: 'Bob', role: 'visitor' }));
      assert.equal(
        item(await expectStanza(bob, (s) => presenceFrom(`stage@${SERVICE}/Bob`)(s) && item(s).role === 'visitor')).role,
        'visitor',
      );
    });

    it('gets and sets affiliation lists; admins cannot touch owners; the last owner stays; losing membership removes (321)', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'lists', 'Alice', { 'muc#roomconfig_membersonly': '1' });
      await adminSet(
        alice,
        'lists',
        xml('item', { jid: 'bob@localhost', affiliation: 'admin' }),
        xml('item', { jid: 'carol@localhost', affiliation: 'member' }),
      );
      const list = await iq(
        alice,
        xml('iq', { type: 'get', to: `lists@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { affiliation: 'member' }))),
      );
      assert.deepEqual(
        list
          .getChild('query')!
          .getChildren('item')
          .map((i) => i.attrs.jid),
        ['carol@localhost'],
      );
      assert.equal(errorOf(await adminSet(bob, 'lists', xml('item', { jid: 'alice@localhost', affiliation: 'none' }))), 'forbidden');
      assert.equal(errorOf(await adminSet(alice, 'lists', xml('item', { jid: 'alice@localhost', affiliation: 'member' }))), 'conflict');
      const carolList = await iq(
        carol,
        xml('iq', { type: 'get', to: `lists@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { affiliation: 'outcast' }))),
      );
      assert.equal(errorOf(carolList), 'forbidden');
      await join(carol, 'lists', 'Carol');
      await adminSet(bob, 'lists', xml('item', { jid: 'carol@localhost', affiliation: 'none' }));
      const removed = await expectStanza(carol, presenceFrom(`lists@${SERVICE}/Carol`, 'unavailable'));
      assert.deepEqual(codes(removed), [110, 321]);
      const roles = await iq(
        alice,
        xml('iq', { type: 'get', to: `lists@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { role: 'moderator' }))),
      );
      assert.deepEqual(
        roles
          .getChild('query')!
          .getChildren('item')
          .map((i) => i.attrs.nick),
        ['Alice'],
      );
    });
  });

  describe('review findings', () => {
    it('the last-owner rule holds across a multi-item request; self-ban is a conflict; role+affiliation is bad-request', async () => {
      const alice = await client('alice');
      await createRoom(alice, 'owners', 'Alice');
      await adminSet(alice, 'owners', xml('item', { jid: 'bob@localhost', affiliation: 'owner' }));
      const both = await adminSet(
        alice,
        'owners',
        xml('item', { jid: 'alice@localhost', affiliation: 'member' }),
        xml('item', { jid: 'bob@localhost', affiliation: 'member' }),
      );
      assert.equal(errorOf(both), 'conflict');
      assert.equal(errorOf(await adminSet(alice, 'owners', xml('item', { jid: 'alice@localhost', affiliation: 'outcast' }))), 'conflict');
      assert.equal(
        errorOf(await adminSet(alice, 'owners', xml('item', { nick: 'Alice', role: 'participant', affiliation: 'member' }))),
        'bad-request',
      );
      const owners = await iq(
        alice,
        xml('iq', { type: 'get', to: `owners@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { affiliation: 'owner' }))),
      );
      assert.equal(owners.getChild('query')!.getChildren('item').length, 2);
    });

    it('a moderator cannot kick or silence someone of a higher affiliation', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'ranks', 'Alice');
      await adminSet(alice, 'ranks', xml('item', { jid: 'carol@localhost', affiliation: 'member' }));
      await join(bob, 'ranks', 'Bob');
      await join(carol, 'ranks', 'Carol');
      await adminSet(alice, 'ranks', xml('item', { nick: 'Bob', role: 'moderator' }));
      assert.equal(errorOf(await adminSet(bob, 'ranks', xml('item', { nick: 'Carol', role: 'none' }))), 'not-allowed');
      assert.equal(errorOf(await adminSet(bob, 'ranks', xml('item', { nick: 'Carol', role: 'visitor' }))), 'not-allowed');
    });

    it('re-sending the join resynchronises the session; blank nicknames are refused; bad RSM is bad-request', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'resync', 'Alice');
      await join(bob, 'resync', 'Bob');
      bob.received.length = 0;
      const again = await join(bob, 'resync', 'Bob');
      assert.deepEqual(codes(again.self), [110]);
      assert.ok(bob.received.some(presenceFrom(`resync@${SERVICE}/Alice`)), 'the occupant list comes again');
      assert.equal(again.subject.is('message'), true, 'the subject comes again');
      const carol = await client('carol');
      assert.equal(errorOf((await join(carol, 'resync', '   ')).self), 'jid-malformed');
      const bad = await iq(
        carol,
        xml(
          'iq',
          { type: 'get', to: SERVICE },
          xml(
            'query',
            { xmlns: 'http://jabber.org/protocol/disco#items' },
            xml('set', { xmlns: 'http://jabber.org/protocol/rsm' }, xml('after', {}, '@@bad@@')),
          ),
        ),
      );
      assert.equal(errorOf(bad), 'bad-request');
      assert.equal(
        (await iq(carol, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })))).attrs.type,
        'result',
      );
    });
  });

  describe('messages', () => {
    it('fans out groupchat with one stanza-id and occupant-id; non-occupants get not-acceptable', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const eve = await client('eve');
      await createRoom(alice, 'talk', 'Alice');
      await join(bob, 'talk', 'Bob');
      await bob.send(
        xml(
          'message',
          { to: `talk@${SERVICE}`, type: 'groupchat', id: 'm1' },
          xml('body', {}, 'hi all'),
          xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'forged', by: `talk@${SERVICE}` }),
        ),
      );
      const a = await expectStanza(alice, (s) => s.getChildText('body') === 'hi all');
      const b = await expectStanza(bob, (s) => s.getChildText('body') === 'hi all');
      assert.equal(a.attrs.from, `talk@${SERVICE}/Bob`);
      assert.equal(b.attrs.id, 'm1', 'the sender sees its own id reflected');
      const sids = a.getChildren('stanza-id', 'urn:xmpp:sid:0');
      assert.equal(sids.length, 1, 'a forged stanza-id is stripped');
      assert.notEqual(sids[0]!.attrs.id, 'forged');
      assert.equal(sids[0]!.attrs.by, `talk@${SERVICE}`);
      assert.equal(b.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id, sids[0]!.attrs.id);
      assert.ok(a.getChild('occupant-id', 'urn:xmpp:occupant-id:0'));
      await eve.send(xml('message', { to: `talk@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'let me in')));
      assert.equal(errorOf(await expectStanza(eve, (s) => s.attrs.type === 'error')), 'not-acceptable');
    });

    it('a message the room already took (same sender, id and body: a resend) goes only back to its sender, with the same stanza-id', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'once', 'Alice');
      await join(bob, 'once', 'Bob');
      const say = (id: string, text: string) => bob.send(xml('message', { to: `once@${SERVICE}`, type: 'groupchat', id }, xml('body', {}, text)));
      await say('r1', 'only once');
      const first = await expectStanza(alice, (s) => s.getChildText('body') === 'only once');
      const firstSid = first.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id;
      await expectStanza(bob, (s) => s.getChildText('body') === 'only once');
      await say('r1', 'only once');
      const again = await expectStanza(bob, (s) => s.getChildText('body') === 'only once', 3000, 'the reflection of the resend');
      assert.equal(again.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id, firstSid, 'the same stanza-id');
      // same id, another body: a new message
      await say('r1', 'something else');
      await expectStanza(alice, (s) => s.getChildText('body') === 'something else');
      await barrier(alice, bob);
      assert.equal(alice.received.filter((s) => s.getChildText('body') === 'only once').length, 0, 'the others got it once');
    });

    it('private messages between occupants follow the room policy', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'pm', 'Alice');
      await join(bob, 'pm', 'Bob');
      await bob.send(xml('message', { to: `pm@${SERVICE}/Alice`, type: 'chat' }, xml('body', {}, 'psst')));
      const got = await expectStanza(alice, (s) => s.getChildText('body') === 'psst');
      assert.equal(got.attrs.from, `pm@${SERVICE}/Bob`);
      assert.ok(got.getChild('x', USER));
      await bob.send(xml('message', { to: `pm@${SERVICE}/Nobody`, type: 'chat' }, xml('body', {}, 'x')));
      assert.equal(errorOf(await expectStanza(bob, (s) => s.attrs.type === 'error')), 'item-not-found');
      await configure(alice, 'pm', { 'muc#roomconfig_allowpm': 'none' });
      await bob.send(xml('message', { to: `pm@${SERVICE}/Alice`, type: 'chat' }, xml('body', {}, 'again')));
      assert.equal(errorOf(await expectStanza(bob, (s) => s.attrs.type === 'error')), 'forbidden');
    });

    it('subject: sent on join, changed by moderators, refused to participants unless allowed', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'topic', 'Alice');
      await alice.send(xml('message', { to: `topic@${SERVICE}`, type: 'groupchat' }, xml('subject', {}, 'Welcome')));
      await expectStanza(alice, (s) => s.getChildText('subject') === 'Welcome');
      const j = await join(bob, 'topic', 'Bob');
      assert.equal(j.subject.getChildText('subject'), 'Welcome');
      assert.equal(j.subject.attrs.from, `topic@${SERVICE}/Alice`);
      await bob.send(xml('message', { to: `topic@${SERVICE}`, type: 'groupchat' }, xml('subject', {}, 'Mine')));
      assert.equal(errorOf(await expectStanza(bob, (s) => s.attrs.type === 'error')), 'forbidden');
      await configure(alice, 'topic', { 'muc#roomconfig_changesubject': '1' });
      await bob.send(xml('message', { to: `topic@${SERVICE}`, type: 'groupchat' }, xml('subject', {}, 'Mine')));
      await expectStanza(alice, (s) => s.getChildText('subject') === 'Mine');
    });

    it('discussion history honours maxstanzas, maxchars and seconds', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'hist', 'Alice');
      for (let i = 1; i <= 5; i++) {
        await alice.send(xml('message', { to: `hist@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `m${i}`)));
        await expectStanza(alice, (s) => s.getChildText('body') === `m${i}`);
      }
      const bodies = async (h: Record<string, string>): Promise<string[]> => {
        const seen: string[] = [];
        const on = (s: Element) => {
          if (s.is('message') && s.getChild('delay', 'urn:xmpp:delay')) seen.push(s.getChildText('body')!);
        };
        bob.on('stanza', on);
        await join(bob, 'hist', 'Bob', [], h);
        bob.removeListener('stanza', on);
        await bob.send(xml('presence', { to: `hist@${SERVICE}/Bob`, type: 'unavailable' }));
        await expectStanza(bob, presenceFrom(`hist@${SERVICE}/Bob`, 'unavailable'));
        bob.received.length = 0;
        return seen;
      };
      assert.deepEqual(await bodies({ maxstanzas: '2' }), ['m4', 'm5']);
      assert.deepEqual(await bodies({ maxstanzas: '0' }), []);
      assert.deepEqual(await bodies({ seconds: '60' }), ['m1', 'm2', 'm3', 'm4', 'm5']);
      const one = await bodies({ maxchars: '1' });
      assert.deepEqual(one, [], 'no message fits in one character');
    });

    it('mediated invitations (members-only adds the invitee), declines, and direct invitations pass through', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'party', 'Alice', { 'muc#roomconfig_membersonly': '1' });
      await alice.send(
        xml(
          'message',
          { to: `party@${SERVICE}` },
          xml('x', { xmlns: USER }, xml('invite', { to: 'bob@localhost' }, xml('reason', {}, 'come'))),
        ),
      );
      const inv = await expectStanza(bob, (s) => s.is('message') && !!s.getChild('x', USER)?.getChild('invite'));
      assert.equal(inv.attrs.from, `party@${SERVICE}`);
      assert.equal(inv.getChild('x', USER)!.getChild('invite')!.attrs.from, 'alice@localhost');
      assert.equal(inv.getChild('x', USER)!.getChild('invite')!.getChildText('reason'), 'come');
      assert.deepEqual(codes((await join(bob, 'party', 'Bob')).self), [110], 'the invitee became a member');
      const carol = await client('carol');
      await carol.send(
        xml(
          'message',
          { to: `party@${SERVICE}` },
          xml('x', { xmlns: USER }, xml('decline', { to: 'alice@localhost' }, xml('reason', {}, 'busy'))),
        ),
      );
      const dec = await expectStanza(alice, (s) => s.is('message') && !!s.getChild('x', USER)?.getChild('decline'));
      assert.equal(dec.getChild('x', USER)!.getChild('decline')!.attrs.from, 'carol@localhost');
      // XEP-0249: user to user, untouched
      await alice.send(
        xml('message', { to: 'carol@localhost' }, xml('x', { xmlns: 'jabber:x:conference', jid: `party@${SERVICE}`, reason: 'hey' })),
      );
      const direct = await expectStanza(carol, (s) => s.is('message') && !!s.getChild('x', 'jabber:x:conference'));
      assert.equal(direct.getChild('x', 'jabber:x:conference')!.attrs.jid, `party@${SERVICE}`);
    });
  });

  describe('discovery', () => {
    it('describes the service and each room, lists public rooms with XEP-0059 paging', async () => {
      const alice = await client('alice');
      const info = await iq(
        alice,
        xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      const q = info.getChild('query')!;
      assert.deepEqual(q.getChild('identity')!.attrs, { category: 'conference', type: 'text', name: 'Chatrooms' });
      assert.ok(q.getChildren('feature').some((f) => f.attrs.var === MUC));
      const items = await iq(
        alice,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })),
      );
      assert.ok(
        items
          .getChild('query')!
          .getChildren('item')
          .some((i) => i.attrs.jid === SERVICE),
        'the server lists its MUC service',
      );
      for (const r of ['r1', 'r2', 'r3', 'r4', 'r5']) await createRoom(alice, r, 'A');
      await createRoom(alice, 'secret', 'A', { 'muc#roomconfig_publicroom': '0' });
      const page = async (set: Element[]) => {
        const r = await iq(
          alice,
          xml(
            'iq',
            { type: 'get', to: SERVICE },
            xml(
              'query',
              { xmlns: 'http://jabber.org/protocol/disco#items' },
              xml('set', { xmlns: 'http://jabber.org/protocol/rsm' }, ...set),
            ),
          ),
        );
        const query = r.getChild('query')!;
        return { jids: query.getChildren('item').map((i) => i.attrs.jid.split('@')[0]), set: query.getChild('set')! };
      };
      const p1 = await page([xml('max', {}, '2')]);
      assert.deepEqual(p1.jids, ['r1', 'r2']);
      assert.equal(p1.set.getChildText('count'), '5');
      assert.equal(p1.set.getChild('first')!.attrs.index, '0');
      const p2 = await page([xml('max', {}, '2'), xml('after', {}, p1.set.getChildText('last')!)]);
      assert.deepEqual(p2.jids, ['r3', 'r4']);
      const last = await page([xml('max', {}, '2'), xml('before')]);
      assert.deepEqual(last.jids, ['r4', 'r5']);
      const room = await iq(
        alice,
        xml('iq', { type: 'get', to: `r1@${SERVICE}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      const form = room.getChild('query')!.getChild('x', DATA)!;
      const fields = Object.fromEntries(form.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
      assert.equal(fields.FORM_TYPE, 'http://jabber.org/protocol/muc#roominfo');
      assert.equal(fields['muc#roominfo_occupants'], '1');
      const feats = room
        .getChild('query')!
        .getChildren('feature')
        .map((f) => f.attrs.var);
      for (const f of [
        MUC,
        'muc_public',
        'muc_temporary',
        'muc_open',
        'muc_unmoderated',
        'muc_semianonymous',
        'muc_unsecured',
        'urn:xmpp:occupant-id:0',
        'urn:xmpp:sid:0',
        'http://jabber.org/protocol/muc#stable_id',
        'http://jabber.org/protocol/muc#self-ping-optimization',
      ])
        assert.ok(feats.includes(f), `room advertises ${f}`);
    });
  });

  describe('modern clients', () => {
    it('answers self-ping (XEP-0410) while joined and not-acceptable after', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'ping', 'Alice');
      const ping = (c: XmppClient, nick: string) =>
        iq(c, xml('iq', { type: 'get', to: `ping@${SERVICE}/${nick}` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal((await ping(alice, 'Alice')).attrs.type, 'result');
      assert.equal(errorOf(await ping(bob, 'Bob')), 'not-acceptable');
    });

    it('keeps occupant-id stable across rejoin and nick change', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'oid', 'Alice');
      const id1 = (await join(bob, 'oid', 'Bob')).self.getChild('occupant-id', 'urn:xmpp:occupant-id:0')!.attrs.id;
      await bob.send(xml('presence', { to: `oid@${SERVICE}/Bob`, type: 'unavailable' }));
      await expectStanza(bob, presenceFrom(`oid@${SERVICE}/Bob`, 'unavailable'));
      const id2 = (await join(bob, 'oid', 'Robert')).self.getChild('occupant-id', 'urn:xmpp:occupant-id:0')!.attrs.id;
      assert.equal(id1, id2);
      const aliceSeenByBob = await expectStanza(bob, presenceFrom(`oid@${SERVICE}/Alice`));
      assert.notEqual(aliceSeenByBob.getChild('occupant-id', 'urn:xmpp:occupant-id:0')!.attrs.id, id1, 'different users, different ids');
      const bobSeenByAlice = await expectStanza(alice, presenceFrom(`oid@${SERVICE}/Robert`));
      assert.equal(bobSeenByAlice.getChild('occupant-id', 'urn:xmpp:occupant-id:0')!.attrs.id, id1, 'others see the same id');
    });

    it('removes a ghost occupant whose connection died', async () => {
      server.config.sm.resume_timeout = 1; // the session is kept for resumption first
      const alice = await client('alice');
      const bob = await connect(server, 'bob');
      await createRoom(alice, 'ghosts', 'Alice');
      await join(bob, 'ghosts', 'Bob');
      dropConnection(bob);
      const gone = await expectStanza(alice, presenceFrom(`ghosts@${SERVICE}/Bob`, 'unavailable'), 5000);
      assert.equal(item(gone).role, 'none');
      await bob.stop().catch(() => undefined);
    });

    it('tells occupants the service is shutting down (332)', async () => {
      const alice = await client('alice');
      await createRoom(alice, 'closing', 'Alice');
      const gone = expectStanza(alice, presenceFrom(`closing@${SERVICE}/Alice`, 'unavailable'), 5000);
      await server.stop();
      assert.deepEqual(codes(await gone), [110, 332]);
    });

    it('moderators retract messages (XEP-0425); others may not', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'mod', 'Alice');
      await join(bob, 'mod', 'Bob');
      await bob.send(xml('message', { to: `mod@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'spam')));
      const msg = await expectStanza(alice, (s) => s.getChildText('body') === 'spam');
      const sid = msg.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id;
      const moderate = (c: XmppClient) =>
        iq(
          c,
          xml(
            'iq',
            { type: 'set', to: `mod@${SERVICE}` },
            xml(
              'moderate',
              { xmlns: 'urn:xmpp:message-moderate:1', id: sid },
              xml('retract', { xmlns: 'urn:xmpp:message-retract:1' }),
              xml('reason', {}, 'no spam'),
            ),
          ),
        );
      assert.equal(errorOf(await moderate(bob)), 'forbidden');
      assert.equal((await moderate(alice)).attrs.type, 'result');
      const r = await expectStanza(bob, (s) => s.is('message') && !!s.getChild('retract', 'urn:xmpp:message-retract:1'));
      const retract = r.getChild('retract', 'urn:xmpp:message-retract:1')!;
      assert.equal(retract.attrs.id, sid);
      assert.equal(retract.getChild('moderated', 'urn:xmpp:message-moderate:1')!.attrs.by, `mod@${SERVICE}/Alice`);
      assert.equal(r.attrs.from, `mod@${SERVICE}`);
    });

    it('forwards IQs between occupants (vCard to the account, others to the session) and routes answers back', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'iqs', 'Alice');
      await join(bob, 'iqs', 'Bob');
      const v = await iq(bob, xml('iq', { type: 'get', to: `iqs@${SERVICE}/Alice` }, xml('vCard', { xmlns: 'vcard-temp' })));
      assert.equal(v.attrs.from, `iqs@${SERVICE}/Alice`);
      assert.notEqual(v.attrs.type, undefined);
      alice.iqCallee.get('jabber:iq:version', 'query', () => xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'alice-client')));
      const ver = await iq(bob, xml('iq', { type: 'get', to: `iqs@${SERVICE}/Alice` }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal(ver.attrs.type, 'result');
      assert.equal(ver.getChild('query')!.getChildText('name'), 'alice-client');
      assert.equal(ver.attrs.from, `iqs@${SERVICE}/Alice`);
    });
  });

  describe('room archive (XEP-0313)', () => {
    it('archives each room message once and serves it on the room JID; members-only rooms only to members', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const eve = await client('eve');
      await createRoom(alice, 'logged', 'Alice');
      await join(bob, 'logged', 'Bob');
      for (const b of ['one', 'two', 'three']) {
        await bob.send(xml('message', { to: `logged@${SERVICE}`, type: 'groupchat' }, xml('body', {}, b)));
        await expectStanza(alice, (s) => s.getChildText('body') === b);
      }
      const q = async (c: XmppClient, room: string, rsm: Element[] = []) => {
        const results: Element[] = [];
        const on = (s: Element) => {
          if (s.is('message') && s.getChild('result', 'urn:xmpp:mam:2')) results.push(s);
        };
        c.on('stanza', on);
        const r = await iq(
          c,
          xml(
            'iq',
            { type: 'set', to: `${room}@${SERVICE}` },
            xml(
              'query',
              { xmlns: 'urn:xmpp:mam:2', queryid: 'r1' },
              ...(rsm.length ? [xml('set', { xmlns: 'http://jabber.org/protocol/rsm' }, ...rsm)] : []),
            ),
          ),
        );
        c.removeListener('stanza', on);
        return { r, results };
      };
      const { r, results } = await q(eve, 'logged');
      assert.equal(r.attrs.type, 'result');
      assert.equal(results.length, 3);
      const fwd = results[0]!.getChild('result', 'urn:xmpp:mam:2')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;
      assert.equal(fwd.attrs.from, `logged@${SERVICE}/Bob`);
      assert.equal(fwd.attrs.to, undefined, 'no to on archived room messages');
      assert.equal(results[0]!.attrs.from, `logged@${SERVICE}`);
      const sid = fwd.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id;
      assert.equal(results[0]!.getChild('result', 'urn:xmpp:mam:2')!.attrs.id, sid, 'the archive id is the stanza-id the room gave');
      const lastTwo = await q(eve, 'logged', [xml('max', {}, '2'), xml('before')]);
      assert.deepEqual(
        lastTwo.results.map((m) =>
          m.getChild('result', 'urn:xmpp:mam:2')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!.getChildText('body'),
        ),
        ['two', 'three'],
      );
      await configure(alice, 'logged', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'pw' });
      assert.equal(errorOf((await q(eve, 'logged')).r), 'forbidden', 'a password-protected room: only those inside');
      assert.equal((await q(bob, 'logged')).r.attrs.type, 'result', 'an occupant may read it');
      await configure(alice, 'logged', { 'muc#roomconfig_passwordprotectedroom': '0', 'muc#roomconfig_membersonly': '1' });
      assert.equal(errorOf((await q(eve, 'logged')).r), 'forbidden');
    });
  });

  describe('protection', () => {
    it('rate-limits a flooding occupant with resource-constraint while others keep talking', async () => {
      await server.stop();
      server = await startServer({ users: USERS, config: { modules: { muc: { message_rate: 1, message_burst: 3 } } } });
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'flood', 'Alice');
      await join(bob, 'flood', 'Bob');
      for (let i = 0; i < 6; i++) await bob.send(xml('message', { to: `flood@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `f${i}`)));
      const err = await expectStanza(bob, (s) => s.is('message') && s.attrs.type === 'error');
      assert.equal(errorOf(err), 'resource-constraint');
      assert.equal(err.getChild('error')!.attrs.type, 'wait');
      await alice.send(xml('message', { to: `flood@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'still here')));
      await expectStanza(bob, (s) => s.getChildText('body') === 'still here');
      await until(
        () => alice.received.filter((s) => s.getChildText('body')?.startsWith('f')).length === 3,
        'three of the flood got through',
      );
    });

    it('above the presence threshold, only moderators hear non-moderators come and go', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      const dave = await client('dave');
      await createRoom(alice, 'big', 'Alice', { 'x-uzzap#presence_threshold': '2' });
      await join(bob, 'big', 'Bob');
      await expectStanza(alice, presenceFrom(`big@${SERVICE}/Bob`));
      await join(carol, 'big', 'Carol');
      await expectStanza(alice, presenceFrom(`big@${SERVICE}/Carol`), 2000);
      await expectNothing(bob, presenceFrom(`big@${SERVICE}/Carol`), { after: [carol] });
      await join(dave, 'big', 'Dave');
      assert.ok(dave.received.some(presenceFrom(`big@${SERVICE}/Alice`)), 'moderators are always visible');
      assert.ok(!dave.received.some(presenceFrom(`big@${SERVICE}/Bob`)), 'participants are not listed above the threshold');
    });
  });
});

describe('multi-user chat persistence', function () {
  this.timeout(30_000);
  it('a persistent room keeps its configuration, affiliations and subject across a restart', async () => {
    const slot = await newStorageSlot();
    let server = await startServer({ slot, users: USERS });
    let alice = await connect(server, 'alice');
    await createRoom(alice, 'keep', 'Alice', {
      'muc#roomconfig_persistentroom': '1',
      'muc#roomconfig_roomname': 'Kept',
      'muc#roomconfig_membersonly': '1',
    });
    await adminSet(
      alice,
      'keep',
      xml('item', { jid: 'bob@localhost', affiliation: 'member' }),
      xml('item', { jid: 'eve@localhost', affiliation: 'outcast' }),
    );
    await alice.send(xml('message', { to: `keep@${SERVICE}`, type: 'groupchat' }, xml('subject', {}, 'Still here')));
    await expectStanza(alice, (s) => s.getChildText('subject') === 'Still here');
    await alice.send(xml('presence', { to: `keep@${SERVICE}/Alice`, type: 'unavailable' }));
    await expectStanza(alice, presenceFrom(`keep@${SERVICE}/Alice`, 'unavailable'));
    await stopAll(alice);
    await server.stop();

    server = await startServer({ slot });
    alice = await connect(server, 'alice');
    const bob = await connect(server, 'bob');
    const eve = await connect(server, 'eve');
    const carol = await connect(server, 'carol');
    try {
      const info = await iq(
        bob,
        xml('iq', { type: 'get', to: `keep@${SERVICE}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      assert.equal(info.getChild('query')!.getChild('identity')!.attrs.name, 'Kept');
      const j = await join(bob, 'keep', 'Bob');
      assert.deepEqual(codes(j.self), [110], j.self.toString());
      assert.equal(item(j.self).affiliation, 'member');
      assert.equal(j.subject.getChildText('subject'), 'Still here');
      assert.equal(errorOf((await join(eve, 'keep', 'Eve')).self), 'forbidden');
      assert.equal(errorOf((await join(carol, 'keep', 'Carol')).self), 'registration-required');
      const owner = await join(alice, 'keep', 'Alice');
      assert.equal(item(owner.self).affiliation, 'owner');
    } finally {
      await stopAll(alice, bob, eve, carol);
      await server.stop();
    }
  });
});

describe('multi-user chat persistence by default', function () {
  this.timeout(30_000);
  it('with modules.muc.persistent, an instant room keeps its owner across a restart', async () => {
    const slot = await newStorageSlot();
    const config = { modules: { muc: { persistent: true } } };
    let server = await startServer({ slot, users: USERS, config });
    let alice = await connect(server, 'alice');
    await createRoom(alice, 'byDefault'.toLowerCase(), 'Alice');
    await stopAll(alice);
    await server.stop();
    server = await startServer({ slot, config });
    alice = await connect(server, 'alice');
    try {
      const j = await join(alice, 'bydefault', 'Alice');
      assert.equal(item(j.self).affiliation, 'owner');
    } finally {
      await stopAll(alice);
      await server.stop();
    }
  });
});

describe('multi-user chat at 100 occupants', function () {
  this.timeout(60_000);
  it('every occupant receives each groupchat message exactly once', async () => {
    const users: Record<string, string> = {};
    for (let i = 0; i < 100; i++) users[`m${i}`] = 'secret';
    const server = await startServer({ users, config: { modules: { muc: { message_rate: 0 } } } });
    const clients: XmppClient[] = [];
    try {
      for (let i = 0; i < 100; i += 10)
        clients.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => connect(server, `m${i + k}`)))));
      await createRoom(clients[0]!, 'hall', 'm0');
      for (let i = 1; i < 100; i += 20) await Promise.all(clients.slice(i, i + 20).map((c, k) => join(c, 'hall', `m${i + k}`)));
      for (const c of clients) c.received.length = 0;
      const N = 20;
      for (let k = 0; k < N; k++)
        await clients[k % 10]!.send(xml('message', { to: `hall@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `msg ${k}`)));
      const count = (c: XmppClient) => c.received.filter((s) => s.is('message') && s.getChildText('body')?.startsWith('msg ')).length;
      await until(() => clients.every((c) => count(c) >= N), 'all 100 occupants have all messages', 20_000);
      // the senders, then everyone: whatever the room sent on is in each received list
      await barrier(...clients.slice(0, 10), ...clients);
      for (const c of clients) {
        const bodies = c.received
          .filter((s) => s.is('message') && s.getChildText('body')?.startsWith('msg '))
          .map((s) => s.getChildText('body'));
        assert.equal(bodies.length, N, 'no duplicates');
        assert.equal(new Set(bodies).size, N);
      }
      const ids = new Set(clients[50]!.received.map((s) => s.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id).filter(Boolean));
      assert.equal(ids.size, N, 'one stanza-id per message');
    } finally {
      await stopAll(...clients);
      await server.stop();
    }
  });
});
