// One incoming server-to-server stream (RFC 6120, XEP-0178, XEP-0220): header for one
// of our domains, STARTTLS (or direct TLS, XEP-0368), then either SASL EXTERNAL, offered
// when the peer's certificate verifies for the domain its header names (XEP-0178), or
// dialback: a <db:result/> for a domain the peer's certificate verifies for is valid
// at once (XEP-0344); any other is checked with the sending
// domain's authoritative server over our outgoing stream to it (<db:verify/>). With
// s2s.require_valid_certs (the default) that outgoing stream only talks to a server
// whose certificate verifies for the domain (out.ts), so the answer comes from the
// domain itself (XEP-0344's dialback over verified TLS), and this stream must be
// encrypted before dialback. A <db:verify/> for a key we gave is answered from the key
// itself. Stanzas then come in for (from, to) pairs that were validated; any other
// 'from' is a stream error (invalid-from, §8.1.2.2).
import type { Element } from '../xml/index.js';
import { StreamParser } from '../xml/parser.js';
import { tryJid } from '../jid.js';
import { randomToken } from '../random.js';
import type { StreamErrorCondition } from '../api/errors.js';
import type { Transport } from '../transport/types.js';
import type { TlsMaterial } from '../tls.js';
import type { Config } from '../config/schema.js';
import { checkHeader, streamErrorXml } from '../stream/header.js';
import { NS_SASL, NS_STREAM, NS_TLS } from '../stream/ns.js';
import { RateLimiter } from '../stream/rate.js';
import { certifies } from './certs.js';
import { dialbackKey, dialbackName, dialbackPrefixes, sameKey, NS_BIDI, NS_BIDI_FEATURE, NS_DIALBACK, NS_DIALBACK_FEATURE, NS_SERVER } from './dialback.js';
import type { S2SHost, VerifyResult } from './types.js';

/** What an incoming stream needs besides the common host. */
export interface S2SInHost extends S2SHost {
  /** our certificate for STARTTLS, asking for the peer's (trusting s2s.ca_file too) */
  serverTls(): TlsMaterial;
  rateLimits(): Config['rate_limits'];
  /** a domain this server answers for (its own and its services') */
  serves(domain: string): boolean;
  /** ask `remote`'s authoritative server about a key (our outgoing stream to it) */
  verify(remote: string, local: string, id: string, key: string): Promise<VerifyResult>;
  /** may `domain` authenticate at all (s2s.blacklist / whitelist)? */
  allowedPeer(domain: string): boolean;
  /** a bidirectional stream (XEP-0288) authenticated `remote`: it can carry our stanzas to it */
  bidiReady(s: S2SIn, remote: string): void;
  /** route an incoming stanza; a promise when routing waits on something (the stream paces itself on it) */
  route(stanza: Element, from: string, to: string): Promise<void> | void;
  closed(s: S2SIn): void;
}

export class S2SIn {
  private parser: StreamParser;
  private id = '';
  private prefixes = new Set<string>(['db']);
  /** the domain the peer's header names (its 'from'), and ours it asked for */
  private peer = '';
  private to = '';
  private open = true;
  /** XEP-0288: the peer asked for a bidirectional stream (after TLS, if it used TLS) */
  private bidi = false;
  /** SASL EXTERNAL: offered on this stream / done (the peer then restarts the stream) */
  private externalOffered = false;
  private external = false;
  /** EXTERNAL with no initial response: the empty challenge went, the <response/> is awaited (RFC 6120 §6.4.2) */
  private challenged = false;
  /** after <success/>, until the peer's new header: nothing of ours may go on this stream */
  private restarting = false;
  /** the first remote domain authenticated here: the rate limit's and the metrics' name for the stream */
  private authDomain = '';
  /** bumped by STARTTLS: a dialback check begun before it does not count after it (RFC 6120 §5.4.3.3) */
  private generation = 0;
  /** reading paused for: stanzas in flight, the rate limit */
  private readonly pausedFor = new Set<'flight' | 'rate'>();
  /** stanzas read in the same chunk as the bytes that went over the rate: handled when it allows (at most a read's worth) */
  private held: (Element | 'close')[] = [];
  private readonly limiter: RateLimiter;
  /** "remote local" pairs validated on this stream */
  private readonly valid = new Set<string>();
  private readonly pending = new Set<string>();
  /** stanzas routed and not settled: past a bound, reading pauses (TCP backpressure, not memory) */
  private inFlight = 0;
  /** a stream must authenticate a pair within AUTH_TIMEOUT_MS, or it goes */
  private readonly authTimer: NodeJS.Timeout;

