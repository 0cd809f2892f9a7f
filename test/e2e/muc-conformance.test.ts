// Multi-User Chat conformance to the letter of XEP-0045 (and XEP-0425), over real
// sockets with @xmpp/client: the cases other servers (Prosody, ejabberd) handle
// and clients rely on. Each test names the section it checks.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import {
  ADMIN,
  DATA,
  MUC,
  SERVICE,
  STANZAS,
  USER,
  adminSet,
  codes,
  configure,
  createRoom,
  errorOf,
  isSelf,
  item,
  items,
  join,
  presenceFrom,
} from '../helpers/muc.js';
import { connect, expectNothing, expectStanza, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';

const USERS = Object.fromEntries(['alice', 'bob', 'carol', 'dave'].map((u) => [u, 'secret']));

/** Enter a room; resolves with the self-presence (or the presence error). */
const enter = async (c: XmppClient, room: string, nick: string): Promise<Element> => (await join(c, room, nick)).self;

const adminList = async (c: XmppClient, room: string, affiliation: string): Promise<Record<string, string>[]> => {
  const r = await iq(c, xml('iq', { type: 'get', to: `${room}@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { affiliation }))));
  return r
    .getChild('query')!
    .getChildren('item')
    .map((i) => i.attrs as Record<string, string>);
};

const discoInfo = (c: XmppClient, room: string) =>
  iq(c, xml('iq', { type: 'get', to: `${room}@${SERVICE}` }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));

describe('multi-user chat conformance (XEP-0045)', function () {
  this.timeout(30_000);
  let server: Server;
  const open: XmppClient[] = [];
  const client = async (u: string, resource?: string): Promise<XmppClient> => {
    const c = await connect(server, u, { resource });
    open.push(c);
    return c;
  };
  const restart = async (config: Record<string, unknown>): Promise<void> => {
    await stopAll(...open.splice(0));
    await server.stop();
    server = await startServer({ users: USERS, config });
  };
  beforeEach(async () => {
    server = await startServer({ users: USERS });
  });
  afterEach(async () => {
    await stopAll(...open.splice(0));
    await server.stop();
  });

  describe('modules.muc.lock_new_rooms', () => {
    it('by default a new room stays locked (item-not-found for others) until its owner configures it (§10.1.1)', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      assert.deepEqual(codes(await enter(alice, 'locked', 'Alice')), [110, 201]);
      assert.equal(errorOf(await enter(bob, 'locked', 'Bob')), 'item-not-found');
    });

    it('set to false, a new room is an instant room: 201 for its creator, open to others at once', async () => {
      await restart({ modules: { muc: { lock_new_rooms: false } } });
      const alice = await client('alice');
      const bob = await client('bob');
      const self = await enter(alice, 'instant', 'Alice');
      assert.deepEqual(codes(self), [110, 201]);
      assert.deepEqual(item(self), { affiliation: 'owner', role: 'moderator', jid: alice.jid!.toString() });
      assert.deepEqual(codes(await enter(bob, 'instant', 'Bob')), [110]);
      const features = (await discoInfo(bob, 'instant'))
        .getChild('query')!
        .getChildren('feature')
        .map((f) => f.attrs.var);
      assert.ok(features.includes('muc_open'), 'the room is listed as configured and open');
    });
  });

  describe('leaving by presence to the bare room JID (as Prosody and ejabberd take it)', () => {
    it('unavailable presence to room@service from an occupant is that occupant leaving, status included', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'exit', 'Alice');
      await enter(bob, 'exit', 'Bob');
      await expectStanza(alice, presenceFrom(`exit@${SERVICE}/Bob`));
      await bob.send(xml('presence', { to: `exit@${SERVICE}`, type: 'unavailable' }, xml('status', {}, 'gone fishing')));
      const self = await expectStanza(bob, presenceFrom(`exit@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(codes(self), [110]);
      const seen = await expectStanza(alice, presenceFrom(`exit@${SERVICE}/Bob`, 'unavailable'));
      assert.equal(item(seen).role, 'none');
      assert.equal(seen.getChildText('status'), 'gone fishing');
      // really gone: a message to the room is refused, and the nickname is free again
      await bob.send(xml('message', { to: `exit@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'still here?')));
      const refused = await expectStanza(bob, (s) => s.is('message') && s.attrs.type === 'error');
      assert.equal(errorOf(refused), 'not-acceptable');
      const carol = await client('carol');
      assert.deepEqual(codes(await enter(carol, 'exit', 'Bob')), [110]);
    });

    it('error presence to room@service from an occupant removes it with status 333 (§18.1.2 ghosts)', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'bounce', 'Alice');
      await enter(bob, 'bounce', 'Bob');
      await expectStanza(alice, presenceFrom(`bounce@${SERVICE}/Bob`));
      await bob.send(
        xml('presence', { to: `bounce@${SERVICE}`, type: 'error' }, xml('error', { type: 'cancel' }, xml('gone', { xmlns: STANZAS }))),
      );
      const seen = await expectStanza(alice, presenceFrom(`bounce@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(codes(seen), [333]);
      assert.deepEqual(codes(await expectStanza(bob, presenceFrom(`bounce@${SERVICE}/Bob`, 'unavailable'))), [110, 333]);
    });

    it('unavailable presence to room@service from someone not in the room is ignored (§17.3 rule 5)', async () => {
      const alice = await client('alice');
      const carol = await client('carol');
      await createRoom(alice, 'quiet', 'Alice');
      await carol.send(xml('presence', { to: `quiet@${SERVICE}`, type: 'unavailable' }));
      await expectNothing(carol, (s) => s.is('presence') && s.attrs.from?.startsWith(`quiet@${SERVICE}`) === true, { after: [carol] });
      await expectNothing(alice, (s) => s.is('presence') && s.attrs.type === 'unavailable', { after: [carol] });
    });
  });

  describe('ghosts: delivery errors from an occupant (§18.1.2, service removal with 333 per §11.1)', () => {
    const bounce = (c: XmppClient, to: string, condition: string, name = 'message') =>
      c.send(xml(name, { to, type: 'error' }, xml('error', { type: 'cancel' }, xml(condition, { xmlns: STANZAS }))));

    it('an error message to the room with a delivery condition removes the session: 333 to all, 110+333 to itself', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'ghost1', 'Alice');
      await enter(bob, 'ghost1', 'Bob');
      await expectStanza(alice, presenceFrom(`ghost1@${SERVICE}/Bob`));
      await bounce(bob, `ghost1@${SERVICE}`, 'recipient-unavailable');
      const seen = await expectStanza(alice, presenceFrom(`ghost1@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(codes(seen), [333]);
      assert.equal(item(seen).role, 'none');
      assert.deepEqual(codes(await expectStanza(bob, presenceFrom(`ghost1@${SERVICE}/Bob`, 'unavailable'))), [110, 333]);
    });

    it('an error message to an occupant JID (a bounced private or groupchat message) does the same', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'ghost2', 'Alice');
      await enter(bob, 'ghost2', 'Bob');
      await expectStanza(alice, presenceFrom(`ghost2@${SERVICE}/Bob`));
      for (const condition of ['gone', 'item-not-found', 'redirect', 'remote-server-not-found', 'remote-server-timeout']) {
        await bounce(bob, `ghost2@${SERVICE}/Alice`, condition);
        assert.deepEqual(codes(await expectStanza(alice, presenceFrom(`ghost2@${SERVICE}/Bob`, 'unavailable'))), [333], condition);
        await enter(bob, 'ghost2', 'Bob');
        await expectStanza(alice, presenceFrom(`ghost2@${SERVICE}/Bob`));
      }
    });

    it('errors that do not say the occupant is gone, or come from someone not in the room, change nothing', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await createRoom(alice, 'ghost3', 'Alice');
      await enter(bob, 'ghost3', 'Bob');
      await expectStanza(alice, presenceFrom(`ghost3@${SERVICE}/Bob`));
      await bounce(bob, `ghost3@${SERVICE}`, 'feature-not-implemented');
      await bounce(bob, `ghost3@${SERVICE}/Alice`, 'not-acceptable');
      await bounce(carol, `ghost3@${SERVICE}`, 'recipient-unavailable');
      await bob.send(xml('message', { to: `ghost3@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'still here')));
      await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'still here');
      await expectNothing(alice, (s) => s.is('presence') && s.attrs.type === 'unavailable', { after: [bob, carol] });
      await expectNothing(carol, (s) => s.attrs.from?.startsWith(`ghost3@${SERVICE}`) === true, { after: [carol] });
    });

    it('an IQ forwarded to an occupant answered with a delivery error removes that session; other errors only go back', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'ghost4', 'Alice');
      await enter(bob, 'ghost4', 'Bob');
      await expectStanza(alice, presenceFrom(`ghost4@${SERVICE}/Bob`));
      const ask = async (condition: string): Promise<Element> => {
        const answer = iq(alice, xml('iq', { type: 'get', to: `ghost4@${SERVICE}/Bob` }, xml('query', { xmlns: 'jabber:iq:version' })));
        const fwd = await expectStanza(bob, (s) => s.is('iq') && s.attrs.type === 'get' && s.attrs.from === `ghost4@${SERVICE}/Alice`);
        await bob.send(
          xml(
            'iq',
            { type: 'error', id: fwd.attrs.id, to: fwd.attrs.from },
            xml('error', { type: 'cancel' }, xml(condition, { xmlns: STANZAS })),
          ),
        );
        return answer;
      };
      assert.equal(errorOf(await ask('service-unavailable')), 'service-unavailable', 'the error goes back to the asker');
      await expectNothing(alice, (s) => s.is('presence') && s.attrs.type === 'unavailable', { after: [bob] });
      assert.equal(errorOf(await ask('recipient-unavailable')), 'recipient-unavailable');
      assert.deepEqual(codes(await expectStanza(alice, presenceFrom(`ghost4@${SERVICE}/Bob`, 'unavailable'))), [333]);
    });
  });

  describe('presence probes to occupant JIDs (§17.3 rule 4)', () => {
    const probe = (c: XmppClient, to: string) => c.send(xml('presence', { to, type: 'probe' }));

    it("an occupant's probe gets the occupant's current presence, with the real JID only if it may see it", async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'probes', 'Alice');
      await enter(bob, 'probes', 'Bob');
      await alice.send(xml('presence', { to: `probes@${SERVICE}/Alice` }, xml('show', {}, 'dnd'), xml('status', {}, 'busy')));
      await expectStanza(bob, (s) => presenceFrom(`probes@${SERVICE}/Alice`)(s) && s.getChildText('show') === 'dnd');
      await expectStanza(alice, presenceFrom(`probes@${SERVICE}/Bob`));
      bob.received.length = 0; // only the answers to the probes from here on
      alice.received.length = 0;
      await probe(bob, `probes@${SERVICE}/Alice`);
      const seen = await expectStanza(bob, presenceFrom(`probes@${SERVICE}/Alice`), 3000, 'the answer to the probe');
      assert.equal(seen.getChildText('show'), 'dnd');
      assert.equal(seen.getChildText('status'), 'busy');
      assert.deepEqual(items(seen), [{ affiliation: 'owner', role: 'moderator' }], 'semi-anonymous: no real JID for a participant');
      assert.deepEqual(codes(seen), []);
      await probe(alice, `probes@${SERVICE}/Bob`);
      const byMod = await expectStanza(alice, presenceFrom(`probes@${SERVICE}/Bob`), 3000, 'the answer to the moderator');
      assert.deepEqual(items(byMod), [{ affiliation: 'none', role: 'participant', jid: bob.jid!.toString() }]);
    });

    it('someone not in the room gets not-acceptable; a nick nobody holds, item-not-found; a reserved nick, unavailable', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      const dave = await client('dave');
      await createRoom(alice, 'probes2', 'Alice');
      await enter(bob, 'probes2', 'Bob');
      await probe(carol, `probes2@${SERVICE}/Alice`);
      const outsider = await expectStanza(carol, (s) => s.is('presence') && s.attrs.type === 'error');
      assert.equal(outsider.attrs.from, `probes2@${SERVICE}/Alice`);
      assert.equal(errorOf(outsider), 'not-acceptable');
      await probe(bob, `probes2@${SERVICE}/Nobody`);
      const nobody = await expectStanza(bob, (s) => s.is('presence') && s.attrs.type === 'error');
      assert.equal(nobody.attrs.from, `probes2@${SERVICE}/Nobody`);
      assert.equal(errorOf(nobody), 'item-not-found');
      const form = xml(
        'x',
        { xmlns: DATA, type: 'submit' },
        xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#register')),
        xml('field', { var: 'muc#register_roomnick' }, xml('value', {}, 'Dave')),
      );
      const reg = await iq(dave, xml('iq', { type: 'set', to: `probes2@${SERVICE}` }, xml('query', { xmlns: 'jabber:iq:register' }, form)));
      assert.equal(reg.attrs.type, 'result', reg.toString());
      await probe(alice, `probes2@${SERVICE}/Dave`);
      const away = await expectStanza(alice, presenceFrom(`probes2@${SERVICE}/Dave`, 'unavailable'));
      assert.deepEqual(items(away), [{ affiliation: 'member', role: 'none', nick: 'Dave', jid: 'dave@localhost' }]);
      await probe(bob, `probes2@${SERVICE}/Dave`);
      const awayAnon = await expectStanza(bob, presenceFrom(`probes2@${SERVICE}/Dave`, 'unavailable'));
      assert.deepEqual(items(awayAnon), [{ affiliation: 'member', role: 'none', nick: 'Dave' }], 'no JID for a participant');
    });
  });

  describe('one nick, several sessions of one user (as Prosody)', () => {
    /** Enter with a status; resolves with the self-presence. */
    const enterSaying = async (c: XmppClient, room: string, nick: string, status: string): Promise<Element> => {
      await c.send(xml('presence', { to: `${room}@${SERVICE}/${nick}` }, xml('status', {}, status), xml('x', { xmlns: MUC })));
      const self = await expectStanza(c, isSelf(room), 3000, `self-presence of ${c.jid!.toString()}`);
      await expectStanza(c, (s) => s.is('message') && !!s.getChild('subject'));
      return self;
    };
    const jids = (p: Element) => items(p).map((i) => i.jid);

    it('the presence carries an item per session for those who may see real JIDs; leaving shows the remaining session', async () => {
      const alice = await client('alice');
      const carol = await client('carol');
      const phone = await client('bob', 'phone');
      const laptop = await client('bob', 'laptop');
      await createRoom(alice, 'multi', 'Alice');
      await enter(carol, 'multi', 'Carol');
      await enterSaying(phone, 'multi', 'Bob', 'on the phone');
      await expectStanza(alice, (s) => presenceFrom(`multi@${SERVICE}/Bob`)(s) && jids(s).length === 1);
      await expectStanza(carol, presenceFrom(`multi@${SERVICE}/Bob`));

      const second = await enterSaying(laptop, 'multi', 'Bob', 'on the laptop');
      assert.equal(item(second).jid, laptop.jid!.toString(), "a session's own self-presence names it first");
      assert.deepEqual(jids(second).sort(), [phone.jid!.toString(), laptop.jid!.toString()].sort());
      const both = await expectStanza(alice, (s) => presenceFrom(`multi@${SERVICE}/Bob`)(s) && jids(s).length === 2);
      assert.deepEqual(jids(both), [phone.jid!.toString(), laptop.jid!.toString()], 'the moderator sees both sessions');
      assert.equal(both.getChildText('status'), 'on the laptop');
      const anon = await expectStanza(
        carol,
        (s) => presenceFrom(`multi@${SERVICE}/Bob`)(s) && s.getChildText('status') === 'on the laptop',
      );
      assert.deepEqual(items(anon), [{ affiliation: 'none', role: 'participant' }], 'semi-anonymous: one item, no JID');
      const told = await expectStanza(phone, (s) => isSelf('multi')(s) && jids(s).length === 2, 3000, 'the first session told');
      assert.equal(item(told).jid, phone.jid!.toString());

      await laptop.send(xml('presence', { to: `multi@${SERVICE}/Bob`, type: 'unavailable' }));
      const bye = await expectStanza(laptop, presenceFrom(`multi@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(codes(bye), [110]);
      assert.deepEqual(jids(bye), [laptop.jid!.toString()], 'the leaving session hears about itself only');
      const left = await expectStanza(alice, (s) => presenceFrom(`multi@${SERVICE}/Bob`)(s) && jids(s).length === 1);
      assert.deepEqual(jids(left), [phone.jid!.toString()]);
      assert.equal(left.getChildText('status'), 'on the phone', "the remaining session's own presence");
      const leftAnon = await expectStanza(
        carol,
        (s) => presenceFrom(`multi@${SERVICE}/Bob`)(s) && s.getChildText('status') === 'on the phone',
      );
      assert.equal(item(leftAnon).jid, undefined);
      await expectNothing(alice, presenceFrom(`multi@${SERVICE}/Bob`, 'unavailable'), { after: [laptop] });

      await phone.send(xml('presence', { to: `multi@${SERVICE}/Bob`, type: 'unavailable' }));
      const gone = await expectStanza(alice, presenceFrom(`multi@${SERVICE}/Bob`, 'unavailable'));
      assert.deepEqual(jids(gone), [phone.jid!.toString()]);
    });
  });

  describe('affiliation changes (§9.1, §9.3, §9.5, §10.3, §10.6)', () => {
    const notice = (room: string) => (s: Element) => s.is('message') && s.attrs.from === `${room}@${SERVICE}` && !!s.getChild('x', USER);

    it('a change for someone not in the room is told in a message from the room to those who may see real JIDs', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'aff1', 'Alice');
      await enter(bob, 'aff1', 'Bob');
      assert.equal((await adminSet(alice, 'aff1', xml('item', { affiliation: 'member', jid: 'dave@localhost' }))).attrs.type, 'result');
      const member = await expectStanza(alice, notice('aff1'), 3000, 'the membership notice');
      assert.equal(member.attrs.type, undefined);
      assert.deepEqual(items(member), [{ affiliation: 'member', jid: 'dave@localhost', role: 'none' }]);
      const ban = xml('item', { affiliation: 'outcast', jid: 'carol@localhost' }, xml('reason', {}, 'spam'));
      assert.equal((await adminSet(alice, 'aff1', ban)).attrs.type, 'result');
      const banned = await expectStanza(alice, notice('aff1'), 3000, 'the ban notice');
      assert.deepEqual(items(banned), [{ affiliation: 'outcast', jid: 'carol@localhost', role: 'none' }]);
      assert.equal(banned.getChild('x', USER)!.getChild('item')!.getChildText('reason'), 'spam');
      await expectNothing(bob, notice('aff1'), { after: [alice] }); // semi-anonymous: a participant does not learn real JIDs

      await configure(alice, 'aff1', { 'muc#roomconfig_whois': 'anyone' });
      await adminSet(alice, 'aff1', xml('item', { affiliation: 'admin', jid: 'dave@localhost' }));
      const toBob = await expectStanza(
        bob,
        (s) => notice('aff1')(s) && item(s).affiliation === 'admin',
        3000,
        'the notice in a non-anonymous room',
      );
      assert.equal(item(toBob).jid, 'dave@localhost');
    });

    it('<actor/> names the real JID of whoever acted to those who may see real JIDs, the nick to all', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      const dave = await client('dave');
      await createRoom(alice, 'aff2', 'Alice');
      await adminSet(alice, 'aff2', xml('item', { affiliation: 'admin', jid: 'bob@localhost' }));
      await enter(bob, 'aff2', 'Bob');
      await enter(carol, 'aff2', 'Carol');
      await enter(dave, 'aff2', 'Dave');
      await adminSet(alice, 'aff2', xml('item', { role: 'none', nick: 'Dave' }, xml('reason', {}, 'out')));
      const actorOf = (p: Element) => p.getChild('x', USER)!.getChild('item')!.getChild('actor')?.attrs ?? {};
      const toMod = await expectStanza(bob, presenceFrom(`aff2@${SERVICE}/Dave`, 'unavailable'));
      assert.deepEqual(codes(toMod), [307]);
      assert.deepEqual(actorOf(toMod), { nick: 'Alice', jid: 'alice@localhost' });
      assert.deepEqual(actorOf(await expectStanza(carol, presenceFrom(`aff2@${SERVICE}/Dave`, 'unavailable'))), { nick: 'Alice' });
      assert.deepEqual(actorOf(await expectStanza(dave, presenceFrom(`aff2@${SERVICE}/Dave`, 'unavailable'))), { nick: 'Alice' });
      // an admin acting from outside the room is named by JID only, and only to those who may see it
      await bob.send(xml('presence', { to: `aff2@${SERVICE}/Bob`, type: 'unavailable' }));
      await expectStanza(carol, presenceFrom(`aff2@${SERVICE}/Bob`, 'unavailable'));
      await adminSet(bob, 'aff2', xml('item', { affiliation: 'outcast', jid: 'carol@localhost' }));
      const toOwner = await expectStanza(alice, presenceFrom(`aff2@${SERVICE}/Carol`, 'unavailable'));
      assert.deepEqual(codes(toOwner), [301]);
      assert.deepEqual(actorOf(toOwner), { jid: 'bob@localhost' });
      const toBanned = await expectStanza(carol, presenceFrom(`aff2@${SERVICE}/Carol`, 'unavailable'));
      assert.equal(toBanned.getChild('x', USER)!.getChild('item')!.getChild('actor'), undefined);
    });

    it("a member item's nick is reserved for that member; whoever else uses it is kicked; '' unreserves it (§9.5)", async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      const dave = await client('dave');
      await createRoom(alice, 'aff3', 'Alice');
      await enter(carol, 'aff3', 'Dee');
      await expectStanza(alice, presenceFrom(`aff3@${SERVICE}/Dee`));
      const r = await adminSet(alice, 'aff3', xml('item', { affiliation: 'member', jid: 'dave@localhost', nick: 'Dee' }));
      assert.equal(r.attrs.type, 'result', r.toString());
      const kicked = await expectStanza(carol, presenceFrom(`aff3@${SERVICE}/Dee`, 'unavailable'));
      assert.deepEqual(codes(kicked), [110, 307]);
      assert.ok(kicked.getChild('x', USER)!.getChild('item')!.getChildText('reason'), 'the squatter is told why');
      assert.deepEqual(codes(await expectStanza(alice, presenceFrom(`aff3@${SERVICE}/Dee`, 'unavailable'))), [307]);
      assert.deepEqual(await adminList(alice, 'aff3', 'member'), [{ affiliation: 'member', jid: 'dave@localhost', nick: 'Dee' }]);
      const reserved = await iq(
        dave,
        xml(
          'iq',
          { type: 'get', to: `aff3@${SERVICE}` },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'x-roomuser-item' }),
        ),
      );
      assert.equal(reserved.getChild('query')!.getChild('identity')?.attrs.name, 'Dee');
      assert.equal(errorOf(await enter(bob, 'aff3', 'Dee')), 'conflict');
      assert.deepEqual(codes(await enter(dave, 'aff3', 'Dee')), [110]);
      const taken = await adminSet(alice, 'aff3', xml('item', { affiliation: 'member', jid: 'bob@localhost', nick: 'Dee' }));
      assert.equal(errorOf(taken), 'conflict', "another member's nick");
      assert.deepEqual(await adminList(alice, 'aff3', 'member'), [{ affiliation: 'member', jid: 'dave@localhost', nick: 'Dee' }]);
      assert.equal(
        errorOf(await adminSet(alice, 'aff3', xml('item', { affiliation: 'member', jid: 'bob@localhost', nick: ' ' }))),
        'jid-malformed',
      );
      await adminSet(alice, 'aff3', xml('item', { affiliation: 'member', jid: 'dave@localhost', nick: '' }));
      assert.deepEqual(await adminList(alice, 'aff3', 'member'), [{ affiliation: 'member', jid: 'dave@localhost' }]);
    });
  });

  describe('moderation (XEP-0425 0.3 and the 0.2 form deployed clients send) and the room archive', () => {
    const M0 = 'urn:xmpp:message-moderate:0';
    const M1 = 'urn:xmpp:message-moderate:1';
    const R0 = 'urn:xmpp:message-retract:0';
    const R1 = 'urn:xmpp:message-retract:1';
    const FASTEN = 'urn:xmpp:fasten:0';
    const MAM = 'urn:xmpp:mam:2';
    const moderate0 = (c: XmppClient, room: string, id: string, reason?: string) =>
      iq(
        c,
        xml(
          'iq',
          { type: 'set', to: `${room}@${SERVICE}` },
          xml(
            'apply-to',
            { xmlns: FASTEN, id },
            xml('moderate', { xmlns: M0 }, xml('retract', { xmlns: R0 }), ...(reason ? [xml('reason', {}, reason)] : [])),
          ),
        ),
      );
    const moderate1 = (c: XmppClient, room: string, id: string) =>
      iq(c, xml('iq', { type: 'set', to: `${room}@${SERVICE}` }, xml('moderate', { xmlns: M1, id }, xml('retract', { xmlns: R1 }))));
    /** Send a groupchat message and return its stanza-id, as the room gave it. */
    const say = async (from: XmppClient, to: XmppClient, room: string, body: string): Promise<string> => {
      await from.send(xml('message', { to: `${room}@${SERVICE}`, type: 'groupchat' }, xml('body', {}, body)));
      const m = await expectStanza(to, (s) => s.is('message') && s.getChildText('body') === body);
      return m.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id;
    };
    /** The archived messages of a room, through a MAM query to the room JID. */
    const archive = async (c: XmppClient, room: string): Promise<Element[]> => {
      const got: Element[] = [];
      const on = (s: Element) => {
        if (s.is('message') && s.getChild('result', MAM)) got.push(s);
      };
      c.on('stanza', on);
      const r = await iq(c, xml('iq', { type: 'set', to: `${room}@${SERVICE}` }, xml('query', { xmlns: MAM, queryid: 'q' })));
      c.removeListener('stanza', on);
      assert.equal(r.attrs.type, 'result', r.toString());
      return got.map((m) => m.getChild('result', MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!);
    };

    it('a :0 request (apply-to/moderate/retract) is answered in the :0 broadcast form; a :1 request in its own', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'mod0', 'Alice');
      await enter(bob, 'mod0', 'Bob');
      const features = (await discoInfo(bob, 'mod0'))
        .getChild('query')!
        .getChildren('feature')
        .map((f) => f.attrs.var);
      assert.ok(features.includes(M0) && features.includes(M1), 'both versions advertised');
      const spam = await say(bob, alice, 'mod0', 'spam');
      assert.equal(errorOf(await moderate0(bob, 'mod0', spam)), 'forbidden', 'only moderators');
      assert.equal((await moderate0(alice, 'mod0', spam, 'no spam')).attrs.type, 'result');
      const m0 = await expectStanza(bob, (s) => s.is('message') && !!s.getChild('apply-to', FASTEN));
      assert.equal(m0.attrs.from, `mod0@${SERVICE}`);
      assert.equal(m0.attrs.type, 'groupchat');
      const applyTo = m0.getChild('apply-to', FASTEN)!;
      assert.equal(applyTo.attrs.id, spam);
      const moderated = applyTo.getChild('moderated', M0)!;
      assert.equal(moderated.attrs.by, `mod0@${SERVICE}/Alice`);
      assert.ok(moderated.getChild('retract', R0));
      assert.equal(moderated.getChildText('reason'), 'no spam');
      assert.equal(m0.getChild('retract', R1), undefined, 'a :0 request gets the :0 form');

      const spam2 = await say(bob, alice, 'mod0', 'more spam');
      assert.equal((await moderate1(alice, 'mod0', spam2)).attrs.type, 'result');
      const m1 = await expectStanza(bob, (s) => s.is('message') && !!s.getChild('retract', R1));
      assert.equal(m1.getChild('retract', R1)!.attrs.id, spam2);
      assert.equal(m1.getChild('apply-to', FASTEN), undefined, 'a :1 request gets the :1 form');

      assert.equal(errorOf(await moderate0(alice, 'mod0', 'no-such-id')), 'item-not-found');
      const bad = xml(
        'iq',
        { type: 'set', to: `mod0@${SERVICE}` },
        xml('apply-to', { xmlns: FASTEN, id: spam }, xml('moderate', { xmlns: M0 })),
      );
      assert.equal(errorOf(await iq(alice, bad)), 'bad-request', 'a moderation without <retract/>');

      // a newcomer's history carries tombstones (both forms), never the bodies
      const carol = await client('carol');
      await carol.send(xml('presence', { to: `mod0@${SERVICE}/Carol` }, xml('x', { xmlns: MUC })));
      await expectStanza(carol, (s) => s.is('message') && !!s.getChild('subject'));
      const history = carol.received.filter((s) => s.is('message') && !!s.getChild('delay', 'urn:xmpp:delay'));
      const bodies = history.map((s) => s.getChildText('body'));
      assert.ok(!bodies.includes('spam') && !bodies.includes('more spam'), bodies.join('|'));
      const tomb = history.find((s) => s.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id === spam)!;
      assert.ok(tomb.getChild('retracted', R1)?.getChild('moderated', M1));
      assert.ok(tomb.getChild('moderated', M0)?.getChild('retracted', R0));
    });

    it('a moderated message is a tombstone in the room archive, also when moderated while its write is still batched', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await createRoom(alice, 'modarch', 'Alice', { 'muc#maxhistoryfetch': '1' });
      await enter(bob, 'modarch', 'Bob');
      const old = await say(bob, alice, 'modarch', 'old secret');
      await say(bob, alice, 'modarch', 'harmless');
      assert.equal((await archive(alice, 'modarch')).length, 2, 'written');
      const fresh = await say(bob, alice, 'modarch', 'fresh secret');
      // at once: 'fresh secret' still waits in the archive's write batch; 'old secret' is only in the archive
      assert.equal((await moderate0(alice, 'modarch', fresh)).attrs.type, 'result');
      assert.equal((await moderate1(alice, 'modarch', old)).attrs.type, 'result');
      const carol = await client('carol');
      const all = await archive(carol, 'modarch');
      const bodies = all.map((m) => m.getChildText('body'));
      assert.ok(bodies.includes('harmless'));
      assert.ok(
        !bodies.includes('old secret') && !bodies.includes('fresh secret'),
        `archive still has a moderated body: ${bodies.join('|')}`,
      );
      const byId = (id: string) => all.find((m) => m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id === id)!;
      for (const id of [old, fresh]) {
        const t = byId(id);
        assert.ok(t, `a tombstone for ${id}`);
        assert.equal(t.attrs.from, `modarch@${SERVICE}/Bob`, 'the tombstone keeps its author');
        assert.equal(t.getChild('retracted', R1)!.getChild('moderated', M1)!.attrs.by, `modarch@${SERVICE}/Alice`);
        assert.ok(t.getChild('moderated', M0)!.getChild('retracted', R0));
      }
      // the announcements are archived too, so a client that saw a message live learns of its retraction on catch-up
      assert.ok(all.some((m) => m.getChild('apply-to', FASTEN)?.attrs.id === fresh));
      assert.ok(all.some((m) => m.getChild('retract', R1)?.attrs.id === old));
    });
  });
});
