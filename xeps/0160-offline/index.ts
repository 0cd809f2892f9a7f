// XEP-0160 offline messages: chat/normal messages to a user with no available
// resource are stored (bounded per user) with a XEP-0203 delay stamp and
// delivered in order when a resource with non-negative priority comes online.
import { dateTime, x, parseXml, z, type Element, type SessionRecord, type XepModule } from '../../src/api/index.js';

const Config = z.object({
  /** messages kept per user; one more is refused with service-unavailable */
  max_per_user: z.number().int().positive().default(500),
  /**
   * users with stored messages remembered in memory, so a login of anyone else
   * skips the storage check; past this many the check is always made
   */
  track_users: z.number().int().min(0).default(1_000_000),
});

const NS_HINTS = 'urn:xmpp:hints';
/** how long a user's offline queue found full is taken to be full without asking storage again */
const FULL_RECHECK_MS = 5000;
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';

/**
 * XEP-0160 §3 / XEP-0334: everything but messages that carry nothing but
 * chat states (and a thread), or that a hint asks not to store.
 */
function storable(m: Element): boolean {
  if (m.getChild('store', NS_HINTS)) return true;
  if (m.getChild('no-store', NS_HINTS) || m.getChild('no-permanent-store', NS_HINTS)) return false;
  const payload = m.getChildElements().filter((c) => c.name !== 'thread' && c.attrs.xmlns !== NS_CHATSTATES && c.attrs.xmlns !== NS_HINTS);
  return payload.length > 0;
}

const offline: XepModule<z.infer<typeof Config>> = {
  name: 'offline',
  xeps: [
    { n: 160, version: '1.0.1', status: 'complete' },
    { n: 203, version: '2.0', status: 'complete', note: 'delay stamp on stored messages' },
  ],
  config: Config,
  async setup(m) {
    m.feature('msgoffline');
    // Who may have messages waiting. Every store on this node goes through here, and
    // in a cluster every other node's store is announced (the user may log in anywhere).
    let waiting: Set<string> | undefined = new Set(await m.storage.offline.users());
    const note = (user: string): void => {
      if (!waiting) return;
      waiting.add(user);
      if (waiting.size > m.config.track_users) waiting = undefined;
    };
    if (waiting.size > m.config.track_users) waiting = undefined;
    m.onInvalidate('stored', note);
    const storedTotal = m.metrics.counter('offline_stored_total', 'Messages stored for offline users');
    const refusedTotal = m.metrics.counter('offline_refused_total', "Messages not stored: the user's offline queue was full");
    const delivered = m.metrics.histogram(
      'offline_flush_messages',
      'Offline messages waiting for a user when they came online (queue size)',
      [1, 5, 10, 50, 100, 500, 1000],
    );
    m.metrics.gauge(
      'offline_users_waiting',
      'Users known to have offline messages waiting (-1: not tracked, too many)',
      () => waiting?.size ?? -1,
    );

    // Users whose queue storage found full, and until when that is believed without
    // asking it again. A flood to an offline user (or a slow reader's queue moved here)
    // made every one of thousands of messages a storage transaction on the event loop
    // (count, refuse) and held up everyone else's stanzas (bench: slowreader). Forgotten
    // when the user's messages are delivered (here, or on another node: 'flushed'), and
    // after FULL_RECHECK_MS in any case; bounded like `waiting` (track_users).
    const full = new Map<string, number>();
    m.onInvalidate('flushed', (user) => void full.delete(user));
    const knownFull = (user: string): boolean => {
      const until = full.get(user);
      if (until === undefined) return false;
      if (until > Date.now()) return true;
      full.delete(user);
      return false;
    };

    m.hook('message/undelivered', async (ev) => {
      const type = ev.stanza.attrs.type ?? 'normal';
      if (type !== 'chat' && type !== 'normal') return false;
      const user = ev.to.local;
      // a user known to exist (their queue is full) whose queue is full: refused at once
      if (knownFull(user)) {
        refusedTotal.inc();
        return false;
      }
      if (!(await m.storage.accounts.get(user))) return false; // no such user: service-unavailable
      if (!storable(ev.stanza)) return true; // chat states and the like are dropped quietly
      const copy = x('message', { ...ev.stanza.attrs }, ev.stanza.children as Element[]);
      copy.children.push(x('delay', { xmlns: 'urn:xmpp:delay', from: m.host, stamp: dateTime() }, 'Offline Storage'));
      const stored = await m.storage.offline.push(user, copy.toString(), m.config.max_per_user);
      if (stored) {
        note(user);
        m.invalidate('stored', user);
        storedTotal.inc();
      } else {
        refusedTotal.inc();
        if (full.size >= m.config.track_users) full.clear();
        full.set(user, Date.now() + FULL_RECHECK_MS);
      }
      return stored;
    });

    // one flush at a time per user, so two resources coming online never both get a message
    const flushing = new Map<string, Promise<void>>();
    const flush = async (user: string, to: SessionRecord): Promise<void> => {
      while (flushing.has(user)) await flushing.get(user);
      if (waiting && !waiting.has(user)) return;
      // forget the mark before reading: a message stored meanwhile marks the user again
      waiting?.delete(user);
      const run = (async () => {
        const stored = await m.storage.offline.list(user);
        if (!stored.length) return;
        delivered.observe(stored.length);
        for (const { stanza } of stored) m.deliver(parseXml(stanza), [to]);
        await m.storage.offline.remove(
          user,
          stored.map((r) => r.id),
        );
        // room again: here and on the other nodes
        full.delete(user);
        m.invalidate('flushed', user);
      })();
      flushing.set(user, run);
      try {
        await run;
      } finally {
        flushing.delete(user);
      }
    };

    // whenever a resource becomes available with non-negative priority (XEP-0160 §2),
    // after the IM module has broadcast the presence (priority 100)
    m.hook(
      'presence/broadcast',
      async (ev) => {
        const s = ev.origin;
        if (!s || ev.stanza.attrs.type !== undefined || s.priority < 0) return false;
        await flush(s.jid.local, s);
        return false;
      },
      50,
    );
  },
};

export default offline;
