// RFC 6121 §2 roster retrieval with XEP-0237 roster versioning.
import { x, StanzaError, type XepModule, type RosterItem, type Element } from '../api/index.js';

export const NS_ROSTER = 'jabber:iq:roster';
const NS_ROSTERVER = 'urn:xmpp:features:rosterver';

/** Marks a session as having requested the roster (it gets roster pushes, RFC 6121 §2.1.6). */
export const INTERESTED = 'roster/interested';

export function itemElement(item: RosterItem, extra?: { subscription?: string }): Element {
  return x(
    'item',
    { jid: item.jid, name: item.name, subscription: extra?.subscription ?? item.subscription, ask: item.ask ? 'subscribe' : undefined },
    item.groups.map((g) => x('group', null, g)),
  );
}

const roster: XepModule = {
  name: 'roster',
  xeps: [{ n: 237, version: '1.3', status: 'complete', note: 'roster versioning: an unchanged version gets an empty result' }],
  setup(m) {
    m.streamFeature(`<ver xmlns='${NS_ROSTERVER}'/>`, 10);

    m.iq({ type: 'get', ns: NS_ROSTER, name: 'query', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'you can only read your own roster');
      req.origin?.ext.set(INTERESTED, true);
      const { version, items } = await m.storage.roster.get(req.from.local);
      const ver = String(version);
      // XEP-0237 §4: the client's version is current, nothing to send
      if (req.payload.attrs.ver !== undefined && req.payload.attrs.ver === ver) return;
      return x(
        'query',
        { xmlns: NS_ROSTER, ver },
        items.map((i) => itemElement(i)),
      );
    });
  },
};

export default roster;
