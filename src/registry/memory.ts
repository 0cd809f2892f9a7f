import type { Registry, RegistryEntry } from './types.js';

const bareOf = (full: string): string => {
  const i = full.indexOf('/');
  return i === -1 ? full : full.slice(0, i);
};

/** Single-node registry kept in process memory. */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory' as const;
  private readonly byBare = new Map<string, Map<string, RegistryEntry>>();

  async bind(full: string, node: string): Promise<void> {
    const bare = bareOf(full);
    let m = this.byBare.get(bare);
    if (!m) this.byBare.set(bare, (m = new Map()));
    m.set(full, { full, node, priority: 0 });
  }

  async unbind(full: string, node: string): Promise<void> {
    const bare = bareOf(full);
    const m = this.byBare.get(bare);
    if (m?.get(full)?.node !== node) return;
    m.delete(full);
    if (m.size === 0) this.byBare.delete(bare);
  }

  async setPresence(full: string, node: string, priority: number, presence: string | undefined): Promise<void> {
    const e = this.byBare.get(bareOf(full))?.get(full);
    if (e && e.node === node) {
      e.priority = priority;
      e.presence = presence;
    }
  }

  async resources(bare: string): Promise<RegistryEntry[]> {
    return [...(this.byBare.get(bare)?.values() ?? [])].map((e) => ({ ...e }));
  }

  async clearNode(node: string): Promise<number> {
    let n = 0;
    for (const [bare, m] of this.byBare) {
      for (const [full, e] of m) {
        if (e.node !== node) continue;
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
