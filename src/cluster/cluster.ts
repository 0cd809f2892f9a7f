// Several Uzzap processes as one server (docs/cluster.md). Every node:
// - heartbeats into Redis (`alive:<name>`, a key that expires) and watches the
//   others' heartbeats: a node whose key expired is dead; its sessions leave every
//   mirror, and one survivor (SET NX) clears its registry entries;
// - mirrors every other node's sessions in its SessionTable, from the registry once
//   at start and then from the registry's events stream, so routing to a session
//   elsewhere needs no round trip;
// - has an inbox, a Redis Stream `inbox:<name>`, that the others append envelopes
//   to (stanzas for its sessions, stanzas for services it serves, closes).
// Streams, not pub/sub: a reader that blinks resumes from the last id it read, so a
// Redis connection blip loses nothing (pub/sub is at-most-once). One writer
// connection and one XADD per destination node per event-loop turn keep every
// sender→recipient pair in order and batch a burst into one command.
//
// Room placement (owners, snapshots, fencing, hand-over) is placement.ts; session
// copies sm-mirror.ts; remote sessions remote.ts; workers workers.ts. What stays here
// (~1,200 lines, on purpose): the membership, mirror, bus and inbox recovery share one
// Redis connection and one event-stream reader, and their correctness rests on ordering
// across them (a registry entry written before the first envelope from that session;
// events applied before the inbox; a sweep's 'gone' before its entries go; a moved
// session's stand-in, answer and fences, which order the bus around a move). The next
// split: inbox recovery and the request/answer channel into their own classes.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { randomToken } from '../random.js';
import { tryJid } from '../jid.js';
import { escapeXML, parseXml } from '../xml/index.js';
import { parseAddressed } from '../xml/addressed.js';
import { StanzaError, type StreamErrorCondition } from '../api/errors.js';
import type { DeliveryMeta, ServiceHandler, ServicePlacement } from '../api/module.js';
import type { RedisRegistry } from '../registry/redis.js';
import type { RegistryEntry } from '../registry/types.js';
import type { SessionTable } from '../session/table.js';
import type { LocalSession } from '../session/types.js';
import type { Router } from '../router/router.js';
import { RemoteSession, type RemoteLink } from './remote.js';
import { SmMirror } from './sm-mirror.js';
import { Placements } from './placement.js';
import { S2SOwners } from './s2s-owners.js';

export interface ClusterSettings {
  heartbeat_ms: number;
  dead_after_ms: number;
  inbox_max: number;
  outbox_max: number;
  sm_copy: boolean;
}

/** What the cluster needs of its node. */
export interface ClusterHost {
  readonly log: Logger;
  readonly sessions: SessionTable<LocalSession>;
  readonly router: Router;
  readonly storageKind: string;
  /** this node's figures, published with each heartbeat (`uzzap status` lists every node) */
  figures(): Record<string, unknown>;
  /** a component connected on another node (`node`), or went from there (undefined) */
  remoteComponent(domain: string, node: string | undefined): void;
  /** another node asks something of this one (a session to resume here: 'takeover') */
  answer(kind: string, payload: unknown): unknown;
  /** this node's lane of archive sequence numbers (nodes sharing a database never collide) */
  useArchiveLane(lane: number, lanes: number): void;
  /** the registry entries of this node's sessions (re-asserted after Redis lost them) */
  localEntries(): RegistryEntry[];
  /** domains of components connected here */
  localComponents(): string[];
  /** seconds a detached session waits for resumption (sm.resume_timeout) */
  resumeWindow(): number;
  /** sessions of a node that died left this node's mirror: modules forget them (rooms: status 333) */
  sessionsLost(sessions: LocalSession[]): void;
  /** a session of another node ended or went unavailable: modules let it go ('session/left') */
  sessionLeft(session: LocalSession): void;
  /** this node swept a dead node: its available sessions go unavailable to their contacts */
  announceUnavailable(sessions: LocalSession[]): void;
  /** a stanza for a remote domain whose stream another node gave to this one (or recovered from a dead one's inbox) */
  s2sSend(xml: string, hop: number): void;
}

/** How much earlier than its heartbeat key expires a node stops acting as the owner of its rooms. */
const LEASE_MARGIN_MS = 1000;
/** How often (at most) a node writes how far it has handled its inbox (a crash replays what lies beyond). */
const READ_MARK_MS = 100;

/** Archive lanes (src/storage/sql/archive-ids.ts): at most this many nodes share one database. */
export const LANES = 16;

/** A node as its heartbeat describes it. */
export interface NodeInfo {
  name: string;
  inc: string;
  host: string;
  pid: number;
  storage: string;
  started: number;
  /** when the heartbeat was written (ms since the epoch) */
  at: number;
  figures: Record<string, unknown>;
}

type Kind = 'message' | 'presence' | 'iq';

/** envelopes on an inbox (JSON arrays, several per stream entry) */
type Envelope =
  | ['s', string, string, string, Kind, 0 | 1, string[] | 0, number] // to a session: full, sid, xml, kind, copy, peers, hop
  | ['r', string, number] // route a stanza (services on that node): xml, hop
  | ['c', string, string, string, string] // close a session: full, sid, condition, text
  | ['f', string, string, [string, string][], Kind] // a fan-out: head, rest, [full, sid] of each recipient, kind
  | ['q', string, string, string, unknown] // a request: id, reply-to node, kind, payload
  | ['a', string, unknown] // its answer: id, payload
  | ['o', string, number]; // a stanza for a remote domain, to the node holding its stream: xml, hop

/** events every node reads (beside the registry's up/set/down) */
type ClusterEvent =
  | ['up' | 'set', RegistryEntry]
  | ['down', string, string, string]
  | ['inv', string, string, string] // cache invalidation: topic, key, origin node
  | ['kick', string, string, string] // end a user's sessions everywhere: bare, condition, text
  | ['comp', string, string, 0 | 1] // a component connected to (1) or left (0) a node: domain, node
  | ['own', string, string] // an entity (a room) has a new owner, or none (''): key, node
  | ['gone', string, string]; // a node died (its sweeper says so before clearing it): name, incarnation

const MAX_HOPS = 3;

