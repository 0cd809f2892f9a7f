// The archive spread over several Postgres servers. An archive has one key, its
// owner (a user's or a room's bare JID), so every query stays on one shard:
// the owner's hash picks it. Adding a shard re-homes owners: plan shards up front.
import { createHash } from 'node:crypto';
import type { ArchiveQuery, ArchiveRow, ArchiveStore, ArchivedMessage } from '../types.js';

export function shardOf(owner: string, n: number): number {
  return createHash('sha1').update(owner).digest().readUInt32BE(0) % n;
}

export class ShardedArchiveStore implements ArchiveStore {
  constructor(private readonly shards: ArchiveStore[]) {
    if (shards.length === 0) throw new Error('a sharded archive needs at least one shard');
  }

  private pick(owner: string): ArchiveStore {
    return this.shards[shardOf(owner, this.shards.length)]!;
  }

  add(row: ArchiveRow): void {
    this.pick(row.owner).add(row);
  }
  async init(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.init()));
  }
  useLane(lane: number, lanes: number): void {
    for (const s of this.shards) s.useLane(lane, lanes);
  }
  newId(owner: string, ts?: number): string {
    return this.pick(owner).newId(owner, ts);
  }
  get queued(): number {
    return this.shards.reduce((n, s) => n + s.queued, 0);
  }
  async flush(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.flush()));
  }
  pressure(source?: string): Promise<void> | undefined {
    const waits = this.shards.map((s) => s.pressure(source)).filter((p) => p !== undefined);
    return waits.length ? Promise.all(waits).then(() => undefined) : undefined;
  }
  query(q: ArchiveQuery): Promise<{ items: ArchivedMessage[]; complete: boolean; count: number | undefined }> {
    return this.pick(q.owner).query(q);
  }
  bounds(owner: string): Promise<{ first?: ArchivedMessage; last?: ArchivedMessage }> {
    return this.pick(owner).bounds(owner);
  }
  replace(owner: string, id: string, stanza: string): Promise<boolean> {
    return this.pick(owner).replace(owner, id, stanza);
  }
  async purge(before: number, owner?: string): Promise<number> {
    if (owner !== undefined) return this.pick(owner).purge(before, owner);
    return (await Promise.all(this.shards.map((s) => s.purge(before)))).reduce((a, b) => a + b, 0);
  }
  deleteAll(owner: string): Promise<number> {
    return this.pick(owner).deleteAll(owner);
  }
}
