// Federation (RFC 6120 server-to-server, XEP-0220 dialback): the listener on
// s2s.port (UZZAP_S2S_PORT, 5269; 0: none), one outgoing stream per remote domain
// (out.ts), the incoming streams (in.ts). The router hands it every stanza for a
// domain that is neither ours nor one of our services (Router.remote); what comes in
// is routed as if from a local entity, with its remote 'from'.
// Settings: s2s.* (docs/configuration.md); UZZAP_S2S_HOSTS maps domains to host:port
// (RFC 6120 §3.2.3) for private networks and tests.
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { Gauge, Counter } from 'prom-client';
import type { Core } from '../core.js';
import type { Element } from '../xml/index.js';
import { Jid } from '../jid.js';
import { parseAddressed } from '../xml/addressed.js';
import { StanzaError } from '../api/errors.js';
import { TcpTransport } from '../transport/tcp.js';
import { S2SOut, serializeForServer } from './out.js';
import { S2SIn, type S2SInHost } from './in.js';
import type { S2SMetrics, S2SSettings, VerifyResult } from './types.js';
import { S2SPolicy } from './policy.js';
import { PeerTrust, S2S_SECURE_OPTIONS } from './certs.js';
import type { TlsMaterial } from '../tls.js';

export class S2S implements S2SInHost {
  private readonly outs = new Map<string, S2SOut>();
  private readonly ins = new Set<S2SIn>();
  /** incoming bidirectional streams (XEP-0288) by the remote domain they authenticated: they carry our stanzas back */
  private readonly bidi = new Map<string, Set<S2SIn>>();
  private server: net.Server | undefined;
  private tlsServer: tls.Server | undefined;
  private readonly trust: PeerTrust;
  /** the dialback secret when none is configured: the cluster's (in Redis), else this process's own */
  private ownSecret = randomBytes(32).toString('hex');
  port = 0;
  /** the direct TLS port (XEP-0368), 0 when none */
  tlsPort = 0;
  readonly metrics: S2SMetrics;
  /** who this server federates with (s2s.blacklist/whitelist, XEP-0133 lists, strangers) */
  readonly policy: S2SPolicy;
  /** in a cluster: which node sends to a remote domain (src/cluster/s2s-owners.ts) */
  placement: S2SPlacement | undefined;
  /** stanzas waiting while the node for their domain is being claimed, by domain (bounded by s2s.queue_max each) */
  private readonly claiming = new Map<string, { stanza: Element; from: Jid; to: Jid; hop: number }[]>();

  constructor(private readonly core: Core & { serves(domain: string): boolean }) {
    this.policy = new S2SPolicy(core);
    this.trust = new PeerTrust(core.config.s2s.ca_file);
    const reg = core.metrics.registry;
    const outs = this.outs;
    const ins = this.ins;
    new Gauge({
      name: 'uzzap_s2s_streams',
      help: 'server-to-server streams open, by direction and state (negotiating, authenticated)',
      labelNames: ['direction', 'state'],
      registers: [reg],
      collect() {
        let out = 0;
        let inAuth = 0;
        for (const o of outs.values()) if (o.authenticated) out++;
        for (const i of ins) if (i.authenticated) inAuth++;
        this.set({ direction: 'out', state: 'authenticated' }, out);
        this.set({ direction: 'out', state: 'negotiating' }, outs.size - out);
        this.set({ direction: 'in', state: 'authenticated' }, inAuth);
        this.set({ direction: 'in', state: 'negotiating' }, ins.size - inAuth);
      },
    });
    const stanzas = new Counter({
      name: 'uzzap_s2s_stanzas_total',
      help: 'stanzas sent to and received from other servers, by remote domain (s2s.metrics_domains of them; the rest: other)',
      labelNames: ['direction', 'domain'],
      registers: [reg],
    });
    const bytes = new Counter({
      name: 'uzzap_s2s_bytes_total',
      help: 'bytes sent to (stanzas) and read from other servers, by remote domain',
      labelNames: ['direction', 'domain'],
      registers: [reg],
    });
    const dialbacks = new Counter({
      name: 'uzzap_s2s_dialback_total',
      help: 'dialback results, by direction and result',
      labelNames: ['direction', 'result'],
      registers: [reg],
    });
    const externals = new Counter({
      name: 'uzzap_s2s_sasl_external_total',
      help: 'SASL EXTERNAL (XEP-0178) authentications between servers, by direction and result',
      labelNames: ['direction', 'result'],
      registers: [reg],
    });
    // one label per remote domain for the first s2s.metrics_domains seen: a server that
    // talks to thousands of domains does not make thousands of series
    const labelled = new Set<string>();
    const label = (domain: string): string => {
      if (labelled.has(domain)) return domain;
      if (!domain || labelled.size >= core.config.s2s.metrics_domains) return 'other';
      labelled.add(domain);
      return domain;
    };
    this.metrics = {
      out: (remote, n) => {
        const domain = label(remote);
        stanzas.inc({ direction: 'out', domain });
        bytes.inc({ direction: 'out', domain }, n);
      },
      in: (remote) => stanzas.inc({ direction: 'in', domain: label(remote) }),
      inBytes: (remote, n) => bytes.inc({ direction: 'in', domain: label(remote) }, n),
      dialback: (direction, result) => dialbacks.inc({ direction, result }),
      external: (direction, result) => externals.inc({ direction, result }),
      rateLimited: () => core.metrics.rateLimited.inc({ stream: 's2s' }),
    };
  }

