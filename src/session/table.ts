// The bound sessions a node routes to, indexed by bare JID then resource: every
// routing decision is one or two Map lookups. Sessions of this node are `local`;
// in a cluster the sessions of the other nodes are mirrored beside them
// (src/cluster/remote.ts) so that the router, presence and carbons treat them
// alike and no stanza waits on Redis to find its recipient. A local session wins
// over a remote entry with the same full JID until the cluster settles the conflict.
export interface TableEntry {
  readonly jid: { bare: string; resource: string; full: string };
}

export class SessionTable<S extends TableEntry> {
  private readonly byBare = new Map<string, Map<string, S>>();
  private readonly remoteByBare = new Map<string, Map<string, S>>();
  private n = 0;
  private nRemote = 0;

  /** Add a local session; returns the local session it displaced (same full JID), if any. */
  add(s: S): S | undefined {
    let m = this.byBare.get(s.jid.bare);
    if (!m) this.byBare.set(s.jid.bare, (m = new Map()));
    const old = m.get(s.jid.resource);
    m.set(s.jid.resource, s);
    if (!old) this.n++;
    return old;
  }

  /** Remove this local session (only if it is still the one registered under its JID). */
  remove(s: S): boolean {
    const m = this.byBare.get(s.jid.bare);
    if (!m || m.get(s.jid.resource) !== s) return false;
    m.delete(s.jid.resource);
    if (m.size === 0) this.byBare.delete(s.jid.bare);
    this.n--;
    return true;
  }

  /** Mirror a session of another node (replacing the entry for its full JID). */
  putRemote(s: S): void {
    let m = this.remoteByBare.get(s.jid.bare);
    if (!m) this.remoteByBare.set(s.jid.bare, (m = new Map()));
    if (!m.has(s.jid.resource)) this.nRemote++;
    m.set(s.jid.resource, s);
  }

  /** Forget a mirrored session; `which` decides on the entry found. */
  dropRemote(bare: string, resource: string, which?: (s: S) => boolean): S | undefined {
    const m = this.remoteByBare.get(bare);
    const s = m?.get(resource);
    if (!m || !s || (which && !which(s))) return undefined;
    m.delete(resource);
    if (m.size === 0) this.remoteByBare.delete(bare);
    this.nRemote--;
    return s;
  }

  getRemote(bare: string, resource: string): S | undefined {
    return this.remoteByBare.get(bare)?.get(resource);
  }

  getLocal(bare: string, resource: string): S | undefined {
    return this.byBare.get(bare)?.get(resource);
  }

  /** The session bound to a full JID: this node's, else another node's. */
  get(bare: string, resource: string): S | undefined {
    return this.byBare.get(bare)?.get(resource) ?? (this.nRemote ? this.remoteByBare.get(bare)?.get(resource) : undefined);
  }

  /** Whether a user has a session on any node. */
  online(bare: string): boolean {
    return this.byBare.has(bare) || (this.nRemote > 0 && this.remoteByBare.has(bare));
  }

  /** A user's sessions on every node (no generator on the hot path: one node, or no remote resource). */
  resources(bare: string): Iterable<S> {
    const local = this.byBare.get(bare);
    const remote = this.nRemote ? this.remoteByBare.get(bare) : undefined;
    if (!remote) return local?.values() ?? NONE;
    return merged(local, remote);
  }

  /** A user's sessions on this node. */
  localResources(bare: string): Iterable<S> {
    return this.byBare.get(bare)?.values() ?? [];
  }

  /** How many resources a user has bound (on every node). */
  countOf(bare: string): number {
    let n = this.byBare.get(bare)?.size ?? 0;
    const remote = this.nRemote ? this.remoteByBare.get(bare) : undefined;
    if (remote) for (const res of remote.keys()) if (!this.byBare.get(bare)?.has(res)) n++;
    return n;
  }

  /** Every session, on every node. */
  *all(): Iterable<S> {
    yield* this.local();
    for (const [bare, m] of this.remoteByBare) {
      const local = this.byBare.get(bare);
      for (const [res, s] of m) if (!local?.has(res)) yield s;
    }
  }

  /** This node's sessions. */
  *local(): Iterable<S> {
    for (const m of this.byBare.values()) yield* m.values();
  }

  /** Every mirrored session of other nodes. */
  *remote(): Iterable<S> {
    for (const m of this.remoteByBare.values()) yield* m.values();
  }

  /** sessions on this node */
  get size(): number {
    return this.n;
  }

  /** sessions mirrored from other nodes */
  get remoteSize(): number {
    return this.nRemote;
  }
}

const NONE: Iterable<never> = [];

function* merged<S>(local: Map<string, S> | undefined, remote: Map<string, S>): Iterable<S> {
  if (local) yield* local.values();
  for (const [res, s] of remote) if (!local?.has(res)) yield s;
}
