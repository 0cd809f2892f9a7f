// Rooms across the nodes of a cluster (docs/cluster.md, "Rooms"; issue 16, guarantee 5):
// each placed entity (a room) is served by one node, its owner (`owner:<room>` in Redis,
// claimed by a script that skips an owner without a heartbeat). The owner keeps a
// snapshot of each room it serves in Redis (`rstate:<room>`, every STATE_MS when it
// changed); the next owner builds the room from it. A node serves its rooms only while
// its lease holds (Cluster.leaseValid): woken from a pause past it, it claims each room
// again before serving it, and drops the rooms another node took (fencing). A drain hands
// the rooms over; a dead node's rooms are spread over the survivors by the sweeper.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { tryJid } from '../jid.js';
import { StanzaError } from '../api/errors.js';
import type { ServiceHandler, ServicePlacement } from '../api/module.js';
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import type { Router } from '../router/router.js';

/** How often (at most) a changed room's snapshot goes to Redis: a crash loses at most this much of its changes. */
const STATE_MS = 250;
/** How long stanzas for a room wait for its owner to be known (Redis out of reach) before they get an error. */
const CLAIM_WAIT_MS = 5000;

/** What placement needs of the cluster. */
export interface PlacementLink {
  readonly name: string;
  readonly redis: Redis;
  readonly log: Logger;
  readonly router: Router;
  readonly inboxMax: number;
  key(k: string): string;
  /** may this node act as the owner of its entities now? (its lease) */
  leaseValid(): boolean;
  isPeer(node: string): boolean;
  /** an entity was taken from `node`, whose heartbeat expired: forget that node's sessions first */
  previousOwnerDead(node: string): void;
  routeOn(node: string, xml: string): void;
  request(node: string, kind: string, payload: unknown): Promise<unknown>;
  stopped(): boolean;
}

export class Placements {
  /** owners of placed entities (rooms) as last learnt: bare JID -> node */
  readonly owners = new Map<string, string>();
  /** entities being claimed: the stanzas for each wait here, in order */
  private readonly claiming = new Map<string, (() => void)[]>();
  /** placed services by domain (rooms: the MUC service) */
  private readonly services = new Map<string, ServicePlacement>();
  /** entities this node served until its lease lapsed: re-claimed (or dropped) on next use */
  private readonly fenced = new Set<string>();
  private stateTimer: NodeJS.Timeout | undefined;

  constructor(private readonly link: PlacementLink) {}

  /** An 'own' event from another node: `key` is served by `node` now ('' : by nobody). */
  learnt(key: string, node: string): void {
    if (node && node !== this.link.name) this.owners.set(key, node);
    else if (!node && this.owners.get(key) !== this.link.name) this.owners.delete(key);
  }

  /** A node died: the entities it served are claimed anew on next use. */
  forgetNode(node: string): void {
    for (const [key, n] of [...this.owners]) if (n === node) this.owners.delete(key);
  }

  /**
   * A clean stop: the changes of the last STATE_MS go to Redis too. Without them the next
   * owner would start from a snapshot older than what storage holds (an affiliation set
   * just before the stop was lost across a restart: seen in CI under load).
   */
  async stop(): Promise<void> {
    clearInterval(this.stateTimer);
    this.stateTimer = undefined;
    if (this.link.leaseValid()) await this.writeStates()?.catch((err: unknown) => this.link.log.warn({ err }, 'cluster: writing room snapshots failed'));
  }

  /** Wrap a service handler: stanzas to an entity go to its owner node, claimed on first use. */
  place(domain: string, handle: ServiceHandler, placement: ServicePlacement): ServiceHandler {
    this.services.set(domain, placement);
    placement.attach?.({ listings: () => this.listings(domain) });
    this.stateTimer ??= setInterval(() => this.saveStates(), STATE_MS);
    this.stateTimer.unref();
    return (stanza: Element, from: Jid, to: Jid) => {
      if (to.local === '') return handle(stanza, from, to);
      const key = to.bare;
      let owner = this.owners.get(key);
      if (owner === this.link.name && !this.link.leaseValid()) {
        this.fence();
        owner = undefined;
      }
      if (owner === this.link.name) return handle(stanza, from, to);
      if (owner !== undefined && this.link.isPeer(owner)) {
        placement.forwarded?.(stanza, from, to);
        return this.link.routeOn(owner, stanza.toString());
      }
      // not known (or its owner died): claim it; stanzas for it wait meanwhile, in order
      const run = (): void => {
        const o = this.owners.get(key);
        if (o === this.link.name) {
          const p = handle(stanza, from, to);
          if (p) p.catch((err: unknown) => this.link.log.error({ err }, 'cluster: a placed service failed'));
        } else if (o !== undefined) {
          placement.forwarded?.(stanza, from, to);
          this.link.routeOn(o, stanza.toString());
        }
        else this.link.router.bounce(stanza, new StanzaError('internal-server-error', 'the cluster cannot reach the owner of this room (Redis unreachable); try again', 'wait'));
      };
      const waiting = this.claiming.get(key);
      if (waiting) return void waiting.push(run);
      this.claiming.set(key, [run]);
      // Redis out of reach: after CLAIM_WAIT_MS the waiting stanzas get an error (type
      // 'wait') rather than silence; the claim goes on and the next stanza finds its result
      let settled = false;
      const release = (): void => {
        if (settled) return;
        settled = true;
        const q = this.claiming.get(key) ?? [];
        this.claiming.delete(key);
        for (const r of q) r();
      };
      setTimeout(release, CLAIM_WAIT_MS).unref();
      void this.claim(key, to.local, placement).then(release);
    };
  }

