import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import type { StanzaError } from '../api/errors.js';
import type { Config } from '../config/schema.js';
import type { S2SOut } from './out.js';

/**
 * What the authoritative server said of a dialback key (XEP-0220 step 3), or why it said
 * nothing: unreachable (remote-connection-failed), not-found (it does not resolve, or
 * answered with an error: remote-server-not-found), timeout (remote-server-timeout),
 * busy (too many questions waiting).
 */
export type VerifyResult = 'valid' | 'invalid' | 'unreachable' | 'not-found' | 'timeout' | 'busy';

/** s2s.* (docs/configuration.md), the dialback secret filled in */
export type S2SSettings = Config['s2s'];

/** What the streams of s2s need from their manager (index.ts). */
export interface S2SHost {
  readonly domain: string;
  readonly log: Logger;
  settings(): S2SSettings;
  bounce(stanza: Element, err: StanzaError): void;
  /** route a stanza that came in from another server (its addresses checked by the stream) */
  route(stanza: Element, from: string, to: string): Promise<void> | void;
  gone(out: S2SOut): void;
  /** `remote` refused our SASL EXTERNAL: dialback only with it for a while */
  externalRefused(remote: string): void;
  /** stanzas that waited on a stream that ended after EXTERNAL was refused: onto a new stream (dialback) */
  requeue(remote: string, waiting: { from: string; stanza: Element }[]): void;
  clientCertificate(): { cert?: string | Buffer; key?: string | Buffer };
  /** CAs trusted for peers (undefined: the system's) */
  readonly ca: string[] | undefined;
  readonly metrics: S2SMetrics;
}

export interface S2SMetrics {
  /** a stanza of `bytes` sent to `remote` */
  out(remote: string, bytes: number): void;
  /** a stanza received from `remote` */
  in(remote: string): void;
  /** bytes read from a stream of `remote` ('' before its header) */
  inBytes(remote: string, bytes: number): void;
  dialback(direction: 'in' | 'out', result: 'valid' | 'invalid' | 'error'): void;
  external(direction: 'in' | 'out', result: 'success' | 'failure'): void;
  /** reading from an incoming stream paused for its rate limit */
  rateLimited(): void;
}
