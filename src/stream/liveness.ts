// Liveness of one client stream: when the client last sent anything, the check
// sent after ping_interval of silence (an XEP-0198 ack request, a WebSocket ping
// frame or else an XEP-0199 ping) and the drop after ping_timeout without an
// answer; and the slow consumer, whose outbound buffer passed its bound. The
// stream calls read() for every chunk, tick() about once a second while bound,
// and slowConsumer() on the transport's overflow.
import type { Logger } from 'pino';
import type { StreamErrorCondition } from '../api/errors.js';
import type { Core } from '../core.js';
import type { Transport } from '../transport/types.js';
import type { Session } from '../session/session.js';

const NS_PING = 'urn:xmpp:ping';
const SLOW_TEXT = 'too much data queued for a client that does not read';

/** What the liveness checks need of their stream. */
export interface LivenessOwner {
  readonly log: Logger;
  readonly bound: Session | undefined;
  close(condition?: StreamErrorCondition, text?: string): void;
  /**
   * Give the connection up without the closing handshake (after a stream error, if
   * given): for the session the connection is lost, so it may be kept for resumption.
   */
  drop(reason: 'ping timeout' | 'slow consumer', condition?: StreamErrorCondition, text?: string): void;
}

export class Liveness {
  /** when the client last sent anything (liveness, XEP-0198 / XEP-0199) */
  lastRead = Date.now();
  /** a liveness check is outstanding since then (0: none) */
  private pingSentAt = 0;

  constructor(
    private readonly core: Core,
    private readonly transport: Transport,
    private readonly owner: LivenessOwner,
  ) {}

  /** The client sent something: it is there. */
  read(): void {
    this.lastRead = Date.now();
    this.pingSentAt = 0;
  }

  /** Liveness and ack requests for the stream's bound session. */
  tick(now: number, session: Session): void {
    const c = this.core.config;
    if (this.pingSentAt && now - this.pingSentAt > c.ping_timeout * 1000) {
      // half-open: the client did not answer in time
      this.core.metrics.pingTimeouts.inc();
      this.owner.log.debug({ jid: session.jid.full }, 'no answer to a liveness check; dropping the connection');
      this.owner.drop('ping timeout');
      return;
    }
    if (!this.pingSentAt && now - this.lastRead > c.ping_interval * 1000) {
      this.pingSentAt = now;
      // an ack request (stream management) or else an XEP-0199 ping
      if (this.transport.ping) this.transport.ping();
      else if (!session.requestAck())
        this.transport.write(`<iq type='get' from='${c.domain}' id='ping-${now.toString(36)}'><ping xmlns='${NS_PING}'/></iq>`);
      return;
    }
    session.requestAckIfDue(now, c.sm.ack_interval * 1000);
  }

  /** The outbound buffer passed its bound: the client does not read. */
  slowConsumer(): void {
    this.core.metrics.slowConsumers.inc();
    const session = this.owner.bound;
    this.owner.log.info({ jid: session?.jid.full, buffered: this.transport.bufferedBytes() }, 'slow consumer: closing');
    // what it did not read stays in the unacknowledged queue: it can resume and get it all
    if (session?.resumable) this.owner.drop('slow consumer', 'policy-violation', SLOW_TEXT);
    else this.owner.close('policy-violation', SLOW_TEXT);
  }
}
