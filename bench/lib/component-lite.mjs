// Lean XEP-0114 external component client (jabber:component:accept) over a
// raw `net` socket, for the `component` workload.
//
//   -> <stream:stream xmlns='jabber:component:accept' xmlns:stream='…' to='bridge.localhost'>
//   <- <stream:stream … id='ID'>
//   -> <handshake>hex(SHA-1(ID + secret))</handshake>
//   <- <handshake/>
//
// Then every top-level stanza goes to `onStanza(stanza)` as a string. Like
// lib/xmpp-lite.mjs it never builds a DOM: the byte stream is cut into
// top-level stanzas with indexOf and a quote-aware scan for each tag's end
// while counting depth. Writes are coalesced: everything sent while a chunk
// from the server is being handled goes out in one socket write at the end of
// that chunk (the echo replies to a burst of messages cost one syscall), and
// sends made outside a chunk are flushed on the next tick.
import net from 'node:net';
import { createHash } from 'node:crypto';
import { attr, StanzaSplitter } from './xmpp-lite.mjs';

export const NS_COMPONENT = 'jabber:component:accept';

/** XEP-0114 §3: lowercase hex SHA-1 of the stream id concatenated with the secret. */
export const handshakeDigest = (streamId, secret) =>
  createHash('sha1')
    .update(streamId + secret, 'utf8')
    .digest('hex');

export class ComponentConn {
  /**
   * @param {object} o
   * @param {string} o.host  @param {number} o.port
   * @param {string} o.domain  the component's domain (e.g. bridge.localhost)
   * @param {string} o.secret  shared secret
   * @param {string} [o.localAddress]  @param {number} [o.timeoutMs] bound on connect + handshake (10 s)
   */
  constructor(o) {
    this.o = o;
    this.split = new StanzaSplitter({
      stanza: (st) => this._stanza(st),
      header: (h) => {
        this.streamHeader = h;
        this.waiter?.header(h);
      },
      end: () => this._streamEnd(),
    });
    this.out = []; // pending writes
    this.inChunk = false;
    this.flushScheduled = false;
    this.closed = false;
    this.streamId = null;
    this.streamHeader = null;
    this.onStanza = null; // set by the caller after connect()
    this.onClose = null;
    this.waiter = null; // during the handshake: { header, resolve, reject }
    this.bytesIn = 0;
    this.writes = 0;
  }

  /**
   * Connect, open the stream, authenticate with the handshake. Resolves with
   * { header_ms, handshake_ms } (connect -> server's stream header, -> <handshake/>).
   * Rejects with the server's stream error (e.g. not-authorized) or on timeout.
   */
  connect() {
    const timeoutMs = this.o.timeoutMs ?? 10000;
    const t0 = performance.now();
    let timer;
    return new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`component handshake timeout after ${timeoutMs} ms (stream id ${this.streamId ?? 'not received'})`));
        this.destroy();
      }, timeoutMs);
      const { host, port, localAddress, domain, secret } = this.o;
      const s = net.connect({ host, port, localAddress, noDelay: true });
      this.sock = s;
      s.setEncoding('utf8');
      s.on('data', (d) => this._feed(d));
      s.on('error', (e) => this._closed(e));
      s.on('close', () => this._closed(new Error('connection closed')));
      let tHeader = null;
      this.waiter = {
        header: (h) => {
          tHeader = performance.now();
          this.streamId = attr(h, 'id') ?? null;
          if (this.streamId == null) return this.waiter.reject(new Error(`no stream id in the server's header: ${h.slice(0, 300)}`));
          this.send(`<handshake>${handshakeDigest(this.streamId, secret)}</handshake>`);
        },
        stanza: (x) => {
          if (x.startsWith('<handshake')) {
            this.waiter = null;
            resolve({ header_ms: tHeader - t0, handshake_ms: performance.now() - t0 });
          } else this.waiter.reject(new Error(`component handshake: expected <handshake/>, got: ${x.slice(0, 300)}`));
        },
        reject: (e) => {
          this.waiter = null;
          reject(e);
          this.destroy();
        },
      };
      s.once('connect', () =>
        this.send(
          `<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' ` +
            `xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
        ),
      );
    }).finally(() => clearTimeout(timer));
  }

  send(str) {
    if (this.closed) return;
    this.out.push(str);
    if (!this.inChunk && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this._flush());
    }
  }

  _flush() {
    this.flushScheduled = false;
    if (!this.out.length || this.closed) return;
    const s = this.out.length === 1 ? this.out[0] : this.out.join('');
    this.out.length = 0;
    this.writes++;
    this.sock.write(s);
  }

  /** Close the stream politely (does not wait for the server). */
  close() {
    if (this.closed) return;
    this._flush();
    const s = this.sock;
    s.end('</stream:stream>');
    setTimeout(() => s.destroy(), 2000).unref();
    this._closed(null);
  }

  destroy() {
    this.sock?.destroy();
    this._closed(null);
  }

  _closed(err) {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    if (this.waiter) this.waiter.reject(err || new Error('closed'));
    this.onClose?.(err);
  }

  _feed(chunk) {
    this.bytesIn += chunk.length;
    this.inChunk = true;
    this.split.feed(chunk);
    this.inChunk = false;
    this._flush(); // one write for everything this chunk caused
  }

  _streamEnd() {
    this.sock.end();
    this._closed(new Error('stream closed by server'));
  }

  _stanza(s) {
    if (s.startsWith('<stream:error') || s.startsWith('<error')) {
      const cond = /<([\w-]+)[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(s);
      const e = new Error(`stream error: ${cond ? cond[1] : s.slice(0, 300)}`);
      e.stanza = s;
      if (this.waiter) return this.waiter.reject(e);
      this.streamError = s;
      return;
    }
    if (this.waiter) return this.waiter.stanza(s);
    this.onStanza?.(s);
  }
}
