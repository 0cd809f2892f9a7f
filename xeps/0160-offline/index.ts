// XEP-0160 offline messages: chat/normal messages to a user with no available
// resource are stored (bounded per user) with a XEP-0203 delay stamp and
// delivered in order when a resource with non-negative priority comes online.
import { x, parseXml, z, type Element, type XepModule } from '../../src/api/index.js';

const Config = z.object({
  /** messages kept per user; one more is refused with service-unavailable */
  max_per_user: z.number().int().positive().default(500),
});

const NS_HINTS = 'urn:xmpp:hints';
const DELIVERED = 'offline/delivered';

/** Worth storing: has content a user reads, and no hint says otherwise (XEP-0160 §3, XEP-0334). */
function storable(m: Element): boolean {
  if (m.getChild('no-store', NS_HINTS) || m.getChild('no-permanent-store', NS_HINTS)) return false;
  return !!(m.getChild('body') || m.getChild('subject') || m.getChild('store', NS_HINTS) || m.getChild('x', 'jabber:x:conference'));
}

const offline: XepModule<z.infer<typeof Config>> = {
  name: 'offline',
  xeps: [
    { n: 160, version: '1.0.1', status: 'complete' },
    { n: 203, version: '2.0', status: 'complete', note: 'delay stamp on stored messages' },
  ],
  config: Config,
  setup(m) {
    m.feature('msgoffline');

    m.hook('message/undelivered', async (ev) => {
      const type = ev.stanza.attrs.type ?? 'normal';
      if (type !== 'chat' && type !== 'normal') return false;
      if (!(await m.storage.accounts.get(ev.to.local))) return false; // no such user: service-unavailable
      if (!storable(ev.stanza)) return true; // chat states and the like are dropped quietly
      const copy = x('message', { ...ev.stanza.attrs }, ev.stanza.children as Element[]);
      copy.children.push(
        x('delay', { xmlns: 'urn:xmpp:delay', from: m.host, stamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }, 'Offline Storage'),
      );
      return m.storage.offline.push(ev.to.local, copy.toString(), m.config.max_per_user);
    });

    // after the IM module has broadcast the initial presence (priority 100)
    m.hook(
      'presence/broadcast',
      async (ev) => {
        const s = ev.origin;
        if (!s || ev.stanza.attrs.type !== undefined || s.priority < 0 || s.ext.get(DELIVERED)) return false;
        s.ext.set(DELIVERED, true);
        const stored = await m.storage.offline.list(s.jid.local);
        for (const { stanza } of stored) s.send(parseXml(stanza));
        await m.storage.offline.remove(
          s.jid.local,
          stored.map((r) => r.id),
        );
        return false;
      },
      50,
    );
  },
};

export default offline;
