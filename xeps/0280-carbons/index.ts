// XEP-0280 Message Carbons (urn:xmpp:carbons:2): every carbon-enabled resource
// of a user sees the chats its other resources send and receive.
import { Element, x, StanzaError, type DeliveryMeta, type SessionRecord, type XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
/** a carbon is a copy: lost unacknowledged, it is not stored offline (the original is handled on its own) */
const COPY: DeliveryMeta = { copy: true };
const IM_PAYLOADS: [string, string][] = [
  ['request', 'urn:xmpp:receipts'],
  ['received', 'urn:xmpp:receipts'],
  ['active', 'http://jabber.org/protocol/chatstates'],
  ['composing', 'http://jabber.org/protocol/chatstates'],
  ['paused', 'http://jabber.org/protocol/chatstates'],
  ['inactive', 'http://jabber.org/protocol/chatstates'],
  ['gone', 'http://jabber.org/protocol/chatstates'],
  ['replace', 'urn:xmpp:message-correct:0'],
  ['displayed', 'urn:xmpp:chat-markers:0'],
];

/** XEP-0280 §6 eligibility, plus the no-copy hint (XEP-0334). */
function eligible(m: Element): boolean {
  if (m.getChild('private', NS) || m.getChild('no-copy', 'urn:xmpp:hints')) return false;
  if (m.getChild('sent', NS) || m.getChild('received', NS)) return false; // never carbon a carbon
  const type = m.attrs.type ?? 'normal';
  if (type === 'chat' || type === 'error') return true;
  if (type === 'normal' && m.getChild('body')) return true;
  if (type === 'groupchat' || type === 'headline') return false;
  return IM_PAYLOADS.some(([n, ns]) => m.getChild(n, ns));
}

/** The wrapper; the forwarded copy is declared jabber:client (XEP-0297), not the wrapper's namespace. */
function carbon(kind: 'sent' | 'received', bare: string, to: SessionRecord, msg: Element): Element {
  const copy = new Element('message', { ...msg.attrs, xmlns: 'jabber:client' });
  copy.children = msg.children; // shared, not re-parented: the original is still being delivered
  return x(
    'message',
    { from: bare, to: to.jid.full, type: msg.attrs.type ?? 'normal' },
    x(kind, { xmlns: NS }, x('forwarded', { xmlns: NS_FORWARD }, copy)),
  );
}

const carbons: XepModule = {
  name: 'carbons',
  xeps: [{ n: 280, version: '1.0.1', status: 'complete' }],
  setup(m) {
    m.feature(NS);

    // XEP-0386: <enable/> inside Bind 2's <bind/> turns carbons on for the new session
    m.inline(NS, {
      bind: (el, s) => {
        if (el.name === 'enable' && s.session) m.sessions.setFlag(s.session, 'carbons', true);
      },
    });

    for (const name of ['enable', 'disable'] as const) {
      m.iq({ type: 'set', ns: NS, name, to: ['bare'] }, (req) => {
        if (!req.self || !req.origin) throw new StanzaError('not-allowed');
        m.sessions.setFlag(req.origin, 'carbons', name === 'enable');
      });
    }

    const others = (bare: string, except: (s: SessionRecord) => boolean): SessionRecord[] =>
      m.sessions.of(bare).filter((s) => s.flags.carbons && !except(s));

    // sent: the other carbon-enabled resources of the sender get a copy. <private/>
    // stays in the message: the recipient's server honours it too (XEP-0280 §7).
    m.hook(
      'message/sent',
      (ev) => {
        // a message to one's own account reaches the other resources anyway; a user with
        // one resource has none to copy to (most messages: asked first, it is cheapest)
        if (!ev.origin || m.sessions.count(ev.from.bare) < 2 || ev.to.bare === ev.from.bare || !eligible(ev.stanza)) return false;
        for (const s of others(ev.from.bare, (t) => t === ev.origin)) m.deliver(carbon('sent', ev.from.bare, s, ev.stanza), [s], COPY);
        return false;
      },
      10,
    );

    // received: carbon-enabled resources that did not get the message get a copy
    m.hook('message/delivered', (ev, targets) => {
      if (m.sessions.count(ev.to.bare) <= targets.length || ev.to.bare === ev.from.bare || !eligible(ev.stanza)) return false;
      for (const s of others(ev.to.bare, (t) => targets.includes(t))) m.deliver(carbon('received', ev.to.bare, s, ev.stanza), [s], COPY);
      return false;
    });
  },
};

export default carbons;
