// One outgoing server-to-server stream to a remote domain (RFC 6120 §10.4, XEP-0178,
// XEP-0220): resolve (resolve.ts), connect, TLS (direct, XEP-0368, or STARTTLS when
// offered; the certificate checked when s2s.require_valid_certs), then SASL EXTERNAL
// for our own domain when the peer offers it (it does when our certificate verifies
// there), else dialback (<db:result/>), and dialback for each other local domain that
// sends (our services'); stanzas go once their domain is valid.
// Until then they wait, bounded (s2s.queue_max); if the stream cannot be made they are
// bounced: remote-server-not-found when the domain does not resolve, else
// remote-server-timeout (RFC 6120 §8.3.3.16/17). The stream also carries <db:verify/>
// questions for our incoming streams (XEP-0220 §2.1.2) before it is authenticated.
import net from 'node:net';
import tls from 'node:tls';
import type { Element } from '../xml/index.js';
import { StreamParser } from '../xml/parser.js';
import { StanzaError } from '../api/errors.js';
import { NS_SASL, NS_STREAM, NS_TLS } from '../stream/ns.js';
import { tryJid } from '../jid.js';
import { dialbackKey, dialbackName, dialbackPrefixes, NS_BIDI, NS_BIDI_FEATURE, NS_DIALBACK, NS_SERVER } from './dialback.js';
import { NoSuchDomain, resolveServer, type Target } from './resolve.js';
import type { S2SHost, VerifyResult } from './types.js';
import { S2S_SECURE_OPTIONS } from './certs.js';

type State = 'resolving' | 'connecting' | 'open' | 'closed';

interface Waiting {
  stanza: Element;
  xml: string;
}

export class S2SOut {
  private state: State = 'resolving';
  private socket: net.Socket | undefined;
  private parser: StreamParser | undefined;
  private streamId = '';
  private prefixes = new Set<string>(['db']);
  private secure = false;
  /** XEP-0288: we asked for a bidirectional stream; the remote then sends its stanzas to us on it too */
  private bidi = false;
  /** SASL EXTERNAL for our domain: not tried, under way, done (the stream restarted), refused */
  private external: 'no' | 'pending' | 'done' | 'failed' = 'no';
  /** local domains by dialback state on this stream */
  private readonly auth = new Map<string, 'pending' | 'valid'>();
  /** stanzas waiting for their local domain's dialback, or for the stream */
  private readonly waiting = new Map<string, Waiting[]>();
  private queued = 0;
  private readonly verifies = new Map<string, { resolve: (r: VerifyResult) => void; xml: string }>();
  private idle: NodeJS.Timeout | undefined;
  private failure: StanzaError | undefined;

  constructor(
    private readonly host: S2SHost,
    readonly remote: string,
    /** try SASL EXTERNAL when offered (false: the remote refused it lately, dialback only) */
    private readonly tryExternal = true,
  ) {
    // from now until a local domain is valid (or the stream ends): bounded, whatever the peer sends
    this.deadline = setTimeout(() => {
      if (![...this.auth.values()].includes('valid') && this.state !== 'closed')
        this.fail(new StanzaError('remote-server-timeout', `no stream to ${this.remote} in time`));
    }, host.settings().connect_timeout * 3000);
    this.deadline.unref();
    this.connect().catch((err: unknown) => {
      this.host.log.error({ err, remote }, 's2s: connecting failed');
      this.fail(new StanzaError('remote-server-timeout', `could not connect to ${remote}`));
    });
  }

  private readonly deadline: NodeJS.Timeout;

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** has some local domain been authenticated on this stream? */
  get authenticated(): boolean {
    for (const v of this.auth.values()) if (v === 'valid') return true;
    return false;
  }

