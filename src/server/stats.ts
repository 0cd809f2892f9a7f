// The server's statistics (/status, `uzzap status`, the server-stats command):
// rates sampled once a second, event-loop lag, storage and Redis round-trips,
// and the figures modules add.
import type { ClusterNodeStats, ServerStats } from '../api/module.js';
import type { Core } from '../core.js';
import { LoopLag } from '../metrics.js';
import { VERSION } from './version.js';

export interface StatsSources {
  readonly startedAt: number;
  /** open client and component connections */
  connections(): number;
  /** domains of connected components */
  components(): string[];
}

export class Statistics {
  private readonly extra = new Map<string, () => number>();
  /** event-loop lag for `stats()` (/status, server-stats) and for /metrics scrapes, each reset by its reader */
  private readonly statusLag = new LoopLag();
  private readonly scrapeLag = new LoopLag();
  /** and for the cluster heartbeat (`uzzap status` lists every node's) */
  private readonly heartbeatLag = new LoopLag();
  /** (time, stanzas in, stanzas out) once a second, the last 11 */
  private readonly rateSamples: [number, number, number][] = [];
  private lastPings = { storage: null as number | null, registry: null as number | null };

  constructor(
    private readonly core: Core,
    private readonly sources: StatsSources,
  ) {}

  /** A module's figure; returns its removal. */
  add(name: string, read: () => number): () => void {
    this.extra.set(name, read);
    return () => void this.extra.delete(name);
  }

  /** Start measuring event-loop lag (at start; /metrics reads its own sampler). */
  enable(): void {
    this.statusLag.enable();
    this.scrapeLag.enable();
    this.heartbeatLag.enable();
    this.core.metrics.lagSource = () => this.scrapeLag.take();
  }

  disable(): void {
    this.statusLag.disable();
    this.scrapeLag.disable();
    this.heartbeatLag.disable();
  }

  /** Once a second: rates; every 10 s storage and Redis round-trips. */
  sample(now: number, second: number): void {
    this.rateSamples.push([now, this.core.metrics.totalIn, this.core.metrics.totalOut]);
    if (this.rateSamples.length > 11) this.rateSamples.shift();
    if (second % 10 === 1) void this.pingBackends();
  }

  private async pingBackends(): Promise<void> {
    const ms = async (p: () => Promise<number>): Promise<number | null> => {
      try {
        return await p();
      } catch {
        return null;
      }
    };
    const [storage, registry] = await Promise.all([ms(() => this.core.storage.ping()), ms(() => this.core.registry.ping())]);
    this.lastPings = { storage, registry };
    if (storage !== null) this.core.metrics.storageLatency.observe(storage / 1000);
    if (registry !== null) this.core.metrics.registryLatency.observe(registry / 1000);
  }

  /** Rates and loop lag without a storage round trip (the cluster heartbeat carries them). */
  quick(): { stanzasInPerSecond: number; stanzasOutPerSecond: number; eventLoopLagMs: { mean: number; p99: number } } {
    const first = this.rateSamples[0];
    const last = this.rateSamples[this.rateSamples.length - 1];
    const secs = first && last && last[0] > first[0] ? (last[0] - first[0]) / 1000 : 0;
    const lag = this.heartbeatLag.take();
    return {
      stanzasInPerSecond: secs ? Math.round(((last![1] - first![1]) / secs) * 10) / 10 : 0,
      stanzasOutPerSecond: secs ? Math.round(((last![2] - first![2]) / secs) * 10) / 10 : 0,
      eventLoopLagMs: { mean: round2(lag.mean), p99: round2(lag.p99) },
    };
  }

  private async clusterNodes(): Promise<ClusterNodeStats[]> {
    const nodes = await this.core.cluster!.nodes().catch(() => []);
    const now = Date.now();
    return nodes.map((n) => {
      const f = n.figures as Partial<ClusterNodeStats>;
      return {
        name: n.name,
        host: n.host,
        pid: n.pid,
        sessions: Number(f.sessions ?? 0),
        connections: Number(f.connections ?? 0),
        stanzasInPerSecond: Number(f.stanzasInPerSecond ?? 0),
        stanzasOutPerSecond: Number(f.stanzasOutPerSecond ?? 0),
        eventLoopLagMs: f.eventLoopLagMs ?? { mean: 0, p99: 0 },
        heartbeatAgeMs: Math.max(0, now - n.at),
      };
    });
  }

  async stats(): Promise<ServerStats> {
    await this.pingBackends();
    const first = this.rateSamples[0];
    const last = this.rateSamples[this.rateSamples.length - 1];
    const secs = first && last && last[0] > first[0] ? (last[0] - first[0]) / 1000 : 0;
    const lag = this.statusLag.take();
    let detached = 0;
    for (const s of this.core.sessions.local()) if (s.detached) detached++;
    const extra: Record<string, number> = {};
    for (const [name, read] of this.extra) extra[name] = read();
    const mem = process.memoryUsage();
    return {
      node: this.core.nodeId,
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.sources.startedAt) / 1000),
      sessions: this.core.sessions.size,
      detachedSessions: detached,
      connections: this.sources.connections(),
      components: this.sources.components(),
      stanzasInPerSecond: secs ? Math.round(((last![1] - first![1]) / secs) * 10) / 10 : 0,
      stanzasOutPerSecond: secs ? Math.round(((last![2] - first![2]) / secs) * 10) / 10 : 0,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      eventLoopLagMs: { mean: round2(lag.mean), p99: round2(lag.p99) },
      storage: { kind: this.core.storage.kind, latencyMs: this.lastPings.storage === null ? null : round2(this.lastPings.storage) },
      registry: { kind: this.core.registry.kind, latencyMs: this.lastPings.registry === null ? null : round2(this.lastPings.registry) },
      extra,
      ...(this.core.cluster ? { cluster: await this.clusterNodes() } : {}),
    };
  }
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
