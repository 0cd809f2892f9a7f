// Unit tests for src/im/subscriptions.ts (with src/im/roster-service.ts): the
// presence subscription state machine of RFC 6121 §3, checked against the tables
// of its Appendix A, on a mock module context and a SQLite database in memory.
//
// States are written as in RFC 6121 Appendix A.1: "None", "None + Pending Out",
// "None + Pending In", "None + Pending Out/In", "To", "To + Pending In", "From",
// "From + Pending Out", "Both"; " [approved]" marks a pre-approval (§3.4).
// Pending Out is the roster item's ask flag; Pending In is a stored request.
import assert from 'node:assert/strict';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { Subscriptions, type SubType } from '../../src/im/subscriptions.js';
import { RosterService } from '../../src/im/roster-service.js';
import { Jid } from '../../src/jid.js';
import { parseXml, x, type Element } from '../../src/xml/index.js';
import type { Subscription } from '../../src/storage/types.js';
import { FakeSession, mockContext } from '../helpers/mock-context.js';

const HOST = 'example.com';
const USER = 'juliet';
/** a contact elsewhere (at a component), so that what the user's side routes shows in ctx.send */
const CONTACT = 'romeo@bridge.example.org';
const NS_ROSTER = 'jabber:iq:roster';
const CREDS = {
  'SHA-1': { salt: 'c2FsdA==', iterations: 1, storedKey: 'a2V5', serverKey: 'a2V5' },
  'SHA-256': { salt: 'c2FsdA==', iterations: 1, storedKey: 'a2V5', serverKey: 'a2V5' },
};

interface State {
  subscription: Subscription;
  ask: boolean;
  pendingIn: boolean;
  approved: boolean;
}

function parseState(s: string): State {
  const m = /^(None|To|From|Both)(?: \+ Pending (Out\/In|Out|In))?( \[approved\])?$/.exec(s);
  if (!m) throw new Error(`not a state: ${s}`);
  return {
    subscription: m[1]!.toLowerCase() as Subscription,
    ask: m[2] === 'Out' || m[2] === 'Out/In',
    pendingIn: m[2] === 'In' || m[2] === 'Out/In',
    approved: m[3] !== undefined,
  };
}

function formatState(s: State): string {
  const base = s.subscription[0]!.toUpperCase() + s.subscription.slice(1);
  const pending = s.ask && s.pendingIn ? ' + Pending Out/In' : s.ask ? ' + Pending Out' : s.pendingIn ? ' + Pending In' : '';
  return base + pending + (s.approved ? ' [approved]' : '');
}

async function setState(storage: Storage, user: string, contact: string, state: string): Promise<void> {
  const s = parseState(state);
  await storage.roster.put(user, { jid: contact, subscription: s.subscription, ask: s.ask, approved: s.approved, groups: [] });
  if (s.pendingIn) {
    await storage.roster.addPending(user, contact, `<presence type='subscribe' from='${contact}' to='${user}@${HOST}' id='earlier'/>`);
  }
}

async function getState(storage: Storage, user: string, contact: string): Promise<string> {
  const item = await storage.roster.getItem(user, contact);
  const pendingIn = (await storage.roster.pending(user)).some((p) => p.jid === contact);
  return formatState({ subscription: item?.subscription ?? 'none', ask: item?.ask ?? false, pendingIn, approved: item?.approved ?? false });
}

/** did the roster item itself change (what a roster push reports)? */
function itemChanged(before: string, after: string): boolean {
  const a = parseState(before);
  const b = parseState(after);
  return a.subscription !== b.subscription || a.ask !== b.ask || a.approved !== b.approved;
}

const pushes = (s: FakeSession): Element[] => s.received('iq', 'set').filter((i) => i.getChild('query')?.attrs.xmlns === NS_ROSTER);

