// IQ handlers keyed by (type, payload namespace, payload name, target kind).
import type { IqHandler, IqTarget } from '../api/module.js';

export class IqTable {
  private readonly map = new Map<string, { handle: IqHandler; owner: string }>();

  private static key(type: string, ns: string, name: string, target: IqTarget): string {
    return `${target} ${type} ${name} ${ns}`;
  }

  add(type: 'get' | 'set', ns: string, name: string, target: IqTarget, handle: IqHandler, owner: string): () => void {
    const k = IqTable.key(type, ns, name, target);
    const prev = this.map.get(k);
    if (prev) throw new Error(`IQ ${type} {${ns}}${name} to ${target} already handled by module ${prev.owner}`);
    this.map.set(k, { handle, owner });
    return () => void this.map.delete(k);
  }

  find(type: string, ns: string, name: string, target: IqTarget): { handle: IqHandler; owner: string } | undefined {
    return this.map.get(IqTable.key(type, ns, name, target));
  }

  /** namespaces with any handler (for disco) */
  namespaces(): string[] {
    return [...new Set([...this.map.keys()].map((k) => k.split(' ')[3]!))];
  }
}
