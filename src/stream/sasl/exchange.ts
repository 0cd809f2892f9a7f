// SASL (RFC 6120 §6, RFC 4422) on a client stream: the mechanisms offered,
// channel binding (XEP-0440, RFC 5929, RFC 9266), the exchange of challenges
// and responses, and failures (slowed per address for wrong credentials,
// bounded per stream). On success the stream restarts, authenticated.
// The same exchange runs in SASL2's elements (XEP-0388, urn:xmpp:sasl:2) on
// encrypted streams: there it also takes FAST tokens (XEP-0484, fast.ts), and
// success hands the <authenticate/> request to the stream for its inline parts
// (XEP-0386 Bind 2, XEP-0198 resumption: c2s.ts) without a restart. SCRAM's
// server-first-message carries the XEP-0474 downgrade-protection hash.
import type { Logger } from 'pino';
import type { Element } from '../../xml/index.js';
import type { StreamErrorCondition } from '../../api/errors.js';
import type { Core } from '../../core.js';
import type { Transport } from '../../transport/types.js';
import { NS_BIND2, NS_SASL, NS_SASL2, NS_SASL_CB } from '../ns.js';
import { PlainMechanism, ScramMechanism, decodeB64, type SaslContext, type SaslMechanism, type SaslStep } from './mechanisms.js';
import { HtMechanism, NS_FAST, htMechanisms } from './fast.js';

const MAX_SASL_FAILURES = 5;

/** What the exchange needs from its stream. */
export interface SaslStream {
  readonly open: boolean;
  readonly log: Logger;
  close(condition?: StreamErrorCondition, text?: string): void;
  /** success: the stream takes the user and restarts */
  authenticated(username: string): void;
  /** SASL2 success: the stream handles the request's inline parts and writes <success/> */
  authenticated2(success: Sasl2Success): void | Promise<void>;
}

/** What a SASL2 success gives the stream. */
export interface Sasl2Success {
  username: string;
  /** the mechanism's additional data with success (SCRAM's v=, HT's responder) */
  data: Buffer | undefined;
  /** the client's <authenticate/> */
  request: Element;
  /** the FAST <token/> for <success/> ('' when none was asked for or is due): issued only when called, once the login holds */
  token(): Promise<string>;
}

/** SASL2 failures hold an RFC 6120 condition in the SASL namespace, first (XEP-0388 §2.6.2) */
function failureXml(v2: boolean, condition: string, text?: string): string {
  const t = text ? `<text xml:lang='en'>${text.replace(/[<&]/g, '')}</text>` : '';
  return v2 ? `<failure xmlns='${NS_SASL2}'><${condition} xmlns='${NS_SASL}'/>${t}</failure>` : `<failure xmlns='${NS_SASL}'><${condition}/>${t}</failure>`;
}

export class SaslExchange {
  private sasl: { mech: SaslMechanism; name: string; v2: boolean; request?: Element } | undefined;

  /** a SASL2 exchange is under way: nothing but its <response/> or <abort/> may come (XEP-0388 §2.5) */
  get inSasl2(): boolean {
    return this.sasl?.v2 === true;
  }
  private failures = 0;

  constructor(
    private readonly core: Core,
    private readonly transport: Transport,
    private readonly stream: SaslStream,
  ) {}

  /**
   * The pre-auth features: mechanisms, SASL2 with what it can do inline (only on
   * encrypted streams, XEP-0388 §2.1), and the channel-binding types on TLS.
   */
  features(): string {
    const cb = this.cbTypes();
    const list = this.mechanisms()
      .map((m) => `<mechanism>${m}</mechanism>`)
      .join('');
    let out = `<mechanisms xmlns='${NS_SASL}'>${list}</mechanisms>`;
    if (this.transport.secure) {
      const inline = this.core.inlineFeatures();
      const bind = `<bind xmlns='${NS_BIND2}'><inline>${inline.bind.map((ns) => `<feature var='${ns}'/>`).join('')}</inline></bind>`;
      const fast = `<fast xmlns='${NS_FAST}'>${htMechanisms(cb)
        .map((m) => `<mechanism>${m}</mechanism>`)
        .join('')}</fast>`;
      out += `<authentication xmlns='${NS_SASL2}'>${list}<inline>${inline.sasl.join('')}${bind}${fast}</inline></authentication>`;
    }
    if (!cb.length) return out;
    return `${out}<sasl-channel-binding xmlns='${NS_SASL_CB}'>${cb.map((t) => `<channel-binding type='${t}'/>`).join('')}</sasl-channel-binding>`;
  }

