// XEP-0115 for contacts on other servers: a remote contact's presence reaches local users
// (its server broadcasts it to their bare JIDs, RFC 6121 §4.2.2); the <c/> in it is
// resolved as a local client's is (the cache, storage, or a disco#info to the remote full
// JID over s2s), so that PEP (XEP-0163 §4.3) can notify the remote resources that asked.
//
// Only presence from a JID in the recipient's roster counts (strangers cannot make the
// server ask questions or fill the table); who may get what is decided at notification. Kept in memory on the node that received the
// presence, bounded (least recently heard dropped), forgotten at 'unavailable'.
import type { Element, Jid, RemoteCapsResource } from '../../src/api/index.js';

export interface Caps {
  node: string;
  ver: string;
  hash: string | undefined;
}

interface Entry {
  jid: Jid;
  /** the caps string announced last */
  key: string;
  /** its features, once known */
  features?: ReadonlySet<string>;
  /** the local users (bare JIDs) this resource sent its presence to */
  to: Set<string>;
}

export interface RemoteCapsHost {
  capsOf(presence: Element): Caps | undefined;
  keyOf(c: Caps): string;
  /** the features behind `c` as announced by `jid` (asked of it if need be); undefined when unknown */
  featuresOf(jid: string, c: Caps, key: string): Promise<ReadonlySet<string> | undefined>;
  /** is `contact` (a bare JID) in local user `to`'s roster? */
  isContact(to: string, contact: string): Promise<boolean>;
  /** the features of `jid` are known, for local user `to` ('caps/remote') */
  known(jid: Jid, features: ReadonlySet<string>, to: string): void;
  failed(err: unknown): void;
}

export class RemoteCaps {
  private readonly byFull = new Map<string, Entry>();
  private readonly byBare = new Map<string, Set<string>>();
  /** per remote resource, its presences are handled one after the other (a roster read may wait) */
  private readonly queue = new Map<string, Promise<void>>();

  constructor(
    private readonly host: RemoteCapsHost,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.byFull.size;
  }

  resources(bare: string): RemoteCapsResource[] {
    const fulls = this.byBare.get(bare);
    if (!fulls) return [];
    const out: RemoteCapsResource[] = [];
    for (const full of fulls) {
      const e = this.byFull.get(full);
      if (e?.features) out.push({ jid: e.jid, features: e.features });
    }
    return out;
  }

  /** A presence from `from` (a full JID of another server) to local user `to` (a bare JID). */
  presence(from: Jid, to: string, stanza: Element): void {
    const full = from.full;
    const prev = this.queue.get(full);
    const next = (prev ? prev.then(() => this.handle(from, to, stanza)) : this.handle(from, to, stanza)).catch((err: unknown) =>
      this.host.failed(err),
    );
    this.queue.set(full, next);
    void next.finally(() => {
      if (this.queue.get(full) === next) this.queue.delete(full);
    });
  }

  private async handle(from: Jid, to: string, stanza: Element): Promise<void> {
    const type = stanza.attrs.type;
    if (type === 'unavailable') return this.forget(from.full);
    if (type !== undefined) return;
    const c = this.host.capsOf(stanza);
    const e = this.byFull.get(from.full);
    // a presence without caps changes nothing: the client's features are what it said last
    if (!c && !e) return;
    if (!e?.to.has(to) && !(await this.host.isContact(to, from.bare))) return;
    const key = c ? this.host.keyOf(c) : e!.key;
    const cur = this.byFull.get(from.full);
    if (cur && cur.key === key) {
      this.touch(cur);
      if (cur.to.has(to)) return;
      cur.to.add(to);
      if (cur.features) this.host.known(cur.jid, cur.features, to);
      return;
    }
    if (!c) return;
    // new caps (or a resource not seen before): learn them, then tell for every local user it
    // reached; not waited on here (an unanswered question must not hold its 'unavailable' back)
    const entry: Entry = { jid: from, key, to: new Set([...(cur?.to ?? []), to]) };
    this.add(entry);
    void this.host.featuresOf(from.full, c, key).then((features) => {
      if (!features || this.byFull.get(from.full) !== entry) return;
      entry.features = features;
      for (const t of entry.to) this.host.known(entry.jid, features, t);
    }, this.host.failed);
  }

  private add(e: Entry): void {
    const full = e.jid.full;
    this.byFull.delete(full);
    this.byFull.set(full, e);
    let fulls = this.byBare.get(e.jid.bare);
    if (!fulls) this.byBare.set(e.jid.bare, (fulls = new Set()));
    fulls.add(full);
    while (this.byFull.size > this.max) this.forget(this.byFull.keys().next().value!);
  }

  private touch(e: Entry): void {
    this.byFull.delete(e.jid.full);
    this.byFull.set(e.jid.full, e);
  }

  private forget(full: string): void {
    const e = this.byFull.get(full);
    if (!e) return;
    this.byFull.delete(full);
    const fulls = this.byBare.get(e.jid.bare);
    fulls?.delete(full);
    if (fulls?.size === 0) this.byBare.delete(e.jid.bare);
  }
}
