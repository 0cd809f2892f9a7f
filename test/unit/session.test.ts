// Unit tests for src/session/session.ts (the mechanisms: the unacknowledged queue,
// the hold of an inactive client) and the csi module's hold policy, on a fake
// stream owner. No sockets, no server.
import assert from 'node:assert/strict';
import { Session, type Kind, type SessionEnv, type SessionOwner } from '../../src/session/session.js';
import { Jid } from '../../src/jid.js';
import { holdKey } from '../../xeps/0352-csi/index.js';

class FakeOwner implements SessionOwner {
  readonly id = 'stream1';
  readonly secure = true;
  readonly remoteAddress = '127.0.0.1';
  readonly written: { xml: string; kind: Kind }[] = [];
  readonly raw: string[] = [];
  closed: string | undefined;
  writeStanza(xml: string, kind: Kind): void {
    this.written.push({ xml, kind });
  }
  writeRaw(s: string): void {
    this.raw.push(s);
  }
  close(condition?: string): void {
    this.closed = condition ?? 'closed';
  }
}

function setup(limits: { max_queue?: number; ack_every?: number; max_held?: number } = {}) {
  const events = { overflow: 0, away: [] as string[] };
  const env: SessionEnv = {
    sm: () => ({ max_queue: limits.max_queue ?? 100, ack_every: limits.ack_every ?? 1000 }),
    csiMaxHeld: () => limits.max_held ?? 100,
    queueOverflow: () => void events.overflow++,
    away: (_s, reason) => void events.away.push(reason),
    closeDetached: () => undefined,
  };
  const owner = new FakeOwner();
  const session = new Session(Jid.parse('juliet@example.com/balcony'), owner, env);
  return { owner, session, events };
}

const presence = (from: string, type?: string): string =>
  `<presence from='${from}' to='juliet@example.com/balcony'${type ? ` type='${type}'` : ''}/>`;
const chatState = (from: string, state: string): string =>
  `<message from='${from}' to='juliet@example.com' type='chat'><${state} xmlns='http://jabber.org/protocol/chatstates'/></message>`;
const chat = (from: string, body: string): string =>
  `<message from='${from}' to='juliet@example.com' type='chat'><body>${body}</body></message>`;

describe('csi hold policy (xeps/0352-csi holdKey)', () => {
  const cases: [string, string, 'message' | 'presence' | 'iq', string | undefined][] = [
    ['available presence', presence('romeo@example.net/a'), 'presence', 'p:romeo@example.net/a'],
    ['unavailable presence', presence('romeo@example.net/a', 'unavailable'), 'presence', 'p:romeo@example.net/a'],
    ['a subscription request', presence('romeo@example.net', 'subscribe'), 'presence', undefined],
    ['a presence error', presence('romeo@example.net', 'error'), 'presence', undefined],
    ['a chat state alone', chatState('romeo@example.net/a', 'composing'), 'message', 'm:romeo@example.net/a'],
    ['a message with a body', chat('romeo@example.net/a', 'hi'), 'message', undefined],
    [
      'a chat state with a receipt',
      `<message from='r@x/a' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/><received xmlns='urn:xmpp:receipts' id='1'/></message>`,
      'message',
      undefined,
    ],
    ['an iq', `<iq from='r@x/a' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`, 'iq', undefined],
  ];
  for (const [what, xml, kind, key] of cases) {
    it(`${what}: ${key === undefined ? 'goes at once' : 'may wait'}`, () => {
      assert.equal(holdKey(xml, kind), key);
    });
  }
});

