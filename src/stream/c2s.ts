// One client-to-server stream (RFC 6120): header (header.ts), features,
// STARTTLS, SASL (sasl/exchange.ts), resource binding (bind.ts), or all of it
// in one SASL2 request (XEP-0388 sasl/exchange.ts, Bind 2 bind2.ts, FAST
// sasl/fast.ts, XEP-0198 resumption inline: sasl2Success below), then stanzas
// handed to the router; any other top-level element goes to the module of its
// namespace (nonza.ts: stream management, client state). Elements are processed
// strictly in order through the stream's Inbox (inbox.ts): asynchronous work or
// a rate limit makes the next ones wait in a bounded queue and reading pause,
// so TCP backpressure — not memory — absorbs a flood. Pings, ack requests and
// slow consumers are liveness.ts.
import { randomToken } from '../random.js';
import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import { StreamParser, type XmlErrorCondition } from '../xml/parser.js';
import type { StreamErrorCondition } from '../api/errors.js';
import type { Core } from '../core.js';
import type { Transport } from '../transport/types.js';
import type { Kind, Session, SessionOwner } from '../session/session.js';
import { SaslExchange, type Sasl2Success } from './sasl/exchange.js';
import { bind2Inline, bind2Resource } from './bind2.js';
import { answerPreAuthIq, bindRequest, type PreAuthIqHandler } from './bind.js';
import { RateLimiter } from './rate.js';
import { Inbox } from './inbox.js';
import { Liveness, type LivenessOwner } from './liveness.js';
import { checkHeader, clientHeader, clientStreamEnd, headerTo, streamErrorXml } from './header.js';
import { trackBroadcast } from './presence.js';
import { dispatchNonza, StreamSide, type NonzaOwner } from './nonza.js';
import { NS_BIND, NS_BIND2, NS_CLIENT, NS_FRAMING, NS_SASL, NS_SASL2, NS_SESSION, NS_STREAM, NS_TLS } from './ns.js';
import { Jid, tryJid } from '../jid.js';
import { escapeXML } from '../xml/index.js';

type Phase = 'connected' | 'authenticated' | 'bound' | 'closed';

/** longest wait for already-received stanzas after the client went away */
const CLOSE_DRAIN_MS = 5000;

export class C2SStream implements SessionOwner, NonzaOwner, LivenessOwner {
  readonly id = randomToken(9);
  private phase: Phase = 'connected';
  private parser: StreamParser;
  private headerSent = false;
  private readonly inbox: Inbox;
  /** when the client last sent anything, pings and ack requests, slow consumer (liveness.ts) */
  private readonly liveness: Liveness;
  private readonly auth: SaslExchange;
  /** the authenticated user ('' before SASL succeeds) */
  username = '';
  private session: Session | undefined;
  private preauthTimer: NodeJS.Timeout | undefined;
  private metricState = 'connected';
  private logger: Logger | undefined;
  /** the stream's xml:lang (RFC 6120 §4.7.4), stamped on the client's stanzas that lack one */
  private lang: string | undefined;
  /** the client ended the stream itself (</stream:stream>): no resumption */
  private cleanClose = false;
  /** what nonza handlers (modules) may do with this stream; made on first use */
  private side: StreamSide | undefined;

  constructor(
    private readonly core: Core,
    private readonly transport: Transport,
  ) {
    this.parser = new StreamParser(this, { maxStanzaSize: core.config.max_stanza_size, framed: transport.framed });
    this.auth = new SaslExchange(core, transport, this);
    this.inbox = new Inbox(
      this,
      transport,
      () => this.core.config.limits.inbound_queue,
      new RateLimiter(() => this.core.config.rate_limits, 'c2s'),
      () => this.core.metrics.rateLimited.inc({ stream: 'c2s' }),
    );
    this.liveness = new Liveness(core, transport, this);
    transport.setHandler({
      data: (chunk) => {
        this.liveness.read();
        this.inbox.read(chunk.length);
        this.parser.write(chunk);
      },
      closed: (reason) => this.onTransportClosed(reason),
      overflow: () => this.liveness.slowConsumer(),
    });
    core.streams.add(this);
    core.metrics.connections.inc({ state: 'connected' });
    this.preauthTimer = setTimeout(
      () => this.close('connection-timeout', 'authentication took too long'),
      core.config.c2s.preauth_timeout * 1000,
    );
    this.preauthTimer.unref();
  }

