// What the HTTP port serves: WebSocket (RFC 7395) at /xmpp-websocket, BOSH
// (XEP-0124/0206) at /http-bind, XEP-0156 host-meta, /status (JSON for
// `uzzap status`) and /metrics (Prometheus). The sockets are opened in
// listeners.ts; a WebSocket or BOSH connection becomes a C2SStream like a TCP one.
import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Core } from '../core.js';
import { C2SStream } from '../stream/c2s.js';
import { WebSocketTransport } from '../transport/websocket.js';
import { BoshSession, NS_HTTPBIND, parseBody, readBody, terminate as boshTerminate } from '../transport/bosh.js';

export interface HttpSources {
  /** no new sessions once the server is stopping */
  stopping(): boolean;
  /** count a socket among the server's connections until it closes */
  track(socket: net.Socket): void;
  /** the HTTP port, for host-meta when the client sent no usable Host header */
  httpPort(): number;
  /** the body of GET /status */
  status(): Promise<Record<string, unknown>>;
  /** a module's handler for a path (XEP-0363 uploads) */
  moduleRoute(path: string): ((req: http.IncomingMessage, res: http.ServerResponse, path: string) => void | Promise<void>) | undefined;
}

export class HttpRoutes {
  private readonly bosh = new Map<string, BoshSession>();
  private readonly wss: WebSocketServer;

  constructor(
    private readonly core: Core,
    private readonly sources: HttpSources,
  ) {
    // RFC 7395 at /xmpp-websocket, subprotocol "xmpp"
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: core.config.max_stanza_size + 1024,
      handleProtocols: (p) => (p.has('xmpp') ? 'xmpp' : false),
    });
  }

  /** An HTTP upgrade request: a WebSocket for XMPP, or refused. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (path !== '/xmpp-websocket' || !protocols.includes('xmpp') || this.sources.stopping()) {
      socket.end(`HTTP/1.1 ${path !== '/xmpp-websocket' ? '404 Not Found' : '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sources.track(req.socket);
      const behindProxy = this.core.config.http.behind_tls_proxy;
      new C2SStream(this.core, new WebSocketTransport(ws, req, () => this.core.config.limits.outbound_buffer, behindProxy));
    });
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/http-bind') return this.httpBind(req, res);
    if (req.method === 'GET' && (path === '/.well-known/host-meta' || path === '/.well-known/host-meta.json'))
      return this.hostMeta(req, res, path);
    if (req.method === 'GET' && path === '/status') return this.status(req, res);
    const mod = this.sources.moduleRoute(path);
    if (mod) return mod(req, res, path);
    if (req.method === 'GET' && req.url === '/metrics') {
      res.writeHead(200, { 'content-type': this.core.metrics.registry.contentType });
      res.end(await this.core.metrics.registry.metrics());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  /** XEP-0156: where web clients connect; the address is the one the client used to reach us. */
  private hostMeta(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const c = this.core.config;
    const secure = (req.socket as tls.TLSSocket).encrypted === true || c.http.behind_tls_proxy;
    const hostHeader = /^[A-Za-z0-9.:[\]-]+$/.test(req.headers.host ?? '') ? req.headers.host! : `${c.domain}:${this.sources.httpPort()}`;
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
  }

  /** `uzzap status`: a bearer token when one is configured, else loopback clients only. */
  private async status(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const token = this.core.config.http.status_token;
    const addr = req.socket.remoteAddress ?? '';
    const loopback = addr === '127.0.0.1' || addr === '::1' || addr.startsWith('::ffff:127.');
    const ok = token ? req.headers.authorization === `Bearer ${token}` : loopback;
    if (!ok) {
      res.writeHead(token ? 401 : 403, { 'content-type': 'text/plain', ...(token ? { 'www-authenticate': 'Bearer' } : {}) });
      res.end(token ? 'a bearer token is required\n' : 'set http.status_token to allow /status from other addresses\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(await this.sources.status()));
  }

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
    const c = this.core.config;
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
    if (this.sources.stopping()) return boshTerminate(res, 'system-shutdown');
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
      () => this.core.config.bosh,
      () => this.core.config.limits.outbound_buffer,
      c.domain,
      (gone) => this.bosh.delete(gone.sid),
    );
    this.bosh.set(s.sid, s);
    new C2SStream(this.core, s);
    s.open();
    s.created(res);
  }
}
