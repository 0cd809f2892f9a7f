// One Uzzap node: storage, registry, router, modules and listeners built from
// a Config, started in order and stopped in the reverse order. The parts live
// in src/server/ (listeners, HTTP routes, components, reload, module loading,
// statistics, admin flags, login times); this class composes them and is the
// Core every stream and session sees. No module-level state: several servers
// can run in one process.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { loadConfig } from './config/load.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { Router } from './router/router.js';
import { HookBus } from './router/hooks.js';
import { IqTable } from './router/iq-table.js';
import { SessionTable } from './session/table.js';
import { SessionManager, type MovedSession } from './session/manager.js';
import type { LocalSession } from './session/types.js';
import type { Session } from './session/session.js';
import { openStorage, type Storage } from './storage/index.js';
import type { Registry } from './registry/types.js';
import { MemoryRegistry } from './registry/memory.js';
import type { Cluster } from './cluster/cluster.js';
import { loadOrCreateCert, tlsMaterial, type TlsMaterial } from './tls.js';
import { AuthThrottle } from './stream/sasl/throttle.js';
import type { ComponentStream } from './stream/component.js';
import type { ModuleHost } from './modules/host.js';
import { Accounts } from './accounts.js';
import type { Core } from './core.js';
import { Element } from './xml/index.js';
import type { Jid } from './jid.js';
import { FastTokens } from './stream/sasl/fast.js';
import { S2S } from './s2s/index.js';
import type { AdminApi, FeatureContext, InlineHandlers, PreAuthIqRequest, ReloadReport, ServerStats, XepModule } from './api/module.js';
import { MODULES } from '../xeps/index.js';
import { AdminFlags } from './server/admins.js';
import { Components } from './server/components.js';
import { HttpRoutes } from './server/http.js';
import { Listeners, type Ports } from './server/listeners.js';
import { LoginTimes } from './server/login-times.js';
import { PendingWork, within } from './server/pending.js';
import { createModuleHost, registerCoreIqs, type ModuleWiring } from './server/modules.js';
import { ConfigReload } from './server/reload.js';
import { Statistics } from './server/stats.js';

export { VERSION } from './server/version.js';
export type { Ports } from './server/listeners.js';

export interface ServerOptions {
  config: Config;
  /** config file to re-read on reload */
  configFile?: string;
  log?: Logger;
  modules?: XepModule<never>[];
  /** registry key prefix (tests isolate themselves on a shared Redis) */
  redisPrefix?: string;
  /** where a reload reads the next configuration (default: the config file and the environment) */
  loadNext?: () => Config;
}

/** What an administration command (`uzzap user del`) opens: the data side of a node, no listeners. */
export interface DataOnly {
  readonly accounts: Accounts;
  stop(): Promise<void>;
}

export class Server implements Core, ModuleWiring {
  config: Config;
  readonly nodeId: string;
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly hooks: HookBus;
  readonly iqs = new IqTable();
  readonly sessions = new SessionTable<LocalSession>();
  readonly lifecycle: SessionManager = new SessionManager(this);
  readonly streams = new Set<{ shutdown(): void; tick(now: number): void }>();
  readonly router: Router;
  readonly throttle: AuthThrottle;
  readonly saslSecret = randomBytes(32);
  readonly startedAt = Date.now();
  readonly ports: Ports;
  /** work started for modules and not awaited by them (a stop waits for it) */
  readonly background = new PendingWork();
  storage!: Storage;
  /** federation (src/s2s/): undefined until started */
  s2s: S2S | undefined;
  /** XEP-0484 FAST tokens (their slots are in storage) */
  fast!: FastTokens;
  registry!: Registry;
  /** the other nodes sharing Redis (undefined: one node, no Redis) */
  cluster: Cluster | undefined;
  tls!: TlsMaterial;
  accounts!: Accounts;
  modules!: ModuleHost;
  /** what an admin's shutdown command does; `uzzap start` sets it to its own stop-and-exit */
  onShutdownRequest: (() => void) | undefined;

