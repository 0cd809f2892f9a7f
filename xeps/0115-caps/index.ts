// XEP-0115 Entity Capabilities, on the server's side: learn what each resource's client
// supports from the <c/> in its presence, so that PEP (XEP-0163) sends a notification
// only to resources that asked for the node (`NODE+notify`).
//
// An unknown verification string is asked of the resource that announced it (one
// disco#info to its full JID, node 'NODE#VER'; one question per string however many
// resources announce it at once), the answer's hash is computed again (./ver.ts), and
// only an answer that verifies is cached: in memory (bounded, least recently used
// dropped) and in storage (`entity_caps`), where the other nodes of a cluster find it.
// An answer that does not verify, a hash function not known here, or caps without a
// hash (the pre-1.4 format) are used for that one session, never cached.
//
// Contacts on other servers announce caps in the presence they send local users: the same
// resolution (the question goes to the remote full JID over s2s), kept per remote resource
// (./remote.ts), for PEP's notifications to them.
import { x, z, type Element, type SessionRecord, type XepModule } from '../../src/api/index.js';
import { knownHash, verify } from './ver.js';
import { RemoteCaps, type Caps } from './remote.js';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
/** session ext key: what this session's latest presence announced */
const ANNOUNCED = 'caps';

const Config = z.object({
  /** verification strings kept in memory (each a set of features) */
  cache_size: z.number().int().positive().default(10_000),
});

/** resources of other servers whose caps are kept (each a JID, a string and the local users it reached) */
const REMOTE_MAX = 100_000;

/** What a session announced, and the features once known. */
interface Announced {
  key: string;
  features?: ReadonlySet<string>;
}

export function capsOf(presence: Element | undefined): Caps | undefined {
  const c = presence?.getChild('c', NS_CAPS);
  const node = c?.attrs.node;
  const ver = c?.attrs.ver;
  if (!c || !node || !ver) return undefined;
  return { node, ver, hash: c.attrs.hash };
}

const keyOf = (c: Caps): string => (c.hash ? `${c.hash} ${c.ver}` : `legacy ${c.node}#${c.ver}`);