  constructor(
    private readonly host: S2SInHost,
    private readonly transport: Transport,
  ) {
    this.parser = this.newParser();
    this.limiter = new RateLimiter(() => this.host.rateLimits(), 's2s');
    this.authTimer = setTimeout(() => {
      if (!this.valid.size) this.fail('connection-timeout', 'no dialback in time');
    }, AUTH_TIMEOUT_MS);
    this.authTimer.unref();
    transport.setHandler({
      data: (chunk) => {
        this.host.metrics.inBytes(this.authDomain, chunk.length);
        const wait = this.limiter.take(chunk.length, 0);
        if (wait > 0) this.pauseFor('rate', wait);
        this.parser.write(chunk);
      },
      closed: () => this.end(),
      overflow: () => this.fail('policy-violation', 'you do not read what is sent'),
    });
  }

  /** has some (from, to) pair been authenticated on this stream? */
  get authenticated(): boolean {
    return this.valid.size > 0;
  }

  /** a parser whose callbacks go quiet once another replaced it (what follows <starttls/> in the same read is not read) */
  private newParser(): StreamParser {
    const p: StreamParser = new StreamParser(
      {
        onOpen: (name, attrs) => this.parser === p && this.header(name, attrs),
        onElement: (el) => this.parser === p && this.element(el),
        // (behind what waits for the rate limit, so that it is handled first)
        onClose: () => this.parser === p && (this.held.length || this.pausedFor.has('rate') ? this.held.push('close') : this.closeStream()),
        onError: (condition, text) => this.parser === p && this.fail(condition, text),
      },
      { maxStanzaSize: this.host.settings().max_stanza_size, framed: false },
    );
    return p;
  }

  private header(name: string, attrs: Record<string, string>): void {
    const to = attrs.to?.toLowerCase().replace(/\.$/, '') ?? this.host.domain;
    this.id = randomToken(12);
    const bad = checkHeader(name, attrs, NS_SERVER, 'content namespace must be jabber:server');
    const reply = (from: string): void =>
      this.transport.write(
        `<?xml version='1.0'?><stream:stream xmlns='${NS_SERVER}' xmlns:stream='${NS_STREAM}' xmlns:db='${NS_DIALBACK}' id='${this.id}' from='${from}'${attrs.from ? ` to='${escapeAttr(attrs.from)}'` : ''} version='1.0' xml:lang='en'>`,
      );
    if (bad) {
      reply(this.host.domain);
      return this.fail(bad.condition, bad.text);
    }
    if (!this.host.serves(to)) {
      reply(this.host.domain);
      return this.fail('host-unknown', `this server does not serve ${to}`);
    }
    this.peer = (attrs.from ?? '').toLowerCase();
    this.to = to;
    this.restarting = false;
    this.prefixes = dialbackPrefixes(attrs);
    if (!this.prefixes.size) this.prefixes.add('db');
    reply(to);
    const starttls = this.transport.secure
      ? ''
      : `<starttls xmlns='${NS_TLS}'>${this.host.settings().require_valid_certs ? '<required/>' : ''}</starttls>`;
    // XEP-0178: EXTERNAL only where the certificate already says the peer is who its header claims
    this.externalOffered = !this.external && this.host.settings().sasl_external && this.mayBe(this.peer) && certifies(this.transport.tlsSocket, this.peer);
    const sasl = this.externalOffered ? `<mechanisms xmlns='${NS_SASL}'><mechanism>EXTERNAL</mechanism></mechanisms>` : '';
    this.transport.write(
      `<stream:features>${starttls}${sasl}<dialback xmlns='${NS_DIALBACK_FEATURE}'><errors/></dialback><bidi xmlns='${NS_BIDI_FEATURE}'/></stream:features>`,
    );
  }

