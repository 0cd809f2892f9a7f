import type { TLSSocket } from 'node:tls';
import type { TlsMaterial } from '../tls.js';

export interface TransportHandler {
  data(chunk: Buffer): void;
  closed(reason: string): void;
  /** the outbound buffer passed its bound (slow consumer) */
  overflow(): void;
}

/** One client connection's byte pipe, whatever carries it (TCP, TLS, WebSocket). */
export interface Transport {
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** RFC 7395 framing: <open/>/<close/> instead of a stream wrapper, no whitespace keepalives */
  readonly framed: boolean;
  readonly canStartTls: boolean;
  readonly tlsSocket: TLSSocket | undefined;
  setHandler(h: TransportHandler): void;
  /** queue text; written once per tick with everything else queued */
  write(s: string): void;
  /** write now, bypassing the batch (before a TLS upgrade) */
  writeNow(s: string): void;
  bufferedBytes(): number;
  /** a transport-level liveness probe (WebSocket ping frame), if the transport has one */
  ping?(): void;
  /** `requestCert`: ask the peer for its certificate (server-to-server streams) */
  startTls(material: TlsMaterial, done: (err?: Error) => void, opts?: { requestCert?: boolean }): void;
  pause(): void;
  resume(): void;
  /** flush and close gracefully (destroyed after a grace period) */
  end(): void;
  destroy(): void;
}
