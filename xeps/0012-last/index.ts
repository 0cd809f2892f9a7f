// XEP-0012 Last Activity: a contact's time since logout (with its last status),
// or the server's uptime.
import { x, StanzaError, type XepModule } from '../../src/api/index.js';

const NS = 'jabber:iq:last';

const last: XepModule = {
  name: 'last',
  xeps: [{ n: 12, version: '2.0', status: 'complete', note: "server uptime, users' last logout; a full JID's idle time is its client's to answer" }],
  setup(m) {
    m.feature(NS);
    m.feature(NS, 'bare');

    m.iq({ type: 'get', ns: NS, name: 'query', to: ['host'] }, () =>
      x('query', { xmlns: NS, seconds: String(Math.floor((Date.now() - m.server.startedAt) / 1000)) }),
    );

    /** only the user and their subscribers may see it (XEP-0012 §3, §4) */
    const authorize = async (user: string, requester: string, self: boolean): Promise<void> => {
      if (self) return;
      if (!(await m.storage.accounts.get(user))) throw new StanzaError('service-unavailable');
      const item = await m.storage.roster.getItem(user, requester);
      if (!item || (item.subscription !== 'from' && item.subscription !== 'both')) throw new StanzaError('forbidden');
    };

    // A query to a full JID is the client's to answer (XEP-0012 §4: idle time): no
    // handler here, so the router delivers it to that resource (RFC 6120 §10.5.3.1).

    m.iq({ type: 'get', ns: NS, name: 'query', to: ['bare'] }, async (req) => {
      const user = req.to.local;
      await authorize(user, req.from.bare, req.self);
      // XEP-0012 §3: a connected resource means 0. Others only learn of available ones
      // (a connected but unavailable resource is not shown to contacts).
      const sessions = m.sessions.of(req.to.bare);
      if (req.self ? sessions.length > 0 : sessions.some((s) => s.available)) return x('query', { xmlns: NS, seconds: '0' });
      const stored = await m.storage.userData.get(user, 'last', '');
      if (stored === undefined) throw new StanzaError('item-not-found');
      const { at, status } = JSON.parse(stored) as { at: number; status: string };
      return x('query', { xmlns: NS, seconds: String(Math.max(0, Math.floor((Date.now() - at) / 1000))) }, status || undefined);
    });

    // remember the status of the unavailable presence (before the IM module's
    // broadcast, priority 100), store it when the last session ends
    m.hook(
      'presence/broadcast',
      (ev) => {
        if (ev.origin && ev.stanza.attrs.type === 'unavailable') ev.origin.ext.set('last/status', ev.stanza.getChildText('status') ?? '');
        return false;
      },
      200,
    );
    // accounts being (or just) deleted: their sessions close during the deletion, and a
    // last-activity write racing it must not outlive the account
    const deleted = new Set<string>();
    m.hook('user/deleting', (u) => {
      deleted.add(u);
      if (deleted.size > 10_000) deleted.delete(deleted.values().next().value!);
    });
    m.hook('user/created', (u) => void deleted.delete(u));
    m.hook('session/closed', async (s) => {
      if (m.sessions.of(s.jid.bare).length || deleted.has(s.jid.local)) return;
      if (!(await m.storage.accounts.get(s.jid.local))) return; // deleted: nothing to remember
      if (deleted.has(s.jid.local)) return;
      const status = (s.ext.get('last/status') as string | undefined) ?? '';
      await m.storage.userData.set(s.jid.local, 'last', '', JSON.stringify({ at: Date.now(), status }));
    });
  },
};

export default last;
