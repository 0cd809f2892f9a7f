// XEP-0313 Message Archive Management for user archives: every one-to-one
// message with a body is archived once for the recipient (under the stanza-id
// xeps/0359-sid stamped) and once for the sender, following each user's
// preferences; queries with the data form, RSM paging (forwards, backwards,
// flipped), metadata, a retention purge, and deletion with the account.
// Writes go through the store's batch (src/storage/sql/archive.ts).
import {
  NS_MAM,
  NS_MAM_EXTENDED,
  StanzaError,
  Jid,
  mamForm,
  mamMetadata,
  parseMamQuery,
  runMamQuery,
  serialize,
  x,
  z,
  type Element,
  type StanzaEvent,
  type XepModule,
} from '../../src/api/index.js';

const NS_SID = 'urn:xmpp:sid:0';
const KIND = 'mam';

interface Settings {
  default_page: number;
  max_page: number;
  retention_days: number;
  purge_interval: number;
  default_mode: 'always' | 'never' | 'roster';
  count_limit: number;
}

interface Prefs {
  default: 'always' | 'never' | 'roster';
  always: string[];
  never: string[];
}

const settings = z.object({
  default_page: z.number().int().positive().default(50),
  max_page: z.number().int().positive().default(250),
  retention_days: z.number().min(0).default(0),
  purge_interval: z.number().int().positive().default(3600),
  default_mode: z.enum(['always', 'never', 'roster']).default('always'),
  count_limit: z.number().int().min(0).default(10_000),
});

const archivable = (stanza: Element): boolean => {
  const type = stanza.attrs.type ?? 'normal';
  return (type === 'chat' || type === 'normal') && stanza.getChild('body') !== undefined;
};

