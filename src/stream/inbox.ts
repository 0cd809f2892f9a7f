// How a stream takes in what it reads, for client streams (c2s.ts) and
// component streams (component.ts) alike: elements are handled strictly in
// order; one that needs asynchronous work (SASL, storage) makes the next ones
// wait in a bounded queue, and a stream over its rate limit (rate.ts) waits
// too. Either way, once the queue fills or the rate is exceeded, reading from
// the socket pauses, so TCP backpressure, not memory, absorbs a flood.
import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import type { Transport } from '../transport/types.js';
import type { RateLimiter } from './rate.js';

export interface InboxOwner {
  /** handle one element; a promise makes the ones after it wait */
  handle(el: Element): void | Promise<void>;
  /** false once the stream is closed: nothing more is handled */
  readonly open: boolean;
  /** whether stanzas count against the rate limit now (after authentication) */
  readonly shaped: boolean;
  readonly log: Logger;
}

export class Inbox {
  private queue: Element[] = [];
  private busy = false;
  /** reading paused because the queue is full */
  private paused = false;
  /** reading paused because the stream is over its rate */
  private throttled = false;
  /** callbacks waiting for everything received so far to be handled (afterAll), in order */
  private whenIdle: (() => void)[] = [];

  constructor(
    private readonly owner: InboxOwner,
    private readonly transport: Transport,
    /** queued elements at which reading pauses (limits.inbound_queue) */
    private readonly bound: () => number,
    readonly limiter: RateLimiter,
    /** counts a pause for the rate limit (metrics) */
    private readonly onThrottle: () => void,
  ) {}

  /** Bytes read from the socket, for the bytes/s limit. */
  read(bytes: number): void {
    const wait = this.limiter.take(bytes, 0);
    if (wait) this.throttle(wait);
  }

  push(el: Element): void {
    // behind anything already waiting: order is kept whatever resumed the reading
    if (this.busy || this.throttled || this.queue.length) {
      this.queue.push(el);
      if (!this.paused && this.queue.length >= this.bound()) {
        this.paused = true;
        this.transport.pause();
      }
      return;
    }
    this.process(el);
  }

  /** Run fn once everything received so far is handled (now, if nothing waits); at most maxWaitMs later. */
  afterAll(fn: () => void, maxWaitMs: number): void {
    if (!this.busy && this.queue.length === 0) return fn();
    let done = false;
    const once = (): void => {
      if (done) return;
      done = true;
      fn();
    };
    this.whenIdle.push(once);
    // a handler that never settles must not keep a dead connection around
    setTimeout(() => {
      this.queue.length = 0;
      once();
    }, maxWaitMs).unref();
  }

  clear(): void {
    this.queue.length = 0;
  }

  /** Handle the next element; over the rate limit, the ones after it wait (and reading pauses). */
  private process(el: Element): void {
    if (this.owner.shaped) {
      const wait = this.limiter.take(0, 1);
      if (wait) this.throttle(wait);
    }
    let p: void | Promise<void>;
    try {
      p = this.owner.handle(el);
    } catch (err) {
      // one element's failure is logged; the ones queued behind it are still handled
      this.owner.log.error({ err }, 'stanza processing failed');
      return;
    }
    if (p) {
      this.busy = true;
      p.catch((err: unknown) => this.owner.log.error({ err }, 'stanza processing failed')).finally(() => {
        this.busy = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    while (this.queue.length && !this.busy && !this.throttled && this.owner.open) this.process(this.queue.shift()!);
    if (this.paused && this.queue.length < this.bound() / 2) {
      this.paused = false;
      if (!this.throttled) this.transport.resume();
    }
    if (this.whenIdle.length && !this.busy && this.queue.length === 0) {
      const fns = this.whenIdle;
      this.whenIdle = [];
      for (const fn of fns) fn();
    }
  }

  /** Over the rate limit: stop reading for a while (the sender feels TCP backpressure; nothing is dropped). */
  private throttle(ms: number): void {
    if (this.throttled) return;
    this.throttled = true;
    this.onThrottle();
    this.transport.pause();
    setTimeout(() => {
      this.throttled = false;
      if (!this.owner.open) return;
      this.pump();
      if (!this.paused && !this.throttled) this.transport.resume();
    }, ms).unref();
  }
}
