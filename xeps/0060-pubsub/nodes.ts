// The nodes of publish-subscribe services, cached in memory and written through to
// storage (`storage.pubsub`). A service is a JID: for PEP (XEP-0163) a user's bare JID.
// Its nodes (configuration, affiliations, explicit subscriptions) and each node's
// newest item are kept together; older items stay in storage and are read on request.
// Changes to one service run one at a time (`exclusive`), so a publish racing a
// configure never overwrites the other's write.
import type { PubSubStore, StoredPubSubItem } from '../../src/api/index.js';
import { readConfig, type NodeConfig } from './config.js';

export type Affiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'outcast';
export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'publisher', 'publish-only', 'member', 'outcast'];

export interface PubSubNode {
  readonly name: string;
  config: NodeConfig;
  /** bare JID -> affiliation, besides the service's owner (always 'owner') */
  affiliations: Map<string, Affiliation>;
  /** explicit subscriptions: JID (bare or full) -> 'subscribed' */
  subscriptions: Map<string, 'subscribed'>;
  createdAt: number;
  /** the newest item, if any */
  last: StoredPubSubItem | undefined;
}

export interface ServiceState {
  readonly service: string;
  readonly nodes: Map<string, PubSubNode>;
}

export class NodeCache {
  private readonly states = new Map<string, Promise<ServiceState>>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    readonly store: PubSubStore,
    /** services kept in memory (the least recently used is dropped; it is read again when asked for) */
    private readonly capacity: () => number,
    /** other nodes of a cluster drop their copy of a changed service */
    private readonly changed: (service: string) => void,
  ) {}

  get size(): number {
    return this.states.size;
  }

  /** A service's nodes (read from storage once, then cached). */
  get(service: string): Promise<ServiceState> {
    let p = this.states.get(service);
    if (p) {
      // most recently used last: the Map's order is the eviction order
      this.states.delete(service);
      this.states.set(service, p);
      return p;
    }
    p = this.load(service);
    this.states.set(service, p);
    p.catch(() => this.states.delete(service));
    while (this.states.size > this.capacity()) this.states.delete(this.states.keys().next().value!);
    return p;
  }

  private async load(service: string): Promise<ServiceState> {
    const [rows, last] = await Promise.all([this.store.nodes(service), this.store.lastItems(service)]);
    const newest = new Map(last.map((i) => [i.node, i]));
    const nodes = new Map<string, PubSubNode>();
    for (const r of rows) {
      nodes.set(r.node, {
        name: r.node,
        config: readConfig(r.config),
        affiliations: new Map(Object.entries(JSON.parse(r.affiliations) as Record<string, Affiliation>)),
        subscriptions: new Map(Object.entries(JSON.parse(r.subscriptions) as Record<string, 'subscribed'>)),
        createdAt: r.createdAt,
        last: newest.get(r.node),
      });
    }
    return { service, nodes };
  }

  /** Forget a cached service (another node changed it, or it was deleted). */
  forget(service: string): void {
    this.states.delete(service);
  }

  /** Run a change of one service alone. */
  async exclusive<T>(service: string, fn: (state: ServiceState) => Promise<T>): Promise<T> {
    while (this.locks.has(service)) await this.locks.get(service)!.catch(() => undefined);
    const run = this.get(service).then(fn);
    this.locks.set(service, run);
    try {
      return await run;
    } finally {
      this.locks.delete(service);
    }
  }

  /** Write a node's settings (created or changed). */
  async save(service: string, n: PubSubNode): Promise<void> {
    await this.store.saveNode(service, {
      node: n.name,
      config: JSON.stringify(n.config),
      affiliations: JSON.stringify(Object.fromEntries(n.affiliations)),
      subscriptions: JSON.stringify(Object.fromEntries(n.subscriptions)),
      createdAt: n.createdAt,
    });
    this.changed(service);
  }

  async publish(service: string, n: PubSubNode, item: StoredPubSubItem, keep: number): Promise<void> {
    await this.store.publish(service, item, keep);
    n.last = item;
    this.changed(service);
  }

  async retract(state: ServiceState, n: PubSubNode, id: string): Promise<boolean> {
    const done = await this.store.retract(state.service, n.name, id);
    if (done && n.last?.id === id) n.last = (await this.store.items(state.service, n.name, { max: 1 }))[0];
    if (done) this.changed(state.service);
    return done;
  }

  async purge(state: ServiceState, n: PubSubNode): Promise<void> {
    await this.store.purge(state.service, n.name);
    n.last = undefined;
    this.changed(state.service);
  }

  async remove(state: ServiceState, name: string): Promise<void> {
    await this.store.deleteNode(state.service, name);
    state.nodes.delete(name);
    this.changed(state.service);
  }

  async removeAll(service: string): Promise<void> {
    await this.store.deleteAll(service);
    this.states.delete(service);
    this.changed(service);
  }
}
