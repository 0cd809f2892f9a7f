// PEP across the nodes of a cluster (two nodes in this process, one Postgres schema and
// one Redis prefix): a publish on node A reaches an interested contact on node B, whose
// caps node B learned; a node that read the owner's nodes earlier sees a later change.
// Runs in the Postgres + Redis pass of `npm test` only (a cluster needs Redis).
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { expectNothing, expectStanza, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { capsClient, isEvent, items, notify, NS_EVENT, publish } from '../helpers/pep.js';

const TUNE = 'http://jabber.org/protocol/tune';
const tune = (t: string) => xml('tune', { xmlns: TUNE }, xml('title', {}, t));

describe('cluster: PEP across nodes (two nodes, Postgres + Redis)', function () {
  this.timeout(20_000);
  let slot: StorageSlot;
  let a: Server, b: Server;
  const clients: XmppClient[] = [];
  before(async () => {
    slot = await newStorageSlot();
    a = await startServer({ slot, users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    b = await startServer({ slot });
    const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };
    for (const [x, y] of [['alice', 'bob'], ['alice', 'carol']] as const) {
      await a.storage.roster.put(x, { jid: `${y}@localhost`, ...both });
      await a.storage.roster.put(y, { jid: `${x}@localhost`, ...both });
    }
  });
  after(async () => {
    await stopAll(...clients);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('a publish on one node notifies interested contacts on the other, and only them', async () => {
    const bob = await capsClient(b, 'bob', [notify(TUNE)], { resource: 'pc' });
    const carol = await capsClient(b, 'carol', [], { resource: 'pc' });
    clients.push(bob, carol);
    // the publisher's node learns of both sessions (and reads bob's caps from storage)
    await until(() => a.sessions.get('bob@localhost', 'pc')?.available === true && a.sessions.get('carol@localhost', 'pc')?.available === true, 'A knows B\'s sessions');
    await until(async () => (await a.storage.caps.get(`sha-1 ${capsOfPresence(a, 'bob@localhost', 'pc')}`)) !== undefined, "bob's caps stored by B");
    const alice = await capsClient(a, 'alice', [notify(TUNE)], { resource: 'phone' });
    clients.push(alice);
    const r = await publish(alice, TUNE, 'one', tune('across'));
    assert.equal(r.attrs.type, 'result', r.toString());
    const got = await expectStanza(bob, isEvent('alice@localhost', TUNE), 5000, 'notification on node B');
    assert.equal(got.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'one');
    await expectNothing(carol, isEvent('alice@localhost', TUNE), { after: [alice, carol] });
  });

  it("a node that had read the owner's nodes sees a change made on the other node", async () => {
    const bobOnB = clients[0]!;
    // B reads alice's node (and caches it) ...
    const first = await items(bobOnB, 'alice@localhost', TUNE);
    assert.deepEqual(first.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['one']);
    // ... alice changes it on A ...
    const alice = clients[2]!;
    assert.equal((await publish(alice, TUNE, 'two', tune('next'))).attrs.type, 'result');
    await expectStanza(bobOnB, isEvent('alice@localhost', TUNE));
    // ... and a resource that comes online on B gets the newest item, not the cached one
    const bob2 = await capsClient(b, 'bob', [notify(TUNE)], { resource: 'tablet' });
    clients.push(bob2);
    const last = await expectStanza(bob2, isEvent('alice@localhost', TUNE), 5000, 'newest item on B');
    assert.equal(last.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'two');
  });
});

/** The caps ver in the presence a node holds for a session (the client computed it). */
function capsOfPresence(n: Server, bare: string, resource: string): string {
  return n.sessions.get(bare, resource)?.presence?.getChild('c', 'http://jabber.org/protocol/caps')?.attrs.ver ?? '';
}