  get domain(): string {
    return this.core.config.domain;
  }
  get log(): typeof this.core.log {
    return this.core.log;
  }
  get ca(): string[] | undefined {
    return this.trust.ca;
  }

  serverTls(): TlsMaterial {
    return this.trust.serverMaterial(this.core.tls);
  }

  rateLimits(): Core['config']['rate_limits'] {
    return this.core.config.rate_limits;
  }

  settings(): S2SSettings {
    const c = this.core.config;
    return { ...c.s2s, dialback_secret: c.s2s.dialback_secret || this.ownSecret };
  }

  serves(domain: string): boolean {
    return this.core.serves(domain);
  }

  clientCertificate(): { cert?: string | Buffer; key?: string | Buffer } {
    const o = this.core.tls.options;
    return { cert: o.cert as string | Buffer | undefined, key: o.key as string | Buffer | undefined };
  }

  /** Open the listener (s2s.port; 0: none). A port in use is logged: the node runs without incoming federation. */
  async listen(host?: string): Promise<void> {
    // a remote server may check a key with any node of the cluster: they share the secret
    if (!this.core.config.s2s.dialback_secret && this.core.registry.sharedSecret) {
      const shared = await this.core.registry.sharedSecret('s2s-dialback').catch((err: unknown) => {
        this.core.log.warn({ err }, 's2s: no shared dialback secret from Redis; this node uses its own');
        return '';
      });
      if (shared) this.ownSecret = shared;
    }
    const { port, tls_port } = this.core.config.s2s;
    const accept = (socket: net.Socket): void => {
      if (this.stopped) return void socket.destroy();
      this.ins.add(new S2SIn(this, new TcpTransport(socket, () => this.core.config.s2s.outbound_buffer)));
    };
    if (port) {
      const server = net.createServer(accept);
      this.port = await listenOn(server, port, host, this.core.log, 'UZZAP_S2S_PORT');
      if (this.port) this.server = server;
    }
    if (tls_port) {
      // XEP-0368: TLS from the first byte, ALPN "xmpp-server"; the peer's certificate asked for (XEP-0178)
      // (the context per connection: a reloaded certificate applies to the next one)
      const server = tls.createServer(
        {
          ...this.core.tls.options,
          ca: this.trust.ca,
          secureOptions: S2S_SECURE_OPTIONS,
          requestCert: true,
          rejectUnauthorized: false,
          ALPNProtocols: ['xmpp-server'],
          SNICallback: (_name, cb) => cb(null, this.serverTls().context),
        },
        accept,
      );
      server.on('tlsClientError', () => undefined);
      this.tlsPort = await listenOn(server, tls_port, host, this.core.log, 'UZZAP_S2S_TLS_PORT');
      if (this.tlsPort) this.tlsServer = server;
    }
  }