  /** Every node's listings of a service's entities (placement.listing): local part -> listing. */
  private async listings(domain: string): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.link.redis.hgetall(this.link.key(`listing:${domain}`))));
  }

  /** The node serving an entity (a room), as Redis says. */
  async ownerOf(key: string): Promise<string | undefined> {
    return (await this.link.redis.get(this.link.key(`owner:${key}`))) ?? undefined;
  }

  private async claim(key: string, local: string, placement: ServicePlacement): Promise<void> {
    try {
      const [owner, prev, state] = (await this.link.redis.eval(
        `local v = redis.call('GET', KEYS[1])
         if v and v ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. v) == 1 then return {v, v, false} end
         redis.call('SET', KEYS[1], ARGV[1])
         redis.call('SADD', KEYS[2], ARGV[3])
         if v ~= ARGV[1] then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'n', ARGV[1], 'd', cjson.encode({'own', ARGV[3], ARGV[1]})) end
         if v and v ~= ARGV[1] then redis.call('SREM', ARGV[5] .. v, ARGV[3]) end
         return {ARGV[1], v or '', redis.call('GET', KEYS[4]) or false}`,
        4,
        this.link.key(`owner:${key}`),
        this.link.key(`owned:${this.link.name}`),
        this.link.key('events'),
        this.link.key(`rstate:${key}`),
        this.link.name,
        this.link.key('alive:'),
        key,
        String(this.link.inboxMax),
        this.link.key('owned:'),
      )) as [string, string, string | null];
      const wasFenced = this.fenced.delete(key);
      if (owner === this.link.name && this.owners.get(key) !== this.link.name) {
        // taken from a node whose heartbeat expired: its sessions are gone here first, so
        // the room drops its occupants there (333) rather than keeping them
        if (prev && prev !== this.link.name) this.link.previousOwnerDead(prev);
        await placement.acquired(local, state ?? undefined).catch((err: unknown) => this.link.log.error({ err, key }, 'cluster: loading an acquired entity failed'));
        this.link.log.debug({ key, from: prev || undefined }, 'cluster: this node serves it now');
      } else if (owner !== this.link.name && wasFenced) {
        placement.dropped?.(local);
        this.link.log.warn({ key, owner }, 'cluster: another node took this entity while this node was paused; dropped here');
      }
      this.owners.set(key, owner);
    } catch (err) {
      this.link.log.error({ err, key }, 'cluster: claiming an owner failed');
    }
  }

  /** The lease lapsed (or Redis lost what it knew): owned entities are claimed again before they are served. */
  fence(): void {
    for (const [key, node] of [...this.owners])
      if (node === this.link.name) {
        this.owners.delete(key);
        this.fenced.add(key);
      }
  }

  /** Every STATE_MS: the latest snapshots of changed entities this node serves, to Redis (one pipeline). */
  private saveStates(): void {
    if (this.link.stopped() || !this.link.leaseValid()) return;
    this.writeStates()?.catch((err: unknown) => this.link.log.warn({ err }, 'cluster: writing room snapshots failed'));
  }

  /** The changed snapshots, written in one pipeline (undefined: nothing changed). */
  private writeStates(): Promise<unknown> | undefined {
    const m = this.link.redis.pipeline();
    let n = 0;
    for (const [domain, placement] of this.services)
      for (const [local, state] of placement.changed?.() ?? []) {
        const key = `${local}@${domain}`;
        if (this.owners.get(key) !== this.link.name) continue;
        if (state === undefined) m.del(this.link.key(`rstate:${key}`));
        else m.set(this.link.key(`rstate:${key}`), state);
        if (placement.listing) {
          const listed = state === undefined ? undefined : placement.listing(local);
          if (listed === undefined) m.hdel(this.link.key(`listing:${domain}`), local);
          else m.hset(this.link.key(`listing:${domain}`), local, listed);
        }
        n++;
      }
    return n ? m.exec() : undefined;
  }

  /**
   * Drain (issue 16, guarantee 6): each room this node serves goes to one of `targets`
   * (round-robin) with its snapshot; this node forwards what still comes here for it.
   * Returns how many moved.
   */
  async handOver(targets: readonly string[]): Promise<number> {
    const mine = [...this.owners].filter(([, n]) => n === this.link.name).map(([k]) => k);
    const byNode = new Map<string, string[]>();
    let moved = 0;
    for (const [i, key] of mine.entries()) {
      const j = tryJid(key);
      const placement = j && this.services.get(j.domain);
      if (!j || !placement?.release) continue;
      const node = targets[i % targets.length]!;
      const state = placement.release(j.local);
      const ok = (await this.link.redis.eval(
        `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
         redis.call('SET', KEYS[1], ARGV[2])
         redis.call('SREM', KEYS[2], ARGV[3])
         redis.call('SADD', KEYS[3], ARGV[3])
         if ARGV[5] ~= '' then redis.call('SET', KEYS[5], ARGV[5]) else redis.call('DEL', KEYS[5]) end
         redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'n', ARGV[1], 'd', cjson.encode({'own', ARGV[3], ARGV[2]}))
         return 1`,
        5,
        this.link.key(`owner:${key}`),
        this.link.key(`owned:${this.link.name}`),
        this.link.key(`owned:${node}`),
        this.link.key('events'),
        this.link.key(`rstate:${key}`),
        this.link.name,
        node,
        key,
        String(this.link.inboxMax),
        state ?? '',
      )) as number;
      this.owners.set(key, node);
      if (!ok) continue;
      moved++;
      let list = byNode.get(node);
      if (!list) byNode.set(node, (list = []));
      list.push(key);
    }
    // each takes its rooms now (not on their next stanza)
    await Promise.all([...byNode].map(([node, keys]) => this.link.request(node, 'serve', keys).catch(() => undefined)));
    if (moved) this.link.log.info({ rooms: moved, to: [...byNode.keys()] }, 'drain: rooms handed over');
    return moved;
  }

  /** Serve these entities now (a drain or a sweep chose this node): each is claimed, with its snapshot. */
  async serve(keys: string[]): Promise<number> {
    let n = 0;
    for (const key of keys) {
      const j = tryJid(key);
      const placement = j && this.services.get(j.domain);
      if (!j || !placement || this.owners.get(key) === this.link.name) continue;
      this.owners.delete(key);
      await this.claim(key, j.local, placement);
      if (this.owners.get(key) === this.link.name) n++;
    }
    return n;
  }

  /** A clean stop hands every owned entity back: the next stanza for it claims it anew. */
  async releaseAll(): Promise<void> {
    const owned = await this.link.redis.smembers(this.link.key(`owned:${this.link.name}`));
    for (const key of owned) {
      await this.link.redis.eval(
        `if redis.call('GET', KEYS[1]) == ARGV[1] then
           redis.call('DEL', KEYS[1])
           redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'n', ARGV[1], 'd', cjson.encode({'own', ARGV[2], ''}))
         end
         return 1`,
        2,
        this.link.key(`owner:${key}`),
        this.link.key('events'),
        this.link.name,
        key,
        String(this.link.inboxMax),
      );
    }
    await this.link.redis.del(this.link.key(`owned:${this.link.name}`));
  }

  /** A dead node's rooms: spread over the live nodes (this one included), each serves its share now. */
  async serveRoomsOf(node: string, live: Iterable<string>): Promise<number> {
    const keys = await this.link.redis.smembers(this.link.key(`owned:${node}`));
    if (!keys.length) return 0;
    await this.link.redis.del(this.link.key(`owned:${node}`));
    const nodes = [this.link.name, ...live].filter((n) => n !== node);
    const byNode = new Map<string, string[]>();
    keys.forEach((k, i) => {
      const n = nodes[i % nodes.length]!;
      let l = byNode.get(n);
      if (!l) byNode.set(n, (l = []));
      l.push(k);
    });
    await Promise.all(
      [...byNode].map(([n, ks]) =>
        n === this.link.name ? this.serve(ks) : this.link.request(n, 'serve', ks).catch((err: unknown) => this.link.log.warn({ err, node: n }, 'cluster: a node did not take its share of rooms')),
      ),
    );
    return keys.length;
  }
}
