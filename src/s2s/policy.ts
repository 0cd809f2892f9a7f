// Who this server federates with (issue 19): the domain lists of s2s.blacklist and
// s2s.whitelist, together with what admins store through XEP-0133 Edit Blacklist /
// Edit Whitelist (xeps/0133-admin/federation.ts, through ctx.federation); a listed
// domain covers its subdomains (conference.example.org is example.org's). And whether
// a message from a stranger is refused (s2s.refuse_strangers). The S2S manager asks
// before it opens or accepts a stream (index.ts, in.ts) and before it routes an
// incoming stanza.
//
// The stored lists are read once at start and kept in memory: allowed() is asked for
// every stanza either way and stays synchronous. Until that first read is done it
// refuses (fail closed: a blacklisted domain is never talked to because the lists were
// not read yet). A change is written, applied here, then announced to the other nodes
// of a cluster (an 'inv' event of the cluster's topic s2s/lists), which read the lists
// again.
import { Counter } from 'prom-client';
import type { Core } from '../core.js';
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import type { FederationList } from '../api/module.js';

/** userData of the owner '' (no account has an empty name, as for the message of the day) */
const STORE_OWNER = '';
const STORE_KIND = 's2s';
const TOPIC = 's2s/lists';
const LISTS: readonly FederationList[] = ['blacklist', 'whitelist'];
/** a failed first read of the stored lists is tried again after this long */
const RETRY_MS = 5000;
/** how long a "the recipient knows the sender" answer is remembered */
const KNOWN_TTL_MS = 60_000;
const KNOWN_MAX = 10_000;

export class S2SPolicy {
  private stored: Record<FederationList, string[]> = { blacklist: [], whitelist: [] };
  private loaded = false;
  /** the read of the stored lists under way, and whether what it reads may be out of date already */
  private reading: Promise<void> | undefined;
  private stale = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  /** `${user} ${bare}` -> until when the user is known to know that contact (ms) */
  private readonly known = new Map<string, number>();
  private readonly strangers: Counter;
  /** settles once the stored lists were read (allowed() refuses until then) */
  readonly ready: Promise<void>;

  constructor(
    private readonly core: Core,
    private readonly opts: { retryMs?: number } = {},
  ) {
    this.strangers = new Counter({
      name: 'uzzap_s2s_strangers_refused_total',
      help: "messages from users of other servers refused: not in the recipient's roster (s2s.refuse_strangers)",
      registers: [core.metrics.registry],
    });
    core.cluster?.onInvalidate(TOPIC, () => {
      this.read().catch((err: unknown) => this.core.log.error({ err }, 's2s: reading the federation lists again failed'));
    });
    core.hooks.add(
      'server/stopping',
      () => {
        this.stopped = true;
        clearTimeout(this.retry);
      },
      0,
      's2s',
    );
    this.ready = this.firstRead();
  }

  /** May this server talk to `domain` (either way)? */
  allowed(domain: string): boolean {
    if (!this.loaded) return false;
    const { blacklist, whitelist } = this.core.config.s2s;
    const s = this.stored;
    if (listed(blacklist, domain) || listed(s.blacklist, domain)) return false;
    if (whitelist.length === 0 && s.whitelist.length === 0) return true;
    return listed(whitelist, domain) || listed(s.whitelist, domain);
  }

  /** the domains admins stored in a list (the configuration's are apart), sorted */
  storedList(list: FederationList): string[] {
    return [...this.stored[list]];
  }

  /** Replace what admins stored in a list: written, applied here, then on the other nodes. */
  async setStored(list: FederationList, domains: readonly string[]): Promise<void> {
    const clean = [...new Set(domains.map((d) => d.toLowerCase()))].sort();
    if (clean.length) await this.core.storage.userData.set(STORE_OWNER, STORE_KIND, list, clean.join('\n'));
    else await this.core.storage.userData.remove(STORE_OWNER, STORE_KIND, list);
    // a read under way may have seen the lists before this change
    if (this.reading) this.stale = true;
    this.stored = { ...this.stored, [list]: clean };
    this.core.log.info({ list, domains: clean }, `s2s: the stored ${list} changed`);
    this.core.cluster?.invalidate(TOPIC, list);
  }