async function fixture(users: string[] = [USER]) {
  const storage = await openStorage({ dataDir: ':memory:' });
  for (const u of users) await storage.accounts.create(u, CREDS);
  const { ctx, sessions, routed } = mockContext(HOST, { storage });
  const roster = new RosterService(ctx);
  const presenceSent: string[] = [];
  const unavailableSent: string[] = [];
  const subs = new Subscriptions(
    ctx,
    roster,
    (u, to) => presenceSent.push(`${u} -> ${to}`),
    (u, to) => unavailableSent.push(`${u} -> ${to}`),
  );
  return { storage, sessions, routed, roster, subs, presenceSent, unavailableSent };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;

let open: Fixture[] = [];
async function withFixture(users?: string[]): Promise<Fixture> {
  const f = await fixture(users);
  open.push(f);
  return f;
}

/** [existing state, routed or delivered?, new state] */
type Row = [string, boolean, string];

/** One Appendix A table: the user (juliet) or the contact's server sees `type`; checks state, routing/delivery and the push. */
function table(direction: 'outbound' | 'inbound', type: SubType, rows: Row[]): void {
  const verb = direction === 'outbound' ? 'routed' : 'delivered';
  for (const [before, passes, after] of rows) {
    const title = `${before}: ${passes ? verb : `not ${verb}`}, ${before === after ? 'no state change' : `-> ${after}`}`;
    it(title, async () => {
      const f = await withFixture();
      const phone = new FakeSession(`${USER}@${HOST}/phone`, { interested: true });
      f.sessions.add(phone);
      await setState(f.storage, USER, CONTACT, before);
      const stanza = x('presence', { type, id: 's1' });
      if (direction === 'outbound') await f.subs.outbound(USER, Jid.parse(CONTACT), type, stanza);
      else await f.subs.inbound(USER, Jid.parse(CONTACT), type, stanza);

      assert.equal(await getState(f.storage, USER, CONTACT), after);
      if (direction === 'outbound') {
        const sent = f.routed.filter((s) => s.name === 'presence' && s.attrs.type === type);
        assert.equal(sent.length, passes ? 1 : 0, passes ? 'routed to the contact' : 'not routed');
        if (passes) {
          assert.equal(sent[0]!.attrs.from, `${USER}@${HOST}`, 'stamped with the bare JID');
          assert.equal(sent[0]!.attrs.to, CONTACT);
        }
      } else {
        const got = phone.received('presence', type);
        assert.equal(got.length, passes ? 1 : 0, passes ? 'delivered to the user' : 'not delivered');
        if (passes) assert.equal(got[0]!.attrs.from, CONTACT);
      }
      assert.equal(pushes(phone).length, itemChanged(before, after) ? 1 : 0, 'a roster push exactly when the item changed');
    });
  }
}

describe('Subscriptions (RFC 6121 §3, Appendix A)', () => {
  afterEach(async () => {
    for (const f of open) await f.storage.close();
    open = [];
  });

  describe('the user sends subscribe (outbound)', () => {
    // prettier-ignore
    table('outbound', 'subscribe', [
      // existing state          route?  new state
      ['None',                   true,   'None + Pending Out'],
      ['None + Pending Out',     true,   'None + Pending Out'],
      ['None + Pending In',      true,   'None + Pending Out/In'],
      ['None + Pending Out/In',  true,   'None + Pending Out/In'],
      ['To',                     true,   'To'],
      ['To + Pending In',        true,   'To + Pending In'],
      ['From',                   true,   'From + Pending Out'],
      ['From + Pending Out',     true,   'From + Pending Out'],
      ['Both',                   true,   'Both'],
    ]);
  });

  describe('the user sends unsubscribe (outbound)', () => {
    // prettier-ignore
    table('outbound', 'unsubscribe', [
      ['None',                   true,   'None'],
      ['None + Pending Out',     true,   'None'],
      ['None + Pending In',      true,   'None + Pending In'],
      ['None + Pending Out/In',  true,   'None + Pending In'],
      ['To',                     true,   'None'],
      ['To + Pending In',        true,   'None + Pending In'],
      ['From',                   true,   'From'],
      ['From + Pending Out',     true,   'From'],
      ['Both',                   true,   'From'],
    ]);
  });

  describe('the user sends subscribed (outbound; without a request it pre-approves, §3.4)', () => {
    // prettier-ignore
    table('outbound', 'subscribed', [
      ['None',                   false,  'None [approved]'],
      ['None + Pending Out',     false,  'None + Pending Out [approved]'],
      ['None + Pending In',      true,   'From'],
      ['None + Pending Out/In',  true,   'From + Pending Out'],
      ['To',                     false,  'To [approved]'],
      ['To + Pending In',        true,   'Both'],
      ['From',                   false,  'From'],
      ['From + Pending Out',     false,  'From + Pending Out'],
      ['Both',                   false,  'Both'],
      ['None [approved]',        false,  'None [approved]'],
    ]);
  });

  describe('the user sends unsubscribed (outbound; also cancels a pre-approval)', () => {
    // prettier-ignore
    table('outbound', 'unsubscribed', [
      ['None',                   false,  'None'],
      ['None + Pending Out',     false,  'None + Pending Out'],
      ['None + Pending In',      true,   'None'],
      ['None + Pending Out/In',  true,   'None + Pending Out'],
      ['To',                     false,  'To'],
      ['To + Pending In',        true,   'To'],
      ['From',                   true,   'None'],
      ['From + Pending Out',     true,   'None + Pending Out'],
      ['Both',                   true,   'To'],
    ]);
  });

  describe('subscribe reaches the user (inbound)', () => {
    // From, From + Pending Out, Both: not delivered, the server answers subscribed (tested below)
    // prettier-ignore
    table('inbound', 'subscribe', [
      // existing state          deliver? new state
      ['None',                   true,   'None + Pending In'],
      ['None + Pending Out',     true,   'None + Pending Out/In'],
      ['None + Pending In',      false,  'None + Pending In'],
      ['None + Pending Out/In',  false,  'None + Pending Out/In'],
      ['To',                     true,   'To + Pending In'],
      ['To + Pending In',        false,  'To + Pending In'],
      ['From',                   false,  'From'],
      ['From + Pending Out',     false,  'From + Pending Out'],
      ['Both',                   false,  'Both'],
      ['None [approved]',        false,  'From'],
      ['To [approved]',          false,  'Both'],
    ]);
  });

  describe('unsubscribe reaches the user (inbound)', () => {
    // prettier-ignore
    table('inbound', 'unsubscribe', [
      ['None',                   false,  'None'],
      ['None + Pending Out',     false,  'None + Pending Out'],
      ['None + Pending In',      true,   'None'],
      ['None + Pending Out/In',  true,   'None + Pending Out'],
      ['To',                     false,  'To'],
      ['To + Pending In',        true,   'To'],
      ['From',                   true,   'None'],
      ['From + Pending Out',     true,   'None + Pending Out'],
      ['Both',                   true,   'To'],
    ]);
  });

  describe('subscribed reaches the user (inbound; unexpected approvals are ignored)', () => {
    // prettier-ignore
    table('inbound', 'subscribed', [
      ['None',                   false,  'None'],
      ['None + Pending Out',     true,   'To'],
      ['None + Pending In',      false,  'None + Pending In'],
      ['None + Pending Out/In',  true,   'To + Pending In'],
      ['To',                     false,  'To'],
      ['To + Pending In',        false,  'To + Pending In'],
      ['From',                   false,  'From'],
      ['From + Pending Out',     true,   'Both'],
      ['Both',                   false,  'Both'],
    ]);
  });

  describe('unsubscribed reaches the user (inbound)', () => {
    // prettier-ignore
    table('inbound', 'unsubscribed', [
      ['None',                   false,  'None'],
      ['None + Pending Out',     true,   'None'],
      ['None + Pending In',      false,  'None + Pending In'],
      ['None + Pending Out/In',  true,   'None + Pending In'],
      ['To',                     true,   'None'],
      ['To + Pending In',        true,   'None + Pending In'],
      ['From',                   false,  'From'],
      ['From + Pending Out',     true,   'From'],
      ['Both',                   true,   'From'],
    ]);
  });

  describe('who gets what, in which order', () => {
    // an approval or a cancellation goes to the resources that requested the roster, before the push it causes
    const cases: { type: SubType; before: string }[] = [
      { type: 'subscribed', before: 'None + Pending Out' },
      { type: 'unsubscribe', before: 'From' },
      { type: 'unsubscribed', before: 'To' },
    ];
    for (const c of cases) {
      it(`inbound ${c.type}: interested resources get the stanza, then the roster push; others get neither`, async () => {
        const f = await withFixture();
        const desk = new FakeSession(`${USER}@${HOST}/desk`, { interested: true });
        const phone = new FakeSession(`${USER}@${HOST}/phone`); // available, never asked for the roster
        f.sessions.add(desk);
        f.sessions.add(phone);
        await setState(f.storage, USER, CONTACT, c.before);
        await f.subs.inbound(USER, Jid.parse(CONTACT), c.type, x('presence', { type: c.type }));
        assert.deepEqual(
          desk.sent.map((s) => `${s.name} ${s.attrs.type}`),
          [`presence ${c.type}`, 'iq set'],
        );
        assert.equal(desk.sent[1]!.getChild('query')?.getChild('item')?.attrs.jid, CONTACT);
        assert.deepEqual(phone.sent, []);
      });
    }

    it('inbound subscribe: every available resource gets it, kept whole (id, children), from the bare JID; it is stored whole', async () => {
      const f = await withFixture();
      const phone = new FakeSession(`${USER}@${HOST}/phone`);
      const desk = new FakeSession(`${USER}@${HOST}/desk`, { interested: true });
      const idle = new FakeSession(`${USER}@${HOST}/idle`, { available: false, interested: true });
      for (const s of [phone, desk, idle]) f.sessions.add(s);
      const request = x(
        'presence',
        { type: 'subscribe', id: 'sub-42', from: `${CONTACT}/orchard`, to: `${USER}@${HOST}` },
        x('nick', { xmlns: 'http://jabber.org/protocol/nick' }, 'Romeo'),
        x('preauth', { xmlns: 'urn:xmpp:pars:0', token: 'tok' }),
      );
      await f.subs.inbound(USER, Jid.parse(CONTACT), 'subscribe', request);

      const check = (p: Element | undefined, where: string): void => {
        assert.ok(p, where);
        assert.equal(p.attrs.type, 'subscribe', where);
        assert.equal(p.attrs.id, 'sub-42', where);
        assert.equal(p.attrs.from, CONTACT, `${where}: from the bare JID`);
        assert.equal(p.attrs.to, `${USER}@${HOST}`, where);
        assert.equal(p.getChildText('nick'), 'Romeo', where);
        assert.equal(p.getChild('preauth')?.attrs.token, 'tok', where);
      };
      check(phone.received('presence', 'subscribe')[0], 'phone');
      check(desk.received('presence', 'subscribe')[0], 'desk');
      assert.deepEqual(idle.sent, [], 'a resource without initial presence gets nothing');
      const stored = await f.storage.roster.pending(USER);
      assert.deepEqual(
        stored.map((p) => p.jid),
        [CONTACT],
      );
      check(parseXml(stored[0]!.stanza), 'stored');
    });

    it('the server answers subscribed for a user already subscribed to: a local user gets it', async () => {
      const f = await withFixture([USER, 'nurse']);
      const nurse = `nurse@${HOST}`;
      await setState(f.storage, USER, nurse, 'From');
      // the nurse's side lost the subscription and asks again: juliet's server answers for her
      await setState(f.storage, 'nurse', `${USER}@${HOST}`, 'None + Pending Out');
      await f.subs.inbound(USER, Jid.parse(nurse), 'subscribe', x('presence', { type: 'subscribe' }));
      assert.equal(await getState(f.storage, 'nurse', `${USER}@${HOST}`), 'To');
      assert.equal(await getState(f.storage, USER, nurse), 'From');
    });

    it('the server answers subscribed for a user already subscribed to: a contact at a component gets it routed', async () => {
      const f = await withFixture();
      await setState(f.storage, USER, CONTACT, 'Both');
      await f.subs.inbound(USER, Jid.parse(CONTACT), 'subscribe', x('presence', { type: 'subscribe' }));
      const answers = f.routed.filter((s) => s.attrs.type === 'subscribed');
      assert.equal(answers.length, 1, 'RFC 6121 §3.1.3: the contact’s server MUST auto-reply subscribed');
      assert.equal(answers[0]!.attrs.from, `${USER}@${HOST}`);
      assert.equal(answers[0]!.attrs.to, CONTACT);
    });

    it('approving a request sends the user’s presence to the new subscriber; cancelling one sends unavailable', async () => {
      const f = await withFixture();
      await setState(f.storage, USER, CONTACT, 'None + Pending In');
      await f.subs.outbound(USER, Jid.parse(CONTACT), 'subscribed', x('presence', { type: 'subscribed' }));
      assert.deepEqual(f.presenceSent, [`${USER} -> ${CONTACT}`]);
      assert.deepEqual(f.unavailableSent, []);
      await f.subs.outbound(USER, Jid.parse(CONTACT), 'unsubscribed', x('presence', { type: 'unsubscribed' }));
      assert.deepEqual(f.unavailableSent, [`${USER} -> ${CONTACT}`]);
    });

    it('a request to an account that does not exist is declined: the local requester’s request is cancelled', async () => {
      const f = await withFixture([USER]);
      const ghost = `ghost@${HOST}`;
      await setState(f.storage, USER, ghost, 'None + Pending Out');
      await f.subs.outbound(USER, Jid.parse(ghost), 'subscribe', x('presence', { type: 'subscribe' }));
      assert.equal(await getState(f.storage, USER, ghost), 'None');
      assert.deepEqual(await f.storage.roster.pending('ghost'), []);
    });

    it('two local users: a request and its approval leave the user at To and the contact at From', async () => {
      const f = await withFixture([USER, 'nurse']);
      const juliet = `${USER}@${HOST}`;
      const nurse = `nurse@${HOST}`;
      const nursePhone = new FakeSession(`${nurse}/phone`, { interested: true });
      f.sessions.add(nursePhone);
      await f.subs.outbound(USER, Jid.parse(nurse), 'subscribe', x('presence', { type: 'subscribe', id: 'r1' }));
      assert.equal(await getState(f.storage, USER, nurse), 'None + Pending Out');
      assert.equal(await getState(f.storage, 'nurse', juliet), 'None + Pending In');
      assert.equal(nursePhone.received('presence', 'subscribe')[0]?.attrs.from, juliet);
      await f.subs.outbound('nurse', Jid.parse(juliet), 'subscribed', x('presence', { type: 'subscribed' }));
      assert.equal(await getState(f.storage, USER, nurse), 'To');
      assert.equal(await getState(f.storage, 'nurse', juliet), 'From');
      assert.deepEqual(f.routed, [], 'nothing leaves the server');
    });
  });
});
