import { randomBytes } from 'node:crypto';
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
    // auto-pipelining: the commands of one event-loop turn (a burst of logins) go out in one write
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true, enableAutoPipelining: true });
    redis.on('error', () => undefined); // reconnects by itself; callers see failed commands
    // the scripts run by their SHA1 (EVALSHA), not sent whole with every call
    redis.defineCommand('uzBatch', { numberOfKeys: 0, lua: BATCH });
    redis.defineCommand('uzUnbind', { numberOfKeys: 3, lua: UNBIND });
    await redis.connect();
    await redis.ping();
    return new RedisRegistry(redis, prefix, eventsMax);
  }

  private get scripts(): Scripts {
    return this.redis as unknown as Scripts;
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

  /**
   * Writes (bind, update, unbind) of one event-loop turn go to Redis as one script call,
   * in order: a burst of logins costs one command, not three per login (measured:
   * ioredis spent ~45 µs of CPU per command, a quarter of a login's cost).
   */
  private batch: { args: string[]; done: ((r: unknown) => void)[]; fail: ((e: unknown) => void)[] } | undefined;

  private op(args: string[]): Promise<unknown> {
    let b = this.batch;
    if (!b) {
      b = this.batch = { args: [String(this.eventsMax), this.eventsKey], done: [], fail: [] };
      setImmediate(() => this.flushBatch());
    }
    b.args.push(...args);
    return new Promise((resolve, reject) => {
      b.done.push(resolve);
      b.fail.push(reject);
    });
  }

  private flushBatch(): void {
    const b = this.batch;
    this.batch = undefined;
    if (!b) return;
    this.scripts.uzBatch(...b.args).then(
      (results) => {
        const r = results as unknown[];
        b.done.forEach((d, i) => d(r[i]));
      },
      (err: unknown) => b.fail.forEach((f) => f(err)),
    );
  }

  async bind(e: RegistryEntry): Promise<RegistryEntry | undefined> {
    const json = JSON.stringify(e);
    const old = (await this.op(['b', this.res(bareOf(e.full)), this.nodeKey(e.node), e.full, json, `["up",${json}]`, e.node, ''])) as string;
    if (!old) return undefined;
    const prev = JSON.parse(old) as RegistryEntry;
    return prev.sid === e.sid ? undefined : prev;
  }

  async update(e: RegistryEntry): Promise<void> {
    const json = JSON.stringify(e);
    await this.op(['u', this.res(bareOf(e.full)), '', e.full, json, `["set",${json}]`, e.node, e.sid]);
  }

  async unbind(full: string, node: string, sid: string): Promise<void> {
    await this.op(['x', this.res(bareOf(full)), this.nodeKey(node), full, sid, '', node, '']);
  }

  /** Remove `full` if `node` owns it (whatever session): an entry left by a failed unbind. */
  async unbindOwned(full: string, node: string): Promise<void> {
    await this.op(['x', this.res(bareOf(full)), this.nodeKey(node), full, '', '', node, '']);
  }

  /** The entries a node owns (a dead node's, before they are swept). */
  async entriesOf(node: string): Promise<RegistryEntry[]> {
    const fulls = await this.redis.smembers(this.nodeKey(node));
    if (!fulls.length) return [];
    const p = this.redis.pipeline();
    for (const f of fulls) p.hget(this.res(bareOf(f)), f);
    const out: RegistryEntry[] = [];
    for (const [err, v] of (await p.exec()) ?? []) {
      if (err || typeof v !== 'string') continue;
      const e = JSON.parse(v) as RegistryEntry;
      if (e.node === node) out.push(e);
    }
    return out;
  }

  async resources(bare: string): Promise<RegistryEntry[]> {
    const all = await this.redis.hgetall(this.res(bare));
    return Object.values(all).map((v) => JSON.parse(v) as RegistryEntry);
  }

  /** Every res:<bare> hash, 500 keys at a time: `read` queues one command per key, `use` gets their replies. */
  private async eachUser(read: (p: ReturnType<Redis['pipeline']>, key: string) => void, use: (replies: unknown[]) => void): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}res:*`, 'COUNT', 500);
      cursor = next;
      if (!keys.length) continue;
      const p = this.redis.pipeline();
      for (const k of keys) read(p, k);
      use(
        ((await p.exec()) ?? []).map(([err, r]) => {
          if (err) throw err;
          return r;
        }),
      );
    } while (cursor !== '0');
  }

  async scan(each: (batch: RegistryEntry[]) => void): Promise<void> {
    await this.eachUser(
      (p, k) => p.hgetall(k),
      (replies) => each(replies.flatMap((h) => Object.values(h as Record<string, string>).map((v) => JSON.parse(v) as RegistryEntry))),
    );
  }

  async clearNode(node: string, inc?: string): Promise<number> {
    const fulls = await this.redis.smembers(this.nodeKey(node));
    let n = 0;
    for (const full of fulls) {
      n += (await this.scripts.uzUnbind(this.res(bareOf(full)), this.nodeKey(node), this.eventsKey, full, '', String(this.eventsMax), node, inc ?? '')) as number;
    }
    if (inc === undefined) await this.redis.del(this.nodeKey(node));
    return n;
  }

  async sharedSecret(name: string): Promise<string> {
    const key = `${this.prefix}secret:${name}`;
    await this.redis.set(key, randomBytes(32).toString('hex'), 'NX');
    return (await this.redis.get(key)) ?? '';
  }

  async countOnline(): Promise<number> {
    let n = 0;
    await this.eachUser(
      (p, k) => p.hlen(k),
      (replies) => {
        for (const c of replies) n += Number(c ?? 0);
      },
    );
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
    if ARGV[3] ~= '0' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'n', e.node, 'd', cjson.encode({'down', ARGV[1], e.sid, e.node})) end
    gone = 1
  end
  if e.node ~= ARGV[4] or gone == 1 then redis.call('SREM', KEYS[2], ARGV[1]) end
else
  redis.call('SREM', KEYS[2], ARGV[1])
end
return gone`;