  private readonly adminFlags = new AdminFlags(this);
  private readonly logins = new LoginTimes(this);
  private readonly componentTable: Components;
  private readonly listeners: Listeners;
  private readonly statistics: Statistics;
  private readonly reloader: ConfigReload;
  private ticker: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: ServerOptions) {
    this.config = opts.config;
    this.log = opts.log ?? createLogger(opts.config.log_level);
    // stable across restarts of the same process (host and c2s port) unless the port is
    // chosen by the system (tests); UZZAP_NODE_NAME names it explicitly
    const c2s = opts.config.c2s.port;
    this.nodeId = opts.config.node_name || (c2s ? `${hostname()}-${c2s}` : `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`);
    this.hooks = new HookBus(this.log);
    this.throttle = new AuthThrottle(this.config.auth);
    this.router = new Router(this.config.domain, this.sessions, this.hooks, this.iqs, this.log, this.metrics);
    this.componentTable = new Components(this, (domain) => this.modules.coreItem(domain));
    this.listeners = new Listeners(this, this.componentTable, () => this.stopping !== undefined);
    this.ports = this.listeners.ports;
    this.statistics = new Statistics(this, {
      startedAt: this.startedAt,
      connections: () => this.listeners.connections,
      components: () => [...this.componentTable.connected.keys()].sort(),
    });
    // opts.loadNext is read at each reload (tests replace it on a running server)
    const loadNext = (): Config => (this.opts.loadNext ? this.opts.loadNext() : loadConfig({ file: this.opts.configFile }).config);
    this.reloader = new ConfigReload(this, loadNext, opts.modules ?? MODULES, this.adminFlags);
  }

  /** Build a server from uzzap.yaml / environment (what `uzzap start` does). */
  static fromEnvironment(file?: string, env: NodeJS.ProcessEnv = process.env): Server {
    const { config, file: used } = loadConfig({ file, env });
    return new Server({ config, configFile: used });
  }

  async start(): Promise<this> {
    await this.openData(false);
    await this.listeners.open(
      new HttpRoutes(this, {
        stopping: () => this.stopping !== undefined,
        track: (socket) => this.listeners.track(socket),
        httpPort: () => this.ports.http,
        status: async () => ({ domain: this.config.domain, modules: this.modules.names(), ...(await this.stats()) }),
        moduleRoute: (path) => this.modules.httpRoute(path),
      }),
    );
    // federation: stanzas for other servers go out; other servers connect in (UZZAP_S2S_PORT)
    this.s2s = new S2S(this);
    // in a cluster one node sends to each remote domain (src/cluster/s2s-owners.ts)
    const cluster = this.cluster;
    if (cluster)
      this.s2s.placement = {
        node: this.nodeId,
        ownerOf: (domain) => cluster.s2s.ownerOf(domain),
        forward: (node, xml, hop) => cluster.sendRemote(node, xml, hop),
        released: (domain) => cluster.s2s.release(domain),
      };
    this.router.remote = (stanza, from, to) => this.s2s!.send(stanza, from, to);
    await this.s2s.listen(this.config.bind_address || undefined);
    this.ports.s2s = this.s2s.port;
    this.ports.s2sTls = this.s2s.tlsPort;
    this.statistics.enable();
    // one timer for every stream's liveness checks and ack requests (4 passes a second),
    // and the server's own sampling (rates, storage and Redis latency, login times)
    let ticks = 0;
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const s of this.streams) s.tick(now);
      if (++ticks % 4 !== 0) return;
      const second = ticks / 4;
      this.statistics.sample(now, second);
      if (second % 5 === 0) void this.logins.flush();
    }, 250);
    this.ticker.unref();
    return this;
  }

  /**
   * The data side of a node with its modules but no listeners, no registry of its own
   * (in memory) and no certificate: for administration commands, so that deleting an
   * account from the CLI runs the same module hooks (archive, rooms, rosters, push) as
   * the admin command or in-band cancel. `stop()` closes it.
   */
  async openForAdministration(): Promise<DataOnly> {
    await this.openData(true);
    return this;
  }

  private async openData(administration: boolean): Promise<void> {
    const c = this.config;
    if (!administration && !c.c2s.require_tls) {
      this.log.warn(
        'UZZAP_C2S_REQUIRE_TLS=false: SASL (PLAIN included) is offered on unencrypted streams; use this only on loopback for tests and benchmarks',
      );
    }
    this.storage = await openStorage({
      postgresUrl: c.postgres_url || undefined,
      dataDir: c.data_dir,
      sqliteBusyTimeout: c.storage.sqlite_busy_timeout,
      postgresPool: c.storage.postgres_pool,
      sqliteArchiveCacheMb: c.storage.sqlite_archive_cache_mb,
      sqliteCheckpointMb: c.storage.sqlite_checkpoint_mb,
      archiveUrls: c.postgres_archive_urls,
      onError: (err, what) => this.log.error({ err }, `storage: ${what} failed`),
      archive: {
        batch_rows: c.storage.archive_batch_rows,
        batch_ms: c.storage.archive_batch_ms,
        queue_rows: c.storage.archive_queue_rows,
        source_rows: c.storage.archive_source_rows,
        fold_ms: c.storage.sqlite_archive_fold_ms,
      },
      onArchiveBatch: (seconds, rows) => {
        this.metrics.archiveBatch.observe(seconds);
        this.metrics.archiveBatchSize.observe(rows);
      },
      // the alert: senders are being slowed because the database does not keep up
      onArchivePressure: (on, queued) => {
        if (on) {
          this.metrics.archiveBackpressure.inc();
          this.log.warn({ queued }, 'archive: the database is behind; senders wait until the queue drains (storage.archive_queue_rows)');
        } else this.log.info({ queued }, 'archive: caught up; senders go on');
      },
    });
    this.fast = new FastTokens(this.storage, () => this.config.sasl, c.data_dir);
    const archive = this.storage.archive;
    this.metrics.archiveQueued = () => archive.queued;
    await this.adminFlags.load();
    this.log.info({ storage: this.storage.kind, where: c.postgres_url ? redactUrl(c.postgres_url) : c.data_dir }, 'storage ready');
    // drivers are loaded only when configured (ioredis alone adds ~25 MB to the process)
    let redis: import('./registry/redis.js').RedisRegistry | undefined;
    if (c.redis_url && !administration)
      this.registry = redis = await (
        await import('./registry/redis.js')
      ).RedisRegistry.connect(c.redis_url, this.opts.redisPrefix ?? `uzzap:${c.domain}:`, c.cluster.inbox_max);
    else this.registry = new MemoryRegistry();
    this.log.info({ registry: this.registry.kind }, 'registry ready');
    // with Redis this node is one of a cluster (of one, until others join): created
    // before the modules (they register cache invalidations), started after them
    if (redis) {
      const { Cluster } = await import('./cluster/cluster.js');
      this.cluster = new Cluster(this.nodeId, redis, this.clusterHost(), c.cluster);
    }
    this.accounts = new Accounts(this.storage, () => this.config.sasl.scram_iterations, {
      created: (u) => {
        const h = this.hooks.run('user/created', u);
        if (h instanceof Promise) this.background.add(h);
      },
      deleting: async (u) => {
        // modules tell contacts first (while the roster exists), then the sessions go
        await this.hooks.run('user/deleting', u);
        for (const s of [...this.sessions.resources(`${u}@${c.domain}`)]) s.close('not-authorized', 'account deleted');
      },
      deleted: async (u) => {
        // a new account with the same name must not inherit admin rights
        this.adminFlags.forget(`${u}@${c.domain}`);
        await this.hooks.run('user/deleted', u);
      },
    });
    if (!administration) this.tls = tlsMaterial(await loadOrCreateCert(c.domain, c.tls, this.log));
    this.modules = createModuleHost(this);
    this.hooks.add(
      'session/bound',
      (s) => {
        if (s.jid.domain === c.domain) this.logins.record(s.jid.local);
      },
      0,
      'core',
    );
    registerCoreIqs(this.iqs);
    await this.modules.loadAll(this.opts.modules ?? MODULES, c.modules as Record<string, unknown>, c.modules.disabled);
    this.componentTable.expectConfigured();
    try {
      await this.cluster?.start();
    } catch (e) {
      // refused to join (or Redis failed): nothing stays open behind the error
      await this.modules.unloadAll().catch(() => undefined);
      await this.registry.close().catch(() => undefined);
      await this.storage.close().catch(() => undefined);
      throw e;
    }
  }

  private clusterHost(): import('./cluster/cluster.js').ClusterHost {
    return {
      log: this.log,
      sessions: this.sessions,
      router: this.router,
      storageKind: this.storage.kind,
      remoteComponent: (domain, node) => this.componentTable.remote(domain, node),
      useArchiveLane: (lane, lanes) => this.storage.archive.useLane(lane, lanes),
      resumeWindow: () => this.config.sm.resume_timeout,
      localEntries: () => [...this.sessions.local()].map((s) => this.lifecycle.entry(s as Session)),
      localComponents: () => [...this.componentTable.connected.keys()],
      sessionLeft: (session) => {
        const h = this.hooks.run('session/left', session);
        if (h instanceof Promise) this.background.add(h.then(() => undefined));
      },
      sessionsLost: (sessions) => {
        const h = this.hooks.run('session/lost', sessions);
        if (h instanceof Promise) this.background.add(h.then(() => undefined));
      },
      announceUnavailable: (sessions) => {
        for (const s of sessions) {
          const p = this.router.fromClient(new Element('presence', { type: 'unavailable', from: s.jid.full }), s.jid as Jid, s);
          if (p) this.background.add(p.catch((err: unknown) => this.log.error({ err }, 'announcing a lost session failed')));
        }
      },
      answer: (kind, payload) => {
        if (kind === 'adopt') return this.lifecycle.receive(payload as MovedSession[]);
        if (kind !== 'takeover') return null;
        const p = payload as { previd: string; username: string; node: string };
        return this.lifecycle.handOver(String(p.previd), String(p.username), String(p.node));
      },
      s2sSend: (xml, hop) => {
        if (this.s2s) this.s2s.fromCluster(xml, hop);
        else this.log.warn('s2s: a stanza for another server came from the cluster before federation started; dropped');
      },
      figures: () => ({
        sessions: this.sessions.size,
        connections: this.listeners.connections,
        ...this.statistics.quick(),
      }),
    };
  }

  // ---- Core: what streams ask of the server ----

  streamFeatures(phase: 'pre-auth' | 'post-auth', s: FeatureContext): string {
    return this.modules.streamFeatures(phase, s);
  }

  /** a domain this server answers for: its own, or one of its services' (rooms, upload, components) */
  serves(domain: string): boolean {
    return this.router.isLocal(domain);
  }

  inline(ns: string): InlineHandlers | undefined {
    return this.modules.inlines.get(ns);
  }

  /** namespaces of modules' SASL2 inline features and Bind 2 inline features */
  inlineFeatures(): { sasl: string[]; bind: string[] } {
    const sasl: string[] = [];
    const bind: string[] = [];
    for (const [ns, h] of this.modules.inlines) {
      if (h.saslFeature) sasl.push(h.saslFeature);
      if (h.bind) bind.push(ns);
    }
    return { sasl, bind: bind.sort() };
  }

  preAuthIq(ns: string): ((req: PreAuthIqRequest) => Element | void | Promise<Element | void>) | undefined {
    return this.modules.preAuthIqs.get(ns);
  }

  /** connected external components by domain */
  get components(): ReadonlyMap<string, ComponentStream> {
    return this.componentTable.connected;
  }

  // ---- administration (ad-hoc commands through ctx.admin, /status, SIGHUP) ----

  readonly admin: Omit<AdminApi, 'statistic'> = {
    stats: () => this.stats(),
    reload: () => this.reload(),
    liveSettings: () => this.liveSettings(),
    setLive: (path: string, raw: string) => this.setLive(path, raw),
    admins: () => this.admins(),
    setAdmin: (bare: string, admin: boolean) => this.setAdmin(bare, admin),
    lastLogin: (username: string) => this.lastLogin(username),
    shutdown: () => (this.onShutdownRequest ? this.onShutdownRequest() : void this.stop()),
  };

  stats(): Promise<ServerStats> {
    return this.statistics.stats();
  }
  addStatistic(name: string, read: () => number): () => void {
    return this.statistics.add(name, read);
  }
  isAdmin(bare: string): boolean {
    return this.adminFlags.isAdmin(bare);
  }
  admins(): string[] {
    return this.adminFlags.list();
  }
  setAdmin(bare: string, admin: boolean): Promise<boolean> {
    return this.adminFlags.set(bare, admin);
  }
  /** When a user last logged in (a login not yet written counts). */
  lastLogin(username: string): Promise<number | undefined> {
    return this.logins.lastLogin(username);
  }
  liveSettings(): { path: string; value: unknown }[] {
    return this.reloader.liveSettings();
  }
  /** Change one live setting (until the next reload or restart). */
  setLive(path: string, raw: string): Promise<ReloadReport> {
    return this.reloader.setLive(path, raw);
  }
  /** Re-read configuration; apply what can change live (modules included), report what needs a restart. */
  reload(): Promise<ReloadReport> {
    return this.reloader.reload();
  }

  // ---- stop ----

  /**
   * Graceful stop, one ordered path: <system-shutdown/> to every stream, then
   * everything sessions and modules still have to write, then storage closes last.
   */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  /**
   * Graceful drain in a cluster (issue 16, guarantee 6): resumable sessions move to the
   * other live nodes (their clients get <system-shutdown/> and resume there), then the
   * rooms this node serves, with their occupants. Nothing to do without another node.
   */
  private async drain(): Promise<void> {
    const cluster = this.cluster!;
    // read afresh: a node that joined since the last heartbeat counts too
    const targets = (await cluster.nodes().catch(() => [])).map((n) => n.name).filter((n) => n !== this.nodeId);
    if (!targets.length) return;
    await this.lifecycle.drain(targets).catch((err: unknown) => this.log.warn({ err }, 'drain: handing sessions over failed'));
    // the rooms' last messages are in their archives before the next node reads their history there
    await this.storage?.archive.flush().catch((err: unknown) => this.log.warn({ err }, 'drain: flushing the archive failed'));
    await cluster.rooms.handOver(targets).catch((err: unknown) => this.log.warn({ err }, 'drain: handing rooms over failed'));
  }

  private async doStop(): Promise<void> {
    this.log.info('shutting down');
    // 1. stop accepting: no new connections, BOSH sessions or WebSockets; no more ticks
    this.listeners.close();
    clearInterval(this.ticker);
    // 2. in a cluster: resumable sessions and rooms move to the other nodes (drain);
    //    then modules' last words while every stream is still open (rooms that did not
    //    move tell their occupants)
    if (this.cluster) await this.drain();
    await this.hooks.run('server/stopping');
    // 3. close every stream: its session ends (registry, unavailable, 'session/closed',
    //    unacknowledged messages to offline storage); detached sessions end too
    for (const s of [...this.streams]) s.shutdown();
    // 4. wait for what ended sessions and modules started (last activity, offline
    //    messages, stanzas routed for modules), bounded: a stuck database must not hang the stop
    await within(
      Promise.all([this.lifecycle.endAll(), this.background.settled()]).then(() => undefined),
      STOP_WORK_MS,
      () => this.log.warn({ afterMs: STOP_WORK_MS }, 'stopping without waiting longer for session and module work'),
    );
    this.statistics.disable();
    // 5. give sockets a moment to flush the shutdown error, then cut the rest
    await this.listeners.drain(3000);
    // the cluster stops reading; what reached this node's inbox since is routed again
    // while the modules (offline storage) and federation (stanzas other nodes handed to
    // this node's streams) can still take it
    if (this.cluster) await this.cluster.quiesce().catch((err: unknown) => this.log.warn({ err }, 'cluster: quiescing failed'));
    // federation after the sessions' last words (unavailable presence to remote contacts,
    // rooms' goodbyes) and after the cluster's last reading: what still waits for a
    // stream is bounced; none is made now. (What other nodes post here after the last
    // reading, they take back and send themselves when this node leaves.)
    this.s2s?.stop();
    // 6. unload modules: each flushes what it writes behind (room changes, archive batches)
    this.router?.requests.close();
    if (this.modules) await this.modules.unloadAll();
    // 7. the last login times, then the registry, then storage (which flushes the archive queue)
    if (this.storage) await this.logins.flush();
    if (this.cluster) await this.cluster.stop().catch((err: unknown) => this.log.warn({ err }, 'cluster: leaving failed'));
    if (this.registry) await this.registry.clearNode(this.nodeId).catch(() => 0);
    if (this.registry) await this.registry.close();
    if (this.storage) await this.storage.close();
    this.log.info('stopped');
  }
}

/** How long a stop waits for sessions' and modules' pending work (`uzzap start` exits by force after 20 s). */
const STOP_WORK_MS = 10_000;

function redactUrl(u: string): string {
  return u.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
