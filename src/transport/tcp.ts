// TCP (plain, STARTTLS-upgradable, or direct TLS) transport.
// Writes are batched: everything queued during one tick of the event loop is
// handed to the socket as one write, so a burst of stanzas costs one syscall.
import type { Socket } from 'node:net';
import tls, { TLSSocket } from 'node:tls';
import type { TlsMaterial } from '../tls.js';
import type { Transport, TransportHandler } from './types.js';

const NOOP_HANDLER: TransportHandler = { data() {}, closed() {}, overflow() {} };
const END_GRACE_MS = 2000;

export class TcpTransport implements Transport {
  readonly framed = false;
  readonly remoteAddress: string;
  private socket: Socket;
  private handler: TransportHandler = NOOP_HANDLER;
  private out = '';
  private flushScheduled = false;
  private closed = false;
  private ending = false;
  private upgrading = false;
  private overflowed = false;
  private readonly onData = (b: Buffer): void => this.handler.data(b);
  private readonly flushNow = (): void => this.flush();

  constructor(
    socket: Socket,
    private readonly maxBuffered: () => number,
  ) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.attach(socket);
  }

  get secure(): boolean {
    return this.socket instanceof TLSSocket;
  }
  get canStartTls(): boolean {
    return !this.secure;
  }
  get tlsSocket(): TLSSocket | undefined {
    return this.socket instanceof TLSSocket ? this.socket : undefined;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.onClose(socket));
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket || this.closed) return;
    this.closed = true;
    this.handler.closed(this.ending ? 'closed' : 'connection lost');
  }

  setHandler(h: TransportHandler): void {
    this.handler = h;
  }

  write(s: string): void {
    if (this.closed || this.ending) return;
    this.out += s;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushNow);
    }
  }

  writeNow(s: string): void {
    this.flush();
    if (!this.closed) this.socket.write(s);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out === '' || this.closed || this.upgrading) return;
    const data = this.out;
    this.out = '';
    this.socket.write(data);
    if (!this.overflowed && this.socket.writableLength > this.maxBuffered()) {
      // once: closing flushes again, and must not re-enter
      this.overflowed = true;
      this.handler.overflow();
    }
  }

  bufferedBytes(): number {
    return this.socket.writableLength + this.out.length;
  }

  startTls(material: TlsMaterial, done: (err?: Error) => void, opts: { requestCert?: boolean } = {}): void {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    this.upgrading = true;
    const secure = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: material.context,
      requestCert: opts.requestCert === true,
      rejectUnauthorized: false,
    });
    this.socket = secure;
    this.attach(secure);
    secure.once('secure', () => {
      this.upgrading = false;
      done();
      this.flush();
    });
    secure.once('error', (err) => {
      if (this.upgrading) done(err);
    });
  }

  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.flush();
    this.ending = true;
    this.socket.end();
    setTimeout(() => this.destroy(), END_GRACE_MS).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
