// BOSH (XEP-0124, with XEP-0206 for XMPP) at /http-bind. A BOSH session is one
// C2S stream whose transport is a series of HTTP requests: inbound payloads are
// fed to the stream like WebSocket frames (framed mode, <open/>/<close/>
// synthesised for session start, restart and terminate), outbound elements wait
// in a bounded queue for the next held request. Written by hand: the npm BOSH
// packages are clients or unmaintained connection managers for other servers.
// The HTTP side (bodies read, parsed and answered) is bosh-http.ts.
import type { ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { randomToken } from '../random.js';
import type { Element } from '../xml/index.js';
import type { Transport, TransportHandler } from './types.js';
import { qualify } from './framing.js';
import { NS_HTTPBIND, NS_STREAM, responseBody, send, terminate } from './bosh-http.js';

export { NS_HTTPBIND, parseBody, readBody, terminate } from './bosh-http.js';

const NS_XBOSH = 'urn:xmpp:xbosh';
const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

export interface BoshSettings {
  /** longest a request is held (seconds); the client's 'wait' is capped by it */
  max_wait: number;
  /** seconds without any request before the session is dropped */
  inactivity: number;
  /** longest pause a client may ask for (seconds) */
  max_pause: number;
  /** concurrent requests a client may have (the 'requests' attribute) */
  requests: number;
}

interface Held {
  res: ServerResponse;
  rid: number;
  timer: NodeJS.Timeout;
}

const NOOP: TransportHandler = { data() {}, closed() {}, overflow() {} };

export class BoshSession implements Transport {
  readonly framed = true;
  readonly canStartTls = false;
  readonly sid = randomToken(18);
  private handler: TransportHandler = NOOP;
  private out: string[] = [];
  private outBytes = 0;
  private held: Held[] = [];
  private lastRid: number;
  /** responses to recent requests, by rid, for a client that repeats one (XEP-0124 §14.3) */
  private readonly sent = new Map<number, string>();
  private early = new Map<number, { body: Element; res: ServerResponse }>();
  private inactivityTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private terminateSent = false;
  private overflowed = false;
  private flushScheduled = false;
  readonly wait: number;
  readonly hold: number;
  private pauseUntil = 0;

  constructor(
    readonly remoteAddress: string,
    readonly secure: boolean,
    first: Element,
    private readonly settings: () => BoshSettings,
    private readonly maxBuffered: () => number,
    private readonly domain: string,
    private readonly onGone: (s: BoshSession) => void,
  ) {
    this.lastRid = Number(first.attrs.rid);
    // §7.1: never more than the client asked for (0 is a valid answer: pure polling)
    const num = (v: string | undefined, dflt: number): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : dflt);
    this.wait = Math.min(num(first.attrs.wait, settings().max_wait), settings().max_wait);
    this.hold = Math.min(num(first.attrs.hold, 1), settings().requests - 1);
    this.touch();
  }

  get tlsSocket(): TLSSocket | undefined {
    return undefined;
  }

  setHandler(h: TransportHandler): void {
    this.handler = h;
  }

  /** The session-creation response attributes (XEP-0124 §7.1, XEP-0206 §2). */
  creationAttrs(): Record<string, string> {
    const s = this.settings();
    return {
      xmlns: NS_HTTPBIND,
      'xmlns:xmpp': NS_XBOSH,
      'xmlns:stream': NS_STREAM,
      sid: this.sid,
      wait: String(this.wait),
      hold: String(this.hold),
      requests: String(s.requests),
      inactivity: String(s.inactivity),
      maxpause: String(s.max_pause),
      polling: '1',
      ver: '1.11',
      from: this.domain,
      'xmpp:version': '1.0',
      ack: String(this.lastRid),
    };
  }

  /** Answer the session-creation request: the session attributes and the stream features. */
  created(res: ServerResponse): void {
    this.respond(res, this.lastRid, this.out.splice(0).join(''), this.creationAttrs());
    this.outBytes = 0;
  }

  /** Start the stream (session creation or xmpp:restart). */
  open(): void {
    this.handler.data(Buffer.from(`<open xmlns='${NS_FRAMING}' to='${this.domain}' version='1.0'/>`));
  }

  // ---- output from the stream ----

  write(s: string): void {
    if (this.ended) return;
    // the stream header is implied by the BOSH session; the close becomes a terminate
    if (s.startsWith('<open ')) return;
    if (s.startsWith('<close ')) return this.end();
    const q = qualify(s);
    this.out.push(q);
    this.outBytes += q.length;
    if (!this.overflowed && this.outBytes > this.maxBuffered()) {
      this.overflowed = true;
      this.handler.overflow();
      return;
    }
    this.scheduleFlush();
  }

  writeNow(s: string): void {
    this.write(s);
  }

  bufferedBytes(): number {
    return this.outBytes;
  }

  startTls(): void {
    throw new Error('STARTTLS is not offered on BOSH (use https://)');
  }
  /**
   * Backpressure (a full inbox, a rate limit): requests wait unprocessed and
   * unanswered, so the client, which may have only `requests` open, stops
   * sending; the rid window bounds what waits.
   */
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.processEarly();
  }
  private paused = false;

  private processEarly(): void {
    for (let next = this.early.get(this.lastRid + 1); next && !this.paused; next = this.early.get(this.lastRid + 1)) {
      this.early.delete(this.lastRid + 1);
      this.process(this.lastRid + 1, next.body, next.res);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.flush(true);
    this.gone('closed');
  }

  destroy(): void {
    this.end();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      this.flush(false);
    });
  }

  /** Answer the oldest held request with what is queued (or a terminate). */
  private flush(terminate: boolean): void {
    if (!this.out.length && !terminate) return;
    const h = this.held.shift();
    if (!h) return; // the next request takes it
    clearTimeout(h.timer);
    const payload = this.out.join('');
    // XEP-0206 §6: a stream error travels in a terminate body with this condition
    const term: Record<string, string> = payload.includes('<stream:error')
      ? { type: 'terminate', condition: 'remote-stream-error' }
      : { type: 'terminate' };
    this.respond(h.res, h.rid, payload, terminate ? term : {});
    this.out = [];
    this.outBytes = 0;
    if (terminate) {
      this.terminateSent = true;
      for (const rest of this.held.splice(0)) {
        clearTimeout(rest.timer);
        this.respond(rest.res, rest.rid, '', { type: 'terminate' });
      }
    }
  }

  private respond(res: ServerResponse, rid: number, payload: string, attrs: Record<string, string>): void {
    const body = responseBody(payload, attrs);
    this.sent.set(rid, body);
    if (this.sent.size > this.settings().requests + 1) this.sent.delete(this.sent.keys().next().value!);
    send(res, 200, body);
  }

  // ---- requests from the client ----

  /** A request for this session; returns an error condition when the session must end. */
  request(body: Element, res: ServerResponse): void {
    this.touch();
    const rid = Number(body.attrs.rid);
    if (!Number.isSafeInteger(rid)) return terminate(res, 'bad-request');
    if (rid <= this.lastRid) {
      // §14.3: a request repeated while the first is still held: the old one is answered
      // empty and the new one takes its place
      const i = this.held.findIndex((h) => h.rid === rid);
      if (i !== -1) {
        const old = this.held[i]!;
        old.res = res;
        res.once('close', () => {
          const j = this.held.indexOf(old);
          if (j !== -1 && old.res === res) {
            clearTimeout(old.timer);
            this.held.splice(j, 1);
          }
        });
        return;
      }
      // a repeated request already answered: the same answer again, if we still have it
      const again = this.sent.get(rid);
      if (again !== undefined) return send(res, 200, again);
      return terminate(res, 'item-not-found');
    }
    if (rid > this.lastRid + this.settings().requests) {
      this.kill('rid out of window');
      return terminate(res, 'item-not-found');
    }
    if (rid !== this.lastRid + 1 || this.paused) {
      // arrived before an earlier one (or reading is paused): wait for it (bounded by the window); a duplicate replaces it
      const dup = this.early.get(rid);
      if (dup) send(dup.res, 200, `<body xmlns='${NS_HTTPBIND}'/>`);
      this.early.set(rid, { body, res });
      return;
    }
    this.process(rid, body, res);
    this.processEarly();
  }

  private process(rid: number, body: Element, res: ServerResponse): void {
    this.lastRid = rid;
    if (this.ended) {
      const payload = this.out.splice(0).join('');
      this.outBytes = 0;
      this.terminateSent = true;
      clearTimeout(this.lingering);
      this.onGone(this);
      return this.respond(
        res,
        rid,
        payload,
        payload.includes('<stream:error') ? { type: 'terminate', condition: 'remote-stream-error' } : { type: 'terminate' },
      );
    }
    const pause = body.attrs.pause;
    if (pause !== undefined) {
      const secs = Math.min(Number(pause) || 0, this.settings().max_pause);
      this.pauseUntil = Date.now() + secs * 1000;
      // §10: every held request is answered at once
      this.respond(res, rid, '', {});
      for (const h of this.held.splice(0)) {
        clearTimeout(h.timer);
        this.respond(h.res, h.rid, this.out.splice(0).join(''), {});
      }
      this.outBytes = 0;
      this.touch();
      return;
    }
    if (body.attrs['xmpp:restart'] === 'true' || body.attrs['xmpp:restart'] === '1') this.open();
    for (const child of body.getChildElements()) this.handler.data(Buffer.from(child.toString()));
    if (body.attrs.type === 'terminate') {
      this.handler.data(Buffer.from(`<close xmlns='${NS_FRAMING}'/>`));
      if (!this.ended) this.end();
      return this.respond(res, rid, this.out.splice(0).join(''), { type: 'terminate' });
    }
    if (this.hold === 0 || this.wait === 0) {
      // a polling client: answer now with whatever there is
      this.respond(res, rid, this.out.splice(0).join(''), {});
      this.outBytes = 0;
      return;
    }
    // hold this request: answered when there is something to send, or after 'wait'
    const entry: Held = { res, rid, timer: undefined as unknown as NodeJS.Timeout };
    entry.timer = setTimeout(() => {
      const i = this.held.indexOf(entry);
      if (i === -1) return;
      this.held.splice(i, 1);
      this.respond(entry.res, entry.rid, '', {});
    }, this.wait * 1000);
    entry.timer.unref();
    this.held.push(entry);
    res.once('close', () => {
      const i = this.held.indexOf(entry);
      if (i !== -1 && entry.res === res) {
        clearTimeout(entry.timer);
        this.held.splice(i, 1);
      }
    });
    // more held than allowed: the oldest goes back empty (§11)
    while (this.held.length > this.hold) {
      const old = this.held.shift()!;
      clearTimeout(old.timer);
      this.respond(old.res, old.rid, this.out.splice(0).join(''), {});
      this.outBytes = 0;
    }
    if (this.out.length) this.scheduleFlush();
  }

  private touch(): void {
    clearTimeout(this.inactivityTimer);
    const s = this.settings();
    const ms = Math.max(s.inactivity * 1000, this.pauseUntil - Date.now());
    this.inactivityTimer = setTimeout(
      () => {
        // while a request is held the client is there
        if (this.held.length) return this.touch();
        this.kill('inactivity');
      },
      ms + this.wait * 1000,
    );
    this.inactivityTimer.unref();
  }

  /** The client went away (inactivity, bad rid): for the stream, the connection is lost. */
  private kill(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const h of this.held.splice(0)) {
      clearTimeout(h.timer);
      this.respond(h.res, h.rid, '', { type: 'terminate', condition: 'item-not-found' });
    }
    this.gone(reason === 'inactivity' ? 'connection lost' : reason);
  }

  private gone(reason: string): void {
    clearTimeout(this.inactivityTimer);
    for (const e of this.early.values()) terminate(e.res, 'item-not-found');
    this.early.clear();
    this.handler.closed(reason);
    if (this.terminateSent || !this.out.length) return this.onGone(this);
    // the stream ended with no request to carry its last words: keep them for the next one
    const linger = setTimeout(() => this.onGone(this), this.wait * 1000 + 5000);
    linger.unref();
    this.lingering = linger;
  }

  private lingering: NodeJS.Timeout | undefined;
}

