// XEP-0352 Client State Indication: <active/> and <inactive/> reach this module
// through its nonza registration, and this module decides what may wait for an
// inactive client (holdKey below). The hold itself is the session's mechanism
// (src/session/session.ts sendSerialized): what has a key waits (the latest per
// key); anything else goes at once, after what was held. Disabled, the elements
// are unknown to the server (unsupported-stanza-type) and nothing is ever held.
import { parseXml, type Element, type HoldPolicy, type XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:csi:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const HOLDABLE_NS = new Set([NS_CHATSTATES, 'urn:xmpp:hints']);

/**
 * What may wait while the client is inactive (XEP-0352 §5 leaves it to the server):
 * availability presence (not subscriptions or errors) and messages that carry
 * nothing but chat states (not receipts, markers or a body). Keyed by kind and
 * sender, so only the latest per sender is kept.
 */
export const holdKey: HoldPolicy = (xml, kind) => {
  if (kind === 'iq') return undefined;
  if (kind === 'message') {
    if (xml.includes('<body') || !xml.includes(NS_CHATSTATES)) return undefined;
    // only inactive clients get here: parsing what might be held is affordable
    let el: Element;
    try {
      el = parseXml(xml);
    } catch {
      return undefined;
    }
    if (el.attrs.type === 'error') return undefined;
    if (!el.getChildElements().every((c) => HOLDABLE_NS.has(c.attrs.xmlns ?? '') || c.name === 'thread')) return undefined;
  } else {
    const type = attr(xml, 'type');
    if (type !== '' && type !== 'unavailable') return undefined;
  }
  return `${kind[0]}:${attr(xml, 'from')}`;
};

/** One attribute of the outermost element of a serialised stanza (its start tag only). */
function attr(xml: string, name: string): string {
  const end = xml.indexOf('>');
  const head = end === -1 ? xml : xml.slice(0, end);
  const m = new RegExp(`\\s${name}=(["'])(.*?)\\1`).exec(head);
  return m ? m[2]! : '';
}

const csi: XepModule = {
  name: 'csi',
  xeps: [{ n: 352, version: '1.0.0', status: 'complete' }],
  setup(m) {
    m.streamFeature(`<csi xmlns='${NS}'/>`, 21);
    m.nonza(NS, (el, s) => {
      if (!s.session) return s.close('not-authorized', 'bind a resource first');
      if (el.name === 'active' || el.name === 'inactive') s.session.setInactive(el.name === 'inactive', holdKey);
    });
    // XEP-0386: <active/> or <inactive/> inside Bind 2's <bind/>: the session starts in that state
    m.inline(NS, {
      bind: (el, s) => {
        if ((el.name === 'active' || el.name === 'inactive') && s.session) s.session.setInactive(el.name === 'inactive', holdKey);
      },
    });
  },
};

export default csi;