  /** a remote domain a peer may authenticate as: a domain name, not ours, not an address, allowed by the policy */
  private mayBe(domain: string): boolean {
    return isDomain(domain) && !this.host.serves(domain) && !/^[\d.]+$|:/.test(domain) && this.host.allowedPeer(domain);
  }

  /**
   * RFC 6120 §6.4, XEP-0178: the peer authenticates as the domain its certificate names.
   * A failure ends the stream (XEP-0178 §3); the peer may come back with dialback.
   */
  private auth(el: Element): void {
    const failure = (condition: string): void => {
      this.host.metrics.external('in', 'failure');
      this.externalOffered = false;
      this.challenged = false;
      this.transport.write(`<failure xmlns='${NS_SASL}'><${condition}/></failure>`);
      this.close();
    };
    if (el.name === 'response') {
      if (!this.challenged) return this.fail('policy-violation', 'no SASL exchange is under way');
      this.challenged = false;
    } else if (!this.externalOffered || el.attrs.mechanism !== 'EXTERNAL') return failure('invalid-mechanism');
    const text = el.getText().trim();
    // no initial response: an empty challenge, and the answer comes in <response/> (RFC 6120 §6.4.2)
    if (el.name === 'auth' && text === '') {
      this.challenged = true;
      return this.transport.write(`<challenge xmlns='${NS_SASL}'/>`);
    }
    let authzid = '';
    if (text && text !== '=') {
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return failure('incorrect-encoding');
      authzid = Buffer.from(text, 'base64').toString('utf8').toLowerCase();
    }
    // the identity is the header's 'from'; an authorization identity, if any, must be the same
    if (authzid && authzid !== this.peer) return failure('invalid-authzid');
    if (!this.mayBe(this.peer) || !certifies(this.transport.tlsSocket, this.peer)) return failure('not-authorized');
    this.external = true;
    this.externalOffered = false;
    // nothing of ours between <success/> and the peer's new header (it resets its parser there)
    this.restarting = true;
    this.authenticatedPair(this.peer, this.to);
    this.host.metrics.external('in', 'success');
    this.transport.write(`<success xmlns='${NS_SASL}'/>`);
    // the peer opens a new stream on the same connection (RFC 6120 §6.4.6); what it sent
    // after <auth/> in the same read belonged to the old one
    this.held = [];
    this.parser = this.newParser();
  }

  /** the stream ends, our side first (after a SASL failure) */
  private close(): void {
    if (!this.open) return;
    this.transport.write('</stream:stream>');
    this.end();
    this.transport.end();
  }

  private pauseFor(reason: 'flight' | 'rate', ms = 0): void {
    if (reason === 'rate' && !this.pausedFor.has('rate')) this.host.metrics.rateLimited();
    if (!this.pausedFor.size) this.transport.pause();
    this.pausedFor.add(reason);
    if (ms > 0) setTimeout(() => this.resumeFor(reason), ms).unref();
  }

  private resumeFor(reason: 'flight' | 'rate'): void {
    if (!this.pausedFor.delete(reason)) return;
    // what was read before the pause goes first, as long as the rate allows
    while (this.held.length && !this.pausedFor.has('rate') && this.open) {
      const next = this.held.shift()!;
      if (next === 'close') this.closeStream();
      else this.handle(next);
    }
    if (!this.pausedFor.size && this.open) this.transport.resume();
  }

  private element(el: Element): void {
    if (!this.open) return;
    if (this.pausedFor.has('rate') || this.held.length) return void this.held.push(el);
    this.handle(el);
  }

