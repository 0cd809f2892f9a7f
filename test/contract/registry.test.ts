// The session/presence registry contract, on memory and (with
// UZZAP_TEST_REDIS_URL in the postgres run) on Redis.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Registry } from '../../src/registry/types.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import { BACKEND, REDIS_URL } from '../helpers/server.js';

const backends: [string, () => Promise<Registry>][] = [['memory', async () => new MemoryRegistry()]];
if (BACKEND === 'postgres')
  backends.push(['redis', () => RedisRegistry.connect(REDIS_URL, `uzzap-test:${randomBytes(4).toString('hex')}:`)]);

for (const [name, make] of backends) {
  describe(`registry contract (${name})`, () => {
    let r: Registry;
    before(async () => {
      r = await make();
    });
    after(() => r.close());

    it('binds, lists resources of a bare JID, unbinds', async () => {
      await r.bind('alice@localhost/a', 'n1');
      await r.bind('alice@localhost/b', 'n2');
      const list = await r.resources('alice@localhost');
      assert.deepEqual(list.map((e) => e.full).sort(), ['alice@localhost/a', 'alice@localhost/b']);
      assert.equal(list.find((e) => e.full === 'alice@localhost/b')?.node, 'n2');
      await r.unbind('alice@localhost/a', 'n1');
      assert.deepEqual(
        (await r.resources('alice@localhost')).map((e) => e.full),
        ['alice@localhost/b'],
      );
      assert.deepEqual(await r.resources('nobody@localhost'), []);
    });

    it('keeps priority and last presence; unavailable clears the presence', async () => {
      await r.bind('bob@localhost/x', 'n1');
      await r.setPresence('bob@localhost/x', 'n1', 5, '<presence><priority>5</priority></presence>');
      let [e] = await r.resources('bob@localhost');
      assert.equal(e?.priority, 5);
      assert.equal(e?.presence, '<presence><priority>5</priority></presence>');
      await r.setPresence('bob@localhost/x', 'n1', 5, undefined);
      [e] = await r.resources('bob@localhost');
      assert.equal(e?.presence, undefined);
    });

    it('a node cannot unbind or update a JID another node now owns', async () => {
      await r.bind('carol@localhost/r', 'old');
      await r.bind('carol@localhost/r', 'new');
      await r.unbind('carol@localhost/r', 'old');
      await r.setPresence('carol@localhost/r', 'old', 1, '<presence/>');
      const [e] = await r.resources('carol@localhost');
      assert.equal(e?.node, 'new');
      assert.equal(e?.presence, undefined);
    });

    it('clears everything a node had and counts online sessions', async () => {
      await r.bind('dave@localhost/1', 'dead');
      await r.bind('dave@localhost/2', 'dead');
      await r.bind('erin@localhost/1', 'alive');
      const before = await r.countOnline();
      assert.equal(await r.clearNode('dead'), 2);
      assert.deepEqual(await r.resources('dave@localhost'), []);
      assert.equal((await r.resources('erin@localhost')).length, 1);
      assert.equal(await r.countOnline(), before - 2);
    });
  });
}
