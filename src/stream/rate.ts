// Traffic shaping for one stream: two token buckets (stanzas/s and bytes/s).
// Nothing is dropped: when a bucket runs dry the stream stops reading from its
// socket until it refills, so the sender feels TCP backpressure (the approach
// of ejabberd's shapers, minus the dropping of Prosody's mod_limits).
import type { Config } from '../config/schema.js';

export interface Rate {
  stanzas: number;
  bytes: number;
}

/** The rate that applies to a session or component: exempt (undefined), an override, or the default. */
export function rateFor(cfg: Config['rate_limits'], kind: 'c2s' | 'component' | 's2s', who: string | undefined): Rate | undefined {
  if (who !== undefined) {
    if (cfg.exempt.includes(who)) return undefined;
    const o = cfg.overrides[who];
    if (o) return o.stanzas > 0 || o.bytes > 0 ? o : undefined;
  }
  const d = cfg[kind];
  return d.stanzas > 0 || d.bytes > 0 ? d : undefined;
}

export class RateLimiter {
  private stanzaTokens = 0;
  private byteTokens = 0;
  private last = 0;
  private cached: { src: Config['rate_limits']; who: string | undefined; rate: Rate | undefined } | undefined;

  constructor(
    private readonly settings: () => Config['rate_limits'],
    private readonly kind: 'c2s' | 'component' | 's2s',
  ) {}

  /** who the stream is now (bare JID, component domain or remote server domain); undefined before authentication */
  who: string | undefined;

  private rate(): { rate: Rate | undefined; burst: number } {
    const src = this.settings();
    if (this.cached?.src !== src || this.cached.who !== this.who) {
      this.cached = { src, who: this.who, rate: rateFor(src, this.kind, this.who) };
      // a new limit starts with a full bucket
      this.last = 0;
    }
    return { rate: this.cached.rate, burst: src.burst };
  }

  /** Count traffic; returns how many ms reading must pause (0: go on). */
  take(bytes: number, stanzas: number): number {
    const { rate, burst } = this.rate();
    if (!rate) return 0;
    const now = performance.now();
    if (this.last === 0) {
      this.stanzaTokens = rate.stanzas * burst;
      this.byteTokens = rate.bytes * burst;
    } else {
      const dt = (now - this.last) / 1000;
      this.stanzaTokens = Math.min(rate.stanzas * burst, this.stanzaTokens + rate.stanzas * dt);
      this.byteTokens = Math.min(rate.bytes * burst, this.byteTokens + rate.bytes * dt);
    }
    this.last = now;
    let wait = 0;
    if (rate.stanzas > 0) {
      this.stanzaTokens -= stanzas;
      if (this.stanzaTokens < 0) wait = Math.max(wait, (-this.stanzaTokens / rate.stanzas) * 1000);
    }
    if (rate.bytes > 0) {
      this.byteTokens -= bytes;
      if (this.byteTokens < 0) wait = Math.max(wait, (-this.byteTokens / rate.bytes) * 1000);
    }
    return Math.ceil(wait);
  }
}