  get log(): Logger {
    return (this.logger ??= this.core.log.child({ sid: this.id, ip: this.transport.remoteAddress }));
  }
  get secure(): boolean {
    return this.transport.secure;
  }
  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  // ---- parser callbacks ----

  onOpen(name: string, attrs: Record<string, string>): void {
    if (this.transport.framed) {
      if (attrs.xmlns !== NS_FRAMING) return this.close('invalid-namespace', 'expected the framing namespace');
    } else {
      const bad = checkHeader(name, attrs, NS_CLIENT, 'content namespace must be jabber:client');
      if (bad) return this.close(bad.condition, bad.text);
    }
    const to = headerTo(attrs);
    if (to !== undefined && to !== this.core.config.domain) return this.close('host-unknown', `this server does not serve ${attrs.to}`);
    if (!attrs.version || !/^1\.\d+$/.test(attrs.version)) return this.close('unsupported-version', 'XMPP 1.0 required');
    if (attrs['xml:lang']) this.lang = attrs['xml:lang'];
    this.sendHeader(attrs.from);
    this.transport.write(this.features());
  }

  onElement(el: Element): void {
    if (this.phase === 'closed') return;
    this.inbox.push(el);
  }

  /** for the inbox: the stream takes elements, and stanzas count against the rate once bound */
  get open(): boolean {
    return this.phase !== 'closed';
  }
  get shaped(): boolean {
    return this.phase === 'bound';
  }

  onClose(): void {
    if (this.phase === 'closed') return;
    // RFC 6120 §4.4: stanzas received before the close are still processed, then
    // the close is answered and the connection ended.
    this.cleanClose = true;
    this.afterInbox(() => {
      this.transport.write(clientStreamEnd(this.transport.framed));
      this.shutdownStream('client closed the stream');
    });
  }

  /** Run fn now, or once the stanzas already received have been processed. */
  private afterInbox(fn: () => void): void {
    this.inbox.afterAll(fn, CLOSE_DRAIN_MS);
  }

  onError(condition: XmlErrorCondition, text: string): void {
    this.close(condition, text);
  }

  // ---- serial processing (see inbox.ts) ----

  handle(el: Element): void | Promise<void> {
    const ns = el.attrs.xmlns;
    const stanza = ns === undefined || ns === NS_CLIENT;
    if (this.phase === 'bound') {
      if (!stanza) return this.nonza(el);
      const t0 = performance.now();
      this.session!.countHandled();
      const r = this.handleStanza(el);
      if (r) return r.then(() => this.core.metrics.routeLatency.observe((performance.now() - t0) / 1000));
      this.core.metrics.routeLatency.observe((performance.now() - t0) / 1000);
      return;
    }
    if (this.phase === 'authenticated') return stanza ? this.handleBind(el) : this.nonza(el);
    return this.handleNegotiation(el);
  }

  // ---- negotiation ----

  private features(): string {
    const f: string[] = [];
    const { require_tls } = this.core.config.c2s;
    if (this.phase === 'connected') {
      if (!this.secure && this.transport.canStartTls) {
        f.push(`<starttls xmlns='${NS_TLS}'>${require_tls ? '<required/>' : ''}</starttls>`);
      }
      if (this.secure || !require_tls) {
        f.push(this.auth.features(), this.core.streamFeatures('pre-auth', { secure: this.secure }));
      }
    } else if (this.phase === 'authenticated') {
      f.push(
        `<bind xmlns='${NS_BIND}'/>`,
        `<session xmlns='${NS_SESSION}'><optional/></session>`,
        this.core.streamFeatures('post-auth', { secure: this.secure }),
      );
    } else if (this.phase === 'bound') {
      // after Bind 2: no binding offered again, nor stream management once enabled inline
      f.push(this.core.streamFeatures('post-auth', { secure: this.secure, smEnabled: !!this.session?.sm }));
    }
    // a WebSocket frame is a document of its own: the prefix is declared in it (RFC 7395 §3.3.3)
    return `<stream:features${this.transport.framed ? ` xmlns:stream='${NS_STREAM}'` : ''}>${f.join('')}</stream:features>`;
  }

