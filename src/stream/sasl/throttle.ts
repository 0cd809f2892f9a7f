// Slows down repeated authentication failures from one address: each failure
// within the window doubles the delay before the <failure/> is sent, up to a cap.
// The table is bounded; the oldest addresses are forgotten first.
export interface ThrottleSettings {
  failure_delay: number;
  failure_delay_max: number;
  failure_window: number;
}

const MAX_ADDRESSES = 100_000;

export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();
  constructor(public settings: ThrottleSettings) {}

  /** ms to wait before answering this address's next failure */
  recordFailure(address: string, now = Date.now()): number {
    const windowMs = this.settings.failure_window * 1000;
    let e = this.failures.get(address);
    if (!e || now - e.last > windowMs) e = { count: 0, last: now };
    e.count++;
    e.last = now;
    this.failures.delete(address); // re-insert: Map order = least recently failed first
    this.failures.set(address, e);
    if (this.failures.size > MAX_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
    const { failure_delay: base, failure_delay_max: max } = this.settings;
    return Math.min(max, base * 2 ** Math.min(e.count - 1, 30));
  }

  recordSuccess(address: string): void {
    this.failures.delete(address);
  }
}