  /** Send a stanza from `from` (a local domain) now, or once that domain is authenticated. */
  send(stanza: Element, fromDomain: string): void {
    if (this.state === 'closed') return this.host.bounce(stanza, this.failure ?? new StanzaError('remote-server-timeout'));
    const xml = serializeForServer(stanza);
    if (this.auth.get(fromDomain) === 'valid') return this.write(xml);
    if (this.queued >= this.host.settings().queue_max)
      return this.host.bounce(stanza, new StanzaError('resource-constraint', `too many stanzas wait for ${this.remote}`, 'wait'));
    const list = this.waiting.get(fromDomain) ?? [];
    list.push({ stanza, xml });
    this.waiting.set(fromDomain, list);
    this.queued++;
    if (this.state === 'open' && !this.auth.has(fromDomain)) this.dialback(fromDomain);
  }

  /** Ask the remote (authoritative) server whether it sent a dialback key (XEP-0220 step 2); 'timeout' after VERIFY_MS. */
  verify(from: string, id: string, key: string): Promise<VerifyResult> {
    if (this.state === 'closed') return Promise.resolve(this.failedAs());
    const k = `${from} ${id}`;
    if (this.verifies.size >= MAX_VERIFIES && !this.verifies.has(k)) return Promise.resolve('busy');
    return new Promise((resolve) => {
      const xml = `<db:verify from='${esc(from)}' to='${esc(this.remote)}' id='${esc(id)}'>${esc(key)}</db:verify>`;
      this.verifies.get(k)?.resolve('invalid');
      const timer = setTimeout(() => {
        if (this.verifies.get(k)?.xml !== xml) return;
        this.verifies.delete(k);
        resolve('timeout');
      }, VERIFY_MS);
      timer.unref();
      this.verifies.set(k, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        xml,
      });
      if (this.state === 'open') this.write(xml, false);
    });
  }

  private async connect(): Promise<void> {
    let targets: Target[];
    try {
      targets = await resolveServer(this.remote, this.host.settings().hosts);
    } catch (e) {
      const text = e instanceof NoSuchDomain ? e.message : `${this.remote} could not be resolved`;
      return this.fail(new StanzaError('remote-server-not-found', text));
    }
    // the negotiation deadline (or a stop) may have ended this stream while DNS answered
    if ((this.state as State) === 'closed') return;
    this.state = 'connecting';
    for (const t of targets) {
      const socket = await tryConnect(t, this.host.settings().connect_timeout * 1000);
      if ((this.state as State) === 'closed') return void socket?.destroy();
      if (!socket) continue;
      if (!t.tls) return this.attach(socket);
      // direct TLS (XEP-0368): the same checks as after STARTTLS; a failure tries the next target
      const secure = await this.handshake(socket);
      if ((this.state as State) === 'closed') return void secure?.destroy();
      if (secure) return this.attach(secure);
    }
    this.fail(new StanzaError('remote-server-timeout', `could not connect to ${this.remote}`));
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    this.secure = socket instanceof tls.TLSSocket;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (socket === this.socket) this.fail(new StanzaError('remote-server-timeout', `the stream to ${this.remote} ended`));
    });
    this.openStream(socket);
  }

  private openStream(socket: net.Socket): void {
    // a parser goes quiet once replaced (what follows <proceed/> in the same read is not read)
    const parser: StreamParser = new StreamParser(
      {
        onOpen: (_name, attrs) => {
          if (this.parser !== parser) return;
          this.streamId = attrs.id ?? '';
          this.prefixes = dialbackPrefixes(attrs);
          if (!this.prefixes.size) this.prefixes.add('db');
        },
        onElement: (el) => this.parser === parser && this.element(el),
        onClose: () => this.parser === parser && this.close(),
        onError: () => this.parser === parser && this.close('not-well-formed'),
      },
      { maxStanzaSize: this.host.settings().max_stanza_size, framed: false },
    );
    this.parser = parser;
    socket.removeAllListeners('data');
    socket.on('data', (b: Buffer) => {
      this.touch();
      parser.write(b);
    });
    socket.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS_SERVER}' xmlns:stream='${NS_STREAM}' xmlns:db='${NS_DIALBACK}' from='${esc(this.host.domain)}' to='${esc(this.remote)}' version='1.0' xml:lang='en'>`,
    );
    this.touch();
  }

  private element(el: Element): void {
    if (el.name === 'stream:features') return this.features(el);
    if (el.name === 'proceed' && el.attrs.xmlns === NS_TLS) return this.startTls();
    if (el.name === 'failure' && el.attrs.xmlns === NS_TLS) return this.close();
    if (el.attrs.xmlns === NS_SASL && (el.name === 'success' || el.name === 'failure')) return this.externalAnswer(el.name === 'success');
    if (el.name === 'stream:error') {
      this.host.log.info({ remote: this.remote, error: el.getChildElements()[0]?.name }, 's2s: stream error from the remote');
      return this.close();
    }
    const db = dialbackName(el, this.prefixes);
    if (db === 'result') {
      // a request (no type) on our stream (XEP-0288 lets a peer multiplex): not taken here;
      // the peer's domains reach us on streams it opens
      if (!el.attrs.type)
        return this.write(
          `<db:result from='${esc((el.attrs.to ?? '').toLowerCase())}' to='${esc((el.attrs.from ?? '').toLowerCase())}' type='error'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>`,
          false,
        );
      return this.dialbackAnswer(el);
    }
    if (db === 'verify') {
      // the answer to a question we asked on this stream: the remote about the key of one of our domains
      if ((el.attrs.from ?? '').toLowerCase() !== this.remote) return;
      const k = `${(el.attrs.to ?? '').toLowerCase()} ${el.attrs.id ?? ''}`;
      const v = this.verifies.get(k);
      if (!v) return; // nothing asked (XEP-0220 §3.1: unsolicited answers are dropped)
      this.verifies.delete(k);
      // an error answer: the server does not know that domain (XEP-0220 §2.4)
      v.resolve(el.attrs.type === 'valid' ? 'valid' : el.attrs.type === 'error' ? 'not-found' : 'invalid');
    }
    if (this.bidi && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) return this.stanzaIn(el);
    // anything else on an outgoing stream is ignored (one direction per stream, RFC 6120 §4.5)
  }

  /**
   * A stanza the remote sends back on a bidirectional stream (XEP-0288): from the remote
   * domain itself (the server we resolved and connected to, its certificate checked as
   * s2s.require_valid_certs says), to a local domain authenticated on this stream. Its
   * other domains would need their own proof (XEP-0288 §4), which is not asked here: they
   * use their own streams.
   */
  private stanzaIn(el: Element): void {
    const from = tryJid(el.attrs.from);
    const to = tryJid(el.attrs.to);
    if (!from || !to || from.domain !== this.remote || this.auth.get(to.domain) !== 'valid') {
      this.host.log.info({ remote: this.remote, from: el.attrs.from, to: el.attrs.to }, 's2s: a stanza on our bidirectional stream for a pair it did not authenticate');
      return this.close('invalid-from');
    }
    if (el.attrs.xmlns === NS_SERVER) delete el.attrs.xmlns;
    this.touch();
    this.host.metrics.in(from.domain);
    const r = this.host.route(el, from.full, to.full);
    if (!r) return;
    // as on incoming streams: past MAX_IN_FLIGHT stanzas being routed, reading pauses
    if (++this.inFlight === MAX_IN_FLIGHT) this.socket?.pause();
    void r.finally(() => {
      if (--this.inFlight === MAX_IN_FLIGHT / 2) this.socket?.resume();
    });
  }

  private inFlight = 0;

  private features(f: Element): void {
    const starttls = f.getChild('starttls', NS_TLS);
    if (!this.secure && starttls) {
      this.socket!.write(`<starttls xmlns='${NS_TLS}'/>`);
      return;
    }
    if (!this.secure && this.host.settings().require_valid_certs) {
      return this.fail(new StanzaError('remote-server-timeout', `${this.remote} offers no TLS`, 'cancel'));
    }
    // XEP-0288: asked for once TLS is done (or was not offered), before authenticating
    if (!this.bidi && f.getChild('bidi', NS_BIDI_FEATURE)) {
      this.bidi = true;
      this.socket!.write(`<bidi xmlns='${NS_BIDI}'/>`);
    }
    // XEP-0178: the peer offers EXTERNAL when our certificate verifies for our domain there
    const mechanisms = f.getChild('mechanisms', NS_SASL)?.getChildren('mechanism').map((m) => m.getText().trim()) ?? [];
    if (this.secure && this.external === 'no' && this.tryExternal && this.host.settings().sasl_external && mechanisms.includes('EXTERNAL')) {
      this.external = 'pending';
      // the authorization identity: our domain (what the header says, RFC 6120 §6.4.6 allows '=')
      this.socket!.write(`<auth xmlns='${NS_SASL}' mechanism='EXTERNAL'>${Buffer.from(this.host.domain).toString('base64')}</auth>`);
      return;
    }
    this.ready();
  }

  /** SASL EXTERNAL answered: success restarts the stream (RFC 6120 §6.4.6); a failure falls back to dialback. */
  private externalAnswer(success: boolean): void {
    if (this.external !== 'pending') return;
    this.host.metrics.external('out', success ? 'success' : 'failure');
    if (!success) {
      this.external = 'failed';
      this.host.log.info({ remote: this.remote }, 's2s: SASL EXTERNAL refused; dialback instead');
      return this.ready();
    }
    this.external = 'done';
    this.openStream(this.socket!);
  }

  /** The stream can carry dialback and, for authenticated domains, stanzas. */
  private ready(): void {
    this.state = 'open';
    if (this.external === 'done' && !this.auth.has(this.host.domain)) this.validated(this.host.domain);
    for (const v of this.verifies.values()) this.write(v.xml, false);
    for (const domain of this.waiting.keys()) if (!this.auth.has(domain)) this.dialback(domain);
  }

  /** `domain` may send on this stream now: what waited goes. */
  private validated(domain: string): void {
    this.auth.set(domain, 'valid');
    const list = this.waiting.get(domain) ?? [];
    this.waiting.delete(domain);
    this.queued -= list.length;
    for (const w of list) this.write(w.xml);
  }

  private startTls(): void {
    const raw = this.socket!;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    this.parser = undefined;
    void this.handshake(raw).then((secure) => {
      if (this.state === 'closed') return void secure?.destroy();
      if (!secure) return this.fail(new StanzaError('remote-server-timeout', `TLS with ${this.remote} failed`, 'cancel'));
      this.attach(secure);
    });
  }

  /**
   * TLS as a client over `raw` (after <proceed/>, or from the first byte), presenting our
   * certificate (XEP-0178); with s2s.require_valid_certs the peer's must verify for the
   * remote domain (system CAs and s2s.ca_file, RFC 6125 name). undefined: failed (logged).
   */
  private handshake(raw: net.Socket): Promise<tls.TLSSocket | undefined> {
    return new Promise((resolve) => {
      const secure = tls.connect({
        socket: raw,
        servername: this.remote,
        ALPNProtocols: ['xmpp-server'],
        rejectUnauthorized: false,
        ca: this.host.ca,
        secureOptions: S2S_SECURE_OPTIONS,
        ...this.host.clientCertificate(),
      });
      const timer = setTimeout(() => {
        secure.destroy();
        resolve(undefined);
      }, this.host.settings().connect_timeout * 1000);
      timer.unref();
      secure.on('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        if (this.host.settings().require_valid_certs) {
          const bad = !secure.authorized || tls.checkServerIdentity(this.remote, secure.getPeerCertificate());
          if (bad) {
            this.host.log.info({ remote: this.remote, reason: secure.authorizationError ?? 'name' }, 's2s: certificate not valid');
            secure.destroy();
            return resolve(undefined);
          }
        }
        resolve(secure);
      });
    });
  }

  /** XEP-0220 step 1: our key for this local domain, on this stream's id. */
  private dialback(domain: string): void {
    this.auth.set(domain, 'pending');
    const key = dialbackKey(this.host.settings().dialback_secret, this.remote, domain, this.streamId);
    this.write(`<db:result from='${esc(domain)}' to='${esc(this.remote)}'>${key}</db:result>`, false);
  }

  /** XEP-0220 step 4: valid sends what waited; anything else bounces it. */
  private dialbackAnswer(el: Element): void {
    const domain = el.attrs.to ?? '';
    if (this.auth.get(domain) !== 'pending') return;
    if (el.attrs.type === 'valid') {
      this.host.metrics.dialback('out', 'valid');
      return this.validated(domain);
    }
    const list = this.waiting.get(domain) ?? [];
    this.waiting.delete(domain);
    this.queued -= list.length;
    this.auth.delete(domain);
    this.host.metrics.dialback('out', el.attrs.type === 'invalid' ? 'invalid' : 'error');
    const err = new StanzaError('remote-server-timeout', `${this.remote} did not accept us (dialback ${el.attrs.type ?? 'answer'})`);
    for (const w of list) this.host.bounce(w.stanza, err);
  }

  private write(xml: string, stanza = true): void {
    if (!this.socket || this.state === 'closed') return;
    this.socket.write(xml);
    // a peer that does not read does not make us hold its traffic without end
    if (this.socket.writableLength > this.host.settings().outbound_buffer)
      return this.fail(new StanzaError('remote-server-timeout', `${this.remote} does not read what is sent`));
    if (stanza) this.host.metrics.out(this.remote, xml.length);
    this.touch();
  }

  private touch(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.close(), this.host.settings().idle_timeout * 1000);
    this.idle.unref();
  }

  /** End the stream: an idle one quietly; what still waits is bounced. */
  close(condition?: 'not-well-formed' | 'invalid-from'): void {
    if (this.state === 'closed') return;
    const socket = this.socket;
    const graceful = socket !== undefined && !socket.destroyed;
    if (graceful) {
      // our last words go out; the socket goes when the peer closes, or after 2 s
      socket.end(
        condition
          ? `<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`
          : '</stream:stream>',
      );
      setTimeout(() => socket.destroy(), 2000).unref();
    }
    this.fail(new StanzaError('remote-server-timeout', `the stream to ${this.remote} ended`), !graceful);
  }

  /** why questions on this stream went unanswered: its domain did not resolve, or it could not be made or broke */
  private failedAs(): VerifyResult {
    return this.failure?.condition === 'remote-server-not-found' ? 'not-found' : 'unreachable';
  }

  /** stanzas waiting here for `domain`'s authentication (a later one must not overtake them on another stream) */
  hasWaiting(domain: string): boolean {
    return (this.waiting.get(domain)?.length ?? 0) > 0;
  }

  private fail(err: StanzaError, destroy = true): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failure = err;
    clearTimeout(this.idle);
    clearTimeout(this.deadline);
    if (destroy) this.socket?.destroy();
    for (const v of this.verifies.values()) v.resolve(this.failedAs());
    this.verifies.clear();
    // refused EXTERNAL and then closed (as XEP-0178 has the receiving server do): what
    // waits goes to a new stream that authenticates by dialback, once
    const retry = this.external === 'failed' && !this.authenticated;
    if (retry) this.host.externalRefused(this.remote);
    const waiting = [...this.waiting].flatMap(([from, list]) => list.map((w) => ({ from, stanza: w.stanza })));
    this.waiting.clear();
    this.queued = 0;
    this.host.gone(this);
    if (retry && waiting.length) this.host.requeue(this.remote, waiting);
    else for (const w of waiting) this.host.bounce(w.stanza, err);
  }
}

function tryConnect(t: Target, timeoutMs: number): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(undefined);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

const esc = (s: string): string => s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
/** questions one outgoing stream may have waiting, and how long one waits */
const MAX_VERIFIES = 1000;
const VERIFY_MS = 30_000;
/** stanzas the remote sent back on a bidirectional stream being routed at once, before reading pauses */
const MAX_IN_FLIGHT = 64;

/** A stanza in the server namespace: a client's 'jabber:client' declaration goes (RFC 6120 §4.8.3). */
export function serializeForServer(stanza: Element): string {
  const ns = stanza.attrs.xmlns;
  if (ns === undefined || ns === NS_SERVER) return stanza.toString();
  if (ns !== 'jabber:client') return stanza.toString();
  delete stanza.attrs.xmlns;
  const xml = stanza.toString();
  stanza.attrs.xmlns = ns;
  return xml;
}
