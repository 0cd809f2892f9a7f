// One Uzzap node: storage, registry, router, modules and listeners built from
// a Config. No module-level state: several servers can run in one process.
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { ConfigSchema, LIVE_KEYS } from './config/schema.js';
import { configLeaves, fromEnv, loadConfig } from './config/load.js';
import { ComponentStream } from './stream/component.js';
import { createLogger } from './log.js';
import { LoopLag, Metrics } from './metrics.js';
import { Router } from './router/router.js';
import { HookBus } from './router/hooks.js';
import { IqTable } from './router/iq-table.js';
import { SessionTable } from './session/table.js';
import { SessionManager } from './session/manager.js';
import type { LocalSession } from './session/types.js';
import { openStorage, type Storage } from './storage/index.js';
import type { Registry } from './registry/types.js';
import { MemoryRegistry } from './registry/memory.js';
import { loadOrCreateCert, tlsMaterial, type TlsMaterial } from './tls.js';
import { AuthThrottle } from './stream/sasl/throttle.js';
import { C2SStream } from './stream/c2s.js';
import { TcpTransport } from './transport/tcp.js';
import { WebSocketTransport } from './transport/websocket.js';
import { BoshSession, NS_HTTPBIND, parseBody, readBody, terminate as boshTerminate } from './transport/bosh.js';
import { WebSocketServer } from 'ws';
import { ModuleHost } from './modules/host.js';
import { Accounts } from './accounts.js';
import type { Core } from './core.js';
import type { Element } from './xml/index.js';
import { Jid } from './jid.js';
import type { PreAuthIqRequest, ReloadReport, ServerStats, ServiceHandler, SessionApi, XepModule } from './api/module.js';
import { StanzaError } from './api/errors.js';
import { NS_SESSION } from './stream/ns.js';
import { MODULES } from '../xeps/index.js';

/** package.json's version; found from src/ (tsx) and from dist/src/ (built). */
export const VERSION: string = (() => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'uzzap') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
})();

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

export interface Ports {
  c2s: number;
  c2sTls: number;
  http: number;
  /** 0 when HTTPS is off */
  https: number;
  /** 0 when no component secret is configured */
  component: number;
}

export class Server implements Core {
  config: Config;
  readonly nodeId: string;
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly hooks: HookBus;
  readonly iqs = new IqTable();
  readonly sessions = new SessionTable<LocalSession>();
  readonly lifecycle: SessionManager = new SessionManager(this);
  readonly streams = new Set<{ shutdown(): void; tick(now: number): void }>();
  private ticker: NodeJS.Timeout | undefined;
  readonly router: Router;
  readonly throttle: AuthThrottle;
  readonly saslSecret = randomBytes(32);
  readonly startedAt = Date.now();
  readonly ports: Ports = { c2s: 0, c2sTls: 0, http: 0, https: 0, component: 0 };
  /** connected external components by domain */
  readonly components = new Map<string, ComponentStream>();
  /** accounts flagged as admin (bare JIDs), besides config.admins */
  private readonly flaggedAdmins = new Set<string>();
  /** login times not yet written (one batched write every few seconds, not one per login) */
  private readonly pendingLogins = new Map<string, number>();
  private readonly statistics = new Map<string, () => number>();
  /** event-loop lag for `stats()` (/status, server-stats) and for /metrics scrapes, each reset by its reader */
  private readonly statusLag = new LoopLag();
  private readonly scrapeLag = new LoopLag();
  /** (time, stanzas in, stanzas out) once a second, the last 11 */
  private readonly rateSamples: [number, number, number][] = [];
  private lastPings = { storage: null as number | null, registry: null as number | null };
  storage!: Storage;
  registry!: Registry;
  tls!: TlsMaterial;
  accounts!: Accounts;
  modules!: ModuleHost;
  private listeners: (net.Server | http.Server | https.Server)[] = [];
  private sockets = new Set<net.Socket>();
  private stopping: Promise<void> | undefined;
  /** what an admin's shutdown command does; `uzzap start` sets it to its own stop-and-exit */
  onShutdownRequest: (() => void) | undefined;

