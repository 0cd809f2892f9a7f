// XEP-0198 across a crash (issue 16, guarantee 2): the acknowledgement state and the
// unacknowledged stanzas of every resumable session are copied to Redis, so that when
// its node dies the client can still resume on another node (SessionManager.lookup
// falls back to this copy when the node that made the SM id is gone).
//   sm:<id>   hash: the session (MovedSession without its queue), updated with inH/acked
//   smq:<id>  list: the stanzas sent and not yet acknowledged, as JSON [xml, kind, at]
// Writes of one event-loop turn go out as one script call (one command, whatever the
// number of sessions: measured, a pipeline of ~5 commands per message halved chat's
// throughput), per session: the new stanzas (RPUSH), then the list cut to what the
// client has not acknowledged (LTRIM to the last queue.length), then h. A client's ack with nothing after it leaves stanzas it
// acknowledged in the list until the next change: a resume's own 'h' drops them anyway.
// A session that ends cleanly deletes its copy; a dead node's copies expire after the
// resume window (set by the sweeper).
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Session, Unacked } from '../session/session.js';
import type { MovedSession } from '../session/manager.js';

export class SmMirror {
  /** sessions changed this turn, with the stanzas they were sent */
  private dirty = new Map<Session, Unacked[]>();
  private scheduled = false;
  private gone: string[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly node: string,
    private readonly log: Logger,
  ) {
    if (!('uzSmCopy' in redis)) redis.defineCommand('uzSmCopy', { numberOfKeys: 0, lua: COPY });
  }

  private key(id: string): string {
    return `${this.prefix}sm:${id}`;
  }
  private qkey(id: string): string {
    return `${this.prefix}smq:${id}`;
  }
  private setKey(node: string): string {
    return `${this.prefix}smids:${node}`;
  }

  /** A resumable session's state changed (a stanza sent to it, one handled from it). */
  changed(s: Session, sent?: Unacked): void {
    let list = this.dirty.get(s);
    if (!list) this.dirty.set(s, (list = []));
    if (sent) list.push(sent);
    this.schedule();
  }

  /** Resumption was enabled (or the session moved here): its copy starts (again). */
  started(s: Session, record: Omit<MovedSession, 'queue' | 'inH' | 'acked'>): void {
    const id = s.sm!.id;
    this.redis
      .multi()
      .del(this.qkey(id))
      .hset(this.key(id), { record: JSON.stringify(record), node: this.node, inH: String(s.sm!.inH), acked: String(s.sm!.acked) })
      .sadd(this.setKey(this.node), id)
      .exec()
      .catch((err: unknown) => this.log.warn({ err }, 'stream management copy failed'));
    // what it was sent before (a moved session) is written with the next change
    this.dirty.set(s, [...(s.sm!.queue as Unacked[])]);
    this.schedule();
  }

  /** The session ended or moved away from this node: its copy goes (the new node writes its own). */
  ended(id: string): void {
    this.gone.push(id);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  flush(): Promise<unknown> {
    this.scheduled = false;
    if (!this.dirty.size && !this.gone.length) return Promise.resolve();
    // per session: hash key, list key, queue length, h, acked, n, then n stanzas
    const args: string[] = [this.setKey(this.node), this.node];
    for (const [s, sent] of this.dirty) {
      const sm = s.sm;
      if (!sm?.resumable) continue;
      args.push(this.key(sm.id), this.qkey(sm.id), String(sm.queue.length), String(sm.inH), String(sm.acked), String(sent.length));
      for (const u of sent) args.push(JSON.stringify([u.xml, u.kind, u.at]));
    }
    // then the copies to delete (unless another node holds them now), after a '' marker
    args.push('');
    for (const id of this.gone) args.push(this.key(id), this.qkey(id), id);
    this.dirty = new Map();
    this.gone = [];
    return (this.redis as unknown as { uzSmCopy(...a: string[]): Promise<unknown> })
      .uzSmCopy(...args)
      .catch((err: unknown) => this.log.warn({ err }, 'stream management copy failed'));
  }

  /** The copy of a session whose node died, for a resume elsewhere (undefined: none). */
  async read(id: string): Promise<MovedSession | undefined> {
    const [h, q] = await Promise.all([this.redis.hgetall(this.key(id)), this.redis.lrange(this.qkey(id), 0, -1)]);
    if (!h.record) return undefined;
    const record = JSON.parse(h.record) as Omit<MovedSession, 'queue' | 'inH' | 'acked'>;
    return {
      ...record,
      inH: Number(h.inH ?? 0),
      acked: Number(h.acked ?? 0),
      queue: q.map((j) => {
        const [xml, kind, at] = JSON.parse(j) as [string, 'message' | 'presence' | 'iq', number];
        return { xml, kind, at };
      }),
    };
  }

  /** The node whose copy this is (the node that holds the session), if any. */
  async holder(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.key(id), 'node')) ?? undefined;
  }

  /** Taken by a resume elsewhere: the copy goes (the resuming node writes its own). */
  async take(id: string, node: string): Promise<void> {
    await this.redis.multi().del(this.key(id), this.qkey(id)).srem(this.setKey(node), id).exec();
  }

  /** A dead node's copies stay for the resume window, then expire. */
  async expireNode(node: string, seconds: number): Promise<string[]> {
    const ids = await this.redis.smembers(this.setKey(node));
    const m = this.redis.multi();
    for (const id of ids) m.pexpire(this.key(id), seconds * 1000).pexpire(this.qkey(id), seconds * 1000);
    m.pexpire(this.setKey(node), seconds * 1000);
    await m.exec();
    return ids;
  }
}

/** One turn's copies (see flush): keys travel as arguments, the copies live on one Redis. */
const COPY = `local set, me = ARGV[1], ARGV[2]
local i = 3
while ARGV[i] ~= '' do
  local h, q, len, inH, acked, n = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), ARGV[i+3], ARGV[i+4], tonumber(ARGV[i+5])
  i = i + 6
  for k = 0, n - 1 do redis.call('RPUSH', q, ARGV[i + k]) end
  i = i + n
  if len > 0 then redis.call('LTRIM', q, -len, -1) else redis.call('DEL', q) end
  redis.call('HSET', h, 'inH', inH, 'acked', acked)
end
i = i + 1
while i <= #ARGV do
  -- a copy that another node holds now (the session moved there) is that node's
  local holder = redis.call('HGET', ARGV[i], 'node')
  if not holder or holder == me then redis.call('DEL', ARGV[i], ARGV[i+1]) end
  redis.call('SREM', set, ARGV[i+2])
  i = i + 3
end
return 1`;
