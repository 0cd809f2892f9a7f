// RFC 7395 XMPP over WebSocket: one XML element per WebSocket message, framing
// with <open/>/<close/> (src/xml/parser.ts framed mode, src/stream/c2s.ts).
// Each write is one element, so each is its own message (no batching across
// elements, unlike TCP); liveness uses WebSocket ping frames, never whitespace.
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { TLSSocket } from 'node:tls';
import type { Transport, TransportHandler } from './types.js';
import { qualify } from './framing.js';

const NOOP_HANDLER: TransportHandler = { data() {}, closed() {}, overflow() {} };
const END_GRACE_MS = 2000;

export class WebSocketTransport implements Transport {
  readonly framed = true;
  readonly canStartTls = false;
  readonly remoteAddress: string;
  readonly secure: boolean;
  private handler: TransportHandler = NOOP_HANDLER;
  private closed = false;
  private ending = false;
  private overflowed = false;

  constructor(
    private readonly ws: WebSocket,
    req: IncomingMessage,
    private readonly maxBuffered: () => number,
    trustPlain = false,
  ) {
    this.remoteAddress = req.socket.remoteAddress ?? '';
    this.secure = (req.socket as TLSSocket).encrypted === true || trustPlain;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return this.handler.data(Buffer.from('<binary-frames-are-not-xmpp/>'));
      this.handler.data(data);
    });
    // a pong is a sign of life: an empty chunk updates the stream's activity clock
    ws.on('pong', () => this.handler.data(Buffer.alloc(0)));
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.handler.closed(this.ending ? 'closed' : 'connection lost');
    });
  }

  get tlsSocket(): TLSSocket | undefined {
    return undefined;
  }

  setHandler(h: TransportHandler): void {
    this.handler = h;
  }

  write(s: string): void {
    if (this.closed || this.ending) return;
    this.ws.send(qualify(s));
    if (!this.overflowed && this.ws.bufferedAmount > this.maxBuffered()) {
      this.overflowed = true;
      this.handler.overflow();
    }
  }

  writeNow(s: string): void {
    this.write(s);
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  startTls(): void {
    throw new Error('STARTTLS is not offered on WebSocket (use wss://)');
  }

  pause(): void {
    this.ws.pause();
  }
  resume(): void {
    this.ws.resume();
  }

  /** a WebSocket ping frame (RFC 6455 §5.5.2) */
  ping(): void {
    if (!this.closed && !this.ending) this.ws.ping();
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.ws.close(1000);
    setTimeout(() => this.destroy(), END_GRACE_MS).unref();
  }

  destroy(): void {
    this.ws.terminate();
  }
}