  private handleNegotiation(el: Element): void | Promise<void> {
    const ns = el.attrs.xmlns;
    if (el.name === 'starttls' && ns === NS_TLS) return this.startTls();
    if (el.name === 'iq' && (ns === undefined || ns === NS_CLIENT) && (this.secure || !this.core.config.c2s.require_tls)) {
      const payload = el.getChildElements()[0];
      const handle = payload && this.core.preAuthIq(payload.attrs.xmlns ?? '');
      if (handle && (el.attrs.type === 'get' || el.attrs.type === 'set')) return this.preAuthIq(el, payload, handle);
    }
    if (this.auth.inSasl2) {
      // XEP-0388 §2.5: during a SASL2 exchange nothing else may be sent
      if (ns === NS_SASL2 && (el.name === 'response' || el.name === 'abort')) return this.auth.handle(el);
      return this.close('policy-violation', 'only <response/> or <abort/> during SASL2 authentication');
    }
    if (ns === NS_SASL && (el.name === 'auth' || el.name === 'response' || el.name === 'abort')) return this.auth.handle(el);
    if (ns === NS_SASL2 && (el.name === 'authenticate' || el.name === 'response' || el.name === 'abort')) return this.auth.handle(el);
    this.close('not-authorized', 'authenticate first');
  }

  /** An IQ before authentication (XEP-0077), answered on this stream only. */
  private async preAuthIq(el: Element, payload: Element, handle: PreAuthIqHandler): Promise<void> {
    const reply = await answerPreAuthIq(el, payload, handle, this);
    if (this.phase !== 'closed') this.transport.write(reply);
  }

  /** SASL succeeded (RFC 6120 §6.4.6): the stream restarts, now authenticated. */
  authenticated(username: string): void {
    this.username = username;
    this.phase = 'authenticated';
    this.setMetricState('authenticated');
    this.parser.reset();
    this.headerSent = false;
  }

  /**
   * SASL2 succeeded (XEP-0388): no restart. The request's inline parts run in the
   * order the XEPs give: a resumption first (XEP-0198), then, if no session was
   * resumed, Bind 2 (XEP-0386); then <success/> with their answers and the FAST
   * token, and the post-authentication features (none after a resumption).
   */
  async authenticated2(r: Sasl2Success): Promise<void> {
    try {
      await this.sasl2Success(r);
    } catch (err) {
      // a client must not wait for an answer that will not come
      this.log.error({ err }, 'SASL2 success could not be completed');
      this.close('internal-server-error');
    }
  }

  private async sasl2Success(r: Sasl2Success): Promise<void> {
    const bind = r.request.getChild('bind', NS_BIND2);
    const resuming = r.request.getChildElements().some((c) => c.name === 'resume' && c.attrs.xmlns !== NS_SASL2);
    // a bind that cannot be done fails the login before anything of it happens (no token, no resumption)
    if (bind && !resuming && this.tooManyResources(r, bind)) return this.refuseBind();
    this.username = r.username;
    this.phase = 'authenticated';
    this.setMetricState('authenticated');
    const side = (this.side ??= new StreamSide(this.core, this));
    let inline = '';
    const after: (() => void)[] = [];
    const seen = new Set<string>();
    for (const child of r.request.getChildElements()) {
      const ns = child.attrs.xmlns;
      const handle = ns && ns !== NS_SASL2 && !seen.has(ns) ? this.core.inline(ns)?.sasl : undefined;
      if (!handle) continue;
      seen.add(ns!); // one request per namespace (a second <resume/> is not another resumption)
      const a = await handle(child, side);
      if ((this.phase as Phase) === 'closed') return;
      inline += a.xml;
      if (a.after) after.push(a.after);
    }
    const resumed = (this.phase as Phase) === 'bound';
    let bound = '';
    if (bind && !resumed) {
      if (this.tooManyResources(r, bind)) return this.refuseBind();
      const { resource, client } = bind2Resource(this.core, bind, r.request, r.username);
      this.bindSession(Jid.of(r.username, this.core.config.domain, resource), client);
      bound = `<bound xmlns='${NS_BIND2}'>${bind2Inline(this.core, bind, side)}</bound>`;
    }
    const token = await r.token();
    if ((this.phase as Phase) === 'closed') return;
    const authz = this.session ? this.session.jid.full : `${r.username}@${this.core.config.domain}`;
    const data = r.data ? `<additional-data>${r.data.toString('base64')}</additional-data>` : '';
    this.transport.write(
      `<success xmlns='${NS_SASL2}'>${data}<authorization-identifier>${escapeXML(authz)}</authorization-identifier>${inline}${bound}${token}</success>`,
    );
    for (const f of after) f();
    // XEP-0198 (SASL2 section): after a resumption the stream goes on at once, without features
    if (!resumed) this.transport.write(this.features());
  }

