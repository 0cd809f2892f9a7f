// SASL (RFC 6120 §6, RFC 4422) on a client stream: the mechanisms offered,
// channel binding (XEP-0440, RFC 5929, RFC 9266), the exchange of challenges
// and responses, and failures (slowed per address for wrong credentials,
// bounded per stream). On success the stream restarts, authenticated.
import type { Logger } from 'pino';
import type { Element } from '../../xml/index.js';
import type { StreamErrorCondition } from '../../api/errors.js';
import type { Core } from '../../core.js';
import type { Transport } from '../../transport/types.js';
import { NS_SASL, NS_SASL_CB } from '../ns.js';
import { PlainMechanism, ScramMechanism, decodeB64, type SaslContext, type SaslMechanism, type SaslStep } from './mechanisms.js';

const MAX_SASL_FAILURES = 5;

/** What the exchange needs from its stream. */
export interface SaslStream {
  readonly open: boolean;
  readonly log: Logger;
  close(condition?: StreamErrorCondition, text?: string): void;
  /** success: the stream takes the user and restarts */
  authenticated(username: string): void;
}

export class SaslExchange {
  private sasl: { mech: SaslMechanism; name: string } | undefined;
  private failures = 0;

  constructor(
    private readonly core: Core,
    private readonly transport: Transport,
    private readonly stream: SaslStream,
  ) {}

  /** The pre-auth features: mechanisms, and the channel-binding types on TLS. */
  features(): string {
    const cb = this.cbTypes();
    const mechs = `<mechanisms xmlns='${NS_SASL}'>${this.mechanisms()
      .map((m) => `<mechanism>${m}</mechanism>`)
      .join('')}</mechanisms>`;
    if (!cb.length) return mechs;
    return `${mechs}<sasl-channel-binding xmlns='${NS_SASL_CB}'>${cb.map((t) => `<channel-binding type='${t}'/>`).join('')}</sasl-channel-binding>`;
  }

  /** <auth/>, <response/> or <abort/>. */
  handle(el: Element): void | Promise<void> {
    if (el.name === 'auth') return this.start(el);
    if (el.name === 'response') return this.response(el);
    this.sasl = undefined;
    return this.failure({ kind: 'failure', condition: 'aborted' });
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
      domain: this.core.config.domain,
      lookup: (u) => this.core.storage.accounts.get(u),
      cbTypes: this.cbAccepted(),
      cbData: (t) => this.cbData(t),
      fakeSaltKey: this.core.saslSecret,
      iterations: this.core.config.sasl.scram_iterations,
    };
  }

  private start(el: Element): void | Promise<void> {
    if (!this.transport.secure && this.core.config.c2s.require_tls) {
      return this.failure({ kind: 'failure', condition: 'encryption-required', text: 'use STARTTLS first' });
    }
    const name = el.attrs.mechanism ?? '';
    if (!this.mechanisms().includes(name)) return this.failure({ kind: 'failure', condition: 'invalid-mechanism' });
    const ctx = this.context();
    const plusOffered = this.cbTypes().length > 0;
    const mech =
      name === 'PLAIN'
        ? new PlainMechanism(ctx)
        : new ScramMechanism(ctx, name.startsWith('SCRAM-SHA-256') ? 'SHA-256' : 'SHA-1', name.endsWith('-PLUS'), plusOffered);
    this.sasl = { mech, name };
    const text = el.getText();
    if (text === '') return this.step(null);
    return this.step(text === '=' ? Buffer.alloc(0) : decodeB64(text.trim()));
  }

  private response(el: Element): void | Promise<void> {
    if (!this.sasl) return this.failure({ kind: 'failure', condition: 'malformed-request', text: 'no authentication in progress' });
    const text = el.getText().trim();
    return this.step(text === '' || text === '=' ? Buffer.alloc(0) : decodeB64(text));
  }

  private async step(data: Buffer | null | undefined): Promise<void> {
    if (data === undefined) return this.failure({ kind: 'failure', condition: 'incorrect-encoding' });
    const sasl = this.sasl!;
    let step: SaslStep;
    try {
      step = await sasl.mech.step(data);
    } catch (err) {
      this.stream.log.error({ err }, 'SASL mechanism failed');
      step = { kind: 'failure', condition: 'temporary-auth-failure' };
    }
    if (!this.stream.open || this.sasl !== sasl) return;
    if (step.kind === 'challenge') {
      this.transport.write(`<challenge xmlns='${NS_SASL}'>${step.data.length ? step.data.toString('base64') : '='}</challenge>`);
      return;
    }
    this.sasl = undefined;
    if (step.kind === 'failure') return this.failure(step, sasl.name);
    this.core.throttle.recordSuccess(this.transport.remoteAddress);
    this.core.metrics.authSuccess.inc({ mechanism: sasl.name });
    this.stream.authenticated(step.username);
    this.transport.write(`<success xmlns='${NS_SASL}'>${step.data ? step.data.toString('base64') : ''}</success>`);
    this.stream.log.debug({ user: step.username, mechanism: sasl.name }, 'authenticated');
  }

  private failure(step: SaslStep & { kind: 'failure' }, mechanism = 'none'): void | Promise<void> {
    this.core.metrics.authFailure.inc({ mechanism, condition: step.condition });
    const send = (): void => {
      if (!this.stream.open) return;
      const text = step.text ? `<text xml:lang='en'>${step.text.replace(/[<&]/g, '')}</text>` : '';
      this.transport.write(`<failure xmlns='${NS_SASL}'><${step.condition}/>${text}</failure>`);
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
