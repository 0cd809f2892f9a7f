// Issue 16, guarantee 7: the shared parts out of reach for 30 s, then back, with three
// real node processes. What users see is written in docs/cluster.md ("Outages").
//   - Redis cut off (every connection closed, new ones refused; its data kept, so every
//     heartbeat has expired when it comes back, as after a network partition): traffic
//     within a node goes on; traffic between nodes waits and arrives; no node declares
//     another dead afterwards.
//   - Postgres cut (every connection closed, new ones refused): chat between online
//     users goes on and is archived once it is back; what needs the database fails with
//     an error that says so (never silence); nothing acknowledged is lost.
import assert from 'node:assert/strict';
import { barrier, connect, expectStanza, until, xml, type XmppClient } from '../helpers/clients.js';
import { ProcessCluster, TcpCut, at, type NodeProc } from '../helpers/nodes.js';

const OUTAGE_MS = 30_000;
const chat = (to: string, body: string, id?: string) => xml('message', { to, type: 'chat', ...(id ? { id } : {}) }, xml('body', {}, body));
const body = (text: string) => (s: { is(n: string): boolean; getChildText(n: string): string | null }) => s.is('message') && s.getChildText('body') === text;

async function subscribed(a: XmppClient, b: XmppClient, aj: string, bj: string): Promise<void> {
  await a.send(xml('presence', { to: bj, type: 'subscribe' }));
  await expectStanza(b, (s) => s.is('presence') && s.attrs.type === 'subscribe', 5000, `subscribe at ${bj}`);
  await b.send(xml('presence', { to: aj, type: 'subscribed' }));
  await expectStanza(a, (s) => s.is('presence') && s.attrs.from?.startsWith(`${bj}/`) === true && !s.attrs.type, 5000, `${bj} available at ${aj}`);
}

/** A cluster for one test, and the relay its nodes reach Redis or Postgres through; both go after it. */
function cluster(): { cl: ProcessCluster; clients: XmppClient[]; relay: (port: number) => Promise<TcpCut> } {
  const cl = new ProcessCluster();
  const clients: XmppClient[] = [];
  let cut: TcpCut | undefined;
  after(async () => {
    cut?.close();
    await cl.shutdown(clients);
  });
  const relay = async (port: number): Promise<TcpCut> => {
    cut = new TcpCut(port);
    await cut.listen();
    return cut;
  };
  return { cl, clients, relay };
}

