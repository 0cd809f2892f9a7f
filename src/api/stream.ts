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


/**
 * What a module answers inside SASL2's <success/> (XEP-0388) for an element of its
 * namespace in <authenticate/>: the XML that goes into <success/>, and what to do
 * once <success/> is written (a resumed session's retransmissions).
 */
export interface InlineAnswer {
  xml: string;
  after?: () => void;
}

/**
 * A module's part in SASL2 (XEP-0388) and Bind 2 (XEP-0386) requests, for elements
 * of one namespace (`ctx.inline`).
 */
export interface InlineHandlers {
  /** the feature element listed in SASL2's <inline/> (XEP-0198: <sm/>) */
  saslFeature?: string;
  /**
   * An element of the namespace directly in <authenticate/>, handled once the user is
   * authenticated and before Bind 2 (XEP-0198 <resume/>). A handler that resumed a
   * session (NonzaStream.resume) makes the server skip binding.
   */
  sasl?: (el: Element, stream: NonzaStream) => InlineAnswer | Promise<InlineAnswer>;
  /**
   * An element of the namespace inside Bind 2's <bind/>, handled on the newly bound
   * session (listed in Bind 2's <inline/> as a feature); returns what goes into <bound/>.
   */
  bind?: (el: Element, stream: NonzaStream) => string | void;
}