  /** Bind 2 would pass `limits.max_resources` (a resource not yet bound) */
  private tooManyResources(r: Sasl2Success, bind: Element): boolean {
    const { resource } = bind2Resource(this.core, bind, r.request, r.username);
    const bare = `${r.username}@${this.core.config.domain}`;
    return !this.core.sessions.get(bare, resource) && this.core.sessions.countOf(bare) >= this.core.config.limits.max_resources;
  }

  /** As a bind IQ would be refused (resource-constraint): the login fails and nothing changed (XEP-0388 §2.6.2). */
  private refuseBind(): void {
    this.username = '';
    this.phase = 'connected';
    this.transport.write(
      `<failure xmlns='${NS_SASL2}'><temporary-auth-failure xmlns='${NS_SASL}'/><text xml:lang='en'>too many resources bound for this account</text></failure>`,
    );
  }

  private startTls(): void {
    if (this.secure || !this.transport.canStartTls) {
      this.transport.write(`<failure xmlns='${NS_TLS}'/>`);
      return this.shutdownStream('bad STARTTLS');
    }
    this.transport.writeNow(`<proceed xmlns='${NS_TLS}'/>`);
    this.parser.reset();
    this.headerSent = false;
    this.transport.startTls(this.core.tls, (err) => {
      if (err) {
        this.log.debug({ err }, 'TLS handshake failed');
        this.transport.destroy();
        return;
      }
      this.setMetricState('secured');
    });
  }

  // ---- resource binding (RFC 6120 §7) ----

  private handleBind(el: Element): void {
    const req = bindRequest(el, this.username, this.core);
    // RFC 6120 §7.2.1: nothing but binding before a resource is bound
    if (!req) return this.close('not-authorized', 'bind a resource first');
    if ('error' in req) return this.transport.write(req.error);
    this.transport.write(req.result);
    this.bindSession(req.jid);
  }

  private bindSession(jid: Jid, client?: string): void {
    this.phase = 'bound';
    this.setMetricState('bound');
    clearTimeout(this.preauthTimer);
    this.session = this.core.lifecycle.bind(jid, this, client);
    this.inbox.limiter.who = jid.bare;
    this.log.debug({ jid: jid.full }, 'bound');
  }

  // ---- stream-level elements of modules (XEP-0198, XEP-0352, ...) ----

  /** A top-level element that is no stanza: the module registered for its namespace handles it. */
  private nonza(el: Element): void | Promise<void> {
    return dispatchNonza(this.core, el, (this.side ??= new StreamSide(this.core, this)), this);
  }
  get bound(): Session | undefined {
    return this.session;
  }
  get awaitingBind(): boolean {
    return this.phase === 'authenticated';
  }

  /** This stream took over a detached (or another stream's) session (XEP-0198 resumption). */
  takeOver(session: Session): void {
    this.core.lifecycle.resume(session, this);
    this.session = session;
    this.inbox.limiter.who = session.jid.bare;
    this.phase = 'bound';
    this.setMetricState('bound');
    clearTimeout(this.preauthTimer);
    this.log.debug({ jid: session.jid.full }, 'session resumed');
  }

  /** Liveness and ack requests (liveness.ts), called about once a second for every stream. */
  tick(now: number): void {
    if (this.phase === 'bound') this.liveness.tick(now, this.session!);
  }

  writeRaw(s: string): void {
    if (this.phase === 'closed') return;
    this.transport.write(s);
  }

  // ---- stanzas ----

