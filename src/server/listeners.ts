// The sockets a node accepts: client streams on TCP (STARTTLS) and direct TLS
// (XEP-0368), HTTP and HTTPS (routes in http.ts), and XEP-0114 components on
// plain TCP. Every accepted connection is counted until it closes, so a stop
// can let them flush their last words and then cut the rest.
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import type { Core } from '../core.js';
import { C2SStream } from '../stream/c2s.js';
import { ComponentStream, type ComponentHost } from '../stream/component.js';
import { TcpTransport } from '../transport/tcp.js';
import type { HttpRoutes } from './http.js';

export interface Ports {
  c2s: number;
  c2sTls: number;
  http: number;
  /** 0 when HTTPS is off */
  https: number;
  /** 0 when no component secret is configured */
  component: number;
  /** server-to-server (federation); 0 when off */
  s2s: number;
  /** server-to-server direct TLS (XEP-0368); 0 when off */
  s2sTls: number;
}

export class Listeners {
  readonly ports: Ports = { c2s: 0, c2sTls: 0, http: 0, https: 0, component: 0, s2s: 0, s2sTls: 0 };
  private servers: (net.Server | http.Server | https.Server)[] = [];
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly core: Core,
    private readonly components: ComponentHost,
    /** once true, new connections are refused */
    private readonly stopping: () => boolean,
  ) {}

  /** open client and component connections (WebSocket included; BOSH requests are not counted) */
  get connections(): number {
    return this.sockets.size;
  }

  track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  async open(routes: HttpRoutes): Promise<void> {
    const c = this.core.config;
    const host = c.bind_address || undefined;
    const c2s = net.createServer((socket) => this.accept(socket));
    this.ports.c2s = await listenOn(c2s, c.c2s.port, host);
    // XEP-0368 direct TLS, ALPN "xmpp-client"
    const direct = tls.createServer({ ...this.core.tls.options, ALPNProtocols: ['xmpp-client'] }, (socket) => this.accept(socket));
    direct.on('tlsClientError', () => undefined);
    this.ports.c2sTls = await listenOn(direct, c.c2s.tls_port, host);
    const web = http.createServer((req, res) => void routes.handle(req, res));
    web.on('upgrade', (req, socket, head) => routes.upgrade(req, socket, head));
    this.ports.http = await listenOn(web, c.http.port, host);
    if (c.http.tls) {
      const secureWeb = https.createServer(this.core.tls.options, (req, res) => void routes.handle(req, res));
      secureWeb.on('upgrade', (req, socket, head) => routes.upgrade(req, socket, head));
      secureWeb.on('tlsClientError', () => undefined);
      this.ports.https = await listenOn(secureWeb, c.http.tls_port, host);
      this.servers.push(secureWeb);
    }
    if (c.component.secret || Object.keys(c.component.secrets).length) {
      // XEP-0114: plain TCP (components run beside the server, like Prosody's and ejabberd's)
      const comp = net.createServer((socket) => {
        if (this.stopping()) return void socket.destroy();
        this.track(socket);
        new ComponentStream(this.components, new TcpTransport(socket, () => this.core.config.component.outbound_buffer));
      });
      this.ports.component = await listenOn(comp, c.component.port, host);
      this.servers.push(comp);
    }
    this.servers.push(c2s, direct, web);
    this.core.log.info(
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
    if (this.stopping()) return void socket.destroy();
    this.track(socket);
    new C2SStream(this.core, new TcpTransport(socket, () => this.core.config.limits.outbound_buffer));
  }

  /** Stop accepting connections (open ones stay). */
  close(): void {
    for (const l of this.servers) l.close();
  }

  /** Give open connections up to `ms` to flush and close, then cut the rest. */
  async drain(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.sockets.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
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
