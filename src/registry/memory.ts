import { bareOf, type Registry, type RegistryEntry } from './types.js';

/** Single-node registry kept in process memory. */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory' as const;
  private readonly byBare = new Map<string, Map<string, RegistryEntry>>();

  async bind(e: RegistryEntry): Promise<RegistryEntry | undefined> {
    const bare = bareOf(e.full);
    let m = this.byBare.get(bare);
    if (!m) this.byBare.set(bare, (m = new Map()));
    const old = m.get(e.full);
    m.set(e.full, { ...e });
    return old && old.sid !== e.sid ? old : undefined;
  }

  async update(e: RegistryEntry): Promise<void> {
    const m = this.byBare.get(bareOf(e.full));
    if (m?.get(e.full)?.sid === e.sid) m.set(e.full, { ...e });
  }

  async unbind(full: string, _node: string, sid: string): Promise<void> {
    const bare = bareOf(full);
    const m = this.byBare.get(bare);
    if (m?.get(full)?.sid !== sid) return;
    m.delete(full);
    if (m.size === 0) this.byBare.delete(bare);
  }

  async resources(bare: string): Promise<RegistryEntry[]> {
    return [...(this.byBare.get(bare)?.values() ?? [])].map((e) => ({ ...e }));
  }

  async scan(each: (batch: RegistryEntry[]) => void): Promise<void> {
    for (const m of this.byBare.values()) each([...m.values()].map((e) => ({ ...e })));
  }

  async clearNode(node: string, inc?: string): Promise<number> {
    let n = 0;
    for (const [bare, m] of this.byBare) {
      for (const [full, e] of m) {
        if (e.node !== node || (inc !== undefined && e.inc !== inc)) continue;
        m.delete(full);
        n++;
      }
      if (m.size === 0) this.byBare.delete(bare);
    }
    return n;
  }

  async countOnline(): Promise<number> {
    let n = 0;
    for (const m of this.byBare.values()) n += m.size;
    return n;
  }

  async ping(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.byBare.clear();
  }
}