  /** <auth/>, <response/> or <abort/>, of SASL (RFC 6120) or SASL2 (<authenticate/>, XEP-0388). */
  handle(el: Element): void | Promise<void> {
    const v2 = el.attrs.xmlns === NS_SASL2;
    if (el.name === (v2 ? 'authenticate' : 'auth')) return this.start(el, v2);
    if (el.name === 'response') return this.response(el, v2);
    this.sasl = undefined;
    return this.failure({ kind: 'failure', condition: 'aborted' }, v2);
  }

  private mechanisms(): string[] {
    const plus = this.cbTypes().length > 0 ? ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'] : [];
    return [...plus, 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
  }

  /** Channel-binding types advertised on this connection (XEP-0440). */
  private cbTypes(): string[] {
    const s = this.transport.tlsSocket;
    if (!s) return [];
    // tls-exporter (RFC 9266) is defined for TLS 1.3; tls-unique (RFC 5929) only for TLS 1.2
    return s.getProtocol() === 'TLSv1.3' ? ['tls-exporter', 'tls-server-end-point'] : ['tls-unique', 'tls-server-end-point'];
  }

  /**
   * Types a client may use. Besides the advertised ones we accept tls-unique on
   * TLS 1.3 too: clients built on OpenSSL's SSL_get_finished (Python's ssl, so
   * slixmpp and aioxmpp) know no other type, and would otherwise fall back to
   * the "y" flag, which RFC 5802 requires us to reject as a downgrade.
   */
  private cbAccepted(): string[] {
    const types = this.cbTypes();
    return types.length && !types.includes('tls-unique') ? [...types, 'tls-unique'] : types;
  }

  private cbData(type: string): Buffer | undefined {
    const s = this.transport.tlsSocket;
    if (!s) return undefined;
    if (type === 'tls-server-end-point') return this.core.tls.serverEndPoint;
    if (type === 'tls-exporter' && s.getProtocol() === 'TLSv1.3')
      return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    // RFC 5929 §3.1: the first Finished message of the latest handshake
    if (type === 'tls-unique') return s.isSessionReused() ? s.getFinished() : s.getPeerFinished();
    return undefined;
  }

  private context(): SaslContext {
    return {
      // SASL and SASL2 offer the same list (FAST's mechanisms are not in it: XEP-0484 §2)
      advertised: { mechanisms: this.mechanisms(), cbTypes: this.cbTypes() },
      domain: this.core.config.domain,
      lookup: (u) => this.core.storage.accounts.get(u),
      cbTypes: this.cbAccepted(),
      cbData: (t) => this.cbData(t),
      fakeSaltKey: this.core.saslSecret,
      iterations: this.core.config.sasl.scram_iterations,
    };
  }

  private start(el: Element, v2: boolean): void | Promise<void> {
    if (!this.transport.secure && (v2 || this.core.config.c2s.require_tls)) {
      return this.failure({ kind: 'failure', condition: 'encryption-required', text: 'use STARTTLS first' }, v2);
    }
    const name = el.attrs.mechanism ?? '';
    const ctx = this.context();
    let mech: SaslMechanism;
    if (v2 && htMechanisms(this.cbTypes()).includes(name)) {
      const uaId = el.getChild('user-agent', NS_SASL2)?.attrs.id;
      mech = new HtMechanism(name, this.core.fast, ctx.lookup, ctx.domain, uaId, (t) => this.cbData(t));
    } else if (!this.mechanisms().includes(name)) {
      return this.failure({ kind: 'failure', condition: 'invalid-mechanism' }, v2);
    } else if (name === 'PLAIN') {
      mech = new PlainMechanism(ctx);
    } else {
      const plusOffered = this.cbTypes().length > 0;
      mech = new ScramMechanism(ctx, name.startsWith('SCRAM-SHA-256') ? 'SHA-256' : 'SHA-1', name.endsWith('-PLUS'), plusOffered);
    }
    this.sasl = { mech, name, v2, request: v2 ? el : undefined };
    if (v2) {
      // SASL2: no <initial-response/>, no initial response; an empty one is empty data
      const ir = el.getChild('initial-response', NS_SASL2);
      if (!ir) return this.step(null);
      const t = ir.getText().replace(/\s+/g, '');
      return this.step(t === '' || t === '=' ? Buffer.alloc(0) : decodeB64(t));
    }
    const text = el.getText();
    if (text === '') return this.step(null);
    return this.step(text === '=' ? Buffer.alloc(0) : decodeB64(text.trim()));
  }

  private response(el: Element, v2: boolean): void | Promise<void> {
    if (!this.sasl || this.sasl.v2 !== v2)
      return this.failure({ kind: 'failure', condition: 'malformed-request', text: 'no authentication in progress' }, v2);
    const text = el.getText().replace(/\s+/g, '');
    return this.step(text === '' || text === '=' ? Buffer.alloc(0) : decodeB64(text));
  }

  private async step(data: Buffer | null | undefined): Promise<void> {
    const sasl = this.sasl!;
    if (data === undefined) {
      this.sasl = undefined; // a failure ends the exchange (XEP-0388: nothing of it goes on)
      return this.failure({ kind: 'failure', condition: 'incorrect-encoding' }, sasl.v2);
    }
    let step: SaslStep;
    try {
      step = await sasl.mech.step(data);
    } catch (err) {
      this.stream.log.error({ err }, 'SASL mechanism failed');
      step = { kind: 'failure', condition: 'temporary-auth-failure' };
    }
    if (!this.stream.open || this.sasl !== sasl) return;
    if (step.kind === 'challenge') {
      const ns = sasl.v2 ? NS_SASL2 : NS_SASL;
      this.transport.write(`<challenge xmlns='${ns}'>${step.data.length ? step.data.toString('base64') : sasl.v2 ? '' : '='}</challenge>`);
      return;
    }
    this.sasl = undefined;
    if (step.kind === 'failure') return this.failure(step, sasl.v2, sasl.name);
    this.core.throttle.recordSuccess(this.transport.remoteAddress);
    this.core.metrics.authSuccess.inc({ mechanism: sasl.name });
    this.stream.log.debug({ user: step.username, mechanism: sasl.name }, 'authenticated');
    if (!sasl.v2) {
      this.stream.authenticated(step.username);
      this.transport.write(`<success xmlns='${NS_SASL}'>${step.data ? step.data.toString('base64') : ''}</success>`);
      return;
    }
    const request = sasl.request!;
    const token = async (): Promise<string> => {
      try {
        return await this.fastToken(step.username, request, sasl.mech);
      } catch (err) {
        // no token is no reason to refuse a login that succeeded: the client keeps its password
        this.stream.log.error({ err }, 'FAST token not issued');
        return '';
      }
    };
    return this.stream.authenticated2({ username: step.username, data: step.data, request, token });
  }

  /**
   * XEP-0484: the <token/> for <success/>: the one asked for with <request-token/>, or,
   * after a FAST login, a new one once the used one is past half its life (rotation).
   * <fast invalidate='true'/> ends the used one.
   */
  private async fastToken(username: string, request: Element, mech: SaslMechanism): Promise<string> {
    const uaId = request.getChild('user-agent', NS_SASL2)?.attrs.id;
    if (!uaId) return '';
    const used = mech instanceof HtMechanism ? mech.used : undefined;
    const fastEl = request.getChild('fast', NS_FAST);
    const invalidate = fastEl?.attrs.invalidate === 'true' || fastEl?.attrs.invalidate === '1';
    if (used && invalidate) await this.core.fast.invalidate(username, uaId);
    const asked = request.getChild('request-token', NS_FAST)?.attrs.mechanism;
    let want: string | undefined;
    if (asked && htMechanisms(this.cbTypes()).includes(asked)) want = asked;
    else if (used && !invalidate && Date.now() > (used.iat + used.exp) / 2) want = (mech as HtMechanism).mechanism;
    if (!want) return '';
    const t = await this.core.fast.issue(username, uaId, want);
    return `<token xmlns='${NS_FAST}' expiry='${new Date(t.expiry).toISOString()}' token='${t.token}'/>`;
  }

  private failure(step: SaslStep & { kind: 'failure' }, v2: boolean, mechanism = 'none'): void | Promise<void> {
    this.core.metrics.authFailure.inc({ mechanism, condition: step.condition });
    const send = (): void => {
      if (!this.stream.open) return;
      this.transport.write(failureXml(v2, step.condition, step.text));
      if (++this.failures >= MAX_SASL_FAILURES) this.stream.close('policy-violation', 'too many authentication attempts');
    };
    // Credential failures are slowed per address; protocol errors answered at once.
    // (a failure with a username is a credential check; a downgrade or a bad request is not)
    if ((step.condition !== 'not-authorized' && step.condition !== 'account-disabled') || step.username === undefined) return send();
    this.stream.log.info({ user: step.username, mechanism }, 'authentication failed');
    const delay = this.core.throttle.recordFailure(this.transport.remoteAddress);
    if (delay <= 0) return send();
    return new Promise((resolve) => setTimeout(resolve, delay).unref()).then(send);
  }
}