const mam: XepModule<Settings> = {
  name: 'mam',
  xeps: [
    { n: 313, version: '1.1.3', status: 'complete', note: 'user archives and room archives; extended (before-id/after-id/ids/flip-page)' },
  ],
  depends: ['sid'],
  config: settings as unknown as z.ZodType<Settings>,
  setup(m) {
    const store = m.storage.archive;
    // the server's JID too, where some clients look for it (as Prosody does)
    m.feature(NS_MAM);
    m.feature(NS_MAM, 'bare');
    m.feature(NS_MAM_EXTENDED, 'bare');

    // ---- preferences (XEP-0313 §4.3), cached: they are read for every message ----
    const prefsCache = new Map<string, Prefs>();
    // changed on another node of the cluster: read afresh
    m.onInvalidate('prefs', (user) => void prefsCache.delete(user));
    const defaults = (): Prefs => ({ default: m.config.default_mode, always: [], never: [] });
    const loadPrefs = (user: string): Prefs | Promise<Prefs> => {
      const hit = prefsCache.get(user);
      if (hit) return hit;
      return m.storage.userData.get(user, KIND, 'prefs').then((raw) => {
        const p = raw ? (JSON.parse(raw) as Prefs) : defaults();
        prefsCache.set(user, p);
        if (prefsCache.size > 100_000) prefsCache.delete(prefsCache.keys().next().value!);
        return p;
      });
    };
    /** synchronous when the preferences are cached and need no roster lookup (the hot path) */
    const decide = (p: Prefs, other: Jid): boolean | undefined => {
      if (p.never.includes(other.bare)) return false;
      if (p.always.includes(other.bare)) return true;
      if (p.default === 'always') return true;
      if (p.default === 'never') return false;
      return undefined;
    };
    const wants = async (user: string, other: Jid): Promise<boolean> => {
      const p = await loadPrefs(user);
      return decide(p, other) ?? (await m.storage.roster.getItem(user, other.bare)) !== undefined;
    };

    /**
     * A local user known to exist without a lookup: online, or with preferences cached.
     * Preferences are loaded only for existing accounts (at login, for a sender, after
     * `exists`) and dropped with the account (here and, by 'prefs', on the other nodes):
     * a flood to an offline user made every message one or two account lookups on the
     * event loop (bench slowreader).
     */
    const known = (j: Jid): boolean => m.sessions.online(j.bare) || prefsCache.has(j.local);
    /** Whether a local user exists: known, or looked up. */
    const exists = async (j: Jid): Promise<boolean> => known(j) || (await m.storage.accounts.get(j.local)) !== undefined;

    /**
     * When the database falls behind (or one sender has too many rows queued), that
     * sender's *next* message waits, and its stream stops reading meanwhile, instead of
     * rows piling up. The message that crossed the bound goes out at once: the wire
     * never waits for the archive.
     */
    const owed = new Map<string, Promise<void>>();
    const backpressure = (source: string): false => {
      const p = store.pressure(source);
      if (p && !owed.has(source)) {
        owed.set(source, p);
        void p.then(() => owed.delete(source));
      }
      return false;
    };
    m.hook(
      'message/sent',
      (ev) => {
        const p = owed.get(ev.from.full);
        return p ? p.then(() => false) : false;
      },
      100_000,
    );

    const archiveIncoming = (ev: StanzaEvent): false | Promise<false> => {
      const { stanza, from, to } = ev;
      if (!archivable(stanza)) return false;
      const sid = stanza.getChildren('stanza-id', NS_SID).find((e) => e.attrs.by === to.bare);
      if (!sid) return false;
      const add = (): false | Promise<false> => {
        store.add({
          owner: to.bare,
          id: sid.attrs.id!,
          ts: Date.now(),
          with: from.bare,
          withFull: from.full,
          stanza: serialize(stanza),
          source: from.full,
        });
        return backpressure(from.full);
      };
      // cached preferences are an account's (see `known`): no lookup, online or not
      const p = prefsCache.get(to.local);
      const yes = p ? decide(p, from) : undefined;
      if (yes !== undefined) return yes ? add() : false;
      return (async () => ((await exists(to)) && (await wants(to.local, from)) ? add() : false))();
    };
    // after the stanza-id is stamped (priority 10,000), before delivery or offline storage
    m.hook('message/bare', archiveIncoming, 9000);
    m.hook('message/full', archiveIncoming, 9000);

    // the sender's copy (a message to oneself is archived once, as received)
    m.hook(
      'message/sent',
      (ev) => {
        const { stanza, from, to } = ev;
        if (!archivable(stanza) || to.bare === from.bare) return false;
        // Queued a microtask later, not now. When routing is synchronous (a local recipient
        // online, preferences and blocklists cached: the common case) it has by then
        // stamped the recipient's stanza-id and serialised the message for delivery and the
        // recipient's copy, and the sender's copy reuses that text (serialize()'s memo) and
        // its bytes in the queue (archive-queue.ts) instead of serialising and encoding the
        // message a second time; otherwise it keeps the text as it is at that moment. The
        // recipient's stanza-id in it is ignored by clients (XEP-0359 §4: only ids `by`
        // one's own account count). A query that comes later finds the row: it is queued
        // before any I/O.
        const add = (): false => {
          const ts = Date.now();
          queueMicrotask(() => {
            // out of the hook bus, which would have caught and logged a throw: so do we
            try {
              store.add({
                owner: from.bare,
                id: store.newId(from.bare, ts),
                ts,
                with: to.bare,
                withFull: to.full,
                stanza: serialize(stanza),
                source: from.full,
              });
              backpressure(from.full);
            } catch (err) {
              m.log.error({ err }, "archiving the sender's copy failed");
            }
          });
          return false;
        };
        // a message the server will refuse (no such local user, blocked either way) is not archived
        const local = to.domain === m.host && to.local !== '';
        const blocked = local ? [m.blocks(from.local, to), m.blocks(to.local, from)] : [false, false];
        const p = prefsCache.get(from.local);
        const yes = p ? decide(p, to) : undefined;
        if (
          yes !== undefined &&
          !(blocked[0] instanceof Promise) &&
          !(blocked[1] instanceof Promise) &&
          (!local || known(to))
        )
          return yes && !blocked[0] && !blocked[1] ? add() : false;
        return (async () => {
          if ((await blocked[0]) || (await blocked[1])) return false;
          if (local && !(await exists(to))) return false;
          return (await wants(from.local, to)) ? add() : false;
        })();
      },
      -100,
    );

    // preferences are read before the first message, so archiving stays synchronous
    m.hook('session/bound', (sess) => {
      const r = loadPrefs(sess.jid.local);
      if (r instanceof Promise) r.catch((err: unknown) => m.log.error({ err }, 'loading archive preferences failed'));
    });

    // ---- queries ----
    m.iq({ type: 'get', ns: NS_MAM, name: 'query', to: ['bare'] }, (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'an archive is for its owner');
      return mamForm();
    });
    m.iq({ type: 'set', ns: NS_MAM, name: 'query', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'an archive is for its owner');
      const q = parseMamQuery(req.from.bare, req.payload, {
        defaultMax: m.config.default_page,
        maxMax: m.config.max_page,
        countLimit: m.config.count_limit,
      });
      const queryid = req.payload.attrs.queryid;
      return runMamQuery(store, q, queryid, (msg) => {
        msg.attrs.from = req.from.bare;
        msg.attrs.to = req.from.full;
        if (req.origin) m.deliver(msg, [req.origin]);
        else m.send(msg);
      });
    });
    m.iq({ type: 'get', ns: NS_MAM, name: 'metadata', to: ['bare'] }, (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'an archive is for its owner');
      return mamMetadata(store, req.from.bare);
    });

    // ---- preferences ----
    const prefsElement = (p: Prefs): Element =>
      x(
        'prefs',
        { xmlns: NS_MAM, default: p.default },
        x(
          'always',
          null,
          p.always.map((j) => x('jid', null, j)),
        ),
        x(
          'never',
          null,
          p.never.map((j) => x('jid', null, j)),
        ),
      );
    m.iq({ type: 'get', ns: NS_MAM, name: 'prefs', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden');
      return prefsElement(await loadPrefs(req.from.local));
    });
    m.iq({ type: 'set', ns: NS_MAM, name: 'prefs', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden');
      const def = req.payload.attrs.default;
      if (def !== 'always' && def !== 'never' && def !== 'roster')
        throw new StanzaError('bad-request', "default must be 'always', 'never' or 'roster'");
      const list = (name: string): string[] => {
        const jids =
          req.payload
            .getChild(name)
            ?.getChildren('jid')
            .map((j) => j.getText()) ?? [];
        if (jids.length > 1000) throw new StanzaError('not-acceptable', 'at most 1,000 JIDs per list');
        try {
          return jids.map((j) => Jid.parse(j).bare);
        } catch {
          throw new StanzaError('jid-malformed', 'bad JID in the preferences');
        }
      };
      const p: Prefs = { default: def, always: list('always'), never: list('never') };
      await m.storage.userData.set(req.from.local, KIND, 'prefs', JSON.stringify(p));
      prefsCache.set(req.from.local, p);
      m.invalidate('prefs', req.from.local);
      return prefsElement(p);
    });

    // ---- retention and deletion ----
    m.hook('user/deleted', async (user) => {
      prefsCache.delete(user);
      m.invalidate('prefs', user);
      await store.deleteAll(`${user}@${m.host}`);
    });
    if (m.config.retention_days > 0) {
      const purge = (): void => {
        const before = Date.now() - m.config.retention_days * 86_400_000;
        store.purge(before).then(
          (n) => n && m.log.info({ purged: n }, 'archive retention purge'),
          (err: unknown) => m.log.error({ err }, 'archive purge failed'),
        );
      };
      const t = setInterval(purge, m.config.purge_interval * 1000);
      t.unref();
      purge();
      m.onClose(() => clearInterval(t));
    }
    m.onClose(() => store.flush());
  },
};

export default mam;
