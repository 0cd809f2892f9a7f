// Prometheus metrics for one server instance. Each server owns its Registry so
// that two servers in one process never share counters.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

/** how often the event-loop lag is sampled, in ms */
const LAG_RESOLUTION_MS = 20;

/**
 * Event-loop lag. Node's histogram records how long a `resolution` ms timer took
 * to fire, interval included (an idle loop reads ~20 ms); the interval is taken
 * off here so an idle node reads ~0.
 */
export class LoopLag {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  enable(): void {
    this.h.enable();
  }
  disable(): void {
    this.h.disable();
  }
  /** mean, p99 and max lag in ms since the previous take, then start over */
  take(): { mean: number; p99: number; max: number } {
    const lag = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS) : 0);
    const out = this.h.count ? { mean: lag(this.h.mean), p99: lag(this.h.percentile(99)), max: lag(this.h.max) } : { mean: 0, p99: 0, max: 0 };
    this.h.reset();
    return out;
  }
}

type StanzaKind = 'message' | 'presence' | 'iq';
type StanzaCounts = Record<StanzaKind, number>;

/** counts kept since the last read, added to the counter (which then exposes them) */
function moveCounts(counter: Counter<'kind'>, pending: StanzaCounts): void {
  for (const kind of ['message', 'presence', 'iq'] as const) {
    if (pending[kind] === 0) continue;
    counter.inc({ kind }, pending[kind]);
    pending[kind] = 0;
  }
}

/**
 * A histogram without labels for what is observed once per stanza, exposed through the
 * registry like prom-client's own (Registry.registerMetric takes any object with a name
 * and get()). Written here because prom-client's Histogram.observe() hashes the label set
 * and walks per-bucket objects on every call: with the per-stanza counters that was 3.5%
 * of the event loop in the chat bench's CPU profile (docs: BENCHMARKS.md, issue 14).
 */
type Sample = { labels: Record<string, string | number>; value: number; metricName: string };

class PerStanzaHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(buckets.length);
    registry.registerMetric(this as unknown as Counter);
  }

  observe(v: number): void {
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }

  reset(): void {
    this.counts = new Float64Array(this.buckets.length);
    this.sum = 0;
    this.count = 0;
  }

  /** prom-client's shape: cumulative buckets (le), +Inf, _sum, _count */
  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    let acc = 0;
    this.buckets.forEach((le, i) => {
      acc += this.counts[i]!;
      values.push({ labels: { le }, value: acc, metricName: `${this.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'uzzap_connections',
    help: 'Open client connections by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  // per-stanza counts are kept in plain numbers and handed to prom-client when it is read
  // (collect): its inc() hashes the label set on every call (see PerStanzaHistogram)
  readonly stanzasIn: Counter<'kind'> = new Counter({
    name: 'uzzap_stanzas_in_total',
    help: 'Stanzas received from clients, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: (): void => moveCounts(this.stanzasIn, this.pendingIn),
  });
  readonly stanzasOut: Counter<'kind'> = new Counter({
    name: 'uzzap_stanzas_out_total',
    help: 'Stanzas sent to clients, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: (): void => moveCounts(this.stanzasOut, this.pendingOut),
  });
  readonly authSuccess = new Counter({
    name: 'uzzap_auth_success_total',
    help: 'Successful SASL authentications by mechanism',
    labelNames: ['mechanism'] as const,
    registers: [this.registry],
  });
  readonly authFailure = new Counter({
    name: 'uzzap_auth_failure_total',
    help: 'Failed SASL authentications by mechanism and condition',
    labelNames: ['mechanism', 'condition'] as const,
    registers: [this.registry],
  });
  readonly routeLatency = new PerStanzaHistogram(
    'uzzap_routing_seconds',
    'Time from a stanza being parsed to it being handed to its recipient(s) or handler',
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    this.registry,
  );
  readonly streamErrors = new Counter({
    name: 'uzzap_stream_errors_total',
    help: 'Stream errors sent, by condition',
    labelNames: ['condition'] as const,
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: 'uzzap_sessions',
    help: 'Bound client sessions on this node',
    registers: [this.registry],
  });
  /** set by the server: the lag since the previous scrape */
  lagSource?: () => { mean: number; p99: number; max: number };
  readonly eventLoopLag = new Gauge({
    name: 'uzzap_event_loop_lag_seconds',
    help: 'How late the event loop ran a 20 ms timer since the previous scrape (the interval itself not counted), by stat: mean, p99, max',
    labelNames: ['stat'] as const,
    registers: [this.registry],
    collect: () => {
      const lag = this.lagSource?.();
      if (!lag) return;
      for (const stat of ['mean', 'p99', 'max'] as const) this.eventLoopLag.set({ stat }, lag[stat] / 1000);
    },
  });

  readonly smDetached = new Counter({
    name: 'uzzap_sm_detached_total',
    help: 'Sessions detached after losing their connection (XEP-0198), waiting for resumption',
    registers: [this.registry],
  });
  readonly smDetachedNow = new Gauge({
    name: 'uzzap_sm_detached_sessions',
    help: 'Sessions detached right now, waiting for resumption',
    registers: [this.registry],
  });
  readonly smResumed = new Counter({
    name: 'uzzap_sm_resumed_total',
    help: 'Detached sessions resumed on a new connection',
    registers: [this.registry],
  });
  readonly pingTimeouts = new Counter({
    name: 'uzzap_ping_timeouts_total',
    help: 'Connections dropped because they did not answer a liveness check (half-open)',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'uzzap_rate_limited_total',
    help: 'Times reading from a session paused because it went over its rate limit, by kind of stream',
    labelNames: ['stream'] as const,
    registers: [this.registry],
  });
  readonly components = new Gauge({
    name: 'uzzap_components',
    help: 'External components (XEP-0114) connected',
    registers: [this.registry],
  });
  readonly componentStanzas = new Counter({
    name: 'uzzap_component_stanzas_total',
    help: 'Stanzas exchanged with external components, by direction (in = from the component)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly componentAuthFailures = new Counter({
    name: 'uzzap_component_auth_failures_total',
    help: 'Component handshakes refused (wrong secret, unknown domain, already connected)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly storageLatency = new Histogram({
    name: 'uzzap_storage_ping_seconds',
    help: 'Round-trip time of a trivial query to the database, sampled every 10 s',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
    registers: [this.registry],
  });
  readonly registryLatency = new Histogram({
    name: 'uzzap_registry_ping_seconds',
    help: 'Round-trip time to the session registry (Redis), sampled every 10 s',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
    registers: [this.registry],
  });
  readonly archiveBatch = new Histogram({
    name: 'uzzap_archive_batch_seconds',
    help: 'Time to write one batch of the message archive',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });
  readonly archiveBatchSize = new Histogram({
    name: 'uzzap_archive_batch_messages',
    help: 'Messages written per archive batch',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 5000],
    registers: [this.registry],
  });
  /** set by the server once storage is open */
  archiveQueued?: () => number;
  readonly archiveQueue = new Gauge({
    name: 'uzzap_archive_queue_rows',
    help: 'Message archive rows waiting to be written',
    registers: [this.registry],
    collect: () => {
      if (this.archiveQueued) this.archiveQueue.set(this.archiveQueued());
    },
  });
  readonly archiveBackpressure = new Counter({
    name: 'uzzap_archive_backpressure_total',
    help: 'Times the archive queue passed storage.archive_queue_rows and senders were made to wait for the database',
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'uzzap_config_reloads_total',
    help: 'Configuration reloads (SIGHUP or ad-hoc), by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: 'uzzap_slow_consumer_closes_total',
    help: 'Streams closed because the client stopped reading (outbound buffer over its bound)',
    registers: [this.registry],
  });

  private readonly pendingIn: StanzaCounts = { message: 0, presence: 0, iq: 0 };
  private readonly pendingOut: StanzaCounts = { message: 0, presence: 0, iq: 0 };

  /** plain totals for the rates in statistics (prom-client values are only readable asynchronously) */
  totalIn = 0;
  totalOut = 0;

  countIn(kind: StanzaKind): void {
    this.totalIn++;
    this.pendingIn[kind]++;
  }

  countOut(kind: StanzaKind): void {
    this.totalOut++;
    this.pendingOut[kind]++;
  }

  constructor(defaults = true) {
    // process_* and nodejs_* (event-loop lag, heap, RSS, GC)
    if (defaults) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
  }
}
