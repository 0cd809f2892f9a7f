// The session/presence registry contract, on memory and (with
// UZZAP_TEST_REDIS_URL in the postgres run) on Redis.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Registry, RegistryEntry } from '../../src/registry/types.js';
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

    const e = (full: string, node: string, sid: string, more: Partial<RegistryEntry> = {}): RegistryEntry => ({ full, node, inc: 'i1', sid, priority: 0, ...more });

    it('binds, lists resources of a bare JID, unbinds', async () => {
      assert.equal(await r.bind(e('alice@localhost/a', 'n1', 's1')), undefined);
      await r.bind(e('alice@localhost/b', 'n2', 's2'));
      const list = await r.resources('alice@localhost');
      assert.deepEqual(list.map((x) => x.full).sort(), ['alice@localhost/a', 'alice@localhost/b']);
      assert.equal(list.find((x) => x.full === 'alice@localhost/b')?.node, 'n2');
      await r.unbind('alice@localhost/a', 'n1', 's1');
      assert.deepEqual(
        (await r.resources('alice@localhost')).map((x) => x.full),
        ['alice@localhost/b'],
      );
      assert.deepEqual(await r.resources('nobody@localhost'), []);
    });

    it('keeps priority, last presence and flags; unavailable clears the presence', async () => {
      await r.bind(e('bob@localhost/x', 'n1', 's1'));
      await r.update(e('bob@localhost/x', 'n1', 's1', { priority: 5, presence: '<presence><priority>5</priority></presence>', flags: { carbons: true, roster: true, blocklist: false } }));
      let [x] = await r.resources('bob@localhost');
      assert.equal(x?.priority, 5);
      assert.equal(x?.presence, '<presence><priority>5</priority></presence>');
      assert.equal(x?.flags?.carbons, true);
      await r.update(e('bob@localhost/x', 'n1', 's1', { priority: 5 }));
      [x] = await r.resources('bob@localhost');
      assert.equal(x?.presence, undefined);
    });

    it('a bind answers the session it replaced; the old one can no longer unbind or update the JID', async () => {
      await r.bind(e('carol@localhost/r', 'old', 'a'));
      const prev = await r.bind(e('carol@localhost/r', 'new', 'b'));
      assert.equal(prev?.node, 'old');
      assert.equal(prev?.sid, 'a');
      await r.unbind('carol@localhost/r', 'old', 'a');
      await r.update(e('carol@localhost/r', 'old', 'a', { priority: 1, presence: '<presence/>' }));
      const [x] = await r.resources('carol@localhost');
      assert.equal(x?.node, 'new');
      assert.equal(x?.presence, undefined);
    });

    it('clears everything a node had (or one incarnation of it), lists every entry, counts online sessions', async () => {
      await r.bind(e('dave@localhost/1', 'dead', 'd1'));
      await r.bind(e('dave@localhost/2', 'dead', 'd2', { inc: 'i2' }));
      await r.bind(e('erin@localhost/1', 'alive', 'e1'));
      const before = await r.countOnline();
      assert.equal(await r.clearNode('dead', 'i2'), 1);
      assert.deepEqual((await r.resources('dave@localhost')).map((x) => x.full), ['dave@localhost/1']);
      assert.equal(await r.clearNode('dead'), 1);
      assert.deepEqual(await r.resources('dave@localhost'), []);
      assert.equal((await r.resources('erin@localhost')).length, 1);
      assert.equal(await r.countOnline(), before - 2);
      const seen: string[] = [];
      await r.scan((batch) => seen.push(...batch.map((x) => x.full)));
      assert.ok(seen.includes('erin@localhost/1'));
      assert.ok(!seen.includes('dave@localhost/1'));
    });
  });
}