export class Cluster implements RemoteLink {
  readonly inc = randomToken(8);
  private readonly redis: Redis;
  private reader: Redis | undefined;
  private readonly peers = new Map<string, NodeInfo>();
  /** incarnations known dead: their late events are ignored */
  private readonly dead = new Set<string>();
  private readonly outbox = new Map<string, string[]>();
  private outboxSize = 0;
  private flushing = false;
  /** the XADDs of the flush under way (settles, never rejects) */
  private inFlight: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private lastInbox = '0-0';
  private lastEvents = '0-0';
  private stopped = false;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly topics = new Map<string, Set<(key: string) => void>>();
  /**
   * Until when (performance.now()) this node may act as the owner of its entities: the
   * last heartbeat that reached Redis, plus dead_after_ms, less a margin. A node paused
   * past it (SIGSTOP, a long GC) stops serving them until Redis says they are still its
   * own (fencing: another node may have taken them meanwhile).
   */
  private leaseUntil = 0;
  /** when the last heartbeat reached Redis (performance.now()) */
  private lastBeat = performance.now();
  /** the inbox position last written to `read:<name>`, and when */
  private markedInbox = '';
  private markedAt = 0;
  /** nodes found without a connection to Redis (requestLive), and when: asked again at once */
  private readonly unconnected = new Map<string, number>();
  /** components connected to other nodes: domain -> node */
  private readonly components = new Map<string, string>();
  private readonly pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextRequest = 0;
  /** envelopes sent and received, events applied (metrics and the bench) */
  readonly counts = { sent: 0, received: 0, batches: 0, events: 0 };

  /** copies of resumable sessions in Redis (cluster.sm_copy), for resumption after this node dies */
  readonly sm: SmMirror | undefined;
  /** rooms: which node serves each, their snapshots, fencing, hand-over (placement.ts) */
  readonly rooms: Placements;
  /** which node sends to each remote domain (federation: one stream per domain per cluster) */
  readonly s2s: S2SOwners;

  constructor(
    readonly name: string,
    private readonly registry: RedisRegistry,
    private readonly host: ClusterHost,
    private readonly settings: ClusterSettings,
  ) {
    this.redis = registry.redis;
    this.sm = settings.sm_copy ? new SmMirror(this.redis, registry.prefix, name, host.log) : undefined;
    this.s2s = new S2SOwners({
      name,
      redis: this.redis,
      key: (k) => this.key(k),
      isLive: (node) => this.isLive(node),
      leaseMs: () => this.settings.dead_after_ms,
    });
    this.rooms = new Placements({
      name,
      redis: this.redis,
      log: host.log,
      router: host.router,
      inboxMax: settings.inbox_max,
      key: (k) => this.key(k),
      leaseValid: () => performance.now() <= this.leaseUntil,
      isPeer: (node) => this.peers.has(node),
      previousOwnerDead: (node) => {
        const p = this.peers.get(node);
        if (p) this.nodeGone(p);
      },
      routeOn: (node, xml) => this.routeOn(node, xml),
      request: (node, kind, payload) => this.request(node, kind, payload),
      stopped: () => this.stopped,
    });
  }

  /** Is this node alive, as far as this node knows (itself, or a peer with a heartbeat)? */
  isLive(node: string): boolean {
    return node === this.name || this.peers.has(node);
  }

  private key(k: string): string {
    return this.registry.prefix + k;
  }

  /**
   * Where a resumable session went when this node handed it over (drain): kept in Redis
   * for the resume window, since this node, which its SM id names, is about to stop.
   */
  async pointSessions(ids: readonly string[], node: string, seconds: number): Promise<void> {
    const m = this.redis.multi();
    for (const id of ids) m.set(this.key(`smto:${id}`), node, 'PX', seconds * 1000);
    await m.exec();
  }

  /** The node that holds a session now, when the node its SM id names is gone: a drain's pointer, else its copy's holder. */
  async holderOf(id: string): Promise<string | undefined> {
    const [to, copy] = await Promise.all([this.redis.get(this.key(`smto:${id}`)), this.sm?.holder(id)]);
    return to ?? copy ?? undefined;
  }

  /** Join: heartbeat, refuse an impossible setup, mirror the others' sessions, start reading. */
  async start(): Promise<void> {
    await this.heartbeat();
    await this.refreshPeers();
    if (this.host.storageKind === 'sqlite') {
      const elsewhere = [...this.peers.values()].find((p) => p.host !== hostname() || p.storage !== 'sqlite');
      if (elsewhere)
        throw new Error(
          `node ${elsewhere.name} on ${elsewhere.host} (${elsewhere.storage}) shares this Redis: nodes on different hosts need shared storage (set UZZAP_POSTGRES_URL on every node)`,
        );
    }
    await this.claimLane();
    // this name's previous life (a crash, then a restart) leaves entries no one owns
    const stale = await this.clearStale();
    if (stale) this.host.log.info({ stale }, 'cluster: cleared sessions of this node name left by a previous run');
    // positions first, then the snapshot: events after the position replay onto it
    this.lastEvents = await this.lastId(this.key('events'));
    this.lastInbox = await this.lastId(this.inboxKey(this.name));
    const previousLife = this.lastInbox;
    await this.registry.scan((batch) => {
      for (const e of batch) this.applyEntry(e);
    });
    for (const [domain, node] of Object.entries(await this.redis.hgetall(this.key('components'))))
      if (this.peers.has(node)) this.applyComponent(domain, node, true);
    // a room's copies for another node's occupants leave as one envelope per node
    this.host.router.remoteFanout = {
      nodeOf: (s) => (s instanceof RemoteSession ? s.node : undefined),
      send: (node, head, rest, targets, kind) => this.fanoutTo(node, head, rest, targets, kind),
    };
    // named, so that the others can see from Redis's client list whether this process
    // is still there (a killed process's connections close at once: requestLive)
    this.reader = this.redis.duplicate({ connectionName: this.readerName(this.name) });
    this.reader.on('error', () => undefined);
    // reconnected after a blip: writes (binds, unbinds) may have failed meanwhile
    this.redis.on('ready', () => {
      this.reassertDue = true;
    });
    this.loop = this.read();
    // what was sent to this name's previous life and never read is routed again (it is
    // for sessions that are gone), now that the mirror is loaded; this life reads after it
    const recovered = await this.recoverInbox(this.name, previousLife);
    if (recovered) this.host.log.warn({ recovered }, 'cluster: routed again what this node name never read before it stopped');
    this.timer = setInterval(() => void this.tick(), this.settings.heartbeat_ms);
    this.timer.unref();
    // the others' heartbeats are read four times as often as this node writes its own:
    // a death is known within a quarter of a heartbeat after the dead node's key expired
    this.watch = setInterval(() => void this.check(), Math.max(100, Math.round(this.settings.heartbeat_ms / 4)));
    this.watch.unref();
    this.host.log.info({ node: this.name, inc: this.inc, peers: [...this.peers.keys()], mirrored: this.host.sessions.remoteSize }, 'cluster: joined');
  }