  private handle(el: Element): void {
    if (el.name === 'starttls' && el.attrs.xmlns === NS_TLS) return this.startTls();
    if ((el.name === 'auth' || el.name === 'response') && el.attrs.xmlns === NS_SASL) return this.auth(el);
    if (el.name === 'abort' && el.attrs.xmlns === NS_SASL && this.challenged) {
      this.challenged = false;
      return this.transport.write(`<failure xmlns='${NS_SASL}'><aborted/></failure>`);
    }
    if (el.name === 'bidi' && el.attrs.xmlns === NS_BIDI) {
      this.bidi = true;
      for (const pair of this.valid) this.host.bidiReady(this, pair.slice(0, pair.indexOf(' ')));
      return;
    }
    const db = dialbackName(el, this.prefixes);
    if (db === 'result') return void this.result(el);
    if (db === 'verify') return this.verify(el);
    const ns = el.attrs.xmlns;
    if ((el.name === 'message' || el.name === 'presence' || el.name === 'iq') && (ns === undefined || ns === NS_SERVER))
      return this.stanza(el);
    this.fail('unsupported-stanza-type', `<${el.name}/> is not handled here`);
  }

  private startTls(): void {
    if (this.transport.secure || !this.transport.canStartTls) return this.fail('policy-violation', 'TLS is already on');
    this.transport.writeNow(`<proceed xmlns='${NS_TLS}'/>`);
    this.parser = this.newParser();
    // a new stream (RFC 6120 §5.4.3.3): nothing of the old one holds, nor what was sent
    // after <starttls/> in the clear, nor a dialback check begun before
    this.valid.clear();
    this.bidi = false;
    this.held = [];
    this.pending.clear();
    this.generation++;
    this.transport.startTls(
      this.host.serverTls(),
      (err) => {
        if (err) this.transport.destroy();
      },
      { requestCert: true },
    );
  }

