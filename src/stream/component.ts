// XEP-0114 external components (jabber:component:accept): a bridge or bot
// connects over TCP, names the domain it serves, proves the shared secret with
// a handshake, and from then on receives every stanza addressed to that domain
// (and its subdomains) and may send from any address at it. The stream runs on
// the same parser, transport and router path as client streams; only the
// negotiation and the address rules differ.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { randomToken } from '../random.js';
import { Element } from '../xml/index.js';
import { StreamParser, type XmlErrorCondition } from '../xml/parser.js';
import { Jid, tryJid } from '../jid.js';
import { streamError, StanzaError, type StreamErrorCondition } from '../api/errors.js';
import { PendingIqs } from '../api/pending-iqs.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../router/router.js';
import type { Transport } from '../transport/types.js';
import { RateLimiter } from './rate.js';
import { Inbox } from './inbox.js';
import { checkHeader, headerTo } from './header.js';
import { NS_STREAM } from './ns.js';

export const NS_COMPONENT = 'jabber:component:accept';

/** What a component stream needs from its server. */
export interface ComponentHost {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly router: Router;
  readonly streams: Set<{ shutdown(): void; tick(now: number): void }>;
  /** the secret a domain must prove, or undefined when it may not connect */
  componentSecret(domain: string): string | undefined;
  /** take the domain; false when it is already served */
  componentUp(domain: string, stream: ComponentStream): boolean;
  componentDown(domain: string, stream: ComponentStream): void;
  /** is `domain` this component's own (its domain, or a subdomain no one else serves)? */
  componentOwns(stream: ComponentStream, domain: string): boolean;
}

type Phase = 'header' | 'handshake' | 'ready' | 'closed';

