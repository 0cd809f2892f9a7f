// The cluster contract's refusals (issue 15): a node on SQLite does not join a cluster
// that has a live node on another host (its data would not be shared).
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { REDIS_URL, newStorageSlot, startServer } from '../helpers/server.js';

describe('cluster: a node on SQLite refuses a cluster that spans hosts', function () {
  this.timeout(20_000);

  it('start fails with an error naming the other node and the fix', async () => {
    const slot = await newStorageSlot();
    const redis = new Redis(REDIS_URL);
    try {
      // a live node of another host, as its heartbeat would say
      const info = { name: 'far-away', inc: 'x', host: 'another-host', pid: 1, storage: 'postgres', started: Date.now(), at: Date.now(), figures: {} };
      await redis.multi().set(`${slot.redisPrefix}alive:far-away`, JSON.stringify(info), 'PX', 20_000).sadd(`${slot.redisPrefix}nodes`, 'far-away').exec();
      await assert.rejects(
        startServer({ slot: { ...slot, postgresUrl: '' } }),
        (e: Error) => /far-away on another-host/.test(e.message) && /UZZAP_POSTGRES_URL/.test(e.message),
      );
    } finally {
      await redis.quit();
    }
  });

  it('a node on SQLite joins when every live node is on this host and on SQLite', async () => {
    const slot = await newStorageSlot();
    const a = await startServer({ slot: { ...slot, postgresUrl: '' } });
    try {
      const b = await startServer({ slot: { ...slot, postgresUrl: '' } });
      try {
        assert.deepEqual((await b.cluster!.nodes()).map((n) => n.name).sort(), [a.nodeId, b.nodeId].sort());
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
    }
  });
});