  /**
   * A stanza for a remote domain, from one of ours (Router.remote): on this node's stream
   * to that domain, or, in a cluster, to the node that holds it (`hop`: how often it was
   * handed on already; past MAX_HOPS this node sends it itself).
   */
  send(stanza: Element, from: Jid, to: Jid, hop = 0): void {
    if (!this.policy.allowed(to.domain))
      return this.bounce(stanza, new StanzaError('not-allowed', `this server does not federate with ${to.domain}`));
    const p = this.placement;
    // (a stopping node claims nothing: it has no streams any more)
    if (!p || this.stopped) return this.sendHere(stanza, from, to);
    // behind a claim in flight for the domain, whatever the hop count (order)
    const waiting = this.claiming.get(to.domain);
    if (waiting) {
      if (waiting.length >= this.core.config.s2s.queue_max)
        return this.bounce(stanza, new StanzaError('resource-constraint', `too many stanzas wait for ${to.domain}`, 'wait'));
      return void waiting.push({ stanza, from, to, hop });
    }
    if (hop >= MAX_HOPS) return this.sendHere(stanza, from, to);
    const owner = p.ownerOf(to.domain);
    if (typeof owner === 'string') return this.dispatch(owner, stanza, from, to, hop);
    // the claim takes a Redis round trip: later stanzas for the domain wait behind this one, in order
    const list = [{ stanza, from, to, hop }];
    this.claiming.set(to.domain, list);
    void owner.then((node) => {
      this.claiming.delete(to.domain);
      for (const w of list) this.dispatch(node, w.stanza, w.from, w.to, w.hop);
    });
  }

  private dispatch(node: string, stanza: Element, from: Jid, to: Jid, hop: number): void {
    if (node === this.placement!.node || hop >= MAX_HOPS) return this.sendHere(stanza, from, to);
    stanza.attrs.from = from.full;
    stanza.attrs.to = to.full;
    this.placement!.forward(node, stanza.toString(), hop + 1);
  }

  /** A stanza another node of the cluster handed to this one (it holds the domain's stream, or recovers a dead node's inbox). */
  fromCluster(xml: string, hop: number): void {
    const s = parseAddressed(xml);
    if (s) this.send(s.stanza, s.from, s.to, hop);
  }

  private sendHere(stanza: Element, from: Jid, to: Jid): void {
    // the remote server's own bidirectional stream, when it authenticated this pair (XEP-0288)
    const bidi = this.bidi.get(to.domain);
    // (not past stanzas that wait on our own stream for the same sending domain)
    if (bidi && !this.outs.get(to.domain)?.hasWaiting(from.domain)) {
      const xml = serializeForServer(stanza);
      for (const s of bidi) if (s.sendBidi(xml, from.domain, to.domain)) return this.metrics.out(to.domain, xml.length);
    }
    const out = this.out(to.domain);
    // (a claim this node cannot serve goes, so that another node may)
    if (!out) this.placement?.released(to.domain);
    if (!out)
      return this.bounce(
        stanza,
        new StanzaError(this.stopped ? 'remote-server-timeout' : 'resource-constraint', 'no stream to that server now', 'wait'),
      );
    out.send(stanza, from.domain);
  }

  /** the stream to `domain`, made when there is none (undefined: stopping, or s2s.max_streams reached) */
  private out(domain: string): S2SOut | undefined {
    let out = this.outs.get(domain);
    if (out && !out.closed) return out;
    if (this.stopped || this.outs.size >= this.core.config.s2s.max_streams) return undefined;
    out = new S2SOut(this, domain, !this.noExternal(domain));
    this.outs.set(domain, out);
    return out;
  }

  /** remote domains that refused our SASL EXTERNAL lately: until when dialback alone is used with them */
  private readonly externalRefusals = new Map<string, number>();

  private noExternal(domain: string): boolean {
    const until = this.externalRefusals.get(domain);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.externalRefusals.delete(domain);
    return false;
  }

  externalRefused(remote: string): void {
    // bounded like the streams themselves (the oldest refusal goes first)
    if (this.externalRefusals.size >= this.core.config.s2s.max_streams) this.externalRefusals.delete(this.externalRefusals.keys().next().value!);
    this.externalRefusals.delete(remote);
    this.externalRefusals.set(remote, Date.now() + EXTERNAL_REFUSAL_MS);
  }

  requeue(remote: string, waiting: { from: string; stanza: Element }[]): void {
    const out = this.out(remote);
    for (const w of waiting) {
      if (out) out.send(w.stanza, w.from);
      else this.bounce(w.stanza, new StanzaError('remote-server-timeout', `no stream to ${remote} now`, 'wait'));
    }
  }