describe('cluster: Redis and Postgres out of reach for 30 s (three processes)', function () {
  this.timeout(180_000);

  describe('Redis cut', () => {
    const { cl, clients, relay } = cluster();

    it('out of reach for 30 s (its data kept, every heartbeat expired meanwhile): traffic within a node goes on, traffic between nodes waits and arrives, nobody is declared dead', async () => {
      await cl.init();
      const cut = await relay(cl.redisPort);
      cl.env.UZZAP_REDIS_URL = `redis://127.0.0.1:${cut.port}/0`;
      const [n1, n2] = (await cl.startNodes(['alice', 'bob', 'carol'])) as [NodeProc, NodeProc];
      const alice = await connect(at(n1), 'alice', { resource: 'a' });
      const carol = await connect(at(n1), 'carol', { resource: 'c' });
      const bob = await connect(at(n2), 'bob', { resource: 'b' });
      clients.push(alice, carol, bob);
      await until(async () => (await cl.status(n1)).cluster.find((n) => n.name === 'n2')?.sessions === 1, 'n1 sees bob on n2');
      await subscribed(alice, bob, 'alice@localhost', 'bob@localhost');
      alice.received.length = 0;
      bob.received.length = 0;

      cut.cut();
      const t0 = Date.now();
      await alice.send(chat('carol@localhost', 'within n1'));
      await expectStanza(carol, body('within n1'), 3000, 'a message within n1, during the outage');
      await alice.send(chat('bob@localhost/b', 'across, during the outage'));
      // the outage itself: 30 s of it
      await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - t0)));
      cut.restore();
      // the nodes reconnect, each on its own retry timer, seconds apart
      await expectStanza(bob, body('across, during the outage'), 15_000, 'the message between nodes, after the outage');
      // every heartbeat expired during the outage: the nodes give each other dead_after_ms
      // to write theirs again, then judge; all three are still there, with their sessions
      await until(() => /Redis is back after an outage/.test(n1.out) && /Redis is back after an outage/.test(n2.out), 'the nodes saw Redis come back', 15_000);
      await new Promise((r) => setTimeout(r, 8000 + 2 * 2000 + 500)); // the grace, then two heartbeat checks
      for (const p of [n1, n2]) {
        const st = await cl.status(p);
        assert.deepEqual(st.cluster.map((n) => n.name), ['n1', 'n2', 'n3'], `${p.name}: ${JSON.stringify(st.cluster)}`);
      }
      assert.equal((await cl.status(n1)).cluster.find((n) => n.name === 'n2')?.sessions, 1);
      assert.ok(!/swept a dead node|node gone/.test(n1.out + n2.out), 'no node took another for dead');
      await barrier(alice, bob);
      assert.equal(alice.received.filter((s) => s.is('presence') && s.attrs.type === 'unavailable').length, 0, 'bob never went unavailable at alice');
      assert.equal(bob.received.filter((s) => s.is('presence') && s.attrs.type === 'unavailable').length, 0, 'alice never went unavailable at bob');
      await alice.send(chat('bob@localhost/b', 'after'));
      await expectStanza(bob, body('after'), 3000, 'after');
    });
  });

  describe('Postgres cut', () => {
    const { cl, clients, relay } = cluster();

    it('cut for 30 s: online users chat on (archived once it is back); a login is refused with a temporary failure; nothing acknowledged is lost', async () => {
      const cut = await relay(5432);
      await cl.init();
      // (the CLI runs synchronously, so it goes to Postgres directly, not through the relay)
      for (const name of ['alice', 'bob', 'carol']) assert.equal(cl.uzzap('user', 'add', `${name}@localhost`, 'secret').status, 0);
      const u = new URL(cl.env.UZZAP_POSTGRES_URL!);
      u.port = String(cut.port);
      cl.env.UZZAP_POSTGRES_URL = u.toString();
      const [n1, n2]: NodeProc[] = [await cl.node('n1'), await cl.node('n2')];
      const alice = await connect(at(n1), 'alice', { resource: 'a' });
      const bob = await connect(at(n2), 'bob', { resource: 'b' });
      clients.push(alice, bob);
      await until(async () => (await cl.status(n1)).cluster.find((n) => n.name === 'n2')?.sessions === 1, 'n1 sees bob on n2');

      // they talked before: each node has read what routing to the other needs (blocklist,
      // archive preferences); at login a node reads its own users'
      await alice.send(chat('bob@localhost/b', 'before'));
      await expectStanza(bob, body('before'), 3000, 'before');
      await bob.send(chat('alice@localhost/a', 'before too'));
      await expectStanza(alice, body('before too'), 3000, 'before too');

      cut.cut();
      const t0 = Date.now();
      for (let i = 0; i < 5; i++) await alice.send(chat('bob@localhost/b', `during ${i}`, `d${i}`));
      for (let i = 0; i < 5; i++) await expectStanza(bob, body(`during ${i}`), 5000, `during ${i}`);
      await bob.send(chat('alice@localhost/a', 'back during'));
      await expectStanza(alice, body('back during'), 5000, 'bob’s answer during the outage');
      // carol is offline: storing for her needs the database; alice is told, not left guessing
      await alice.send(chat('carol@localhost', 'to store', 'tostore'));
      const refused = await expectStanza(alice, (s) => s.is('message') && s.attrs.id === 'tostore' && s.attrs.type === 'error', 10_000, 'the error for a message that cannot be stored');
      assert.equal(refused.getChild('error')?.attrs.type, 'wait', refused.toString());
      // a login needs the database: refused, and the client is told why
      const login = await connect(at(n1), 'carol', { resource: 'c' }).then(
        () => 'logged in',
        (e: Error) => e.message,
      );
      assert.match(login, /temporary-auth-failure/, login);
      await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - t0)));
      cut.restore();
      // the archive takes what waited: every message of the outage is in both archives
      await until(
        async () => {
          const c = await connect(at(n2), 'carol', { resource: 'c2' }).catch(() => undefined);
          if (!c) return false;
          clients.push(c);
          return true;
        },
        'logins work again',
        20_000,
      );
      const mam = async (c: XmppClient): Promise<string[]> => {
        const id = `q${Date.now()}`;
        await c.send(xml('iq', { type: 'set', id }, xml('query', { xmlns: 'urn:xmpp:mam:2', queryid: id })));
        await expectStanza(c, (s) => s.is('iq') && s.attrs.id === id, 10_000, 'the archive query');
        return c.received
          .filter((s) => s.is('message') && s.getChild('result', 'urn:xmpp:mam:2')?.attrs.queryid === id)
          .map((s) => s.getChild('result')!.getChild('forwarded')!.getChild('message')!.getChildText('body') ?? '');
      };
      await until(async () => (await mam(bob)).filter((b) => b.startsWith('during')).length === 5, 'bob’s archive has the 5 messages', 20_000);
      await until(async () => (await mam(alice)).includes('back during'), 'alice’s archive has bob’s answer', 20_000);
      await until(async () => (await mam(alice)).filter((b) => b.startsWith('during')).length === 5, 'alice’s archive has the 5 messages', 20_000);
    });
  });
});