  /** XEP-0220 steps 1–4 on the receiving side. */
  private async result(el: Element): Promise<void> {
    const from = (el.attrs.from ?? '').toLowerCase();
    const to = (el.attrs.to ?? '').toLowerCase();
    const key = el.getText().trim();
    const answer = (type: string, extra = ''): void =>
      this.transport.write(`<db:result from='${escapeAttr(to)}' to='${escapeAttr(from)}' type='${type}'>${extra}</db:result>`);
    if (!this.host.serves(to))
      return answer('error', `<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    // a key is hex (XEP-0185): nothing else is carried into the question we ask for it
    if (!isDomain(from) || !/^[0-9a-fA-F]{16,128}$/.test(key))
      return this.fail('improper-addressing', 'a dialback request names a domain and holds a key');
    if (this.host.serves(from) || /^[\d.]+$|:/.test(from))
      return answer('error', `<error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    if (!this.host.allowedPeer(from)) {
      this.host.metrics.dialback('in', 'error');
      return answer('error', `<error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    }
    if (this.host.settings().require_valid_certs && !this.transport.secure)
      return answer('error', `<error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    const pair = `${from} ${to}`;
    if (this.valid.has(pair) || this.pending.has(pair)) return;
    // XEP-0344: a certificate that verifies for the sending domain is proof enough (no callback)
    if (certifies(this.transport.tlsSocket, from)) {
      this.authenticatedPair(from, to);
      this.host.metrics.dialback('in', 'valid');
      return answer('valid');
    }
    if (this.pending.size >= MAX_PENDING)
      return answer('error', `<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    this.pending.add(pair);
    const generation = this.generation;
    const r = await this.host.verify(from, to, this.id, key.toLowerCase());
    // STARTTLS meanwhile: a check begun in the clear counts for nothing (the peer asks again)
    if (!this.open || generation !== this.generation) return;
    this.pending.delete(pair);
    this.host.metrics.dialback('in', r === 'valid' || r === 'invalid' ? r : 'error');
    if (r === 'invalid') {
      // the authoritative server denies it: a spoofing attempt; the stream goes (XEP-0220 §2.1.3)
      answer('invalid');
      return this.fail('not-authorized', `${from} did not confirm the key`);
    }
    if (r !== 'valid') {
      // no answer from the authoritative server: a dialback error, the stream stays (XEP-0220 §2.4)
      const [type, condition] = VERIFY_ERRORS[r];
      return answer('error', `<error type='${type}'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    }
    this.authenticatedPair(from, to);
    answer('valid');
  }

  private authenticatedPair(remote: string, local: string): void {
    this.valid.add(`${remote} ${local}`);
    // the rate limit and the metrics name the stream by what it proved, not by what its header claims
    if (!this.authDomain) {
      this.authDomain = remote;
      this.limiter.who = remote;
    }
    if (this.bidi) this.host.bidiReady(this, remote);
  }

  /**
   * XEP-0288: our stanza from `local` to `remote` over this stream, allowed for the
   * inverse of a pair the peer authenticated; false when this stream cannot carry it.
   */
  sendBidi(xml: string, local: string, remote: string): boolean {
    if (!this.open || !this.bidi || this.restarting || !this.valid.has(`${remote} ${local}`)) return false;
    this.transport.write(xml);
    return true;
  }

  /** XEP-0220 step 3: we are the authoritative server: was this key ours? */
  private verify(el: Element): void {
    const from = (el.attrs.from ?? '').toLowerCase();
    const to = (el.attrs.to ?? '').toLowerCase();
    const id = el.attrs.id ?? '';
    if (!this.host.serves(to)) {
      return this.transport.write(
        `<db:verify from='${escapeAttr(to)}' to='${escapeAttr(from)}' id='${escapeAttr(id)}' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>`,
      );
    }
    const ok = sameKey(el.getText().trim(), dialbackKey(this.host.settings().dialback_secret, from, to, id));
    this.transport.write(
      `<db:verify from='${escapeAttr(to)}' to='${escapeAttr(from)}' id='${escapeAttr(id)}' type='${ok ? 'valid' : 'invalid'}'/>`,
    );
  }

  private stanza(el: Element): void {
    const from = tryJid(el.attrs.from);
    const to = tryJid(el.attrs.to);
    if (!from || !to) return this.fail('improper-addressing', "a stanza between servers has a valid 'from' and 'to'");
    if (!this.valid.has(`${from.domain} ${to.domain}`)) {
      return this.fail(
        this.valid.size ? 'invalid-from' : 'not-authorized',
        `${from.domain} is not authenticated for ${to.domain} on this stream`,
      );
    }
    if (el.attrs.xmlns === NS_SERVER) delete el.attrs.xmlns;
    this.host.metrics.in(from.domain);
    const wait = this.limiter.take(0, 1);
    if (wait > 0) this.pauseFor('rate', wait);
    const r = this.host.route(el, from.full, to.full);
    if (!r) return;
    this.inFlight++;
    if (this.inFlight >= MAX_IN_FLIGHT) this.pauseFor('flight');
    void r.finally(() => {
      this.inFlight--;
      if (this.inFlight < MAX_IN_FLIGHT / 2) this.resumeFor('flight');
    });
  }

  private closeStream(): void {
    if (!this.open) return;
    this.transport.write('</stream:stream>');
    this.end();
    this.transport.end();
  }

  fail(condition: StreamErrorCondition, text?: string): void {
    if (!this.open) return;
    this.host.log.info({ peer: this.peer, condition, text }, 's2s: incoming stream error');
    this.transport.write(streamErrorXml(false, condition, text));
    this.transport.write('</stream:stream>');
    this.end();
    this.transport.end();
  }

  /** server stop */
  shutdown(): void {
    this.fail('system-shutdown');
  }

  private end(): void {
    if (!this.open) return;
    this.open = false;
    clearTimeout(this.authTimer);
    this.host.closed(this);
  }
}

/** the dialback error for each way the authoritative server's answer can fail to come (XEP-0220 §2.4) */
const VERIFY_ERRORS: Record<Exclude<VerifyResult, 'valid' | 'invalid'>, [string, string]> = {
  unreachable: ['cancel', 'remote-connection-failed'],
  'not-found': ['cancel', 'remote-server-not-found'],
  timeout: ['wait', 'remote-server-timeout'],
  busy: ['wait', 'remote-server-timeout'],
};

/** an incoming stream that has authenticated nothing by then is closed */
const AUTH_TIMEOUT_MS = 60_000;
/** incoming stanzas being routed at once on one stream before it stops reading */
const MAX_IN_FLIGHT = 64;
/** dialback requests one incoming stream may have waiting for their answer */
const MAX_PENDING = 8;

/** a domain name as dialback names one: no local part, no resource, no space */
const isDomain = (d: string): boolean => /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(d) && !!tryJid(d);

const escapeAttr = (s: string): string => s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