  /**
   * Is this stanza from another server refused (true: bounced with service-unavailable)?
   * With s2s.refuse_strangers: a message with content (a body or a subject; chat,
   * normal or headline) from a remote user to a local user who does not know the
   * sender. Known: a roster item for the sender's bare JID with a subscription either
   * way (to, from, both), or the user's own pending request to them (ask). Presence,
   * IQs, groupchat and errors pass, as do messages without content (chat states,
   * receipts, PubSub events) and messages to rooms and other services.
   */
  refuses(stanza: Element, from: Jid, to: Jid): boolean | Promise<boolean> {
    if (!this.core.config.s2s.refuse_strangers || !judged(stanza, from, to, this.core.config.domain)) return false;
    const key = `${to.local} ${from.bare}`;
    const until = this.known.get(key);
    const now = Date.now();
    if (until !== undefined) {
      if (until > now) return false;
      this.known.delete(key);
    }
    return this.core.storage.roster.getItem(to.local, from.bare).then(
      (item) => {
        if (item && (item.subscription !== 'none' || item.ask)) {
          this.known.set(key, Date.now() + KNOWN_TTL_MS);
          // the oldest remembered first out
          if (this.known.size > KNOWN_MAX) this.known.delete(this.known.keys().next().value!);
          return false;
        }
        this.strangers.inc();
        this.core.log.debug({ from: from.bare, to: to.bare }, "s2s: a stranger's message refused");
        return true;
      },
      // a filter of unwanted messages, not a privacy rule: an unreadable roster lets it through
      (err: unknown) => {
        this.core.log.warn({ err }, "s2s: reading a roster for a stranger's message failed; delivered");
        return false;
      },
    );
  }

  private async firstRead(): Promise<void> {
    // a core without storage (unit tests of the stream code) has no stored lists
    if (!(this.core as Partial<Core>).storage) {
      this.loaded = true;
      return;
    }
    for (;;) {
      try {
        await this.read();
        return;
      } catch (err) {
        this.core.log.error({ err }, 's2s: reading the federation lists failed; no federation until they are read');
      }
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        this.retry = setTimeout(resolve, this.opts.retryMs ?? RETRY_MS);
        this.retry.unref();
      });
      if (this.stopped) return;
    }
  }

  /** Read the stored lists (one read at a time: a request during one makes it read again). */
  private read(): Promise<void> {
    this.stale = true;
    return (this.reading ??= this.readUntilCurrent().finally(() => (this.reading = undefined)));
  }

  private async readUntilCurrent(): Promise<void> {
    while (this.stale) {
      this.stale = false;
      const [black, white] = await Promise.all(LISTS.map((l) => this.core.storage.userData.get(STORE_OWNER, STORE_KIND, l)));
      // a change or a new request since it began: what was read may be older; read again
      if (this.stale) continue;
      this.stored = { blacklist: split(black), whitelist: split(white) };
      this.loaded = true;
    }
  }
}

const split = (v: string | undefined): string[] => (v ? v.split('\n').filter(Boolean) : []);

/** what refuse_strangers looks at: a message with content from a remote user to a local user */
function judged(stanza: Element, from: Jid, to: Jid, domain: string): boolean {
  if (stanza.name !== 'message' || !from.local || !to.local || to.domain !== domain) return false;
  const type = stanza.attrs.type;
  if (type !== undefined && type !== 'chat' && type !== 'normal' && type !== 'headline') return false;
  return stanza.getChild('body') !== undefined || stanza.getChild('subject') !== undefined;
}

/** `domain` is in the list, or a subdomain of one in it */
export function listed(list: readonly string[], domain: string): boolean {
  for (const d of list) if (domain === d || domain.endsWith(`.${d}`)) return true;
  return false;
}
