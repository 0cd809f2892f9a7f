// A temporary room's archive goes with the room: when it empties, and when the
// server stops while it is still occupied (it does not come back).
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer } from '../helpers/server.js';
import { connect, stopAll, until, xml } from '../helpers/clients.js';
import { SERVICE, createRoom, join } from '../helpers/muc.js';

// no per-occupant message rate: the tests send bursts
const CONFIG = { modules: { muc: { message_rate: 0 } } };

const rows = async (server: Server, owner: string): Promise<number> => {
  await server.storage.archive.flush();
  return (await server.storage.archive.query({ owner, max: 1000, fromEnd: false })).items.length;
};

describe('temporary room archives (e2e)', function () {
  this.timeout(20_000);

  it('a temporary room that empties takes its whole archive with it, including rows still waiting in the write batch', async () => {
    const server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: CONFIG });
    try {
      const alice = await connect(server, 'alice');
      const bob = await connect(server, 'bob');
      await createRoom(alice, 'brief', 'Alice');
      await join(bob, 'brief', 'Bob');
      for (let i = 0; i < 200; i++)
        await alice.send(xml('message', { to: `brief@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `m${i}`)));
      // both leave at once, while the last rows may still be queued
      await stopAll(alice, bob);
      await until(async () => (await rows(server, `brief@${SERVICE}`)) === 0, 'the room archive is gone', 5000);
      // nothing lands later either: rows() flushes whatever is still queued before counting
      assert.equal(await rows(server, `brief@${SERVICE}`), 0);
    } finally {
      await server.stop();
    }
  });

  it('a temporary room still occupied when the server stops leaves no archive behind', async () => {
    const slot = await newStorageSlot();
    const first = await startServer({ slot, users: { alice: 'secret' }, config: CONFIG });
    const alice = await connect(first, 'alice');
    await createRoom(alice, 'fleeting', 'Alice');
    for (let i = 0; i < 50; i++)
      await alice.send(xml('message', { to: `fleeting@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `m${i}`)));
    await until(async () => (await rows(first, `fleeting@${SERVICE}`)) === 50, 'archived', 5000);
    await first.stop(); // alice is still in the room
    await stopAll(alice);
    const second = await startServer({ slot, config: CONFIG });
    try {
      assert.equal(await rows(second, `fleeting@${SERVICE}`), 0, 'the room is gone, so is its archive');
    } finally {
      await second.stop();
    }
  });
});