  constructor(private readonly opts: ServerOptions) {
    this.config = opts.config;
    this.log = opts.log ?? createLogger(opts.config.log_level);
    this.nodeId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.hooks = new HookBus(this.log);
    this.throttle = new AuthThrottle(this.config.auth);
    this.router = new Router(this.config.domain, this.sessions, this.hooks, this.iqs, this.log, this.metrics);
  }

  /** Build a server from uzzap.yaml / environment (what `uzzap start` does). */
  static fromEnvironment(file?: string, env: NodeJS.ProcessEnv = process.env): Server {
    const { config, file: used } = loadConfig({ file, env });
    return new Server({ config, configFile: used });
  }

  async start(): Promise<this> {
    const c = this.config;
    if (!c.c2s.require_tls) {
      this.log.warn(
        'UZZAP_C2S_REQUIRE_TLS=false: SASL (PLAIN included) is offered on unencrypted streams; use this only on loopback for tests and benchmarks',
      );
    }
    this.storage = await openStorage({
      postgresUrl: c.postgres_url || undefined,
      dataDir: c.data_dir,
      sqliteBusyTimeout: c.storage.sqlite_busy_timeout,
      postgresPool: c.storage.postgres_pool,
      archiveUrls: c.postgres_archive_urls,
      onError: (err, what) => this.log.error({ err }, `storage: ${what} failed`),
      onArchiveBatch: (seconds, rows) => {
        this.metrics.archiveBatch.observe(seconds);
        this.metrics.archiveBatchSize.observe(rows);
      },
    });
    for (const u of await this.storage.accounts.admins()) this.flaggedAdmins.add(`${u}@${c.domain}`);
    this.log.info({ storage: this.storage.kind, where: c.postgres_url ? redactUrl(c.postgres_url) : c.data_dir }, 'storage ready');
    // drivers are loaded only when configured (ioredis alone adds ~25 MB to the process)
    this.registry = c.redis_url
      ? await (await import('./registry/redis.js')).RedisRegistry.connect(c.redis_url, this.opts.redisPrefix ?? `uzzap:${c.domain}:`)
      : new MemoryRegistry();
    this.log.info({ registry: this.registry.kind }, 'registry ready');
    this.accounts = new Accounts(this.storage, () => this.config.sasl.scram_iterations, {
      created: (u) => void this.hooks.run('user/created', u),
      deleting: async (u) => {
        // modules tell contacts first (while the roster exists), then the sessions go
        await this.hooks.run('user/deleting', u);
        for (const s of [...this.sessions.resources(`${u}@${c.domain}`)]) s.close('not-authorized', 'account deleted');
      },
      deleted: async (u) => {
        // a new account with the same name must not inherit admin rights
        this.flaggedAdmins.delete(`${u}@${c.domain}`);
        await this.hooks.run('user/deleted', u);
      },
    });
    this.tls = tlsMaterial(await loadOrCreateCert(c.domain, c.tls, this.log));
    this.modules = new ModuleHost({
      host: c.domain,
      log: this.log,
      storage: this.storage,
      hooks: this.hooks,
      iqs: this.iqs,
      server: {
        name: 'Uzzap',
        version: VERSION,
        startedAt: this.startedAt,
        isAdmin: (j: Jid) => this.isAdmin(j.bare),
        registrationOpen: () => this.config.registration === 'open',
      },
      accounts: this.accounts,
      send: (stanza: Element) => {
        const r = this.router.send(stanza);
        if (r) r.catch((err: unknown) => this.log.error({ err }, 'module stanza routing failed'));
      },
      sessionsOf: (bare: string) => [...this.sessions.resources(bare)],
      deliver: (stanza: Element, targets: SessionApi[]) => this.router.deliver(stanza, targets as LocalSession[]),
      fanout: (stanza: Element, targets: readonly Jid[]) => this.router.fanout(stanza, targets),
      hasSession: (j: Jid) => this.sessions.get(j.bare, j.resource) !== undefined,
      services: this.router.services,
      admin: {
        stats: () => this.stats(),
        reload: () => this.reload(),
        liveSettings: () => this.liveSettings(),
        setLive: (path: string, raw: string) => this.setLive(path, raw),
        sessions: () => [...this.sessions.all()],
        admins: () => this.admins(),
        setAdmin: (bare: string, admin: boolean) => this.setAdmin(bare, admin),
        lastLogin: (username: string) => this.lastLogin(username),
        shutdown: () => (this.onShutdownRequest ? this.onShutdownRequest() : void this.stop()),
      },
      addStatistic: (name: string, read: () => number) => {
        this.statistics.set(name, read);
        return () => void this.statistics.delete(name);
      },
      metrics: this.metrics.registry,
    });
    this.hooks.add(
      'session/bound',
      (s) => {
        if (s.jid.domain === c.domain) this.pendingLogins.set(s.jid.local, Date.now());
      },
      0,
      'core',
    );
    // RFC 3921 session establishment: advertised as optional, answered with an empty result.
    this.iqs.add('set', NS_SESSION, 'session', 'bare', () => undefined, 'core');
    this.iqs.add('set', NS_SESSION, 'session', 'host', () => undefined, 'core');
    await this.modules.loadAll(this.opts.modules ?? MODULES, c.modules as Record<string, unknown>, c.modules.disabled);
    // configured component domains answer "not connected" until their component comes
    for (const d of [...c.component.allowed, ...Object.keys(c.component.secrets)]) this.componentDown(d);
    await this.listen();
    this.statusLag.enable();
    this.scrapeLag.enable();
    this.metrics.lagSource = () => this.scrapeLag.take();
    // one timer for every stream's liveness checks and ack requests (4 passes a second),
    // and the server's own sampling (rates, storage and Redis latency, login times)
    let ticks = 0;
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const s of this.streams) s.tick(now);
      if (++ticks % 4 === 0) this.sample(now, ticks / 4);
    }, 250);
    this.ticker.unref();
    return this;
  }

  private async listen(): Promise<void> {
    const c = this.config;
    const host = c.bind_address || undefined;
    const c2s = net.createServer((socket) => this.accept(socket));
    this.ports.c2s = await listenOn(c2s, c.c2s.port, host);
    // XEP-0368 direct TLS, ALPN "xmpp-client"
    const direct = tls.createServer({ ...this.tls.options, ALPNProtocols: ['xmpp-client'] }, (socket) => this.accept(socket));
    direct.on('tlsClientError', () => undefined);
    this.ports.c2sTls = await listenOn(direct, c.c2s.tls_port, host);
    const web = http.createServer((req, res) => void this.http(req, res));
    // RFC 7395 at /xmpp-websocket, subprotocol "xmpp"
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: c.max_stanza_size + 1024,
      handleProtocols: (p) => (p.has('xmpp') ? 'xmpp' : false),
    });
    const upgrade = (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer): void => {
      const path = (req.url ?? '').split('?')[0];
      const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim());
      if (path !== '/xmpp-websocket' || !protocols.includes('xmpp') || this.stopping) {
        socket.end(`HTTP/1.1 ${path !== '/xmpp-websocket' ? '404 Not Found' : '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.add(req.socket);
        req.socket.once('close', () => this.sockets.delete(req.socket));
        new C2SStream(this, new WebSocketTransport(ws, req, () => this.config.limits.outbound_buffer, this.config.http.behind_tls_proxy));
      });
    };
    web.on('upgrade', upgrade);
    this.ports.http = await listenOn(web, c.http.port, host);
    if (c.http.tls) {
      const secureWeb = https.createServer(this.tls.options, (req, res) => void this.http(req, res));
      secureWeb.on('upgrade', upgrade);
      secureWeb.on('tlsClientError', () => undefined);
      this.ports.https = await listenOn(secureWeb, c.http.tls_port, host);
      this.listeners.push(secureWeb);
    }
    if (c.component.secret || Object.keys(c.component.secrets).length) {
      // XEP-0114: plain TCP (components run beside the server, like Prosody's and ejabberd's)
      const comp = net.createServer((socket) => {
        if (this.stopping) return void socket.destroy();
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        new ComponentStream(this, new TcpTransport(socket, () => this.config.component.outbound_buffer));
      });
      this.ports.component = await listenOn(comp, c.component.port, host);
      this.listeners.push(comp);
    }
    this.listeners.push(c2s, direct, web);
    this.log.info(
      {
        domain: c.domain,
        c2s: this.ports.c2s,
        c2s_tls: this.ports.c2sTls,
        http: this.ports.http,
        https: this.ports.https || undefined,
        component: this.ports.component || undefined,
      },
      'Uzzap listening',
    );
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) return void socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    new C2SStream(this, new TcpTransport(socket, () => this.config.limits.outbound_buffer));
  }

  streamFeatures(phase: 'pre-auth' | 'post-auth', s: { secure: boolean }): string {
    return this.modules.streamFeatures(phase, s);
  }

  preAuthIq(ns: string): ((req: PreAuthIqRequest) => Element | void | Promise<Element | void>) | undefined {
    return this.modules.preAuthIqs.get(ns);
  }

  private readonly bosh = new Map<string, BoshSession>();

  /** POST /http-bind: BOSH session creation and requests (XEP-0124, XEP-0206). */
  private async httpBind(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method === 'OPTIONS') {
      res.writeHead(200, {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '86400',
      });
      return void res.end();
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST, OPTIONS' });
      return void res.end();
    }
    const c = this.config;
    const text = await readBody(req, c.max_stanza_size + 65536);
    if (text === undefined) return boshTerminate(res, 'policy-violation');
    const body = parseBody(text, c.max_stanza_size + 65536);
    if (typeof body === 'string' || body.name !== 'body' || body.attrs.xmlns !== NS_HTTPBIND) return boshTerminate(res, 'bad-request');
    const sid = body.attrs.sid;
    if (sid !== undefined) {
      const s = this.bosh.get(sid);
      if (!s) return boshTerminate(res, 'item-not-found');
      return s.request(body, res);
    }
    // session creation
    if (this.stopping) return boshTerminate(res, 'system-shutdown');
    if (!/^\d+$/.test(body.attrs.rid ?? '')) return boshTerminate(res, 'bad-request');
    const to = body.attrs.to?.toLowerCase();
    if (to !== undefined && to !== c.domain) return boshTerminate(res, 'host-unknown');
    if (this.bosh.size >= c.bosh.max_sessions) return boshTerminate(res, 'remote-connection-failed');
    // one address cannot take the whole table (sessions count until they end or time out)
    const addr = req.socket.remoteAddress ?? '';
    let fromAddr = 0;
    for (const b of this.bosh.values()) if (b.remoteAddress === addr) fromAddr++;
    if (fromAddr >= c.bosh.max_per_address) return boshTerminate(res, 'policy-violation');
    const secure = (req.socket as tls.TLSSocket).encrypted === true || c.http.behind_tls_proxy;
    const s = new BoshSession(
      req.socket.remoteAddress ?? '',
      secure,
      body,
      () => this.config.bosh,
      () => this.config.limits.outbound_buffer,
      c.domain,
      (gone) => this.bosh.delete(gone.sid),
    );
    this.bosh.set(s.sid, s);
    new C2SStream(this, s);
    s.open();
    s.created(res);
  }

  private async http(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/http-bind') return this.httpBind(req, res);
    if (req.method === 'GET' && (path === '/.well-known/host-meta' || path === '/.well-known/host-meta.json')) {
      // XEP-0156: where web clients connect; the address is the one the client used to reach us
      const secure = (req.socket as tls.TLSSocket).encrypted === true || this.config.http.behind_tls_proxy;
      const hostHeader = /^[A-Za-z0-9.:[\]-]+$/.test(req.headers.host ?? '')
        ? req.headers.host!
        : `${this.config.domain}:${this.ports.http}`;
      const links = [
        { rel: 'urn:xmpp:alt-connections:websocket', href: `${secure ? 'wss' : 'ws'}://${hostHeader}/xmpp-websocket` },
        { rel: 'urn:xmpp:alt-connections:xbosh', href: `${secure ? 'https' : 'http'}://${hostHeader}/http-bind` },
      ];
      const json = path.endsWith('.json');
      res.writeHead(200, {
        'content-type': json ? 'application/json' : 'application/xrd+xml; charset=utf-8',
        'access-control-allow-origin': '*',
      });
      res.end(
        json
          ? JSON.stringify({ links })
          : `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n${links.map((l) => `  <Link rel='${l.rel}' href='${l.href}'/>`).join('\n')}\n</XRD>\n`,
      );
      return;
    }
    if (req.method === 'GET' && path === '/status') {
      // `uzzap status`: a bearer token when one is configured, else loopback clients only
      const token = this.config.http.status_token;
      const addr = req.socket.remoteAddress ?? '';
      const loopback = addr === '127.0.0.1' || addr === '::1' || addr.startsWith('::ffff:127.');
      const ok = token ? req.headers.authorization === `Bearer ${token}` : loopback;
      if (!ok) {
        res.writeHead(token ? 401 : 403, { 'content-type': 'text/plain', ...(token ? { 'www-authenticate': 'Bearer' } : {}) });
        res.end(token ? 'a bearer token is required\n' : 'set http.status_token to allow /status from other addresses\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ domain: this.config.domain, modules: this.modules.names(), ...(await this.stats()) }));
      return;
    }
    if (req.method === 'GET' && req.url === '/metrics') {
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  // ---- administration (ad-hoc commands, /status, SIGHUP) ----

  isAdmin(bare: string): boolean {
    return this.config.admins.includes(bare) || this.flaggedAdmins.has(bare);
  }

  admins(): string[] {
    return [...new Set([...this.config.admins, ...this.flaggedAdmins])].sort();
  }

  async setAdmin(bare: string, admin: boolean): Promise<boolean> {
    const j = Jid.parse(bare);
    if (j.domain !== this.config.domain || !j.local) return false;
    if (!(await this.storage.accounts.setAdmin(j.local, admin))) return false;
    if (admin) this.flaggedAdmins.add(j.bare);
    else this.flaggedAdmins.delete(j.bare);
    return true;
  }

  /** When a user last logged in (a login not yet written counts). */
  async lastLogin(username: string): Promise<number | undefined> {
    return this.pendingLogins.get(username) ?? (await this.storage.accounts.get(username))?.lastLogin;
  }

  private async flushLogins(): Promise<void> {
    if (!this.pendingLogins.size) return;
    const batch = [...this.pendingLogins].map(([username, at]) => ({ username, at }));
    this.pendingLogins.clear();
    await this.storage.accounts.recordLogins(batch).catch((err: unknown) => this.log.error({ err }, 'recording login times failed'));
  }

  /** Once a second: rates; every 5 s login times; every 10 s storage and Redis round-trips. */
  private sample(now: number, second: number): void {
    this.rateSamples.push([now, this.metrics.totalIn, this.metrics.totalOut]);
    if (this.rateSamples.length > 11) this.rateSamples.shift();
    if (second % 5 === 0) void this.flushLogins();
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
    const [storage, registry] = await Promise.all([ms(() => this.storage.ping()), ms(() => this.registry.ping())]);
    this.lastPings = { storage, registry };
    if (storage !== null) this.metrics.storageLatency.observe(storage / 1000);
    if (registry !== null) this.metrics.registryLatency.observe(registry / 1000);
  }

  async stats(): Promise<ServerStats> {
    await this.pingBackends();
    const first = this.rateSamples[0];
    const last = this.rateSamples[this.rateSamples.length - 1];
    const secs = first && last && last[0] > first[0] ? (last[0] - first[0]) / 1000 : 0;
    const lag = this.statusLag.take();
    let detached = 0;
    for (const s of this.sessions.all()) if (s.detached) detached++;
    const extra: Record<string, number> = {};
    for (const [name, read] of this.statistics) extra[name] = read();
    const mem = process.memoryUsage();
    return {
      node: this.nodeId,
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      sessions: this.sessions.size,
      detachedSessions: detached,
      connections: this.sockets.size,
      components: [...this.components.keys()].sort(),
      stanzasInPerSecond: secs ? Math.round(((last![1] - first![1]) / secs) * 10) / 10 : 0,
      stanzasOutPerSecond: secs ? Math.round(((last![2] - first![2]) / secs) * 10) / 10 : 0,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      eventLoopLagMs: { mean: round2(lag.mean), p99: round2(lag.p99) },
      storage: { kind: this.storage.kind, latencyMs: this.lastPings.storage === null ? null : round2(this.lastPings.storage) },
      registry: { kind: this.registry.kind, latencyMs: this.lastPings.registry === null ? null : round2(this.lastPings.registry) },
      extra,
    };
  }

  // ---- components (XEP-0114) ----

  componentSecret(domain: string): string | undefined {
    const c = this.config.component;
    // never the server's own domain or a parent of it: a component there could speak for local users
    if (domain === this.config.domain || this.config.domain.endsWith('.' + domain)) return undefined;
    if (c.allowed.length ? !c.allowed.includes(domain) : !domain.endsWith('.' + this.config.domain)) {
      // outside the allowed list (or not a subdomain), only an explicit secret lets it in
      return c.secrets[domain];
    }
    const secret = c.secrets[domain] ?? c.secret;
    return secret === '' ? undefined : secret;
  }

  /** domains whose service entry is a component's (connected or waiting for it) */
  private readonly componentDomains = new Set<string>();
  private readonly componentItems = new Map<string, () => void>();

  componentUp(domain: string, stream: ComponentStream): boolean {
    const services = this.router.services;
    if (this.components.has(domain) || (services.has(domain) && !this.componentDomains.has(domain)) || domain === this.config.domain)
      return false;
    this.components.set(domain, stream);
    this.componentDomains.add(domain);
    const handler: ServiceHandler = (stanza, from, to) => stream.deliver(stanza, from, to);
    services.set(domain, handler);
    this.componentItems.set(domain, this.modules.coreItem(domain));
    return true;
  }

  componentOwns(stream: ComponentStream, domain: string): boolean {
    // walk up from the domain: the first served domain met must be this component's
    for (let d = domain; ; d = d.slice(d.indexOf('.') + 1)) {
      if (this.components.get(d) === stream) return true;
      if (d === this.config.domain || this.router.services.has(d) || !d.includes('.')) return false;
    }
  }

  /** The component went away (or was never here): its domain answers service-unavailable. */
  componentDown(domain: string, stream?: ComponentStream): void {
    if (stream && this.components.get(domain) !== stream) return;
    if (!stream && this.router.services.has(domain)) return;
    this.components.delete(domain);
    this.componentItems.get(domain)?.();
    this.componentItems.delete(domain);
    this.componentDomains.add(domain);
    this.router.services.set(domain, (stanza) => {
      // presence to a contact whose bridge is down is dropped, as for an unreachable server; the rest is answered
      if (stanza.name === 'presence') return;
      this.router.bounce(stanza, new StanzaError('service-unavailable', `the component ${domain} is not connected`));
    });
  }

  // ---- live configuration ----

  private isLive(path: string): boolean {
    return LIVE_KEYS.some((k) => path === k || path.startsWith(k + '.'));
  }

  liveSettings(): { path: string; value: unknown }[] {
    const out: { path: string; value: unknown }[] = [];
    for (const leaf of configLeaves()) {
      const path = leaf.path.join('.');
      if (!this.isLive(path)) continue;
      out.push({ path, value: leaf.path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], this.config) });
    }
    return out;
  }

  /** Change one live setting (until the next reload or restart). */
  async setLive(path: string, raw: string): Promise<ReloadReport> {
    const leaf = configLeaves().find((l) => l.path.join('.') === path);
    if (!leaf || !this.isLive(path)) throw new Error(`${path} is not a setting that can change while running`);
    const problems: string[] = [];
    const value = fromEnv(raw, leaf.def, path, problems);
    if (problems.length) throw new Error(problems.join('; '));
    const next = structuredClone(this.config) as unknown as Record<string, unknown>;
    let o = next;
    for (const k of leaf.path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    o[leaf.path[leaf.path.length - 1]!] = value;
    const r = ConfigSchema.safeParse(next);
    if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    return this.apply(r.data as Config);
  }

  /** Re-read configuration; apply what can change live (modules included), report what needs a restart. */
  async reload(): Promise<ReloadReport> {
    let next: Config;
    try {
      next = this.opts.loadNext ? this.opts.loadNext() : loadConfig({ file: this.opts.configFile }).config;
    } catch (e) {
      this.metrics.reloads.inc({ outcome: 'invalid' });
      throw e;
    }
    return this.apply(next);
  }

  private async apply(next: Config): Promise<ReloadReport> {
    const report: ReloadReport = { applied: [], needsRestart: [], modulesLoaded: [], modulesUnloaded: [], modulesReloaded: [], errors: [] };
    const cur = this.config as unknown as Record<string, unknown>;
    const nxt = next as unknown as Record<string, unknown>;
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    // leaf by leaf: a section may be partly live (component.secret is, component.port is not)
    for (const leaf of configLeaves()) {
      const path = leaf.path.join('.');
      if (leaf.path[0] === 'modules') continue;
      const get = (o: Record<string, unknown>): unknown => leaf.path.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o);
      if (same(get(cur), get(nxt))) continue;
      if (this.isLive(path)) report.applied.push(path);
      else report.needsRestart.push(path);
    }
    // new objects for every changed live section: caches keyed on identity see the change
    const live = new Set(report.applied.map((p) => p.split('.')[0]!));
    const updated = { ...this.config } as unknown as Record<string, unknown>;
    for (const key of live) {
      const section = nxt[key];
      if (section && typeof section === 'object' && !Array.isArray(section)) {
        const merged = { ...(cur[key] as Record<string, unknown>) };
        for (const p of report.applied.filter((a) => a.split('.')[0] === key)) {
          const parts = p.split('.').slice(1);
          let o = merged;
          let n = section as Record<string, unknown>;
          for (const k of parts.slice(0, -1)) {
            o = o[k] = { ...(o[k] as Record<string, unknown>) };
            n = n[k] as Record<string, unknown>;
          }
          o[parts[parts.length - 1]!] = n[parts[parts.length - 1]!];
        }
        updated[key] = merged;
      } else updated[key] = section;
    }
    await this.applyModules(next, report, updated);
    // accounts flagged as admin by `uzzap user admin` while the server ran
    const flagged = new Set((await this.storage.accounts.admins()).map((u) => `${u}@${this.config.domain}`));
    if ([...flagged].sort().join() !== [...this.flaggedAdmins].sort().join()) {
      this.flaggedAdmins.clear();
      for (const b of flagged) this.flaggedAdmins.add(b);
      report.applied.push('admin flags on accounts');
    }
    this.config = updated as unknown as Config;
    this.log.level = this.config.log_level;
    this.throttle.settings = this.config.auth;
    this.metrics.reloads.inc({ outcome: report.errors.length ? 'partial' : 'ok' });
    this.log.info(report, 'configuration reloaded');
    return report;
  }

  /** Enable, disable or re-configure modules; the module contract undoes what an unloaded one registered. */
  private async applyModules(next: Config, report: ReloadReport, updated: Record<string, unknown>): Promise<void> {
    const all = this.opts.modules ?? MODULES;
    const byName = new Map(all.map((m) => [m.name, m]));
    const cur = this.config.modules as Record<string, unknown> & { disabled: string[] };
    const nxt = next.modules as Record<string, unknown> & { disabled: string[] };
    const keep = { ...cur, disabled: [...cur.disabled] } as Record<string, unknown> & { disabled: string[] };
    const wanted = (m: XepModule<never>): boolean => !nxt.disabled.includes(m.name);
    for (const n of nxt.disabled) if (!byName.has(n)) report.errors.push(`modules.disabled: unknown module ${n}`);
    // unload first (dependents before what they depend on), then load and reload in load order
    for (const m of [...all].reverse()) {
      if (!this.modules.isLoaded(m.name) || wanted(m)) continue;
      const dependent = all.find((o) => this.modules.isLoaded(o.name) && wanted(o) && o.depends?.includes(m.name));
      if (dependent) {
        report.errors.push(`cannot disable ${m.name}: ${dependent.name} depends on it`);
        continue;
      }
      await this.modules.unload(m.name);
      keep.disabled.push(m.name);
      report.modulesUnloaded.push(m.name);
    }
    for (const m of all) {
      if (!wanted(m)) continue;
      const loaded = this.modules.isLoaded(m.name);
      const changed = JSON.stringify(cur[m.name] ?? {}) !== JSON.stringify(nxt[m.name] ?? {});
      if (loaded && !changed) continue;
      const missing = (m.depends ?? []).filter((d) => !this.modules.isLoaded(d));
      if (missing.length) {
        report.errors.push(`cannot load ${m.name}: needs ${missing.join(', ')}`);
        continue;
      }
      const parsed = this.modules.parseConfig(m, nxt[m.name] ?? {});
      if (!parsed.ok) {
        report.errors.push(...parsed.problems);
        continue;
      }
      if (loaded) await this.modules.unload(m.name);
      try {
        await this.modules.load(m, parsed.value);
        keep[m.name] = nxt[m.name];
        keep.disabled = keep.disabled.filter((d) => d !== m.name);
        (loaded ? report.modulesReloaded : report.modulesLoaded).push(m.name);
      } catch (e) {
        report.errors.push((e as Error).message);
        if (loaded) report.modulesUnloaded.push(m.name);
      }
    }
    updated.modules = keep;
  }

  /** Graceful stop: <system-shutdown/> to every stream, storage flushed. */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  private async doStop(): Promise<void> {
    this.log.info('shutting down');
    await this.hooks.run('server/stopping');
    for (const l of this.listeners) l.close();
    clearInterval(this.ticker);
    for (const s of [...this.streams]) s.shutdown();
    await this.lifecycle.endAll();
    this.statusLag.disable();
    this.scrapeLag.disable();
    // give sockets a moment to flush the shutdown error, then cut the rest
    const deadline = Date.now() + 3000;
    while (this.sockets.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    if (this.modules) await this.modules.unloadAll();
    if (this.storage) await this.flushLogins();
    if (this.registry) await this.registry.clearNode(this.nodeId).catch(() => 0);
    if (this.registry) await this.registry.close();
    if (this.storage) await this.storage.close();
    this.log.info('stopped');
  }
}

function listenOn(server: net.Server, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.removeListener('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function redactUrl(u: string): string {
  return u.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
