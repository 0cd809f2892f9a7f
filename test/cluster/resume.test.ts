// XEP-0198 resumption on another node of the cluster (issue 15): the session moves
// to the node the client reconnects to, with exactly its unacknowledged stanzas, once,
// in order, with their stanza-ids; a second resume (on a third node) works the same way.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { authenticated, rawSession, type RawClient } from '../helpers/raw.js';

const SM = "xmlns='urn:xmpp:sm:3'";
const bodies = (s: string): string[] => [...s.matchAll(/<body>([^<]*)<\/body>/g)].map((m) => m[1]!);
const stanzaIds = (s: string): string[] => [...s.matchAll(/<stanza-id xmlns="urn:xmpp:sid:0" id="([^"]+)"/g)].map((m) => m[1]!);

describe('cluster: stream management resumes on another node (three nodes, Postgres + Redis)', function () {
  this.timeout(30_000);
  let slot: StorageSlot;
  let a: Server, b: Server, c: Server;
  let bob: XmppClient;
  const raws: RawClient[] = [];
  before(async () => {
    slot = await newStorageSlot();
    const config = { sm: { resume_timeout: 60, ack_every: 1000, ack_interval: 60 } };
    a = await startServer({ slot, config, users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    b = await startServer({ slot, config });
    c = await startServer({ slot, config });
    bob = await connect(c, 'bob', { resource: 'pc' });
  });
  after(async () => {
    for (const r of raws) r.socket.destroy();
    await stopAll(bob);
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  it('a client dropped on node A resumes on node B, then on node C; each gap arrives exactly once', async () => {
    const first = await rawSession(a.ports.c2s, 'alice', 'secret', 'phone');
    raws.push(first);
    first.send('<presence/>');
    first.send(`<enable ${SM} resume='true'/>`);
    const enabled = await first.waitFor(/<enabled[^>]*\/>/);
    const id = /id=['"]([^'"]+)['"]/.exec(enabled)![1]!;
    await until(() => c.sessions.get('alice@localhost', 'phone')?.available === true, 'C knows alice');
    await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'before')));
    await first.waitFor('<body>before</body>');
    const firstIds = stanzaIds(first.data);
    first.socket.destroy(); // a phone leaving coverage
    await until(() => first.closed, 'socket gone');
    await until(() => a.sessions.getLocal('alice@localhost', 'phone')?.detached === true, 'detached on A');
    for (let i = 1; i <= 3; i++) await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, `gap ${i}`)));
    await expectNothing(bob, (s) => s.attrs.type === 'error', { after: [bob] });

    // resume on B
    const second = await authenticated(b.ports.c2s, 'alice', 'secret');
    raws.push(second);
    second.data = '';
    second.send(`<resume ${SM} previd='${id}' h='0'/>`);
    await second.waitFor(/<resumed xmlns='urn:xmpp:sm:3' previd='[^']+' h='0'\/>/);
    await second.waitFor('<body>gap 3</body>');
    assert.deepEqual(bodies(second.data), ['before', 'gap 1', 'gap 2', 'gap 3']);
    assert.equal(stanzaIds(second.data)[0], firstIds[0], 'the retransmitted copy keeps its stanza-id');
    assert.equal(a.sessions.getLocal('alice@localhost', 'phone'), undefined, 'A no longer has it');
    await until(() => c.sessions.get('alice@localhost', 'phone') !== undefined && (c.sessions.get('alice@localhost', 'phone') as { node?: string }).node === b.nodeId, 'C routes to B');
    assert.equal(await a.storage.offline.count('alice'), 0);
    // acknowledge two, then a new message; drop again
    second.send(`<a ${SM} h='2'/>`);
    await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'after')));
    await second.waitFor('<body>after</body>');
    second.socket.destroy();
    await until(() => b.sessions.getLocal('alice@localhost', 'phone')?.detached === true, 'detached on B');

    // second resume, on C (the id still names A: A sends C on to B)
    const third = await authenticated(c.ports.c2s, 'alice', 'secret');
    raws.push(third);
    third.data = '';
    third.send(`<resume ${SM} previd='${id}' h='4'/>`);
    await third.waitFor(/<resumed [^>]*\/>/);
    await third.waitFor('<body>after</body>');
    assert.deepEqual(bodies(third.data), ['after'], 'only what was not acknowledged');
    // the session lives on C now and gets new messages there
    await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'on C')));
    await third.waitFor('<body>on C</body>');
  });

  it('directed presence sent before the move gets its unavailable when the moved session ends', async () => {
    // carol is no contact of alice's: she hears of her only by directed presence
    const carol = await connect(a, 'carol', { resource: 'pc' });
    try {
      const first = await rawSession(a.ports.c2s, 'alice', 'secret', 'tab');
      raws.push(first);
      first.send('<presence/>');
      first.send(`<enable ${SM} resume='true'/>`);
      const id = /id=['"]([^'"]+)['"]/.exec(await first.waitFor(/<enabled[^>]*\/>/))![1]!;
      first.send(`<presence to='carol@localhost'/>`);
      await expectStanza(carol, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/tab' && !s.attrs.type, 3000, 'the directed presence');
      first.socket.destroy();
      await until(() => a.sessions.getLocal('alice@localhost', 'tab')?.detached === true, 'detached on A');
      const again = await authenticated(b.ports.c2s, 'alice', 'secret');
      raws.push(again);
      again.send(`<resume ${SM} previd='${id}' h='0'/>`);
      await again.waitFor(/<resumed [^>]*\/>/);
      // the session ends on B, which never saw the directed presence go out
      again.send('</stream:stream>');
      await expectStanza(carol, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/tab' && s.attrs.type === 'unavailable', 5000, 'unavailable, at carol');
    } finally {
      await stopAll(carol);
    }
  });

  it('messages sent without a pause while the session moves from node to node all arrive, once and in order', async () => {
    // senders on two nodes (A and C) never stop while alice's session moves B, C, A, B,
    // C, A: each time the node that had it routes on to the node that took it (its own
    // users' messages, and the others' sent by their older view) until that node's entry
    // reaches it; nothing may go to offline storage or come twice
    const carol = await connect(a, 'carol', { resource: 'pump' });
    try {
      let link = await rawSession(a.ports.c2s, 'alice', 'secret', 'race');
      raws.push(link);
      link.send('<presence/>');
      link.send(`<enable ${SM} resume='true'/>`);
      const id = /id=['"]([^'"]+)['"]/.exec(await link.waitFor(/<enabled[^>]*\/>/))![1]!;
      await until(() => c.sessions.get('alice@localhost', 'race')?.available === true, 'C knows alice');
      let stop = false;
      const sent = { a: 0, c: 0 };
      const pump = async (client: XmppClient, tag: 'a' | 'c'): Promise<void> => {
        while (!stop) {
          await client.send(xml('message', { to: 'alice@localhost/race', type: 'chat' }, xml('body', {}, `${tag} ${++sent[tag]}`)));
          await new Promise((r) => setImmediate(r));
        }
      };
      const pumps = Promise.all([pump(carol, 'a'), pump(bob, 'c')]);
      let data = '';
      let h = 0;
      for (const [name, to] of [['B', b], ['C', c], ['A', a], ['B', b], ['C', c], ['A', a]] as const) {
        const before = sent.a + sent.c;
        await until(() => sent.a + sent.c >= before + 20, 'the senders going');
        // what this link got whole so far, acknowledged on resume (h counts stanzas handled)
        data += link.data;
        h += link.data.split('</message>').length - 1;
        link.socket.destroy();
        await until(() => link.closed, 'socket gone');
        link = await authenticated(to.ports.c2s, 'alice', 'secret');
        raws.push(link);
        link.data = '';
        link.send(`<resume ${SM} previd='${id}' h='${h}'/>`);
        await link.waitFor(/<resumed [^>]*\/>/, 5000);
        assert.equal(to.sessions.getLocal('alice@localhost', 'race')?.detached, false, `on ${name}`);
      }
      stop = true;
      await pumps;
      await link.waitFor(`<body>a ${sent.a}</body>`, 10_000);
      await link.waitFor(`<body>c ${sent.c}</body>`, 10_000);
      data += link.data;
      const got = bodies(data);
      for (const tag of ['a', 'c'] as const) {
        const mine = got.filter((g) => g.startsWith(`${tag} `)).map((g) => Number(g.slice(2)));
        assert.deepEqual(mine, Array.from({ length: sent[tag] }, (_, i) => i + 1), `from ${tag}: every message once, in order`);
      }
      assert.equal(await a.storage.offline.count('alice'), 0, 'nothing went to offline storage');
    } finally {
      await stopAll(carol);
    }
  });
});
