// Rosters of users with sessions on this node, cached (presence broadcasts and
// subscription checks read them on every presence change), written through to
// storage, and pushed to interested resources on every change (RFC 6121 §2.1.6).
// Every roster change on this node goes through here, so the cache is exact;
// nodes of a cluster will invalidate each other's entries (cluster issue).
import { x, type Element, type ModuleContext, type RosterItem, type Subscription } from '../api/index.js';

export const NS_ROSTER = 'jabber:iq:roster';
/** session ext key: the session requested the roster and gets pushes */

export function itemElement(item: RosterItem, subscription?: string): Element {
  return x(
    'item',
    {
      jid: item.jid,
      name: item.name,
      subscription: subscription ?? item.subscription,
      ask: item.ask ? 'subscribe' : undefined,
      // RFC 6121 §2.1.2.1: pre-approval shown to the client
      approved: item.approved && (item.subscription === 'none' || item.subscription === 'to') ? 'true' : undefined,
    },
    item.groups.map((g) => x('group', null, g)),
  );
}

interface Cached {
  version: number;
  items: Map<string, RosterItem>;
}

export const hasTo = (s: Subscription): boolean => s === 'to' || s === 'both';
export const hasFrom = (s: Subscription): boolean => s === 'from' || s === 'both';

export class RosterService {
  private readonly cache = new Map<string, Promise<Cached>>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly m: ModuleContext) {}

  private bare(user: string): string {
    return `${user}@${this.m.host}`;
  }

  /**
   * Run a read-modify-write of one user's roster alone, so concurrent changes
   * (a roster set racing a subscription) never overwrite each other and pushes
   * leave in version order.
   */
  async exclusive<T>(user: string, fn: () => Promise<T>): Promise<T> {
    while (this.locks.has(user)) await this.locks.get(user)!.catch(() => undefined);
    const run = fn();
    this.locks.set(user, run);
    try {
      return await run;
    } finally {
      this.locks.delete(user);
    }
  }

  /** The user's roster (cached while the user has sessions here). */
  load(user: string): Promise<Cached> {
    let c = this.cache.get(user);
    if (!c) {
      c = this.m.storage.roster.get(user).then((r) => ({ version: r.version, items: new Map(r.items.map((i) => [i.jid, i])) }));
      // only keep rosters of users who are online here; others are read fresh (in a
      // cluster, a change on another node drops this copy: src/im/index.ts)
      if (this.m.sessions.here(this.bare(user)).length) this.cache.set(user, c);
      c.catch(() => this.cache.delete(user));
    }
    return c;
  }

  async item(user: string, jid: string): Promise<RosterItem | undefined> {
    return (await this.load(user)).items.get(jid);
  }

  /** Forget a user's cached roster (last session gone, or account deleted). */
  forget(user: string): void {
    this.cache.delete(user);
  }

  /**
   * Read-modify-write one item under the user's lock: `change` returns the new
   * item, null to remove it, or undefined to leave it. Returns the item before.
   * `beforePush` runs when the item changes, before the write and its roster
   * push (RFC 6121 §3.1.6, §3.2.3, §3.3.3: the inbound subscription stanza
   * reaches the user before the push that it caused).
   */
  async update(
    user: string,
    jid: string,
    change: (cur: RosterItem | undefined) => RosterItem | null | undefined,
    beforePush?: (cur: RosterItem | undefined) => void,
  ): Promise<RosterItem | undefined> {
    return this.exclusive(user, async () => {
      const cur = await this.item(user, jid);
      const next = change(cur);
      if (next !== undefined) beforePush?.(cur);
      if (next === null) await this.remove(user, jid);
      else if (next !== undefined) {
        await this.put(user, next);
        const was = !!cur && hasFrom(cur.subscription);
        if (was !== hasFrom(next.subscription)) await this.m.run('roster/subscriber', user, jid, !was);
      }
      return cur;
    });
  }

  async put(user: string, item: RosterItem): Promise<void> {
    const version = await this.m.storage.roster.put(user, item);
    this.m.invalidate('roster', user);
    const c = this.cache.get(user);
    if (c) {
      const r = await c;
      r.items.set(item.jid, item);
      r.version = version;
    }
    this.push(user, version, itemElement(item));
  }

  async remove(user: string, jid: string): Promise<boolean> {
    const before = await this.item(user, jid);
    const version = await this.m.storage.roster.remove(user, jid);
    if (version === undefined) return false;
    if (before && hasFrom(before.subscription)) await this.m.run('roster/subscriber', user, jid, false);
    this.m.invalidate('roster', user);
    const c = this.cache.get(user);
    if (c) {
      const r = await c;
      r.items.delete(jid);
      r.version = version;
    }
    this.push(user, version, x('item', { jid, subscription: 'remove' }));
    return true;
  }

  /** Roster push to every resource of the user that requested the roster. */
  private push(user: string, version: number, item: Element): void {
    for (const s of this.m.sessions.of(this.bare(user))) {
      if (!s.flags.roster) continue;
      this.m.deliver(
        x(
          'iq',
          { type: 'set', id: `push${version}-${Math.random().toString(36).slice(2, 8)}`, to: s.jid.full },
          x('query', { xmlns: NS_ROSTER, ver: String(version) }, item),
        ),
        [s],
      );
    }
  }

  /** Contacts with the given subscription test, for presence broadcast and probes. */
  async contacts(user: string, test: (s: Subscription) => boolean): Promise<string[]> {
    const r = await this.load(user);
    const out: string[] = [];
    for (const i of r.items.values()) if (test(i.subscription)) out.push(i.jid);
    return out;
  }
}
