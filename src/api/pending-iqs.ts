// IQs sent on someone's behalf and not yet answered: a component's requests
// (src/stream/component.ts) and IQs a room forwards between occupants
// (xeps/0045-muc). Each is kept under the id its answer will carry, with
// whatever the caller needs to answer the original requester (addresses only,
// never the payload). The table is bounded, and timeouts cost no timer per IQ:
// entries are kept oldest first, so a periodic sweep stops at the first one
// still within its time.

export interface PendingIqLimits {
  /** how many may wait at once (read at each add, so a reload applies) */
  max(): number;
  /** how long one may wait, in ms (read at each sweep, so a reload applies to those waiting too) */
  timeoutMs(): number;
}

export class PendingIqs<T> {
  /** by answer id, oldest first */
  private readonly waiting = new Map<string, { iq: T; at: number }>();

  constructor(
    private readonly limits: PendingIqLimits,
    /** an IQ that waited too long; it is already forgotten when this is called */
    private readonly onTimeout: (iq: T) => void,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Wait for the answer to `id`. When the table is full, what timed out is dropped first; false
   * when it is still full (the caller refuses the request). A second IQ under a waiting id replaces it.
   */
  add(id: string, iq: T, now = Date.now()): boolean {
    if (this.waiting.size >= this.limits.max() && !this.waiting.has(id)) {
      this.sweep(now);
      if (this.waiting.size >= this.limits.max()) return false;
    }
    this.waiting.delete(id); // re-inserted at the end: the order stays age order
    this.waiting.set(id, { iq, at: now });
    return true;
  }

  /** The answer to `id` came: the waiting IQ, forgotten, when there is one and `accept` (if given) takes it. */
  take(id: string, accept?: (iq: T) => boolean): T | undefined {
    const w = this.waiting.get(id);
    if (!w || (accept && !accept(w.iq))) return undefined;
    this.waiting.delete(id);
    return w.iq;
  }

  /** Forget every IQ that waited longer than the timeout, telling onTimeout about each. */
  sweep(now = Date.now()): void {
    const limit = now - this.limits.timeoutMs();
    for (const [id, w] of this.waiting) {
      if (w.at > limit) break; // insertion order is age order
      this.waiting.delete(id);
      this.onTimeout(w.iq);
    }
  }

  /** A party went away: forget the IQs `which` picks (all by default) and return them, oldest first, to be answered. */
  drain(which?: (iq: T) => boolean): T[] {
    const out: T[] = [];
    for (const [id, w] of this.waiting) {
      if (which && !which(w.iq)) continue;
      this.waiting.delete(id);
      out.push(w.iq);
    }
    return out;
  }
}
