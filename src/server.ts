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
import { LIVE_KEYS } from './config/schema.js';
import { loadConfig } from './config/load.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
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
import type { PreAuthIqRequest, SessionApi, XepModule } from './api/module.js';
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
}

export interface Ports {
  c2s: number;
  c2sTls: number;
  http: number;
  /** 0 when HTTPS is off */
  https: number;
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
  readonly ports: Ports = { c2s: 0, c2sTls: 0, http: 0, https: 0 };
  storage!: Storage;
  registry!: Registry;
  tls!: TlsMaterial;
  accounts!: Accounts;
  modules!: ModuleHost;
  private listeners: (net.Server | http.Server | https.Server)[] = [];
  private sockets = new Set<net.Socket>();
  private stopping: Promise<void> | undefined;

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
    });
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
      deleted: async (u) => void (await this.hooks.run('user/deleted', u)),
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
        isAdmin: (j: Jid) => this.config.admins.includes(j.bare),
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
    });
    // RFC 3921 session establishment: advertised as optional, answered with an empty result.
    this.iqs.add('set', NS_SESSION, 'session', 'bare', () => undefined, 'core');
    this.iqs.add('set', NS_SESSION, 'session', 'host', () => undefined, 'core');
    await this.modules.loadAll(this.opts.modules ?? MODULES, c.modules as Record<string, unknown>, c.modules.disabled);
    await this.listen();
    // one timer for every stream's liveness checks and ack requests (4 passes a second)
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const s of this.streams) s.tick(now);
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
    this.listeners.push(c2s, direct, web);
    this.log.info(
      { domain: c.domain, c2s: this.ports.c2s, c2s_tls: this.ports.c2sTls, http: this.ports.http, https: this.ports.https || undefined },
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
    if (req.method === 'GET' && req.url === '/metrics') {
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  /** Re-read configuration; apply what can change live, report what needs a restart. */
  reload(): { applied: string[]; needsRestart: string[] } {
    const { config: next } = loadConfig({ file: this.opts.configFile });
    const applied: string[] = [];
    const needsRestart: string[] = [];
    const cur = this.config as unknown as Record<string, unknown>;
    const nxt = next as unknown as Record<string, unknown>;
    for (const key of Object.keys(nxt)) {
      if (JSON.stringify(cur[key]) === JSON.stringify(nxt[key])) continue;
      if (LIVE_KEYS.includes(key)) {
        cur[key] = nxt[key];
        applied.push(key);
      } else needsRestart.push(key);
    }
    this.log.level = this.config.log_level;
    this.throttle.settings = this.config.auth;
    this.log.info({ applied, needsRestart }, 'configuration reloaded');
    return { applied, needsRestart };
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
    // give sockets a moment to flush the shutdown error, then cut the rest
    const deadline = Date.now() + 3000;
    while (this.sockets.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    if (this.modules) await this.modules.unloadAll();
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