  private handleStanza(el: Element): void | Promise<void> {
    const session = this.session!;
    const name = el.name;
    const ns = el.attrs.xmlns;
    if ((name !== 'message' && name !== 'presence' && name !== 'iq') || (ns !== undefined && ns !== NS_CLIENT)) {
      return this.close('unsupported-stanza-type', `<${name}/> is not a stanza this server handles`);
    }
    this.core.metrics.countIn(name);
    const from = el.attrs.from;
    if (from !== undefined && from !== session.jid.full && from !== session.jid.bare && !sameAddress(from, session.jid)) {
      // RFC 6120 §8.1.2.1: a client may only send from its own address
      return this.close('invalid-from', 'the from address does not match this stream');
    }
    el.attrs.from = session.jid.full;
    if (this.lang !== undefined && el.attrs['xml:lang'] === undefined) el.attrs['xml:lang'] = this.lang;
    session.lastActive = this.liveness.lastRead;
    if (name === 'presence' && el.attrs.to === undefined) {
      const bad = trackBroadcast(session, el, this.core, this.log);
      if (bad) return this.core.router.bounce(el, bad);
    }
    return this.core.router.fromClient(el, session.jid, session, this.parsedTo(el.attrs.to));
  }

  /**
   * The 'to' address parsed, the stream's last one reused: a chat sends stanza after
   * stanza to one address, and one Jid (its strings hashed once) serves every map lookup
   * on the way (sessions, blocklists, archive). undefined: absent or malformed (the
   * router answers that).
   */
  private parsedTo(attr: string | undefined): Jid | undefined {
    if (attr === undefined) return undefined;
    if (attr === this.lastToAttr) return this.lastTo;
    const jid = tryJid(attr);
    if (jid) {
      this.lastToAttr = attr;
      this.lastTo = jid;
    }
    return jid;
  }
  private lastToAttr: string | undefined;
  private lastTo: Jid | undefined;

  writeStanza(xml: string, kind: Kind): void {
    if (this.phase === 'closed') return;
    this.core.metrics.countOut(kind);
    this.transport.write(xml);
  }

  // ---- closing ----

  private sendHeader(clientFrom?: string): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.transport.write(clientHeader(this.transport.framed, this.id, this.core.config.domain, clientFrom));
  }

  /** Close with a stream error (or cleanly without one); `appCondition` is an application-specific condition. */
  close(condition?: StreamErrorCondition, text?: string, appCondition?: string): void {
    if (this.phase === 'closed') return;
    if (condition) this.writeError(condition, text, appCondition);
    this.transport.write(clientStreamEnd(this.transport.framed));
    this.shutdownStream(condition ?? 'closed');
  }

  private writeError(condition: StreamErrorCondition, text?: string, appCondition?: string): void {
    this.sendHeader();
    this.core.metrics.streamErrors.inc({ condition });
    this.log.debug({ condition, text }, 'stream error');
    this.transport.write(streamErrorXml(this.transport.framed, condition, text, appCondition));
  }

  /** Server shutdown: <system-shutdown/> (RFC 6120 §4.9.3.19). */
  shutdown(): void {
    this.close('system-shutdown', 'server shutting down');
  }

  private shutdownStream(reason: string): void {
    this.transport.end();
    this.teardown(reason);
  }

  /** For liveness.ts: give the connection up without the closing handshake (see LivenessOwner). */
  drop(reason: 'ping timeout' | 'slow consumer', condition?: StreamErrorCondition, text?: string): void {
    if (condition) this.writeError(condition, text);
    this.transport.destroy();
    this.onTransportClosed(reason);
  }

  private onTransportClosed(reason: string): void {
    // what the client sent before the connection dropped is still delivered
    this.afterInbox(() => this.teardown(reason));
  }

  private teardown(reason: string): void {
    if (this.phase === 'closed') return;
    const wasBound = this.phase === 'bound';
    this.phase = 'closed';
    this.setMetricState(undefined);
    clearTimeout(this.preauthTimer);
    this.core.streams.delete(this);
    this.inbox.clear();
    const session = this.session;
    if (!wasBound || !session || session.owner !== this) return;
    // a connection lost without a clean close keeps a resumable session for its window (XEP-0198 §5)
    const lost = reason === 'connection lost' || reason === 'ping timeout' || reason === 'slow consumer';
    if (lost && !this.cleanClose && session.resumable) this.core.lifecycle.detach(session, reason);
    else this.core.lifecycle.end(session, reason);
  }

  private setMetricState(state: string | undefined): void {
    this.core.metrics.connections.dec({ state: this.metricState });
    if (state) this.core.metrics.connections.inc({ state });
    this.metricState = state ?? 'closed';
  }
}

/** a client-supplied 'from' equal to our JID after preparation (case, normalisation) */
function sameAddress(from: string, jid: Jid): boolean {
  const j = tryJid(from);
  return !!j && (j.full === jid.full || j.full === jid.bare);
}
