// Issue 16, guarantees 5 and 6, with three real node processes on Postgres + Redis:
//   - SIGTERM drains a node: its resumable sessions and its rooms move to the other
//     nodes; the client gets <system-shutdown/>, resumes on another node and loses
//     nothing; its contacts see no presence change; the room keeps its occupants,
//     subject and history.
//   - SIGKILL: the dead node's room is served again by another node within its lease
//     (+ 1 s and the 2 s heartbeat check), with its occupants on live nodes, its
//     subject and history; the dead node's occupant leaves with 333.
//   - SIGSTOP past the lease, then SIGCONT: the paused node does not serve the room a
//     second time (fencing), and no message is delivered twice.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import { barrier, connect, expectNothing, expectStanza, until, xml, type XmppClient } from '../helpers/clients.js';
import { ProcessCluster, at, resumableSession, resumeOn, type NodeProc } from '../helpers/nodes.js';
import { SERVICE, codes, createRoom, join, presenceFrom } from '../helpers/muc.js';
import type { RawClient } from '../helpers/raw.js';

const ROOM = `hall@${SERVICE}`;
const bodies = (s: string): string[] => [...s.matchAll(/<body>([^<]*)<\/body>/g)].map((m) => m[1]!);
const groupchat = (body: string) => (s: Element) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body') === body;

/** Until a groupchat from `from` reaches `to` (the room is served): how long it took. */
async function roomServed(from: XmppClient, to: XmppClient, tag: string, ms: number): Promise<number> {
  const t0 = Date.now();
  let i = 0;
  await until(
    async () => {
      const body = `${tag} ${++i}`;
      await from.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, body)));
      try {
        await expectStanza(to, groupchat(body), 400, body);
        return true;
      } catch {
        return false;
      }
    },
    `${ROOM} served again`,
    ms,
  );
  return Date.now() - t0;
}

