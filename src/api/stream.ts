// The stream-level side of the module contract: what a handler registered with
// `ctx.nonza` (XEP-0198 stream management, XEP-0352 client state) may do with the
// client stream it runs on and its bound session.
import type { StreamErrorCondition } from './errors.js';
import type { SessionRecord } from './module.js';
import type { Element } from '../xml/index.js';

/** A stanza sent to a session and not yet acknowledged (XEP-0198). */
export interface UnackedStanza {
  readonly xml: string;
  readonly kind: 'message' | 'presence' | 'iq';
  /** ms since the epoch: when it was first sent */
  readonly at: number;
}

/**
 * The acknowledgement state a session keeps once stream management is enabled:
 * the mechanism (counting, the unacknowledged queue); the protocol is xeps/0198-sm.
 */
export interface AckState {
  readonly id: string;
  readonly resumable: boolean;
  /** stanzas handled from the client (mod 2^32) */
  inH: number;
  /** the last 'h' the client acknowledged (mod 2^32) */
  acked: number;
  /** sent and not yet acknowledged, oldest first */
  queue: UnackedStanza[];
  /** stanzas sent since the last ack request */
  sinceRequest: number;
  lastRequest: number;
}

/** A bound session as a stream-level handler drives it. */
export interface StreamSession extends SessionRecord {
  readonly sm: AckState | undefined;
  /**
   * XEP-0352: while inactive, what `hold` gives a key for waits (the latest per key,
   * in order of arrival); anything else is written at once, after what was held.
   * Active again: what was held is written.
   */
  setInactive(inactive: boolean, hold?: HoldPolicy): void;
  /** ask the client for an acknowledgement (false when acknowledgements are not enabled) */
  requestAck(): boolean;
}

/** The key under which a serialised stanza may wait for an inactive client, or undefined: send now. */
export type HoldPolicy = (xml: string, kind: 'message' | 'presence' | 'iq') => string | undefined;

/** What a nonza handler may do with the client stream it came on. */
export interface NonzaStream {
  /** the session bound on this stream, if any */
  readonly session: StreamSession | undefined;
  /** authenticated and not yet bound: a detached session may be taken over now */
  readonly canResume: boolean;
  /** seconds a resumable session is kept after its connection is lost (`sm.resume_timeout`) */
  readonly resumeWindow: number;
  /** write a stream-level element */
  write(xml: string): void;
  /** write an already serialised stanza (a retransmission) */
  writeStanza(xml: string, kind: 'message' | 'presence' | 'iq'): void;
  /** close with a stream error; `appCondition` is an application-specific condition element */
  close(condition?: StreamErrorCondition, text?: string, appCondition?: string): void;
  /** start counting and queueing for the bound session; `resume` asks for a resumable one */
  enableAcks(resume: boolean): AckState;
  /** a resumable session of this stream's user, or the 'h' an ended one had (when known) */
  findSession(previd: string): StreamSession | { h?: number } | Promise<StreamSession | { h?: number }>;
  /** bind this stream to a session found with findSession (its previous stream, if still open, is closed) */
  resume(session: StreamSession): void;
}

/** Handles one nonza of the namespace it was registered for. */
/** a promise makes the stream wait for it before its next element (a resumption across nodes) */
export type NonzaHandler = (el: Element, stream: NonzaStream) => void | Promise<void>;

