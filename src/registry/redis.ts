import { Redis } from 'ioredis';
import { bareOf, type Registry, type RegistryEntry } from './types.js';

/**
 * Registry in Redis. Keys (under a prefix):
 *   res:<bare>   hash full JID -> JSON RegistryEntry (the session that owns that JID)
 *   node:<name>  set of full JIDs bound on that node (to sweep a dead node)
 *   events       stream of changes, when `events` is given: every node of a cluster
 *                reads it and keeps its mirror of the other nodes' sessions current
 *                (src/cluster/cluster.ts). Each change and its event are one Lua
 *                script: a reader never sees one without the other.
 * Ownership is compared on the session id in Lua, never by key alone: the old node's
 * late unbind must not delete the entry of a session that replaced it elsewhere.
 */
export class RedisRegistry implements Registry {
  readonly kind = 'redis' as const;
  private constructor(
    readonly redis: Redis,
    readonly prefix: string,
    private readonly eventsMax: number,
  ) {}

  /** `eventsMax`: length the events stream is trimmed to (0: no events, a registry alone) */
  static async connect(url: string, prefix: string, eventsMax = 0): Promise<RedisRegistry> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true });
    redis.on('error', () => undefined); // reconnects by itself; callers see failed commands
    await redis.connect();
    await redis.ping();
    return new RedisRegistry(redis, prefix, eventsMax);
  }

  private res(bare: string): string {
    return `${this.prefix}res:${bare}`;
  }
  private nodeKey(node: string): string {
    return `${this.prefix}node:${node}`;
  }
  get eventsKey(): string {
    return `${this.prefix}events`;
  }

  async bind(e: RegistryEntry): Promise<RegistryEntry | undefined> {
    const json = JSON.stringify(e);
    const old = (await this.redis.eval(
      `local old = redis.call('HGET', KEYS[1], ARGV[1])
       redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
       redis.call('SADD', KEYS[2], ARGV[1])
       if ARGV[3] ~= '0' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'd', ARGV[4]) end
       return old`,
      3,
      this.res(bareOf(e.full)),
      this.nodeKey(e.node),
      this.eventsKey,
      e.full,
      json,
      String(this.eventsMax),
      `["up",${json}]`,
    )) as string | null;
    if (!old) return undefined;
    const prev = JSON.parse(old) as RegistryEntry;
    return prev.sid === e.sid ? undefined : prev;
  }

  async update(e: RegistryEntry): Promise<void> {
    const json = JSON.stringify(e);
    await this.redis.eval(
      `local v = redis.call('HGET', KEYS[1], ARGV[1])
       if v and cjson.decode(v).sid == ARGV[2] then
         redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
         if ARGV[4] ~= '0' then redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'd', ARGV[5]) end
       end
       return 1`,
      2,
      this.res(bareOf(e.full)),
      this.eventsKey,
      e.full,
      e.sid,
      json,
      String(this.eventsMax),
      `["set",${json}]`,
    );
  }

  async unbind(full: string, node: string, sid: string): Promise<void> {
    await this.redis.eval(UNBIND, 3, this.res(bareOf(full)), this.nodeKey(node), this.eventsKey, full, sid, String(this.eventsMax), node, '');
  }

  /** Remove `full` if `node` owns it (whatever session): an entry left by a failed unbind. */
  async unbindOwned(full: string, node: string): Promise<void> {
    await this.redis.eval(UNBIND, 3, this.res(bareOf(full)), this.nodeKey(node), this.eventsKey, full, '', String(this.eventsMax), node, '');
  }

  async resources(bare: string): Promise<RegistryEntry[]> {
    const all = await this.redis.hgetall(this.res(bare));
    return Object.values(all).map((v) => JSON.parse(v) as RegistryEntry);
  }

  async scan(each: (batch: RegistryEntry[]) => void): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}res:*`, 'COUNT', 500);
      cursor = next;
      if (!keys.length) continue;
      const p = this.redis.pipeline();
      for (const k of keys) p.hgetall(k);
      const out: RegistryEntry[] = [];
      for (const [err, h] of (await p.exec()) ?? []) {
        if (err) throw err;
        for (const v of Object.values(h as Record<string, string>)) out.push(JSON.parse(v) as RegistryEntry);
      }
      each(out);
    } while (cursor !== '0');
  }

  async clearNode(node: string, inc?: string): Promise<number> {
    const fulls = await this.redis.smembers(this.nodeKey(node));
    let n = 0;
    for (const full of fulls) {
      n += (await this.redis.eval(UNBIND, 3, this.res(bareOf(full)), this.nodeKey(node), this.eventsKey, full, '', String(this.eventsMax), node, inc ?? '')) as number;
    }
    if (inc === undefined) await this.redis.del(this.nodeKey(node));
    return n;
  }

  async countOnline(): Promise<number> {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}res:*`, 'COUNT', 500);
      cursor = next;
      if (!keys.length) continue;
      const p = this.redis.pipeline();
      for (const k of keys) p.hlen(k);
      for (const [, c] of (await p.exec()) ?? []) n += Number(c ?? 0);
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

/**
 * Remove `full` if it is owned by session ARGV[2], or (ARGV[2] empty) by node ARGV[4]
 * (of incarnation ARGV[5] when given); an event tells the cluster. Returns 1 if removed.
 */
const UNBIND = `local v = redis.call('HGET', KEYS[1], ARGV[1])
local gone = 0
if v then
  local e = cjson.decode(v)
  if (ARGV[2] ~= '' and e.sid == ARGV[2]) or (ARGV[2] == '' and e.node == ARGV[4] and (ARGV[5] == '' or e.inc == ARGV[5])) then
    redis.call('HDEL', KEYS[1], ARGV[1])
    if ARGV[3] ~= '0' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'd', cjson.encode({'down', ARGV[1], e.sid, e.node})) end
    gone = 1
  end
  if e.node ~= ARGV[4] or gone == 1 then redis.call('SREM', KEYS[2], ARGV[1]) end
else
  redis.call('SREM', KEYS[2], ARGV[1])
end
return gone`;