describe('session (src/session/session.ts)', () => {
  it('while inactive, holds what the policy keys (the latest per key, in order) and flushes it before what matters', () => {
    const { owner, session } = setup();
    session.setInactive(true, holdKey);
    session.sendSerialized(presence('a@x/1'), 'presence');
    session.sendSerialized(chatState('b@x/1', 'composing'), 'message');
    session.sendSerialized(presence('a@x/1', 'unavailable'), 'presence');
    assert.equal(owner.written.length, 0, 'nothing written while everything may wait');
    session.sendSerialized(chat('c@x/1', 'hello'), 'message');
    assert.deepEqual(
      owner.written.map((w) => w.xml),
      [chatState('b@x/1', 'composing'), presence('a@x/1', 'unavailable'), chat('c@x/1', 'hello')],
      'held ones first (a newer one replaces an older of the same key, at the end), then the message',
    );
  });

  it('without a policy (csi disabled) nothing is held', () => {
    const { owner, session } = setup();
    session.setInactive(true);
    session.sendSerialized(presence('a@x/1'), 'presence');
    assert.equal(owner.written.length, 1);
  });

  it('becoming active writes what was held; the hold is bounded by csi.max_held', () => {
    const { owner, session } = setup({ max_held: 2 });
    session.setInactive(true, holdKey);
    session.sendSerialized(presence('a@x/1'), 'presence');
    session.sendSerialized(presence('b@x/1'), 'presence');
    assert.equal(owner.written.length, 0);
    session.sendSerialized(presence('c@x/1'), 'presence');
    assert.equal(owner.written.length, 3, 'over the bound: everything held is written');
    session.sendSerialized(presence('d@x/1'), 'presence');
    session.setInactive(false);
    assert.equal(owner.written.length, 4);
  });

  it('a message with a body to an inactive client counts as unseen and asks for a push', () => {
    const { session, events } = setup();
    session.setInactive(true, holdKey);
    session.sendSerialized(chat('c@x/1', 'hello'), 'message');
    assert.equal(session.unseen, 1);
    assert.deepEqual(events.away, ['inactive']);
    session.setInactive(false);
    assert.equal(session.unseen, 0);
  });

  it('with acknowledgements on, keeps what was sent, with its peers and copy flag, and reports an overflow', () => {
    const { session, events } = setup({ max_queue: 2 });
    session.sm = { id: 'sm1', resumable: true, inH: 0, acked: 0, queue: [], sinceRequest: 0, lastRequest: 0 };
    const peer = setup().session;
    session.sendSerialized(chat('a@x/1', 'one'), 'message', [session, peer]);
    session.sendSerialized(`<message from='juliet@example.com' type='chat'><received xmlns='urn:xmpp:carbons:2'/></message>`, 'message', undefined, {
      copy: true,
    });
    assert.equal(session.sm.queue.length, 2);
    assert.deepEqual(session.sm.queue[0]!.peers, [session, peer]);
    assert.equal(session.sm.queue[1]!.copy, true);
    assert.equal(session.sm.queue[0]!.copy, undefined);
    assert.equal(events.overflow, 0);
    session.sendSerialized(chat('a@x/1', 'three'), 'message');
    assert.equal(events.overflow, 1, 'a third unacknowledged stanza passes max_queue');
  });

  it('asks for an acknowledgement every ack_every stanzas', () => {
    const { owner, session } = setup({ ack_every: 2 });
    session.sm = { id: 'sm1', resumable: false, inH: 0, acked: 0, queue: [], sinceRequest: 0, lastRequest: 0 };
    session.sendSerialized(chat('a@x/1', 'one'), 'message');
    assert.deepEqual(owner.raw, []);
    session.sendSerialized(chat('a@x/1', 'two'), 'message');
    assert.deepEqual(owner.raw, ["<r xmlns='urn:xmpp:sm:3'/>"]);
  });

  it('detached: what arrives is queued, counted as unseen, and taken in order at the end', () => {
    const { session, events } = setup();
    session.sm = { id: 'sm1', resumable: true, inH: 0, acked: 0, queue: [], sinceRequest: 0, lastRequest: 0 };
    session.owner = undefined;
    session.sendSerialized(chat('a@x/1', 'one'), 'message');
    session.sendSerialized(presence('a@x/1'), 'presence');
    assert.equal(session.detached, true);
    assert.deepEqual(events.away, ['detached']);
    assert.deepEqual(
      session.takeUnsent().map((u) => u.xml),
      [chat('a@x/1', 'one'), presence('a@x/1')],
    );
    assert.equal(session.sm.queue.length, 0);
  });
});