  /**
   * A stanza that came in from another server (its addresses checked by the stream), in
   * order per sender (RFC 6120 §10.1): while one from the same bare JID is still being
   * routed (it waits on storage), the next waits behind it. The chains are as many as
   * the stanzas in flight, which each stream bounds (64).
   */
  route(stanza: Element, from: string, to: string): Promise<void> | void {
    const f = Jid.parse(from);
    const t = Jid.parse(to);
    const key = f.bare;
    const prev = this.chains.get(key);
    const r = prev ? prev.then(() => this.routeNow(stanza, f, t)) : this.routeNow(stanza, f, t);
    if (!r) return;
    const p: Promise<void> = r.finally(() => {
      if (this.chains.get(key) === p) this.chains.delete(key);
    });
    this.chains.set(key, p);
    return p;
  }

  private readonly chains = new Map<string, Promise<void>>();

  private routeNow(stanza: Element, f: Jid, t: Jid): Promise<void> | void {
    // (a domain listed after its stream was made)
    const refused = this.policy.allowed(f.domain) ? this.policy.refuses(stanza, f, t) : true;
    if (refused === false) return this.deliver(stanza, f, t);
    if (refused === true) return this.refuse(stanza);
    return refused.then(
      (r) => (r ? this.refuse(stanza) : this.deliver(stanza, f, t)),
      (err: unknown) => this.core.log.error({ err }, 's2s: the policy check of an incoming stanza failed'),
    );
  }

  private deliver(stanza: Element, from: Jid, to: Jid): Promise<void> | void {
    const r = this.core.router.route(stanza, from, to);
    if (r) return r.catch((err: unknown) => this.core.log.error({ err }, 's2s: routing an incoming stanza failed'));
  }

  /** what the policy refuses is answered as if nobody were there (RFC 6121 §8.5.2.1.1) */
  private refuse(stanza: Element): void {
    this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  /** may a stream from `domain` authenticate? (the policy's lists) */
  allowedPeer(domain: string): boolean {
    return this.policy.allowed(domain);
  }

  verify(remote: string, local: string, id: string, key: string): Promise<VerifyResult> {
    const out = this.out(remote);
    return out ? out.verify(local, id, key) : Promise.resolve('unreachable');
  }

  bounce(stanza: Element, err: StanzaError): void {
    this.core.router.bounce(stanza, err);
  }

  gone(out: S2SOut): void {
    if (this.outs.get(out.remote) !== out) return;
    this.outs.delete(out.remote);
    this.placement?.released(out.remote);
  }

  closed(s: S2SIn): void {
    this.ins.delete(s);
    for (const [remote, set] of this.bidi) if (set.delete(s) && !set.size) this.bidi.delete(remote);
  }

  bidiReady(s: S2SIn, remote: string): void {
    let set = this.bidi.get(remote);
    if (!set) this.bidi.set(remote, (set = new Set()));
    set.add(s);
  }

  private stopped = false;

  stop(): void {
    this.stopped = true;
    this.server?.close();
    this.tlsServer?.close();
    for (const s of this.ins) s.shutdown();
    for (const o of this.outs.values()) o.close();
  }
}

/** Listen on `port` (0 when it cannot: logged, the node runs on without it). */
async function listenOn(server: net.Server, port: number, host: string | undefined, log: Core['log'], name: string): Promise<number> {
  try {
    return await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      // a burst of dialback callbacks (many remote domains at once) must not overflow the accept queue
      server.listen({ port, host, backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
    });
  } catch (err) {
    log.error({ err, port }, `s2s: cannot listen; other servers cannot reach this node there (${name})`);
    return 0;
  }
}

/** How a node of a cluster finds the node that sends to a remote domain (server.ts wires the cluster's). */
export interface S2SPlacement {
  /** this node's name */
  readonly node: string;
  ownerOf(domain: string): string | Promise<string>;
  forward(node: string, xml: string, hop: number): void;
  /** this node's stream to `domain` ended */
  released(domain: string): void;
}

/** how long a remote domain that refused our SASL EXTERNAL gets dialback alone */
const EXTERNAL_REFUSAL_MS = 10 * 60_000;

/** a stanza handed from node to node this often is sent by the node holding it (views differ for a moment after a death) */
const MAX_HOPS = 3;
