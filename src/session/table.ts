// The node's bound sessions, indexed by bare JID then resource: every routing
// decision for a local user is one or two Map lookups.
export interface TableEntry {
  readonly jid: { bare: string; resource: string; full: string };
}

export class SessionTable<S extends TableEntry> {
  private readonly byBare = new Map<string, Map<string, S>>();
  private n = 0;

  /** Add a session; returns the session it displaced (same full JID), if any. */
  add(s: S): S | undefined {
    let m = this.byBare.get(s.jid.bare);
    if (!m) this.byBare.set(s.jid.bare, (m = new Map()));
    const old = m.get(s.jid.resource);
    m.set(s.jid.resource, s);
    if (!old) this.n++;
    return old;
  }

  /** Remove this session (only if it is still the one registered under its JID). */
  remove(s: S): boolean {
    const m = this.byBare.get(s.jid.bare);
    if (!m || m.get(s.jid.resource) !== s) return false;
    m.delete(s.jid.resource);
    if (m.size === 0) this.byBare.delete(s.jid.bare);
    this.n--;
    return true;
  }

  get(bare: string, resource: string): S | undefined {
    return this.byBare.get(bare)?.get(resource);
  }

  resources(bare: string): Iterable<S> {
    return this.byBare.get(bare)?.values() ?? [];
  }

  countOf(bare: string): number {
    return this.byBare.get(bare)?.size ?? 0;
  }

  *all(): Iterable<S> {
    for (const m of this.byBare.values()) yield* m.values();
  }

  get size(): number {
    return this.n;
  }
}
