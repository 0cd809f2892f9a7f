import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import type { StanzaError } from '../api/errors.js';
import type { S2SOut } from './out.js';

export interface S2SSettings {
  port: number;
  hosts: Record<string, string>;
  require_valid_certs: boolean;
  dialback_secret: string;
  queue_max: number;
  connect_timeout: number;
  idle_timeout: number;
  outbound_buffer: number;
  max_streams: number;
  max_stanza_size: number;
}

/** What the streams of s2s need from their manager (index.ts). */
export interface S2SHost {
  readonly domain: string;
  readonly log: Logger;
  settings(): S2SSettings;
  bounce(stanza: Element, err: StanzaError): void;
  gone(out: S2SOut): void;
  clientCertificate(): { cert?: string | Buffer; key?: string | Buffer };
  readonly metrics: {
    out(remote: string, bytes: number): void;
    in(remote: string, bytes: number): void;
    dialback(direction: 'in' | 'out', result: 'valid' | 'invalid' | 'error'): void;
  };
}
