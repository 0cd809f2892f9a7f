// Which node of a cluster holds the outgoing federation stream to each remote domain
// (issue 19): one per cluster, so that a remote server sees one stream from us and
// dialback runs once, whichever node a sender is on. `s2so:<domain>` in Redis names
// the node, with a lease its holder renews with every heartbeat while it holds the
// domain; a node that dies loses its domains when the lease runs out (or at once, when
// its heartbeat key is gone: the claim script checks it), and the next stanza claims the
// domain anew. Stanzas for a domain held elsewhere travel to that node ('o' envelopes,
// cluster.ts). Without Redis (a claim that fails) a node sends on its own stream.
import type { Redis } from 'ioredis';

export interface S2SOwnersLink {
  readonly name: string;
  readonly redis: Redis;
  key(k: string): string;
  /** does this node know `node` alive (a heartbeat)? */
  isLive(node: string): boolean;
  /** ms a claim holds without renewal */
  leaseMs(): number;
}

// KEYS[1] the claim; ARGV: this node, lease ms, the alive-key prefix. The holder stays
// while its heartbeat key exists; else this node takes the domain.
const CLAIM = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. cur) == 1 then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`;

// KEYS: claims; ARGV: this node, lease ms. Renew the ones still this node's; return the
// indexes (1-based) of those it lost (a lease that ran out, Redis restarted empty).
const RENEW = `
local lost = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]) else lost[#lost + 1] = i end
end
return lost`;

/** how long stanzas wait for a claim before this node sends them itself */
const CLAIM_TIMEOUT_MS = 2000;
/** holders remembered (domains talked to lately; the others are asked again) */
const MAX_KNOWN = 10_000;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class S2SOwners {
  /** holders as last learnt here: remote domain -> node (the oldest learnt goes past MAX_KNOWN; learnt again on use) */
  private readonly owners = new Map<string, string>();
  /** until when this node sends itself, without asking Redis (a claim timed out: Redis stalls) */
  private selfUntil = 0;
  private readonly claims = new Map<string, Promise<string>>();

  constructor(private readonly link: S2SOwnersLink) {}

  /** The node that sends to `domain`: known (this one, or a live one), else claimed. */
  ownerOf(domain: string): string | Promise<string> {
    if (performance.now() < this.selfUntil) return this.link.name;
    const o = this.owners.get(domain);
    if (o !== undefined && (o === this.link.name || this.link.isLive(o))) return o;
    let p = this.claims.get(domain);
    if (!p) {
      p = this.claim(domain).finally(() => this.claims.delete(domain));
      this.claims.set(domain, p);
    }
    return p;
  }

  private async claim(domain: string): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const node = (await Promise.race([
        this.link.redis.eval(CLAIM, 1, this.link.key(`s2so:${domain}`), this.link.name, String(this.link.leaseMs()), this.link.key('alive:')),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('claim timed out')), CLAIM_TIMEOUT_MS))),
      ])) as string;
      this.owners.delete(domain);
      this.owners.set(domain, node);
      if (this.owners.size > MAX_KNOWN) this.owners.delete(this.owners.keys().next().value!);
      return node;
    } catch {
      // Redis out of reach (or too slow): this node sends itself (two streams to one domain
      // are allowed), without asking again for a while
      this.selfUntil = performance.now() + CLAIM_TIMEOUT_MS * 5;
      return this.link.name;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The domains this node holds, renewed (each heartbeat). */
  renew(): void {
    const domains = [...this.owners].filter(([, n]) => n === this.link.name).map(([d]) => d);
    if (!domains.length) return;
    const keys = domains.map((d) => this.link.key(`s2so:${d}`));
    this.link.redis
      .eval(RENEW, keys.length, ...keys, this.link.name, String(this.link.leaseMs()))
      .then((lost) => {
        // claims lost meanwhile: asked again on next use (another node may hold them now)
        for (const i of lost as number[]) if (this.owners.get(domains[i - 1]!) === this.link.name) this.owners.delete(domains[i - 1]!);
      })
      .catch(() => undefined);
  }

  /** This node's stream to `domain` ended: the next sender (anywhere) claims it. */
  release(domain: string): void {
    if (this.owners.get(domain) !== this.link.name) return;
    this.owners.delete(domain);
    this.link.redis.eval(RELEASE, 1, this.link.key(`s2so:${domain}`), this.link.name).catch(() => undefined);
  }

  /** A node left or died: what it held is claimed anew on next use. */
  forgetNode(node: string): void {
    for (const [d, n] of [...this.owners]) if (n === node) this.owners.delete(d);
  }

  /** every claim of this node goes (a clean stop) */
  async releaseAll(): Promise<void> {
    for (const [d, n] of [...this.owners]) if (n === this.link.name) this.release(d);
  }
}