const caps: XepModule<z.infer<typeof Config>> = {
  name: 'caps',
  config: Config,
  xeps: [{ n: 115, version: '1.6.0', status: 'complete', note: 'the server learns and verifies clients\' caps (for PEP)' }],
  setup(m) {
    const known = new Map<string, ReadonlySet<string>>();
    /** full JIDs with a caps question waiting (one at a time each) */
    const askingNow = new Set<string>();
    /** strings another node's sessions announce that storage did not have, until when not to look again */
    const absent = new Map<string, number>();
    const asking = new Map<string, Promise<{ features?: ReadonlySet<string>; asked?: string; own?: ReadonlySet<string> }>>();
    const verified = m.metrics.counter('caps_verified_total', 'XEP-0115 verification strings learned and verified');
    const rejected = m.metrics.counter('caps_rejected_total', 'XEP-0115 answers whose hash did not verify (not cached)');
    m.metrics.gauge('caps_cached', 'XEP-0115 verification strings cached in memory', () => known.size);

    const remember = (key: string, features: ReadonlySet<string>): void => {
      known.delete(key);
      known.set(key, features);
      while (known.size > m.config.cache_size) known.delete(known.keys().next().value!);
    };
    const recall = (key: string): ReadonlySet<string> | undefined => {
      const f = known.get(key);
      if (f) remember(key, f);
      return f;
    };

    /**
     * Ask a resource (a full JID, here or on another server) what its caps stand for; the
     * features, and whether the hash verified. One question per resource at a time: a client
     * announcing ever new strings it never answers for cannot fill the server's table of
     * waiting requests.
     */
    const ask = async (jid: string, c: Caps): Promise<{ features: ReadonlySet<string>; ok: boolean } | undefined> => {
      if (askingNow.has(jid)) return undefined;
      askingNow.add(jid);
      let res: Element;
      try {
        res = await m.request(x('iq', { type: 'get', to: jid }, x('query', { xmlns: NS_DISCO_INFO, node: `${c.node}#${c.ver}` })));
      } catch (err) {
        m.log.debug({ err, jid }, 'caps: no disco#info answer');
        return undefined;
      } finally {
        askingNow.delete(jid);
      }
      const query = res.getChild('query', NS_DISCO_INFO);
      if (!query) return undefined;
      const v = c.hash ? verify(query, c.hash) : undefined;
      const features = new Set(
        query
          .getChildren('feature')
          .map((f) => f.attrs.var)
          .filter((f): f is string => !!f),
      );
      if (!v || v.ver !== c.ver) return { features, ok: false };
      return { features: new Set(v.features), ok: true };
    };

    /**
     * The features behind a verifiable string: from memory, storage, or the resource asked
     * (one question however many resources announce it at once). `asked` is the resource
     * that was asked: an answer that did not verify still describes that one resource.
     */
    const resolve = (jid: string, c: Caps, key: string): Promise<{ features?: ReadonlySet<string>; asked?: string; own?: ReadonlySet<string> }> => {
      let p = asking.get(key);
      if (p) return p;
      p = (async () => {
        const stored = await m.storage.caps.get(key).catch(() => undefined);
        if (stored) {
          const f = new Set(JSON.parse(stored) as string[]);
          remember(key, f);
          return { features: f };
        }
        const answer = await ask(jid, c);
        if (!answer?.ok) {
          if (answer) rejected.inc();
          return { asked: jid, own: answer?.features };
        }
        verified.inc();
        remember(key, answer.features);
        await m.storage.caps.put(key, JSON.stringify([...answer.features])).catch((err: unknown) => m.log.warn({ err }, 'caps: storing failed'));
        return { features: answer.features };
      })().finally(() => asking.delete(key));
      asking.set(key, p);
      return p;
    };

    /** The features behind `c` as announced by `jid` (a full JID); undefined when it did not answer. */
    const featuresOf = async (jid: string, c: Caps, key: string): Promise<ReadonlySet<string> | undefined> => {
      // no hash (pre-1.4) or a hash function not known here: this resource only (§5.4)
      if (!c.hash || !knownHash(c.hash)) return (await ask(jid, c))?.features;
      const f = recall(key);
      if (f) return f;
      const r = await resolve(jid, c, key);
      // an answer that did not verify is used for the resource that gave it only;
      // another resource announcing the same string is asked for itself
      return r.features ?? (r.asked === jid ? r.own : (await ask(jid, c))?.features);
    };

    const learn = async (s: SessionRecord, c: Caps, entry: Announced): Promise<void> => {
      const features = await featuresOf(s.jid.full, c, entry.key);
      if (!features || s.ext.get(ANNOUNCED) !== entry) return;
      entry.features = features;
      await m.run('caps/known', s, features);
    };

    const remote = new RemoteCaps(
      {
        capsOf: (p) => capsOf(p),
        keyOf,
        featuresOf,
        // any roster item: the presence that follows an approval may be handled before the approval is stored
        isContact: async (to, contact) => !!(await m.use('roster')?.item(to.slice(0, to.indexOf('@')), contact)),
        known: (jid, features, to) => {
          const r = m.run('caps/remote', jid, features, to);
          if (r instanceof Promise) r.catch((err: unknown) => m.log.warn({ err }, 'caps: a caps/remote hook failed'));
        },
        failed: (err) => m.log.warn({ err }, 'caps: learning a remote contact\'s caps failed'),
      },
      REMOTE_MAX,
    );
    m.metrics.gauge('caps_remote_resources', 'resources of other servers whose XEP-0115 caps are kept', () => remote.size);

    // presence from a contact of another server to a local user (its broadcast, or a probe's answer)
    m.hook(
      'presence/bare',
      (ev) => {
        if (!ev.origin && ev.from.resource && ev.from.domain !== m.host && ev.to.domain === m.host && ev.to.local)
          remote.presence(ev.from, ev.to.bare, ev.stanza);
        return false;
      },
      200,
    );

    m.provide('caps', {
      remote: (bare) => remote.resources(bare),
      features(s) {
        const mine = s.ext.get(ANNOUNCED) as Announced | undefined;
        if (mine) return mine.features;
        // a session of another node of the cluster: its presence says which string
        const c = capsOf(s.presence);
        return c?.hash ? recall(keyOf(c)) : undefined;
      },
      prefetch(sessions) {
        // what other nodes of a cluster learned is in storage (nothing to wait for, mostly)
        let missing: string[] | undefined;
        for (const s of sessions) {
          if (s.ext.has(ANNOUNCED)) continue;
          const c = capsOf(s.presence);
          const key = c?.hash ? keyOf(c) : undefined;
          if (!key || known.has(key) || (absent.get(key) ?? 0) > Date.now()) continue;
          (missing ??= []).push(key);
        }
        if (!missing) return undefined;
        return (async () => {
          for (const key of missing) {
            const stored = await m.storage.caps.get(key).catch(() => undefined);
            if (stored) remember(key, new Set(JSON.parse(stored) as string[]));
            else {
              // not learned yet (or never verified): not read again for a few seconds
              absent.set(key, Date.now() + 5000);
              while (absent.size > m.config.cache_size) absent.delete(absent.keys().next().value!);
            }
          }
        })();
      },
    });

    // before the core's broadcast (100): only reads the presence, never claims it
    m.hook(
      'presence/broadcast',
      (ev) => {
        const s = ev.origin;
        if (!s) return false;
        const type = ev.stanza.attrs.type;
        if (type === 'unavailable') s.ext.delete(ANNOUNCED);
        if (type !== undefined) return false;
        // a presence without caps changes nothing: the client's features are what it said last
        const c = capsOf(ev.stanza);
        if (!c) return false;
        const key = keyOf(c);
        const prev = s.ext.get(ANNOUNCED) as Announced | undefined;
        if (prev?.key === key) return false; // the same caps again: nothing new (XEP-0163 §4.3.3)
        const entry: Announced = { key };
        s.ext.set(ANNOUNCED, entry);
        void learn(s, c, entry).catch((err: unknown) => m.log.warn({ err }, 'caps: learning failed'));
        return false;
      },
      200,
    );
  },
};

export default caps;
