import { Redis } from 'ioredis';
import type { Registry, RegistryEntry } from './types.js';

const bareOf = (full: string): string => {
  const i = full.indexOf('/');
  return i === -1 ? full : full.slice(0, i);
};

/**
 * Registry in Redis. Keys (under a prefix):
 *   res:<bare>  hash full JID -> JSON {node, priority, presence}
 *   node:<id>   set of full JIDs bound on that node (for sweeping a dead node)
 */
export class RedisRegistry implements Registry {
  readonly kind = 'redis' as const;
  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  static async connect(url: string, prefix: string): Promise<RedisRegistry> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true });
    redis.on('error', () => undefined); // reconnects by itself; callers see failed commands
    await redis.connect();
    await redis.ping();
    return new RedisRegistry(redis, prefix);
  }

  private res(bare: string): string {
    return `${this.prefix}res:${bare}`;
  }
  private nodeKey(node: string): string {
    return `${this.prefix}node:${node}`;
  }

  async bind(full: string, node: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.res(bareOf(full)), full, JSON.stringify({ node, priority: 0 }))
      .sadd(this.nodeKey(node), full)
      .exec();
  }

  async unbind(full: string, node: string): Promise<void> {
    // only remove the entry if that node still owns it (a newer bind elsewhere wins)
    await this.redis.eval(
      `local v = redis.call('HGET', KEYS[1], ARGV[1])
       if v and cjson.decode(v).node == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
       redis.call('SREM', KEYS[2], ARGV[1])
       return 1`,
      2,
      this.res(bareOf(full)),
      this.nodeKey(node),
      full,
      node,
    );
  }

  async setPresence(full: string, node: string, priority: number, presence: string | undefined): Promise<void> {
    await this.redis.eval(
      `local v = redis.call('HGET', KEYS[1], ARGV[1])
       if v and cjson.decode(v).node == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
       return 1`,
      1,
      this.res(bareOf(full)),
      full,
      node,
      JSON.stringify(presence === undefined ? { node, priority } : { node, priority, presence }),
    );
  }

  async resources(bare: string): Promise<RegistryEntry[]> {
    const all = await this.redis.hgetall(this.res(bare));
    return Object.entries(all).map(([full, v]) => ({ full, ...(JSON.parse(v) as Omit<RegistryEntry, 'full'>) }));
  }

  async clearNode(node: string): Promise<number> {
    const fulls = await this.redis.smembers(this.nodeKey(node));
    for (const full of fulls) await this.unbind(full, node);
    await this.redis.del(this.nodeKey(node));
    return fulls.length;
  }

  async countOnline(): Promise<number> {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}node:*`, 'COUNT', 100);
      cursor = next;
      for (const k of keys) n += await this.redis.scard(k);
    } while (cursor !== '0');
    return n;
  }

  async ping(): Promise<number> {
    const t = performance.now();
    await this.redis.ping();
    return performance.now() - t;
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