/** A figure from a node's Prometheus metrics. */
async function metric(p: NodeProc, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${p.http}/metrics`)).text();
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const ownerOf = (cl: ProcessCluster): string => cl.redisCli('get', `uzzap:localhost:owner:${ROOM}`).trim();

describe('cluster: drain and room failover (three processes, Postgres + Redis)', function () {
  this.timeout(120_000);

  describe('SIGTERM drains a node', () => {
    const cl = new ProcessCluster();
    const clients: XmppClient[] = [];
    const raws: RawClient[] = [];
    after(() => cl.shutdown(clients, raws));

    it('its resumable sessions resume elsewhere with nothing lost and no presence change; its room keeps occupants, subject and history', async () => {
      const [n1, n2, n3] = (await cl.start(['alice', 'bob', 'carol', 'dave', 'erin'], 3, { UZZAP_SM_ACK_EVERY: '1000', UZZAP_SM_ACK_INTERVAL: '600' })) as [
        NodeProc,
        NodeProc,
        NodeProc,
      ];
      // alice: a resumable raw session on n1; bob (n2) is subscribed to her presence
      const { c: alice, id } = await resumableSession(n1.c2s, 'alice', 'phone');
      raws.push(alice);
      const bob = await connect(at(n2), 'bob', { resource: 'pc' });
      clients.push(bob);
      await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await alice.waitFor(/type=['"]subscribe['"]/);
      alice.send(`<presence to='bob@localhost' type='subscribed'/>`);
      await expectStanza(bob, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/phone' && !s.attrs.type, 5000, 'alice available, at bob');

      // carol (n1) makes the room there, sets its subject and says something; dave (n3) joins
      const carol = await connect(at(n1), 'carol', { resource: 'c' });
      const dave = await connect(at(n3), 'dave', { resource: 'd' });
      clients.push(carol, dave);
      await createRoom(carol, 'hall', 'ca');
      assert.equal(ownerOf(cl), 'n1');
      await carol.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'the drain test')));
      await join(dave, 'hall', 'da');
      await carol.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'hello hall')));
      await expectStanza(dave, groupchat('hello hall'), 3000, 'hello, at dave');
      // alice (n1) is in the room too
      alice.send(`<presence to='${ROOM}/al'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
      await expectStanza(dave, presenceFrom(`${ROOM}/al`), 3000, 'alice joining, at dave');

      // something alice has not acknowledged
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat', id: 'm0' }, xml('body', {}, 'before')));
      await alice.waitFor('<body>before</body>');
      bob.received.length = 0;

      const exited = new Promise<number | null>((resolve) => n1.proc.once('exit', (code) => resolve(code)));
      n1.proc.kill('SIGTERM');
      await alice.waitFor(/<system-shutdown xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/, 10_000);
      // sent while n1 drains and after it left: they wait for alice wherever her session went
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat', id: 'm1' }, xml('body', {}, 'during')));
      assert.equal(await exited, 0, n1.out.slice(-2000));
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat', id: 'm2' }, xml('body', {}, 'after')));

      // alice reconnects to n3 and resumes
      const again = await resumeOn(n3.c2s, 'alice', id);
      raws.push(again);
      await again.waitFor('<body>after</body>', 5000);
      // (her room's message, unacknowledged too, comes again as well)
      assert.deepEqual(bodies(again.data), ['hello hall', 'before', 'during', 'after'], again.data);
      // her contact never saw her go
      await barrier(bob);
      assert.equal(bob.received.filter((s) => s.is('presence') && s.attrs.from === 'alice@localhost/phone').length, 0, 'no presence change at bob');
      // and after the resume she is where messages reach her
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'later')));
      await again.waitFor('<body>later</body>');

      // the room moved (n2 or n3 serves it): dave is still in it, with bob's new message
      // reaching him; a newcomer gets the subject and the history
      assert.ok(['n2', 'n3'].includes(ownerOf(cl)), ownerOf(cl));
      const erin = await connect(at(n2), 'erin', { resource: 'e' });
      clients.push(erin);
      const j = await join(erin, 'hall', 'er');
      assert.equal(j.subject.getChildText('subject'), 'the drain test');
      assert.ok(erin.received.some(groupchat('hello hall')) || j.subject !== undefined);
      await until(() => erin.received.some(groupchat('hello hall')), 'the history at erin', 3000);
      await expectStanza(dave, presenceFrom(`${ROOM}/er`), 3000, 'erin joining, at dave');
      await erin.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'hi dave')));
      await expectStanza(dave, groupchat('hi dave'), 3000, 'erin’s message, at dave');
      // alice's session moved twice (n1 -> drain -> n2 or n3 -> resume -> n3) and the room
      // went to n2: when she goes unavailable on n3, the room on n2 lets her go
      assert.equal(ownerOf(cl), 'n2');
      again.send(`<presence type='unavailable'/>`);
      const gone = await expectStanza(dave, presenceFrom(`${ROOM}/al`, 'unavailable'), 5000, 'alice leaving the room, at dave');
      // a plain leave, not the ghost removal (333) the room would do later, on a delivery error
      assert.ok(!codes(gone).includes(333), gone.toString());
      void n2;
    });
  });

  describe('SIGKILL and SIGSTOP: the room moves, and a paused node does not serve it twice', () => {
    const cl = new ProcessCluster();
    const clients: XmppClient[] = [];
    after(() => cl.shutdown(clients));

    async function roomOn(n1: NodeProc, n2: NodeProc, n3: NodeProc): Promise<{ carol: XmppClient; bob: XmppClient; dave: XmppClient }> {
      const carol = await connect(at(n1), 'carol', { resource: 'c' });
      const bob = await connect(at(n2), 'bob', { resource: 'b' });
      const dave = await connect(at(n3), 'dave', { resource: 'd' });
      clients.push(carol, bob, dave);
      await createRoom(carol, 'hall', 'ca', { 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_roomname': 'The Hall' });
      await carol.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'failover')));
      await join(bob, 'hall', 'bo');
      await join(dave, 'hall', 'da');
      await carol.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'first words')));
      await expectStanza(dave, groupchat('first words'), 3000, 'first words, at dave');
      await expectStanza(bob, groupchat('first words'), 3000, 'first words, at bob');
      return { carol, bob, dave };
    }

    it('SIGKILL: another node serves the room within the lease + 1 s; occupants on live nodes stay, the dead node’s leave with 333', async () => {
      const [n1, n2, n3] = (await cl.start(['bob', 'carol', 'dave', 'erin'])) as [NodeProc, NodeProc, NodeProc];
      const { bob, dave } = await roomOn(n1, n2, n3);
      assert.equal(ownerOf(cl), 'n1');
      // the room's snapshot reaches Redis within 250 ms of a change (a crash loses at most that much)
      await until(() => cl.redisCli('get', `uzzap:localhost:rstate:${ROOM}`).includes('dave@localhost/d'), 'the room’s snapshot in Redis');
      // and the room's archive rows (subject, first words) are written, within 250 ms (a
      // crash loses what is younger: docs/cluster.md)
      await until(async () => (await metric(n1, 'uzzap_archive_batch_messages_sum')) >= 2, 'the room’s messages archived');
      bob.received.length = 0;
      dave.received.length = 0;

      const killed = Date.now();
      n1.proc.kill('SIGKILL');
      // the lease is the heartbeat's 8 s from n1's last heartbeat (before the kill); the
      // survivors read heartbeats every 0.5 s; served again within lease + 1 s (+ 0.5 s for
      // this test's own polling on a loaded machine)
      await until(() => ['n2', 'n3'].includes(ownerOf(cl)), 'a survivor owns the room', 15_000);
      const movedAfter = Date.now() - killed;
      assert.ok(movedAfter <= 8000 + 1000 + 500, `room served again after ${movedAfter} ms`);
      await roomServed(bob, dave, 'after the crash', 5000);
      const left = await expectStanza(dave, presenceFrom(`${ROOM}/ca`, 'unavailable'), 5000, 'carol leaving, at dave');
      assert.ok(codes(left).includes(333), left.toString());
      // subject, configuration and history survive
      const erin = await connect(at(n3), 'erin', { resource: 'e' });
      clients.push(erin);
      const j = await join(erin, 'hall', 'er');
      assert.equal(j.subject.getChildText('subject'), 'failover');
      await until(() => erin.received.some(groupchat('first words')), 'the history at erin', 3000);
      const info = await erin.iqCaller.request(
        xml('iq', { type: 'get', to: ROOM }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
        5000,
      );
      assert.equal(info.getChild('query')?.getChild('identity')?.attrs.name, 'The Hall');
    });

    it('SIGSTOP past the lease, then SIGCONT: the paused node does not serve the room again; each message arrives once', async () => {
      // a fresh room on a new node n4, paused
      const n4 = await cl.node('n4');
      const [n2, n3] = [cl.procs.find((p) => p.name === 'n2')!, cl.procs.find((p) => p.name === 'n3')!];
      const frank = await connect(at(n4), 'carol', { resource: 'f' });
      clients.push(frank);
      const bob = clients.find((c) => c.jid?.toString() === 'bob@localhost/b')!;
      const dave = clients.find((c) => c.jid?.toString() === 'dave@localhost/d')!;
      await createRoom(frank, 'porch', 'fr');
      await join(bob, 'porch', 'bo');
      await join(dave, 'porch', 'da');
      const PORCH = `porch@${SERVICE}`;
      assert.equal(cl.redisCli('get', `uzzap:localhost:owner:${PORCH}`).trim(), 'n4');
      await until(() => cl.redisCli('get', `uzzap:localhost:rstate:${PORCH}`).includes('dave@localhost/d'), 'the porch’s snapshot in Redis');
      n4.proc.kill('SIGSTOP');
      await until(() => ['n2', 'n3'].includes(cl.redisCli('get', `uzzap:localhost:owner:${PORCH}`).trim()), 'a survivor owns the porch', 15_000);
      const porchChat = (body: string) => (s: Element) => s.is('message') && s.attrs.from === `${PORCH}/bo` && s.getChildText('body') === body;
      await bob.send(xml('message', { to: PORCH, type: 'groupchat' }, xml('body', {}, 'while n4 sleeps')));
      await expectStanza(dave, porchChat('while n4 sleeps'), 3000, 'at dave');
      n4.proc.kill('SIGCONT');
      // n4 wakes with the room in memory and frank still connected; what frank says to
      // the room must go to the node serving it now, not be served by n4 from its old
      // copy (frank left the room with n4's death: the room answers him with an error)
      await frank.send(xml('message', { to: PORCH, type: 'groupchat', id: 'stale' }, xml('body', {}, 'from the sleeper')));
      await bob.send(xml('message', { to: PORCH, type: 'groupchat' }, xml('body', {}, 'after the wake')));
      await expectStanza(dave, porchChat('after the wake'), 5000, 'after the wake, at dave');
      // once n4 has written itself back into Redis, the room's refusal reaches frank
      await until(() => cl.redisCli('sismember', 'uzzap:localhost:nodes', 'n4').trim() === '1', 'n4 back in the node set', 10_000);
      await until(
        async () => {
          await frank.send(xml('message', { to: PORCH, type: 'groupchat', id: 'stale2' }, xml('body', {}, 'from the sleeper')));
          await new Promise((r) => setTimeout(r, 200));
          return frank.received.some((s) => s.attrs.id === 'stale2' && s.attrs.type === 'error');
        },
        'frank’s message refused by the node serving the room',
        10_000,
      );
      await barrier(bob, dave);
      assert.equal(dave.received.filter((s) => s.getChildText('body') === 'from the sleeper').length, 0, 'the paused node did not serve the room');
      await expectNothing(dave, porchChat('after the wake'), { after: [bob] });
      assert.notEqual(cl.redisCli('get', `uzzap:localhost:owner:${PORCH}`).trim(), 'n4');
      void n2;
      void n3;
    });
  });
});