export class ComponentStream {
  readonly id = randomToken(12);
  domain = '';
  private phase: Phase = 'header';
  private readonly parser: StreamParser;
  private readonly inbox: Inbox;
  private headerSent = false;
  /** IQs we forwarded and the component has not answered: key "from\0id"; only the addresses are kept */
  private readonly pendingIqs: PendingIqs<{ from: string; to: string; id: string }>;
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly host: ComponentHost,
    private readonly transport: Transport,
  ) {
    this.parser = new StreamParser(this, { maxStanzaSize: host.config.max_stanza_size, framed: false });
    this.inbox = new Inbox(
      this,
      transport,
      () => this.host.config.limits.inbound_queue,
      new RateLimiter(() => this.host.config.rate_limits, 'component'),
      () => this.host.metrics.rateLimited.inc({ stream: 'component' }),
    );
    transport.setHandler({
      data: (chunk) => {
        if (this.phase === 'ready') {
          this.inbox.read(chunk.length);
        }
        this.parser.write(chunk);
      },
      closed: (reason) => this.teardown(reason),
      overflow: () => this.close('policy-violation', 'too much data queued for a component that does not read'),
    });
    this.pendingIqs = new PendingIqs(
      { max: () => host.config.component.max_pending_iqs, timeoutMs: () => host.config.component.iq_timeout * 1000 },
      (p) => host.router.bounce(shell(p), new StanzaError('remote-server-timeout', `${this.domain} did not answer in time`)),
    );
    host.streams.add(this);
    this.deadline = setTimeout(() => this.close('connection-timeout', 'handshake took too long'), host.config.c2s.preauth_timeout * 1000);
    this.deadline.unref();
  }

  // ---- parser callbacks ----

  onOpen(name: string, attrs: Record<string, string>): void {
    if (this.phase !== 'header') return this.close('policy-violation', 'stream restarts are not part of XEP-0114');
    const bad = checkHeader(name, attrs, NS_COMPONENT, `this port speaks ${NS_COMPONENT}`);
    if (bad) return this.close(bad.condition, bad.text);
    const to = headerTo(attrs) ?? '';
    this.domain = to;
    if (!to || tryJid(to)?.full !== to || to.includes('@') || to.includes('/'))
      return this.close('host-unknown', 'name the component domain in "to"');
    if (this.host.componentSecret(to) === undefined) {
      this.host.metrics.componentAuthFailures.inc({ reason: 'unknown-domain' });
      return this.close('host-unknown', `${to} may not connect as a component here`);
    }
    this.sendHeader();
    this.phase = 'handshake';
  }

  onElement(el: Element): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'handshake') return this.handshake(el);
    this.inbox.push(el);
  }

  /** for the inbox: stanzas are handled, and shaped, once the handshake is done */
  get open(): boolean {
    return this.phase === 'ready';
  }
  get shaped(): boolean {
    return this.phase === 'ready';
  }

  onClose(): void {
    if (this.phase === 'closed') return;
    this.transport.write('</stream:stream>');
    this.transport.end();
    this.teardown('component closed the stream');
  }

  onError(condition: XmlErrorCondition, text: string): void {
    this.close(condition, text);
  }

  // ---- handshake (XEP-0114 §3) ----

  private handshake(el: Element): void {
    if (el.name !== 'handshake') return this.close('not-authorized', 'send the handshake first');
    const secret = this.host.componentSecret(this.domain);
    const expected = createHash('sha1')
      .update(this.id + (secret ?? ''))
      .digest('hex');
    const given = Buffer.from(el.getText().trim().toLowerCase());
    if (secret === undefined || given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) {
      this.host.metrics.componentAuthFailures.inc({ reason: 'not-authorized' });
      this.log.info({ domain: this.domain, ip: this.transport.remoteAddress }, 'component handshake failed');
      return this.close('not-authorized', 'handshake does not match the secret');
    }
    if (!this.host.componentUp(this.domain, this)) {
      this.host.metrics.componentAuthFailures.inc({ reason: 'conflict' });
      return this.close('conflict', `${this.domain} is already served`);
    }
    clearTimeout(this.deadline);
    this.phase = 'ready';
    this.inbox.limiter.who = this.domain;
    this.host.metrics.components.inc();
    this.transport.write('<handshake/>');
    this.log.info({ domain: this.domain, ip: this.transport.remoteAddress }, 'component connected');
  }

  // ---- stanzas from the component ----

  handle(el: Element): void | Promise<void> {
    const name = el.name;
    const ns = el.attrs.xmlns;
    if (name !== 'message' && name !== 'presence' && name !== 'iq')
      return this.close('unsupported-stanza-type', `<${name}/> is not a stanza`);
    if (ns !== undefined && ns !== NS_COMPONENT)
      return this.close('invalid-namespace', `stanzas on a component stream are in ${NS_COMPONENT}, not ${ns}`);
    // §3: every stanza names both ends (RFC 6120 §4.9.3.12)
    if (el.attrs.from === undefined || el.attrs.to === undefined)
      return this.close('improper-addressing', "a component's stanzas need both 'from' and 'to'");
    // ... and comes from the component's own domain (or a subdomain of it that nobody else serves)
    const from = tryJid(el.attrs.from);
    if (!from || !this.host.componentOwns(this, from.domain))
      return this.close('invalid-from', `stanzas must come from an address at ${this.domain}`);
    if (ns !== undefined) delete el.attrs.xmlns;
    this.host.metrics.componentStanzas.inc({ direction: 'in' });
    const to = tryJid(el.attrs.to);
    if (!to) return this.host.router.bounce(el, new StanzaError('jid-malformed', 'invalid "to" address'));
    if (name === 'iq' && (el.attrs.type === 'result' || el.attrs.type === 'error')) this.pendingIqs.take(`${to.full}\0${el.attrs.id}`);
    return this.host.router.route(el, from, to);
  }

  // ---- stanzas to the component ----

  /** The router's handler for the component's domain. */
  deliver(stanza: Element, from: Jid, to: Jid): void {
    if (this.phase !== 'ready') return;
    if (stanza.attrs.from === undefined) stanza.attrs.from = from.full;
    if (stanza.attrs.to === undefined) stanza.attrs.to = to.full;
    const type = stanza.attrs.type;
    if (stanza.name === 'iq' && (type === 'get' || type === 'set')) {
      const waiting = { from: stanza.attrs.from, to: stanza.attrs.to, id: stanza.attrs.id ?? '' };
      if (!this.pendingIqs.add(`${waiting.from}\0${stanza.attrs.id}`, waiting)) {
        return this.host.router.bounce(
          stanza,
          new StanzaError('resource-constraint', `${this.domain} has too many unanswered requests`, 'wait'),
        );
      }
    }
    this.host.metrics.componentStanzas.inc({ direction: 'out' });
    this.transport.write(stanza.toString());
  }

  // ---- closing ----

  get log(): Logger {
    return this.host.log;
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    const from = this.domain && !/['<&"]/.test(this.domain) ? ` from='${this.domain}'` : '';
    this.transport.write(`<?xml version='1.0'?><stream:stream xmlns:stream='${NS_STREAM}' xmlns='${NS_COMPONENT}'${from} id='${this.id}'>`);
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.phase === 'closed') return;
    if (condition) {
      this.sendHeader();
      this.host.metrics.streamErrors.inc({ condition });
      this.transport.write(streamError(condition, text));
    }
    this.transport.write('</stream:stream>');
    this.transport.end();
    this.teardown(condition ?? 'closed');
  }

  shutdown(): void {
    this.close('system-shutdown', 'server shutting down');
  }

  /** Called 4 times a second: IQs the component never answered get a timeout error (and free their slot). */
  tick(now: number): void {
    this.pendingIqs.sweep(now);
  }

  private teardown(reason: string): void {
    if (this.phase === 'closed') return;
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    clearTimeout(this.deadline);
    this.host.streams.delete(this);
    this.inbox.clear();
    if (!wasReady) return;
    this.host.metrics.components.dec();
    this.host.componentDown(this.domain, this);
    this.log.info({ domain: this.domain, reason }, 'component disconnected');
    // requests it will never answer get an error now, not a client-side timeout
    for (const p of this.pendingIqs.drain())
      this.host.router.bounce(shell(p), new StanzaError('service-unavailable', `${this.domain} went away`));
  }
}

/** An IQ without its payload, to answer with an error (the payload is not kept while waiting). */
function shell(p: { from: string; to: string; id: string }): Element {
  return new Element('iq', { type: 'get', id: p.id, from: p.from, to: p.to });
}