/**
 * A turn's writes, in order. ARGV[1]: the events stream's length bound, ARGV[2] its key; then 8 per op:
 * op, res key, node-set key, full JID, a (JSON entry, or the session id for 'x'),
 * event (JSON), node, session id ('u'). Keys travel as arguments: the registry lives
 * on one Redis (not Redis Cluster). Answers one result per op: the entry a bind
 * replaced (or ''), 1/0 for an unbind, 1 for an update.
 */
const BATCH = `local max = ARGV[1]
local ek = ARGV[2]
local out = {}
local i = 3
while i <= #ARGV do
  local op, res, nodeKey, full, a, ev, node, sid = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7]
  if op == 'b' then
    local old = redis.call('HGET', res, full)
    redis.call('HSET', res, full, a)
    redis.call('SADD', nodeKey, full)
    if max ~= '0' then redis.call('XADD', ek, 'MAXLEN', '~', max, '*', 'n', node, 'd', ev) end
    out[#out + 1] = old or ''
  elseif op == 'u' then
    local v = redis.call('HGET', res, full)
    if v and cjson.decode(v).sid == sid then
      redis.call('HSET', res, full, a)
      if max ~= '0' then redis.call('XADD', ek, 'MAXLEN', '~', max, '*', 'n', node, 'd', ev) end
    end
    out[#out + 1] = 1
  else
    local v = redis.call('HGET', res, full)
    local gone = 0
    if v then
      local e = cjson.decode(v)
      if (a ~= '' and e.sid == a) or (a == '' and e.node == node) then
        redis.call('HDEL', res, full)
        if max ~= '0' then redis.call('XADD', ek, 'MAXLEN', '~', max, '*', 'n', e.node, 'd', cjson.encode({'down', full, e.sid, e.node})) end
        gone = 1
      end
      if e.node ~= node or gone == 1 then redis.call('SREM', nodeKey, full) end
    else
      redis.call('SREM', nodeKey, full)
    end
    out[#out + 1] = gone
  end
  i = i + 8
end
return out`;

/** the registry's scripts, as ioredis defines them (EVALSHA with a fallback to EVAL) */
interface Scripts {
  uzBatch(...args: string[]): Promise<unknown>;
  uzUnbind(...args: string[]): Promise<unknown>;
}