  /** Leave cleanly (after this node's sessions ended): the others forget it at once. */
  /**
   * A clean stop, while the modules are still loaded: stop reading, and route again
   * what reached the inbox after the last read (the sessions it was for have ended here;
   * the others may still have been sending). Then stop() leaves.
   */
  async quiesce(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.watch);
    this.reader?.disconnect();
    await this.loop?.catch(() => undefined);
    await this.redis.set(this.key(`read:${this.name}`), this.lastInbox).catch(() => undefined);
    const n = await this.recoverInbox(this.name).catch(() => 0);
    if (n) this.host.log.info({ rerouted: n }, 'cluster: routed again what arrived for this node while it stopped');
  }

  async stop(): Promise<void> {
    await this.rooms.stop();
    await this.quiesce();
    this.host.router.remoteFanout = undefined;
    await this.flush();
    await this.sm?.flush();
    await this.rooms.releaseAll().catch((err: unknown) => this.host.log.warn({ err }, 'cluster: releasing rooms failed'));
    await this.s2s.releaseAll();
    // the others forget this node now, not when its heartbeat would have expired (a
    // client resuming elsewhere a moment later must not wait for an answer from here)
    await this.redis
      .multi()
      .del(this.key(`alive:${this.name}`))
      .srem(this.key('nodes'), this.name)
      .xadd(this.key('events'), 'MAXLEN', '~', String(this.settings.inbox_max), '*', 'n', this.name, 'd', JSON.stringify(['gone', this.name, this.inc]))
      .exec()
      .catch(() => undefined);
  }

  /** Live nodes (this one included), as their last heartbeats say. */
  async nodes(): Promise<NodeInfo[]> {
    const names = await this.redis.smembers(this.key('nodes'));
    if (!names.length) return [];
    const vals = await this.redis.mget(...names.map((n) => this.key(`alive:${n}`)));
    const out: NodeInfo[] = [];
    vals.forEach((v) => {
      if (v) out.push(JSON.parse(v) as NodeInfo);
    });
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---- membership ----

  private inboxKey(node: string): string {
    return this.key(`inbox:${node}`);
  }

  private async lastId(stream: string): Promise<string> {
    const last = (await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
    return last[0]?.[0] ?? '0-0';
  }

  private lane = -1;

  /** A lane of archive seqs of its own: the one this name had (a restart), else a free one. */
  private async claimLane(): Promise<void> {
    const lease = String(this.settings.dead_after_ms * 10);
    const keys = Array.from({ length: LANES }, (_, i) => this.key(`lane:${i}`));
    const held = await this.redis.mget(...keys);
    let lane = held.indexOf(this.name);
    if (lane === -1) {
      for (let i = 0; i < LANES && lane === -1; i++) if ((await this.redis.set(keys[i]!, this.name, 'PX', lease, 'NX')) === 'OK') lane = i;
    }
    if (lane === -1) throw new Error(`more than ${LANES} nodes share this Redis and database (every archive lane is taken)`);
    this.lane = lane;
    this.host.useArchiveLane(lane, LANES);
  }

  /** Write this node's heartbeat; returns how long it had been since the last one that reached Redis (ms). */
  private async heartbeat(): Promise<number> {
    const info: NodeInfo = {
      name: this.name,
      inc: this.inc,
      host: hostname(),
      pid: process.pid,
      storage: this.host.storageKind,
      started: this.started,
      at: Date.now(),
      figures: this.host.figures(),
    };
    const m = this.redis
      .multi()
      .set(this.key(`alive:${this.name}`), JSON.stringify(info), 'PX', this.settings.dead_after_ms)
      .sadd(this.key('nodes'), this.name);
    // how far this node has read its inbox: what lies beyond, if it dies, is recovered
    if (this.reader) m.set(this.key(`read:${this.name}`), this.lastInbox);
    const sent = performance.now();
    const lapsed = sent > this.leaseUntil;
    await m.exec();
    // paused past the lease: the entities this node served may be another's now
    if (lapsed) this.rooms.fence();
    this.leaseUntil = sent + this.settings.dead_after_ms - LEASE_MARGIN_MS;
    const gap = performance.now() - this.lastBeat;
    // cut off from Redis (or paused) for a while: so, likely, were the others, and their
    // heartbeats expired meanwhile; no verdicts until they had time to write again (set
    // before lastBeat moves, so that no reading of the heartbeats in between judges)
    if (gap > this.settings.dead_after_ms / 2) this.graceUntil = Date.now() + this.settings.dead_after_ms;
    this.lastBeat = performance.now();
    if (this.lane >= 0) await this.redis.set(this.key(`lane:${this.lane}`), this.name, 'PX', this.settings.dead_after_ms * 10);
    return gap;
  }
  private readonly started = Date.now();

  private async tick(): Promise<void> {
    // a tick waiting on an unreachable Redis is not joined by the next ones
    if (this.stopped || this.ticking) return;
    this.ticking = true;
    try {
      // not in the node set any more: Redis restarted (or a survivor swept this node
      // after a long pause); what Redis knew of this node is gone, so it is told again
      const known = await this.redis.sismember(this.key('nodes'), this.name);
      const gap = await this.heartbeat();
      // every node's heartbeat went with Redis's data: no verdicts until they had time to
      // write again (after an outage heartbeat() has set the same grace)
      const cutOff = gap > this.settings.dead_after_ms / 2;
      if (!known) this.graceUntil = Date.now() + this.settings.dead_after_ms;
      if (cutOff && known) this.host.log.warn({ unreachableMs: Math.round(gap) }, 'cluster: Redis is back after an outage');
      if (!known || cutOff || this.reassertDue) await this.reassert();
      this.s2s.renew();
      await this.refreshPeers();
    } catch (err) {
      this.host.log.warn({ err }, 'cluster: heartbeat failed (Redis unreachable?)');
    } finally {
      this.ticking = false;
    }
  }
  private ticking = false;
  private watch: NodeJS.Timeout | undefined;

  /** Between heartbeats: the others' heartbeats read again (deaths, returns). */
  private async check(): Promise<void> {
    if (this.stopped || this.ticking) return;
    await this.refreshPeers().catch(() => undefined); // Redis out of reach: the heartbeat says so
  }
  /** the reading of the others' heartbeats in progress: one at a time, whoever asks */
  private refreshing: Promise<void> | undefined;

  /** Read the others' heartbeats; a node whose heartbeat expired (or restarted) is dead. */
  private refreshPeers(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const p = (this.refreshing = this.readPeers().finally(() => {
      if (this.refreshing === p) this.refreshing = undefined;
    }));
    return p;
  }

  private async readPeers(): Promise<void> {
    const live = new Map<string, NodeInfo>();
    let me = false;
    for (const n of await this.nodes()) {
      if (n.name !== this.name) live.set(n.name, n);
      else me = true;
    }
    // this node's own heartbeat is not there: Redis restarted empty (or swept this node
    // after a pause); everyone's went the same way, so nobody is judged until they had
    // time to write again (the heartbeat re-asserts this node)
    if (!me && !this.stopped) this.graceUntil = Math.max(this.graceUntil, Date.now() + this.settings.dead_after_ms);
    // no verdicts while this node's own heartbeat is stale either: it was cut off from
    // Redis (or paused), and the others' keys expired meanwhile for the same reason
    const grace = Date.now() < this.graceUntil || performance.now() - this.lastBeat > this.settings.dead_after_ms / 2;
    for (const [name, was] of this.peers) {
      const now = live.get(name);
      // a restarted node (new incarnation) is gone at once; so is one whose heartbeat
      // expired, unless Redis itself just lost every key (then it gets time to write again)
      if (now && now.inc !== was.inc) this.nodeGone(was);
      else if (!now && !grace) this.nodeGone(was);
      else if (!now) live.set(name, was);
    }
    let back = false;
    for (const [name, n] of live) {
      this.peers.set(name, n);
      // declared dead, and heartbeating again under the same incarnation (Redis restarted
      // and it came back late): its entries were dropped here, so they are read again
      if (this.dead.delete(`${name}:${n.inc}`)) back = true;
    }
    if (back)
      await this.registry.scan((batch) => {
        for (const e of batch) if (this.peers.get(e.node)?.inc === e.inc) this.applyEntry(e);
      });
    // a name in the set without a heartbeat: dead; sweep it (once, by whoever wins the lock)
    const names = await this.redis.smembers(this.key('nodes'));
    if (!grace) for (const name of names) if (name !== this.name && !live.has(name)) await this.sweep(name);
  }

  /** until then (ms) a missing heartbeat is not a death: Redis restarted empty */
  private graceUntil = 0;

  private nodeGone(n: NodeInfo): void {
    this.peers.delete(n.name);
    this.dead.add(`${n.name}:${n.inc}`);
    // sessions that moved away from it (a drain) go where they are now, not with it
    for (const full of [...this.moving.keys()]) {
      const j = tryJid(full);
      const cur = j && (this.host.sessions.getRemote(j.bare, j.resource) as unknown as RemoteSession | undefined);
      if (!cur || cur.node === n.name) this.moved(full);
    }
    const lost: LocalSession[] = [];
    for (const s of [...this.host.sessions.remote()])
      if ((s as unknown as RemoteSession).node === n.name && (s as unknown as RemoteSession).inc === n.inc) {
        this.host.sessions.dropRemote(s.jid.bare, s.jid.resource, (x) => x === s);
        lost.push(s);
      }
    const dropped = lost.length;
    if (lost.length) this.host.sessionsLost(lost);
    for (const [domain, node] of [...this.components]) if (node === n.name) this.applyComponent(domain, node, false);
    this.rooms.forgetNode(n.name);
    this.s2s.forgetNode(n.name);
    this.host.log.warn({ node: n.name, inc: n.inc, dropped }, 'cluster: node gone');
    void this.takeBack(n.name).catch((err: unknown) => this.host.log.warn({ err, node: n.name }, 'cluster: taking back what was posted to a node that left failed'));
  }

  /**
   * What this node posted to `node`'s inbox after that node read it for the last time
   * (it stopped or died while this node still routed to it): routed again from here,
   * once the posts still in flight have landed. The node's own clean stop and a dead
   * node's sweeper recover what lay there before; whoever deletes an entry routes it.
   */
  private async takeBack(node: string): Promise<void> {
    for (let i = 0; i < 3 && !this.stopped; i++) {
      await this.inFlight;
      if (!this.outbox.has(node)) break;
      await this.flush();
    }
    if (this.stopped) return;
    const n = await this.recoverInbox(node, undefined, this.name);
    if (n) this.host.log.info({ node, rerouted: n }, 'cluster: routed again what was posted to a node that left');
  }

  /**
   * Clear a dead node's registry entries (one survivor does it, the winner of a lock),
   * and announce its available sessions unavailable to their contacts, once (RFC 6121
   * §4.5.2, as if each had sent unavailable).
   */
  private async sweep(name: string): Promise<void> {
    const won = await this.redis.set(this.key(`sweep:${name}`), this.name, 'PX', this.settings.dead_after_ms, 'NX');
    if (!won) return;
    // still dead? (it may have come back between the two reads)
    if (await this.redis.exists(this.key(`alive:${name}`))) return;
    const entries = await this.registry.entriesOf(name);
    // every node learns of the death before the entries go: each tells its modules that
    // those sessions were lost (rooms: 333), not that they left
    const inc = entries[0]?.inc ?? '';
    await this.redis.xadd(this.key('events'), 'MAXLEN', '~', String(this.settings.inbox_max), '*', 'n', this.name, 'd', JSON.stringify(['gone', name, inc]));
    const n = await this.registry.clearNode(name);
    await this.redis.srem(this.key('nodes'), name);
    // its sessions left every mirror: stanzas it never read go where they can (other
    // resources, offline storage, a room's new owner), with their stanza-ids unchanged
    const rooms = await this.rooms.serveRoomsOf(name, this.peers.keys());
    const recovered = await this.recoverInbox(name);
    // its resumable sessions' copies stay for the resume window (a client may resume elsewhere)
    const copies = this.sm ? (await this.sm.expireNode(name, this.host.resumeWindow())).length : 0;
    this.host.log.warn({ node: name, sessions: n, recovered, resumable: copies, rooms }, 'cluster: swept a dead node');
    const gone = entries.filter((e) => e.presence !== undefined).map((e) => new RemoteSession(this, e));
    if (gone.length) this.host.announceUnavailable(gone);
  }

  /**
   * The envelopes in `node`'s inbox after the position it last reported: routed again
   * here as if they had just arrived (their sessions are gone), then the inbox is
   * dropped. Between the last report and the death some may have been handled there
   * already: those come twice, under the same stanza-id (clients deduplicate on it).
   */
  private async recoverInbox(node: string, until?: string, postedBy?: string): Promise<number> {
    const inbox = this.inboxKey(node);
    const from = (await this.redis.get(this.key(`read:${node}`))) ?? '0-0';
    let n = 0;
    let last = from;
    for (;;) {
      if (until === '0-0') break;
      const page = (await this.redis.xrange(inbox, `(${last}`, until ?? '+', 'COUNT', 1000)) as [string, string[]][];
      if (!page.length) break;
      last = page[page.length - 1]![0];
      const mine = postedBy === undefined ? page : page.filter(([, fields]) => fieldOf(fields, 'n') === postedBy);
      // an entry is routed again by whoever deletes it: the sweeper of a dead node and the
      // nodes taking back what they posted to it late may read the same entries
      const claims = mine.length ? await this.redis.pipeline(mine.map(([id]) => ['xdel', inbox, id])).exec() : [];
      for (const [i, [, fields]] of mine.entries()) {
        if (claims?.[i]?.[1] !== 1) continue;
        let envs: Envelope[];
        try {
          envs = JSON.parse(fieldOf(fields, 'd')) as Envelope[];
        } catch {
          continue;
        }
        for (const env of envs) {
          if (env[0] === 's' && env[4] !== 'presence') {
            n++;
            this.redeliver(env[1], env[3], env[4], env[7] + 1);
          } else if (env[0] === 'r') {
            n++;
            this.reroute(env[1], env[2] + 1);
          } else if (env[0] === 'o') {
            n++;
            this.host.s2sSend(env[1], env[2] + 1);
          }
        }
      }
    }
    // a dead node's inbox goes up to what was read here (not a DEL: what the others
    // post until they learn of the death stays, for them to take back); this node's own
    // stays (it reads on from `until`)
    if (until === undefined && postedBy === undefined) {
      await this.redis.xtrim(inbox, 'MINID', nextStreamId(last));
      await this.redis.del(this.key(`read:${node}`));
    }
    return n;
  }

  /** set when the connection to Redis came back: the next tick re-asserts (writes may have failed meanwhile) */
  private reassertDue = false;

  /**
   * Write again everything Redis should know of this node: every session's entry (and
   * drop entries of sessions that ended while Redis was unreachable), the components
   * connected here, the rooms this node serves.
   */
  private async reassert(): Promise<void> {
    this.reassertDue = false;
    const mine = new Map(this.host.localEntries().map((e) => [e.full, e]));
    for (const e of mine.values()) {
      const prev = await this.registry.bind(e);
      if (prev && prev.node !== this.name) this.closeEntry(prev, 'conflict', 'replaced by a new connection for the same resource');
    }
    for (const full of await this.redis.smembers(this.key(`node:${this.name}`)))
      if (!mine.has(full)) await this.registry.unbindOwned(full, this.name);
    for (const domain of this.host.localComponents()) this.announceComponent(domain, true);
    // rooms: not written back blindly (another node may serve them now): each is claimed
    // again on its next stanza, and kept only if no live node took it meanwhile
    this.rooms.fence();
    this.host.log.info({ sessions: mine.size }, 'cluster: re-asserted this node in Redis');
  }

  private async clearStale(): Promise<number> {
    let n = 0;
    // entries of this name with another incarnation
    const fulls = await this.redis.smembers(this.key(`node:${this.name}`));
    if (fulls.length) n = await this.registry.clearNode(this.name);
    return n;
  }

  // ---- the session mirror ----

  /** how long a moved session's stand-in waits for its new node's entry (then it goes) */
  static readonly STAND_IN_MS = 30_000;

  /**
   * A session of this node moved to node `e.node` (a resume there, or a drain): until that
   * node's entry arrives on the events stream, a stand-in routes to it. Without one, what
   * this node routes to the JID in between (its own users' messages, and the other nodes'
   * sent here by their older view) would find no session and go to offline storage.
   */
  standIn(e: RegistryEntry): void {
    const j = tryJid(e.full);
    const inc = this.peers.get(e.node)?.inc;
    if (!j || inc === undefined) return;
    const s = new RemoteSession(this, { ...e, inc });
    this.host.sessions.putRemote(s);
    // the entry never came (the move failed there): the stand-in goes
    setTimeout(() => this.host.sessions.dropRemote(j.bare, j.resource, (x) => x === s), Cluster.STAND_IN_MS).unref();
  }

  /**
   * Sessions that moved between two other nodes, until the old one has sent on what this
   * node posted it: full JID -> the new entry, and what this node routed to the session
   * meanwhile (held here, counted in the outbox's bound, posted to the new node after).
   */
  private readonly moving = new Map<string, { e: RegistryEntry; held: [string, Kind, readonly LocalSession[] | undefined, DeliveryMeta | undefined][] }>();

  private applyEntry(e: RegistryEntry, settled = false): void {
    if (e.node === this.name || this.dead.has(`${e.node}:${e.inc}`)) return;
    const j = tryJid(e.full);
    if (!j) return;
    const cur = this.host.sessions.getRemote(j.bare, j.resource) as unknown as RemoteSession | undefined;
    if (cur && cur.key === e.sid) {
      const was = cur.available;
      cur.update(e);
      if (was && !cur.available) this.host.sessionLeft(cur as unknown as LocalSession);
      return;
    }
    // a later entry of a session on its way (waiting for the fence): the newest applies then
    const pending = this.moving.get(e.full);
    if (pending && !settled) {
      pending.e = e;
      return;
    }
    // the session moved from one node to another (a resume or a drain there): what this
    // node posted to the old one is sent on from there, so what it routes to the session
    // now waits here until the old node has answered a fence (it handled all of it), then
    // goes to the new one: a sender here sees its messages arrive in order
    if (!settled && cur && cur.node !== e.node && this.peers.get(cur.node)?.inc === cur.inc) {
      this.moving.set(e.full, { e, held: [] });
      void this.fence(cur.node).then(() => this.moved(e.full));
      return;
    }
    this.host.sessions.putRemote(new RemoteSession(this, e));
  }

  /** A move's fence answered (or its old node went): the new entry applies, what waited goes there. */
  private moved(full: string): void {
    const m = this.moving.get(full);
    if (!m) return;
    this.moving.delete(full);
    this.applyEntry(m.e, true);
    this.outboxSize -= m.held.length;
    const j = tryJid(full)!;
    for (const [xml, kind, peers, meta] of m.held) {
      const now = this.host.sessions.get(j.bare, j.resource);
      if (now) now.sendSerialized(xml, kind, peers, meta);
      else if (kind !== 'presence') this.undeliverable(xml, kind);
    }
  }

  /** Resolves once `node` has handled everything this node posted to it before (or after 2 s). */
  fence(node: string): Promise<void> {
    return this.request(node, 'fence', null, 2000).then(
      () => undefined,
      () => undefined,
    );
  }

  private applyEvent(ev: ClusterEvent): void {
    this.counts.events++;
    switch (ev[0]) {
      case 'up':
      case 'set':
        return this.applyEntry(ev[1]);
      case 'down': {
        const j = tryJid(ev[1]);
        if (!j) return;
        const s = this.host.sessions.getRemote(j.bare, j.resource);
        // the session ended where it moved before this node switched to it: the old mirror goes
        const moved = this.moving.get(ev[1]);
        if (moved?.e.sid === ev[2]) {
          this.moving.delete(ev[1]);
          this.outboxSize -= moved.held.length;
          for (const [xml, kind] of moved.held) this.undeliverable(xml, kind);
        }
        if (s && (s.key === ev[2] || moved?.e.sid === ev[2])) {
          this.host.sessions.dropRemote(j.bare, j.resource, (x) => x === s);
          this.host.sessionLeft(s);
        }
        return;
      }
      case 'inv':
        if (ev[3] !== this.name) for (const fn of this.topics.get(ev[1]) ?? []) fn(ev[2]);
        return;
      case 'gone': {
        const p = this.peers.get(ev[1]);
        if (p && (ev[2] === '' || p.inc === ev[2])) this.nodeGone(p);
        // (one this node never saw alive may still have been posted to: its sessions' entries)
        else if (!p && ev[1] !== this.name) void this.takeBack(ev[1]).catch(() => undefined);
        return;
      }
      case 'own':
        return this.rooms.learnt(ev[1], ev[2]);
      case 'comp':
        if (ev[2] !== this.name) this.applyComponent(ev[1], ev[2], ev[3] === 1);
        return;
      case 'kick':
        for (const s of [...this.host.sessions.localResources(ev[1])]) s.close(ev[2] as StreamErrorCondition, ev[3]);
        return;
    }
  }

  private applyComponent(domain: string, node: string, up: boolean): void {
    if (up) {
      this.components.set(domain, node);
      this.host.remoteComponent(domain, node);
    } else if (this.components.get(domain) === node) {
      this.components.delete(domain);
      this.host.remoteComponent(domain, undefined);
    }
  }

  /** A component connected here (or left): every node routes its domain here. */
  announceComponent(domain: string, up: boolean): void {
    const m = this.redis.multi();
    if (up) m.hset(this.key('components'), domain, this.name);
    else m.hdel(this.key('components'), domain);
    m.xadd(this.key('events'), 'MAXLEN', '~', String(this.settings.inbox_max), '*', 'n', this.name, 'd', JSON.stringify(['comp', domain, this.name, up ? 1 : 0]));
    m.exec().catch((err: unknown) => this.host.log.error({ err }, 'cluster: announcing a component failed'));
  }

  /** Wrap a service handler: stanzas to an entity go to its owner node (placement.ts). */
  place(domain: string, handle: ServiceHandler, placement: ServicePlacement): ServiceHandler {
    return this.rooms.place(domain, handle, placement);
  }

  /** Tell every node (this one excluded) that a cached `key` of `topic` changed. */
  invalidate(topic: string, key: string): void {
    this.publish(['inv', topic, key, this.name]);
  }

  /** Run `fn` when another node invalidates a key of `topic`; returns the undo. */
  onInvalidate(topic: string, fn: (key: string) => void): () => void {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(fn);
    return () => void set.delete(fn);
  }

  private publish(ev: ClusterEvent): void {
    this.redis
      .xadd(this.key('events'), 'MAXLEN', '~', String(this.settings.inbox_max), '*', 'n', this.name, 'd', JSON.stringify(ev))
      .catch((err: unknown) => this.host.log.error({ err }, 'cluster: publishing an event failed'));
  }

  // ---- the bus ----

  toSession(s: RemoteSession, xml: string, kind: Kind, peers?: readonly LocalSession[], meta?: DeliveryMeta): void {
    // moving to another node: waits for the move's fence (applyEntry)
    const m = this.moving.size ? this.moving.get(s.jid.full) : undefined;
    if (m && this.outboxSize < this.settings.outbox_max) {
      m.held.push([xml, kind, peers, meta]);
      this.outboxSize++;
      return;
    }
    // its node was declared dead (not swept yet): nobody reads that inbox
    if (this.dead.has(`${s.node}:${s.inc}`)) {
      if (kind !== 'presence') this.undeliverable(xml, kind);
      return;
    }
    this.post(s.node, ['s', s.jid.full, s.key, xml, kind, meta?.copy ? 1 : 0, peers ? peers.map((p) => p.jid.full) : 0, 0], xml, kind);
  }

  /** A room's copies for `node`'s occupants, as one envelope (router/fanout.ts). */
  fanoutTo(node: string, head: string, rest: string, targets: LocalSession[], kind: Kind): void {
    this.post(node, ['f', head, rest, targets.map((t) => [t.jid.full, t.key]), kind]);
  }

  closeSession(s: RemoteSession, condition?: StreamErrorCondition, text?: string): void {
    this.post(s.node, ['c', s.jid.full, s.key, condition ?? '', text ?? '']);
  }

  /** Close the session a registry entry names (the older of two binds of one full JID). */
  closeEntry(e: RegistryEntry, condition: StreamErrorCondition, text: string): void {
    if (e.node === this.name) return;
    this.post(e.node, ['c', e.full, e.sid, condition, text]);
  }

  /** Ask another node (a session to hand over); rejects after `timeoutMs`. */
  request(node: string, kind: string, payload: unknown, timeoutMs = 5000): Promise<unknown> {
    const id = `${this.inc}-${++this.nextRequest}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`node ${node} did not answer ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.post(node, ['q', id, this.name, kind, payload]);
    });
  }

  private readerName(node: string): string {
    return `${this.registry.prefix}node:${node}`.replace(/[^\w.:@-]/g, '_');
  }

  /** Has `node` a connection to Redis now? (A process killed with SIGKILL has none within milliseconds.) */
  connected(node: string): Promise<boolean> {
    // one CLIENT LIST at a time however many requests ask (a crash: a thousand resumes)
    if (this.listing) return this.listing.then((list) => list.includes(` name=${this.readerName(node)} `));
    const p = (this.listing = this.redis.client('LIST').then(String));
    void p.finally(() => {
      if (this.listing === p) this.listing = undefined;
    }).catch(() => undefined);
    return p.then((list) => list.includes(` name=${this.readerName(node)} `));
  }
  private listing: Promise<string> | undefined;

  /**
   * A request to a node that may just have died: after `probeMs` (100) without an answer, and
   * then every `probeMs`, Redis's client list is asked whether the node is still
   * connected; if not, the request fails at once instead of after `timeoutMs` (a client
   * resuming after its node was killed waits milliseconds, not the 8 s until the
   * heartbeat expires or the 5 s of a request timeout).
   */
  async requestLive(node: string, kind: string, payload: unknown, timeoutMs = 5000, probeMs = 100): Promise<unknown> {
    // found gone a moment ago (a thousand clients resuming after one crash): checked once, now
    const seen = this.unconnected.get(node);
    if (seen !== undefined && performance.now() - seen < 10_000 && !(await this.connected(node).catch(() => true)))
      throw new Error(`node ${node} has no connection to Redis (dead)`);
    const answer = this.request(node, kind, payload, timeoutMs);
    let done = false;
    const probe = (async (): Promise<never> => {
      for (;;) {
        await new Promise((r) => setTimeout(r, probeMs).unref());
        if (done) return new Promise<never>(() => undefined);
        if (!(await this.connected(node).catch(() => true))) {
          this.unconnected.set(node, performance.now());
          throw new Error(`node ${node} has no connection to Redis (dead)`);
        }
      }
    })();
    try {
      return await Promise.race([answer, probe]);
    } finally {
      done = true;
      answer.catch(() => undefined);
      probe.catch(() => undefined);
    }
  }

  /** Route a stanza on another node (a service it serves). */
  routeOn(node: string, xml: string, hop = 0): void {
    this.post(node, ['r', xml, hop]);
  }

  /** A stanza for a remote domain, to the node that holds the stream to it (S2SOwners). */
  sendRemote(node: string, xml: string, hop: number): void {
    // Redis out of reach for long (the outbox full): this node sends it on a stream of its own
    if (this.outboxSize >= this.settings.outbox_max) return this.host.s2sSend(xml, Number.MAX_SAFE_INTEGER);
    this.post(node, ['o', xml, hop]);
  }

  private post(node: string, env: Envelope, xml?: string, kind?: Kind): void {
    if (this.outboxSize >= this.settings.outbox_max) {
      // Redis has been unreachable for a while: a message is not dropped but taken as
      // undeliverable here (offline storage); state (presence) and IQs are lost or bounced
      this.host.log.warn({ node, queued: this.outboxSize }, 'cluster: outbox full (cluster.outbox_max)');
      if (xml && kind) this.undeliverable(xml, kind);
      return;
    }
    let q = this.outbox.get(node);
    if (!q) this.outbox.set(node, (q = []));
    q.push(JSON.stringify(env));
    this.outboxSize++;
    this.counts.sent++;
    if (!this.flushQueued && !this.flushing) {
      this.flushQueued = true;
      setImmediate(() => void this.flush());
    }
  }

  /** One XADD per destination for everything posted this turn; kept and retried when Redis fails. */
  private async flush(): Promise<void> {
    this.flushQueued = false;
    if (this.flushing || !this.outbox.size) return;
    this.flushing = true;
    const batch = [...this.outbox];
    this.outbox.clear();
    const p = this.redis.pipeline();
    // 'n': who posted it (a node that left takes back what it posted there too late)
    for (const [node, q] of batch) p.xadd(this.inboxKey(node), 'MAXLEN', '~', String(this.settings.inbox_max), '*', 'n', this.name, 'd', `[${q.join(',')}]`);
    let ok = false;
    const exec = p.exec();
    this.inFlight = exec.then(
      () => undefined,
      () => undefined,
    );
    try {
      const res = await exec;
      ok = !!res && res.every(([err]) => !err);
    } catch {
      ok = false;
    }
    this.flushing = false;
    if (ok) {
      this.counts.batches += batch.length;
      for (const [, q] of batch) this.outboxSize -= q.length;
    } else {
      // put them back in front, in order, and try again shortly (a partial success may repeat some)
      for (const [node, q] of batch.reverse()) {
        const later = this.outbox.get(node) ?? [];
        this.outbox.set(node, [...q, ...later]);
      }
      if (!this.stopped) setTimeout(() => void this.flush(), 200).unref();
      return;
    }
    if (this.outbox.size) void this.flush();
  }

  private async read(): Promise<void> {
    const reader = this.reader!;
    const inbox = this.inboxKey(this.name);
    const events = this.key('events');
    while (!this.stopped) {
      try {
        // events before the inbox: a stanza from a session that just bound elsewhere comes
        // after that session's entry (the sender writes the entry first, on the same
        // connection), so the answer to it finds the session here
        const res = (await reader.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', events, inbox, this.lastEvents, this.lastInbox)) as
          | [string, [string, string[]][]][]
          | null;
        if (!res) continue;
        for (const [stream, entries] of res) {
          for (const [id, fields] of entries) {
            const data = fieldOf(fields, 'd');
            if (stream === inbox) {
              this.lastInbox = id;
              const waiting = this.onInbox(data);
              if (waiting) await waiting;
            } else {
              this.lastEvents = id;
              // this node's own events (its sessions' entries) are not read back
              if (fieldOf(fields, 'n') === this.name) continue;
              try {
                this.applyEvent(JSON.parse(data) as ClusterEvent);
              } catch (err) {
                this.host.log.error({ err }, 'cluster: bad event');
              }
            }
          }
        }
        // how far the inbox was handled, every READ_MARK_MS at most (besides each
        // heartbeat): if this node dies, the sweeper replays only what lies beyond, so a
        // crash repeats at most that much (same stanza-ids) instead of a heartbeat's worth
        const now = performance.now();
        if (this.lastInbox !== this.markedInbox && now - this.markedAt >= READ_MARK_MS) {
          this.markedAt = now;
          this.markedInbox = this.lastInbox;
          this.redis.set(this.key(`read:${this.name}`), this.lastInbox).catch(() => undefined);
        }
      } catch (err) {
        if (this.stopped) break;
        this.host.log.warn({ err }, 'cluster: reading the inbox failed; retrying');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** An inbox entry's envelopes, in order; a promise when it had an answer (see below). */
  private onInbox(data: string): Promise<void> | undefined {
    let envs: Envelope[];
    try {
      envs = JSON.parse(data) as Envelope[];
    } catch (err) {
      this.host.log.error({ err }, 'cluster: bad inbox entry');
      return undefined;
    }
    return this.handleFrom(envs, 0);
  }

  private handleFrom(envs: Envelope[], from: number): Promise<void> | undefined {
    for (let i = from; i < envs.length; i++) {
      const env = envs[i]!;
      this.counts.received++;
      let answered = false;
      try {
        answered = this.handle(env) === true;
      } catch (err) {
        this.host.log.error({ err, env: JSON.stringify(env).slice(0, 500) }, 'cluster: handling an envelope failed');
      }
      // an answer's waiter runs before the next envelope: a session taken over from
      // another node is bound here before the stanzas that node sent on after its answer
      // (they would find no session, or the mirror of the old one, and go round or offline)
      if (answered) return new Promise<void>((r) => setImmediate(r)).then(() => this.handleFrom(envs, i + 1));
    }
    return undefined;
  }

  /** true: it was an answer to a request of this node's (its waiter runs before the next envelope) */
  private handle(env: Envelope): true | undefined {
    const sessions = this.host.sessions;
    switch (env[0]) {
      case 's': {
        const [, full, sid, xml, kind, copy, peerFulls, hop] = env;
        const j = tryJid(full);
        const s = j && sessions.getLocal(j.bare, j.resource);
        if (s && s.key === sid) {
          const peers = peerFulls ? peerFulls.map((f) => tryJid(f)).flatMap((p) => (p ? [sessions.get(p.bare, p.resource)!].filter(Boolean) : [])) : undefined;
          const meta = copy ? { copy: true } : undefined;
          // sent on by another node (routed before the session moved here): session.ts
          if (hop && s.sendForwarded) s.sendForwarded(xml, kind, peers, meta);
          else s.sendSerialized(xml, kind, peers, meta);
          return;
        }
        // the session went (or moved) meanwhile
        this.redeliver(full, xml, kind, hop);
        return;
      }
      case 'r':
        this.reroute(env[1], env[2]);
        return;
      case 'o':
        this.host.s2sSend(env[1], env[2]);
        return;
      case 'f': {
        // the same text for each, its own 'to' spliced in (as router/fanout.ts does locally);
        // an occupant whose session went meanwhile is skipped (the room learns it from its unavailable)
        const [, head, rest, to, kind] = env;
        for (const [full, sid] of to) {
          const j = tryJid(full);
          const s = j && sessions.getLocal(j.bare, j.resource);
          if (s && s.key === sid) s.sendSerialized(head + escapeXML(full) + '"' + rest, kind);
        }
        return;
      }
      case 'q': {
        const [, id, replyTo, kind, payload] = env;
        const failed = (err: unknown): void => {
          this.host.log.error({ err, kind }, 'cluster: answering a request failed');
          this.post(replyTo, ['a', id, null]);
        };
        // a synchronous answer goes out at once: a session handed over ('takeover') leaves
        // this node's table and its answer is posted in the same turn, so nothing this node
        // routes to the session afterwards (through its stand-in) reaches the asking node
        // before the answer does
        let answer: unknown;
        try {
          // 'fence': answered once everything posted here before it was handled (Cluster.fence)
          answer = kind === 'fence' ? null : kind === 'serve' ? this.rooms.serve(payload as string[]) : this.host.answer(kind, payload);
        } catch (err) {
          failed(err);
          return;
        }
        if (answer instanceof Promise) answer.then((a: unknown) => this.post(replyTo, ['a', id, a ?? null]), failed);
        else this.post(replyTo, ['a', id, answer ?? null]);
        return;
      }
      case 'a': {
        const p = this.pending.get(env[1]);
        if (!p) return;
        this.pending.delete(env[1]);
        clearTimeout(p.timer);
        p.resolve(env[2]);
        return true;
      }
      case 'c': {
        const j = tryJid(env[1]);
        const s = j && sessions.getLocal(j.bare, j.resource);
        if (s && s.key === env[2]) s.close((env[3] || undefined) as StreamErrorCondition | undefined, env[4] || undefined);
        return;
      }
    }
  }

  /**
   * A stanza for a session that is not where it was sent: it was routed (archived,
   * stamped) already, so it is not routed again. The session bound under that JID now
   * (it resumed elsewhere) gets it as it is; with none, a message goes to offline storage
   * with its stanza-id unchanged and an IQ request is answered with an error, as when a
   * session ends with stanzas it never acknowledged (src/session/manager.ts).
   */
  private redeliver(full: string, xml: string, kind: Kind, hop: number): void {
    if (kind === 'presence') return;
    const j = tryJid(full);
    const now = j && this.host.sessions.get(j.bare, j.resource);
    if (now && hop <= MAX_HOPS) {
      // routed before the session moved here: before what reached it here since (session.ts)
      if (!(now instanceof RemoteSession)) return now.sendForwarded ? now.sendForwarded(xml, kind) : now.sendSerialized(xml, kind);
      // on to the node it moved to, counting the hop (two stale views never bounce it forever)
      if (hop < MAX_HOPS && !this.dead.has(`${now.node}:${now.inc}`)) return this.post(now.node, ['s', full, now.key, xml, kind, 0, 0, hop + 1], xml, kind);
    }
    this.undeliverable(xml, kind);
  }

  private reroute(xml: string, hop: number): void {
    let stanza;
    try {
      stanza = parseXml(xml);
    } catch {
      return;
    }
    if (hop > MAX_HOPS) return;
    const p = this.host.router.send(stanza);
    if (p) p.catch((err: unknown) => this.host.log.error({ err }, 'cluster: routing a forwarded stanza failed'));
  }

  /** A message no session took: offline storage (or an error to its sender); an IQ request: an error. */
  private undeliverable(xml: string, kind: Kind): void {
    const s = parseAddressed(xml);
    if (!s) return;
    const { stanza, from, to } = s;
    const type = stanza.attrs.type ?? (kind === 'message' ? 'normal' : '');
    if (kind === 'iq') {
      if (type === 'get' || type === 'set') this.host.router.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    if (kind !== 'message' || type === 'groupchat' || type === 'error' || type === 'headline') return;
    stanza.attrs.to = to.bare;
    void this.host.router.undeliverable(stanza, from, to.toBare()).then((stored) => {
      if (!stored) this.host.router.bounce(stanza, new StanzaError('service-unavailable'));
    });
  }
}

/**
 * From outside the cluster (`uzzap user del` / `passwd`): every node ends the user's
 * sessions (through the events stream every node reads).
 */
export async function endUserSessions(redisUrl: string, prefix: string, bare: string, condition: StreamErrorCondition, text: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.xadd(`${prefix}events`, 'MAXLEN', '~', '100000', '*', 'n', '', 'd', JSON.stringify(['kick', bare, condition, text]));
  } finally {
    redis.disconnect();
  }
}

/** a field of a stream entry ([name, value, name, value, ...]) */
/** The smallest stream id after `id` ('ms-seq'). */
function nextStreamId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq ?? 0) + 1}`;
}

function fieldOf(fields: string[], name: string): string {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!;
  return '';
}
