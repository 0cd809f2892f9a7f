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

// KEYS: claims; ARGV: this node, lease ms. Renew the ones still this node's.
const RENEW = `
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]) end
end
return 0`;

/** how long stanzas wait for a claim before this node sends them itself */
const CLAIM_TIMEOUT_MS = 2000;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class S2SOwners {
  /** holders as last learnt here: remote domain -> node (bounded by the domains we talk to, s2s.max_streams) */
  private readonly owners = new Map<string, string>();
  private readonly claims = new Map<string, Promise<string>>();

  constructor(private readonly link: S2SOwnersLink) {}

  /** The node that sends to `domain`: known (this one, or a live one), else claimed. */
  ownerOf(domain: string): string | Promise<string> {
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
      this.owners.set(domain, node);
      return node;
    } catch {
      // Redis out of reach (or too slow): this node sends itself (two streams to one domain are allowed)
      return this.link.name;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The domains this node holds, renewed (each heartbeat). */
  renew(): void {
    const mine = [...this.owners].filter(([, n]) => n === this.link.name).map(([d]) => this.link.key(`s2so:${d}`));
    if (mine.length) this.link.redis.eval(RENEW, mine.length, ...mine, this.link.name, String(this.link.leaseMs())).catch(() => undefined);
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
