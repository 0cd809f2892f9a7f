// What works for local users works with users of another server (issue 19): two Uzzap
// servers, a.test and b.test, federating on loopback (test/helpers/federation.ts), with
// real clients on each. Carbons, the archive, room invitations, PEP notifications, push
// to an app server on the other side, presence probes and directed presence, IQ errors.
import assert from 'node:assert/strict';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { connect, dropConnection, expectStanza, iq, isMessage, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { startFederation, type Federation } from '../helpers/federation.js';
import { capsClient, isEvent, notify, NS_EVENT, publish } from '../helpers/pep.js';
import { MUC, USER, STANZAS, codes, errorOf } from '../helpers/muc.js';

const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
const MAM = 'urn:xmpp:mam:2';
const PUSH = 'urn:xmpp:push:0';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const TUNE = 'http://jabber.org/protocol/tune';
const CONFERENCE = 'jabber:x:conference';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DOMAIN = { a: 'a.test', b: 'b.test' } as const;
const USERS_A = ['alice', 'anna', 'amy', 'paula', 'ava', 'al', 'ari', 'rita'];
const USERS_B = ['bob', 'ben', 'bill', 'pete', 'app', 'sam', 'bo', 'bert', 'rob'];

const WAIT = 8000;
const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', {}, title));
const chat = (to: string, body: string, attrs: Record<string, string> = {}) =>
  xml('message', { to, type: 'chat', ...attrs }, xml('body', {}, body));
const presenceFrom = (from: string, type?: string) => (s: Element) => s.is('presence') && s.attrs.from === from && s.attrs.type === type;

describe('federation: what works locally works with remote JIDs (issue 19)', function () {
  this.timeout(60_000);
  let fed: Federation;
  let a: Server;
  let b: Server;
  const open: XmppClient[] = [];
  const on = (server: Server): 'a' | 'b' => (server === a ? 'a' : 'b');
  const client = async (server: Server, user: string, resource: string, presence = true): Promise<XmppClient> => {
    const c = await connect(server, user, { domain: DOMAIN[on(server)], resource, presence });
    open.push(c);
    return c;
  };
  /** a ping answered by c's own server: what c sent before has been handled there */
  const ping = async (c: XmppClient): Promise<void> => {
    const r = await iq(c, xml('iq', { type: 'get', to: c.jid!.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(r.attrs.type, 'result', r.toString());
  };
  /** `c` subscribes to `contact` (a bare JID) and `answerer` (the contact's client) approves */
  const subscribe = async (c: XmppClient, contact: string, answerer: XmppClient): Promise<void> => {
    const me = `${c.jid!.local}@${c.jid!.domain}`;
    // clients that asked for their roster are told of approvals (RFC 6121 §3.1.6)
    for (const x of [c, answerer]) await iq(x, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    await c.send(xml('presence', { to: contact, type: 'subscribe' }));
    await expectStanza(
      answerer,
      (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === me,
      WAIT,
      `${me} asks ${contact}`,
    );
    await answerer.send(xml('presence', { to: me, type: 'subscribed' }));
    await expectStanza(
      c,
      (s) => s.is('presence') && s.attrs.type === 'subscribed' && s.attrs.from === contact,
      WAIT,
      `${contact} approves ${me}`,
    );
  };

  before(async () => {
    fed = await startFederation({
      usersA: Object.fromEntries(USERS_A.map((u) => [u, 'secret'])),
      usersB: Object.fromEntries(USERS_B.map((u) => [u, 'secret'])),
    });
    ({ a, b } = fed);
  });
  afterEach(async () => {
    await stopAll(...open.splice(0));
  });
  after(async () => {
    await fed?.stop();
  });

  it("carbons (XEP-0280): a remote contact's message is copied to the other resource (received), a message to one is copied too (sent)", async () => {
    const home = await client(a, 'alice', 'home');
    const phone = await client(a, 'alice', 'phone');
    for (const c of [home, phone]) {
      const r = await iq(c, xml('iq', { type: 'set' }, xml('enable', { xmlns: CARBONS })));
      assert.equal(r.attrs.type, 'result', r.toString());
    }
    const bob = await client(b, 'bob', 'work');

    await bob.send(chat('alice@a.test/home', 'to your home resource', { id: 'c1' }));
    const got = await expectStanza(home, isMessage('to your home resource'), WAIT);
    assert.equal(got.attrs.from, 'bob@b.test/work');
    const received = await expectStanza(phone, (s) => s.is('message') && !!s.getChild('received', CARBONS), WAIT, 'received carbon');
    assert.equal(received.attrs.from, 'alice@a.test');
    assert.equal(received.attrs.to, 'alice@a.test/phone');
    const inner = received.getChild('received', CARBONS)!.getChild('forwarded', FORWARD)!.getChild('message')!;
    assert.equal(inner.attrs.from, 'bob@b.test/work');
    assert.equal(inner.attrs.to, 'alice@a.test/home');
    assert.equal(inner.getChildText('body'), 'to your home resource');

    await home.send(chat('bob@b.test/work', 'from home', { id: 'c2' }));
    const m = await expectStanza(bob, isMessage('from home'), WAIT);
    assert.equal(m.attrs.from, 'alice@a.test/home');
    const sent = await expectStanza(phone, (s) => s.is('message') && !!s.getChild('sent', CARBONS), WAIT, 'sent carbon');
    assert.equal(sent.attrs.from, 'alice@a.test');
    const copy = sent.getChild('sent', CARBONS)!.getChild('forwarded', FORWARD)!.getChild('message')!;
    assert.equal(copy.attrs.to, 'bob@b.test/work');
    assert.equal(copy.attrs.from, 'alice@a.test/home');
    assert.equal(copy.getChildText('body'), 'from home');
    assert.ok(
      !home.received.some((s) => !!s.getChild('sent', CARBONS) || !!s.getChild('received', CARBONS)),
      'no carbon of its own messages',
    );
  });

  it('archive (XEP-0313): a conversation with a remote contact is archived on each side, both directions, found by `with`', async () => {
    const anna = await client(a, 'anna', 'desk');
    const ben = await client(b, 'ben', 'laptop');
    await anna.send(chat('ben@b.test', 'hello ben'));
    await expectStanza(ben, isMessage('hello ben'), WAIT);
    await ben.send(chat('anna@a.test/desk', 'hello anna'));
    await expectStanza(anna, isMessage('hello anna'), WAIT);

    let qn = 0;
    const archived = async (c: XmppClient, withJid: string): Promise<Element[]> => {
      const queryid = `q${++qn}`;
      const form = xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, MAM)),
        xml('field', { var: 'with' }, xml('value', {}, withJid)),
      );
      const r = await iq(c, xml('iq', { type: 'set' }, xml('query', { xmlns: MAM, queryid }, form)), WAIT);
      assert.equal(r.attrs.type, 'result', r.toString());
      const results = c.received.filter((s) => s.is('message') && s.getChild('result', MAM)?.attrs.queryid === queryid);
      c.received = c.received.filter((s) => !results.includes(s));
      return results.map((s) => s.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('message')!);
    };
    const bodies = (ms: Element[]) => ms.map((m) => m.getChildText('body'));

    let mine: Element[] = [];
    await until(async () => (mine = await archived(anna, 'ben@b.test')).length >= 2, "anna's archive with ben", WAIT);
    assert.deepEqual(bodies(mine), ['hello ben', 'hello anna']);
    assert.equal(mine[0]!.attrs.to, 'ben@b.test');
    assert.equal(mine[1]!.attrs.from, 'ben@b.test/laptop');

    let his: Element[] = [];
    await until(async () => (his = await archived(ben, 'anna@a.test')).length >= 2, "ben's archive with anna", WAIT);
    assert.deepEqual(bodies(his), ['hello ben', 'hello anna']);
    assert.equal(his[0]!.attrs.from, 'anna@a.test/desk');
  });

  it('room invitations across servers (XEP-0045 §7.8, XEP-0249): mediated invitation, decline, direct invitation; the invitee joins', async () => {
    const ROOM = 'federated@conference.a.test';
    const amy = await client(a, 'amy', 'desk');
    const bill = await client(b, 'bill', 'phone');
    await amy.send(xml('presence', { to: `${ROOM}/amy` }, xml('x', { xmlns: MUC })));
    const self = await expectStanza(
      amy,
      (s) => s.is('presence') && s.attrs.from === `${ROOM}/amy` && codes(s).includes(110),
      WAIT,
      'room made',
    );
    assert.ok(codes(self).includes(201), self.toString());
    const form = xml(
      'x',
      { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#roomconfig')),
      xml('field', { var: 'muc#roomconfig_membersonly' }, xml('value', {}, '1')),
    );
    const made = await iq(amy, xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: `${MUC}#owner` }, form)));
    assert.equal(made.attrs.type, 'result', made.toString());

    // members only: bill may not enter before he is invited
    await bill.send(xml('presence', { to: `${ROOM}/bill` }, xml('x', { xmlns: MUC })));
    const refused = await expectStanza(bill, (s) => s.is('presence') && s.attrs.from === `${ROOM}/bill` && s.attrs.type === 'error', WAIT);
    assert.equal(errorOf(refused), 'registration-required');

    // mediated: through the room, which sends the invitation to bill on the other server
    await amy.send(
      xml(
        'message',
        { to: ROOM, id: 'inv1' },
        xml('x', { xmlns: USER }, xml('invite', { to: 'bill@b.test' }, xml('reason', {}, 'come and see'))),
      ),
    );
    const invitation = await expectStanza(bill, (s) => s.is('message') && !!s.getChild('x', USER)?.getChild('invite'), WAIT, 'invitation');
    assert.equal(invitation.attrs.from, ROOM);
    const invite = invitation.getChild('x', USER)!.getChild('invite')!;
    assert.equal(invite.attrs.from, 'amy@a.test');
    assert.equal(invite.getChildText('reason'), 'come and see');

    // bill declines: back through the room to amy
    await bill.send(
      xml(
        'message',
        { to: ROOM, id: 'dec1' },
        xml('x', { xmlns: USER }, xml('decline', { to: 'amy@a.test' }, xml('reason', {}, 'not now'))),
      ),
    );
    const declined = await expectStanza(amy, (s) => s.is('message') && !!s.getChild('x', USER)?.getChild('decline'), WAIT, 'decline');
    assert.equal(declined.attrs.from, ROOM);
    const decline = declined.getChild('x', USER)!.getChild('decline')!;
    assert.equal(decline.attrs.from, 'bill@b.test');
    assert.equal(decline.getChildText('reason'), 'not now');

    // direct (XEP-0249): from amy to bill, not through the room
    await amy.send(xml('message', { to: 'bill@b.test' }, xml('x', { xmlns: CONFERENCE, jid: ROOM, reason: 'really, come' })));
    const direct = await expectStanza(bill, (s) => s.is('message') && !!s.getChild('x', CONFERENCE), WAIT, 'direct invitation');
    assert.equal(direct.attrs.from, 'amy@a.test/desk');
    assert.equal(direct.getChild('x', CONFERENCE)!.attrs.jid, ROOM);

    // the mediated invitation made bill a member (§9.4): he may enter now
    await bill.send(xml('presence', { to: `${ROOM}/bill` }, xml('x', { xmlns: MUC })));
    const entered = await expectStanza(
      bill,
      (s) => s.is('presence') && s.attrs.from === `${ROOM}/bill` && codes(s).includes(110),
      WAIT,
      'bill in',
    );
    assert.equal(entered.getChild('x', USER)?.getChild('item')?.attrs.affiliation, 'member');
    await expectStanza(amy, (s) => s.is('presence') && s.attrs.from === `${ROOM}/bill` && !s.attrs.type, WAIT, 'amy sees bill');

    // his connection ends: his server tells the room (directed presence, RFC 6121 §4.6), he leaves it
    await bill.stop();
    await expectStanza(amy, presenceFrom(`${ROOM}/bill`, 'unavailable'), WAIT, 'bill left');
  });

  it('PEP (XEP-0163) to remote contacts: the newest item when caps become known (asked over s2s), live notifications, the newest item on presence', async () => {
    // paula (a.test) and pete (b.test) see each other's presence; pete's client asks for tunes (XEP-0115)
    const paula = await client(a, 'paula', 'desk');
    assert.equal((await publish(paula, TUNE, 'song1', tune('Before you came'))).attrs.type, 'result');
    const askedBy = (c: XmppClient, server: string) =>
      c.received.filter((s) => s.is('iq') && s.attrs.from === server && !!s.getChild('query', DISCO_INFO));
    let pete = await capsClient(b, 'pete', [notify(TUNE)], { domain: 'b.test', resource: 'phone' });
    open.push(pete);
    await subscribe(paula, 'pete@b.test', pete);
    await subscribe(pete, 'paula@a.test', paula);
    // a.test asked pete's client what its caps stand for (a disco#info to his full JID over s2s),
    // and sends him the newest tune of paula's once it knows he wants it
    const last = await expectStanza(pete, isEvent('paula@a.test', TUNE), WAIT, 'newest tune');
    assert.equal(last.attrs.to, 'pete@b.test/phone');
    assert.equal(last.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'song1');
    assert.equal(askedBy(pete, 'a.test').length, 1, 'a.test asked pete what his caps stand for');

    // a live notification, from paula's bare JID
    assert.equal((await publish(paula, TUNE, 'song2', tune('Knowing me, knowing you'))).attrs.type, 'result');
    const live = await expectStanza(pete, (s) => isEvent('paula@a.test', TUNE)(s) && s.toString().includes('song2'), WAIT, 'live tune');
    assert.equal(live.attrs.to, 'pete@b.test/phone');
    assert.equal(
      live.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('tune', TUNE)!.getChildText('title'),
      'Knowing me, knowing you',
    );

    // pete leaves; paula publishes; pete's next presence brings him the newest item (caps already known: not asked again)
    await pete.stop();
    await expectStanza(paula, presenceFrom('pete@b.test/phone', 'unavailable'), WAIT, 'pete gone');
    assert.equal((await publish(paula, TUNE, 'song3', tune('Waterloo'))).attrs.type, 'result');
    pete = await capsClient(b, 'pete', [notify(TUNE)], { domain: 'b.test', resource: 'phone' });
    open.push(pete);
    const again = await expectStanza(pete, isEvent('paula@a.test', TUNE), WAIT, 'newest tune on presence');
    assert.equal(again.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'song3');
    assert.ok(again.getChild('delay', 'urn:xmpp:delay'), 'stamped with when it was published');
    assert.ok(!pete.received.some((s) => s.toString().includes('song2')), 'only the newest');
    assert.equal(askedBy(pete, 'a.test').length, 0, 'a verified caps string is not asked again');
  });

  it('PEP (XEP-0163) from a remote contact: a local resource that asked gets the newest item, then live notifications, from the other server', async () => {
    const bert = await client(b, 'bert', 'desk');
    assert.equal((await publish(bert, TUNE, 'b1', tune('Dancing queen'))).attrs.type, 'result');
    const ari = await capsClient(a, 'ari', [notify(TUNE)], { domain: 'a.test', resource: 'phone' });
    open.push(ari);
    await subscribe(ari, 'bert@b.test', bert);
    await subscribe(bert, 'ari@a.test', ari);
    const last = await expectStanza(ari, isEvent('bert@b.test', TUNE), WAIT, "bert's newest tune");
    assert.equal(last.attrs.to, 'ari@a.test/phone');
    assert.equal(last.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'b1');
    assert.equal((await publish(bert, TUNE, 'b2', tune('Fernando'))).attrs.type, 'result');
    const live = await expectStanza(ari, isEvent('bert@b.test', TUNE), WAIT, 'live tune');
    assert.equal(live.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'b2');
  });

  it('push (XEP-0357) to an app server on the other server: published while the client is away; an error answer disables its registration, a result, a transient error or silence keep theirs', async () => {
    const app = await client(b, 'app', 'push');
    const pushes: Element[] = [];
    const pending: (() => void)[] = [];
    // the app server: n1 refuses (item-not-found), n2 accepts, n3 is busy (a 'wait' error), n4 never answers
    app.iqCallee.set(PUBSUB, 'pubsub', (ctx) => {
      pushes.push(ctx.stanza);
      const node = ctx.stanza.getChild('pubsub', PUBSUB)?.getChild('publish')?.attrs.node;
      if (node === 'n1') return xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: STANZAS }));
      if (node === 'n3') return xml('error', { type: 'wait' }, xml('resource-constraint', { xmlns: STANZAS }));
      if (node === 'n4') return new Promise<boolean>((resolve) => pending.push(() => resolve(true)));
      return true;
    });
    const sam = await client(b, 'sam', 'desk');
    const ava = await client(a, 'ava', 'phone');
    for (const node of ['n1', 'n2', 'n3', 'n4']) {
      const r = await iq(ava, xml('iq', { type: 'set' }, xml('enable', { xmlns: PUSH, jid: 'app@b.test/push', node })));
      assert.equal(r.attrs.type, 'result', r.toString());
    }
    const registrations = async () => (await a.storage.userData.list('ava', 'push')).map((r) => (JSON.parse(r.key) as string[])[1]).sort();
    try {
      // the phone goes to sleep (XEP-0352): a message with a body is pushed to each registration
      await ava.send(xml('inactive', { xmlns: 'urn:xmpp:csi:0' }));
      await ping(ava);
      await sam.send(chat('ava@a.test/phone', 'wake up'));
      await until(() => pushes.length >= 4, 'four pushes', WAIT);
      const p = pushes.find((s) => s.getChild('pubsub')!.getChild('publish')!.attrs.node === 'n2')!;
      assert.equal(p.attrs.from, 'ava@a.test');
      assert.equal(p.attrs.to, 'app@b.test/push');
      const fields = p
        .getChild('pubsub')!
        .getChild('publish')!
        .getChild('item')!
        .getChild('notification', PUSH)!
        .getChild('x', 'jabber:x:data')!;
      const values = Object.fromEntries(fields.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
      assert.equal(values.FORM_TYPE, 'urn:xmpp:push:summary');
      assert.equal(values['message-count'], '1');
      assert.ok(!p.toString().includes('wake up'), 'no body unless configured');

      // the refusal disables n1 (XEP-0357 §7.1); the others stay
      await until(async () => (await registrations()).join() === 'n2,n3,n4', 'n1 disabled', WAIT);
      pushes.length = 0;
      await sam.send(chat('ava@a.test/phone', 'still there?'));
      await until(() => pushes.length >= 3, 'three pushes', WAIT);
      // the pushes of one message leave together: n1's would have come with them
      assert.deepEqual(pushes.map((s) => s.getChild('pubsub')!.getChild('publish')!.attrs.node).sort(), ['n2', 'n3', 'n4']);
      assert.deepEqual(await registrations(), ['n2', 'n3', 'n4']);

      // awake again, then off the network (its session waits for resumption, XEP-0198): pushed too
      await ava.send(xml('active', { xmlns: 'urn:xmpp:csi:0' }));
      await ping(ava);
      pushes.length = 0;
      dropConnection(ava);
      await sam.send(chat('ava@a.test/phone', 'are you there?'));
      // (what it never acknowledged before it dropped may be pushed at once as well)
      const nodes = () => new Set(pushes.map((s) => s.getChild('pubsub')!.getChild('publish')!.attrs.node as string));
      await until(() => ['n2', 'n3', 'n4'].every((n) => nodes().has(n)), 'pushes while detached', WAIT);
      assert.ok(!nodes().has('n1'));
    } finally {
      for (const answer of pending) answer();
    }
  });

  it('presence: a contact logging in later gets the current presence (probe answered across); directed presence to a remote full JID; unavailable on disconnect', async () => {
    const al = await client(a, 'al', 'home');
    let bo = await client(b, 'bo', 'work');
    await subscribe(al, 'bo@b.test', bo);
    await subscribe(bo, 'al@a.test', al);
    await al.send(xml('presence', {}, xml('show', {}, 'away'), xml('status', {}, 'gardening')));
    await expectStanza(bo, (s) => presenceFrom('al@a.test/home')(s) && s.getChildText('status') === 'gardening', WAIT, "al's new status");
    await bo.stop();
    await expectStanza(al, presenceFrom('bo@b.test/work', 'unavailable'), WAIT, 'bo gone');

    // bo logs in again: b.test probes al@a.test, a.test answers with al's current presence
    bo = await client(b, 'bo', 'work');
    const probed = await expectStanza(bo, presenceFrom('al@a.test/home'), WAIT, "al's presence after the probe");
    assert.equal(probed.getChildText('status'), 'gardening');
    assert.equal(probed.getChildText('show'), 'away');
    await expectStanza(al, presenceFrom('bo@b.test/work'), WAIT, 'bo back');

    // directed presence to someone who is not a contact, on the other server
    const sam = await client(b, 'sam', 'desk');
    await al.send(xml('presence', { to: 'sam@b.test/desk' }, xml('status', {}, 'hi sam')));
    const directed = await expectStanza(sam, presenceFrom('al@a.test/home'), WAIT, 'directed presence');
    assert.equal(directed.getChildText('status'), 'hi sam');

    // al's connection ends: his contact and the one he sent presence to get unavailable
    await al.stop();
    await expectStanza(bo, presenceFrom('al@a.test/home', 'unavailable'), WAIT, 'unavailable to the contact');
    await expectStanza(sam, presenceFrom('al@a.test/home', 'unavailable'), WAIT, 'unavailable to the directed-presence recipient');
  });

  it('roster removal of a remote contact cancels the subscriptions both ways (RFC 6121 §2.5.2); a request to a user that does not exist is declined', async () => {
    const rita = await client(a, 'rita', 'desk');
    const rob = await client(b, 'rob', 'desk');
    await subscribe(rita, 'rob@b.test', rob);
    await subscribe(rob, 'rita@a.test', rita);
    const robsItem = () => b.storage.roster.getItem('rob', 'rita@a.test');
    await until(async () => (await robsItem())?.subscription === 'both', "rob's item: both", WAIT);
    const removed = await iq(
      rita,
      xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'rob@b.test', subscription: 'remove' }))),
    );
    assert.equal(removed.attrs.type, 'result', removed.toString());
    await expectStanza(rob, presenceFrom('rita@a.test/desk', 'unavailable'), WAIT, "rita's presence gone");
    await until(async () => (await robsItem())?.subscription === 'none', "rob's item: none", WAIT);

    await rita.send(xml('presence', { to: 'nobody@b.test', type: 'subscribe' }));
    await expectStanza(
      rita,
      (s) => s.is('presence') && s.attrs.from === 'nobody@b.test' && s.attrs.type === 'unsubscribed',
      WAIT,
      'declined',
    );
  });

  it('IQ errors across (RFC 6121 §8.5): a user that does not exist, a resource that is not there: service-unavailable from the address asked', async () => {
    const ari = await client(a, 'ari', 'desk');
    await client(b, 'bob', 'work');
    const cases: [string, Element][] = [
      ['nobody@b.test', xml('query', { xmlns: DISCO_INFO })],
      ['nobody@b.test', xml('vCard', { xmlns: 'vcard-temp' })],
      ['nobody@b.test/phone', xml('query', { xmlns: 'jabber:iq:version' })],
      ['bob@b.test/elsewhere', xml('query', { xmlns: 'jabber:iq:version' })],
      ['bob@b.test/elsewhere', xml('ping', { xmlns: 'urn:xmpp:ping' })],
    ];
    for (const [to, payload] of cases) {
      const r = await iq(ari, xml('iq', { type: 'get', to }, payload), WAIT);
      assert.equal(r.attrs.type, 'error', `${to} ${payload.attrs.xmlns}: ${r.toString()}`);
      assert.equal(r.attrs.from, to);
      assert.equal(r.attrs.to, 'ari@a.test/desk');
      assert.equal(r.getChild('error')?.attrs.type, 'cancel', r.toString());
      assert.ok(r.getChild('error')?.getChild('service-unavailable', STANZAS), `${to} ${payload.attrs.xmlns}: ${r.toString()}`);
    }
  });
});
