// XEP-0191 Blocking Command: a user's blocklist, pushed to their resources,
// enforced both ways for every stanza routed to or from a local user.
import { x, Jid, JidError, StanzaError, errorReply, type Element, type StanzaEvent, type XepModule, z } from '../../src/api/index.js';

const NS = 'urn:xmpp:blocking';
const NS_ERRORS = 'urn:xmpp:blocking:errors';

const Config = z.object({
  /** blocklists kept in memory (the first loaded is dropped first, and re-read when needed) */
  cache_users: z.number().int().positive().default(100_000),
  /** items one blocklist may hold */
  max_items: z.number().int().positive().default(1000),
});

/** XEP-0191 §3.4 / XEP-0016 matching: domain, domain/resource, bare, full. */
function matches(item: string, j: Jid): boolean {
  if (item === j.bare || item === j.full || item === j.domain) return true;
  return j.resource !== '' && item === `${j.domain}/${j.resource}`;
}

const blocking: XepModule<z.infer<typeof Config>> = {
  name: 'blocking',
  xeps: [{ n: 191, version: '1.3', status: 'complete' }],
  config: Config,
  setup(m) {
    m.feature(NS);
    // username -> blocked JIDs; an entry (possibly empty) means "loaded"
    const cache = new Map<string, Set<string>>();

    const load = (user: string): Set<string> | Promise<Set<string>> => {
      // oldest-loaded first out: a re-read is cheap, a reordering per stanza is not
      const hit = cache.get(user);
      if (hit) return hit;
      return m.storage.userData.list(user, 'block').then((rows) => {
        const set = new Set(rows.map((r) => r.key));
        cache.set(user, set);
        if (cache.size > m.config.cache_users) cache.delete(cache.keys().next().value!);
        return set;
      });
    };
    const test = (set: Set<string>, other: Jid): boolean => {
      if (set.size === 0) return false;
      for (const item of set) if (matches(item, other)) return true;
      return false;
    };
    /** synchronous when the blocklist is cached, which the hot path relies on */
    const blocks = (user: string, other: Jid): boolean | Promise<boolean> => {
      const set = load(user);
      return set instanceof Promise ? set.then((s) => test(s, other)) : test(set, other);
    };

    m.hook('privacy/blocks', (owner, other) => blocks(owner, other));
    // read at login, so that stanzas to an online user never wait on storage (nor fail
    // while it is out of reach: docs/cluster.md, "Outages")
    m.hook('session/bound', (sess) => {
      const r = load(sess.jid.local);
      if (r instanceof Promise) r.catch((err: unknown) => m.log.error({ err }, 'loading a blocklist failed'));
    });

    // enforcement on everything routed to a local user
    m.hook(
      'route/user',
      (ev: StanzaEvent) => {
        // a user's own traffic and the server's replies are never blocked (XEP-0191 §6)
        if (ev.from.bare === ev.to.bare || (ev.from.local === '' && ev.from.domain === m.host)) return false;
        const inbound = blocks(ev.to.local, ev.from);
        const outbound = ev.origin && ev.from.domain === m.host ? blocks(ev.from.local, ev.to) : false;
        const decide = (inb: boolean, out: boolean): boolean => {
          const type = ev.stanza.attrs.type;
          // errors and IQ results are never answered with an error (RFC 6120 §8.3.1, §8.2.3)
          const answerable = type !== 'error' && !(ev.stanza.name === 'iq' && type === 'result');
          if (out) {
            // XEP-0191 §3.5: the user blocked the recipient
            const err = new StanzaError('not-acceptable', 'you have blocked this contact', undefined, x('blocked', { xmlns: NS_ERRORS }));
            if (ev.stanza.name !== 'presence' && answerable) m.deliver(errorReply(ev.stanza, err), [ev.origin!]);
            return true;
          }
          if (!inb) return false;
          // §3.4: the recipient blocked the sender: messages and IQ requests get service-unavailable
          const answer =
            (ev.stanza.name === 'message' && type !== 'error' && type !== 'groupchat') ||
            (ev.stanza.name === 'iq' && (type === 'get' || type === 'set'));
          if (answer && ev.origin) m.deliver(errorReply(ev.stanza, new StanzaError('service-unavailable')), [ev.origin]);
          return true;
        };
        if (inbound instanceof Promise || outbound instanceof Promise)
          return Promise.all([inbound, outbound]).then(([a, b]) => decide(a, b));
        return decide(inbound, outbound);
      },
      1000,
    );

    let pushes = 0;
    const push = (user: string, el: Element): void => {
      for (const s of m.sessions.of(`${user}@${m.host}`)) {
        if (s.flags.blocklist) m.deliver(x('iq', { type: 'set', id: `block-push-${++pushes}`, to: s.jid.full }, el), [s]);
      }
    };
    const items = (payload: Element): string[] =>
      payload.getChildren('item').map((i) => {
        try {
          return Jid.parse(i.attrs.jid ?? '').full;
        } catch (e) {
          if (e instanceof JidError) throw new StanzaError('jid-malformed', e.message);
          throw e;
        }
      });

    m.iq({ type: 'get', ns: NS, name: 'blocklist', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden');
      if (req.origin) m.sessions.setFlag(req.origin, 'blocklist', true);
      const set = await load(req.from.local);
      return x(
        'blocklist',
        { xmlns: NS },
        [...set].sort().map((jid) => x('item', { jid })),
      );
    });

    m.iq({ type: 'set', ns: NS, name: 'block', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden');
      const jids = items(req.payload);
      if (!jids.length) throw new StanzaError('bad-request', 'name at least one JID to block');
      const user = req.from.local;
      const set = await load(user);
      if (set.size + jids.filter((j) => !set.has(j)).length > m.config.max_items)
        throw new StanzaError('resource-constraint', 'blocklist full');
      for (const j of jids) {
        await m.storage.userData.set(user, 'block', j, '');
        set.add(j);
      }
      m.invalidate('list', user);
      // blocked contacts that could see our presence see us go offline (XEP-0191 §3.3)
      const mine = m.sessions.of(`${user}@${m.host}`).filter((s) => s.available);
      for (const j of jids) {
        const item = await m.storage.roster.getItem(user, Jid.parse(j).bare);
        if (!item || (item.subscription !== 'from' && item.subscription !== 'both')) continue;
        for (const s of mine) m.deliver(x('presence', { type: 'unavailable', from: s.jid.full, to: j }), m.sessions.of(Jid.parse(j).bare));
      }
      push(
        user,
        x(
          'block',
          { xmlns: NS },
          jids.map((jid) => x('item', { jid })),
        ),
      );
      // what rides in an item (a XEP-0377 report) is for whoever listens; the block stands either way
      const els = req.payload.getChildren('item');
      for (const [i, item] of els.entries()) await m.run('blocking/blocked', { user, jid: jids[i]!, item, origin: req.origin });
    });

    m.iq({ type: 'set', ns: NS, name: 'unblock', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden');
      const user = req.from.local;
      const set = await load(user);
      const jids = items(req.payload);
      const removed = jids.length ? jids.filter((j) => set.has(j)) : [...set];
      for (const j of removed) {
        await m.storage.userData.remove(user, 'block', j);
        set.delete(j);
      }
      m.invalidate('list', user);
      // unblocked contacts that are subscribed get our presence again
      for (const j of removed) {
        const item = await m.storage.roster.getItem(user, Jid.parse(j).bare);
        if (!item || (item.subscription !== 'from' && item.subscription !== 'both')) continue;
        for (const s of m.sessions.of(`${user}@${m.host}`))
          if (s.available && s.presence)
            m.send(x('presence', { ...s.presence.attrs, from: s.jid.full, to: j }, s.presence.children as Element[]));
      }
      push(
        user,
        x(
          'unblock',
          { xmlns: NS },
          jids.map((jid) => x('item', { jid })),
        ),
      );
    });

    m.hook('user/deleted', (user) => {
      cache.delete(user);
      m.invalidate('list', user);
    });
    // another node of the cluster changed this user's list: read it afresh
    m.onInvalidate('list', (user) => void cache.delete(user));
  },
};

export default blocking;
