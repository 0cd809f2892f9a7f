// The cluster contract end to end (issue 15): real `uzzap start` processes — three
// nodes, plus a fourth started with UZZAP_WORKERS=2 — on one Postgres and one Redis,
// configured only through the UZZAP_* environment, with real clients. Redis is a
// private redis-server of this test, restarted in the middle (its data lost).
import assert from 'node:assert/strict';
import net from 'node:net';
import { connect, expectStanza, isMessage, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { authenticated } from '../helpers/raw.js';
import { ProcessCluster, at } from '../helpers/nodes.js';

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));

describe('cluster: real processes on Postgres and Redis, the public contract', function () {
  this.timeout(90_000);
  const cl = new ProcessCluster();
  const clients: XmppClient[] = [];

  before(async () => {
    await cl.init({ UZZAP_CLUSTER_HEARTBEAT_MS: '500', UZZAP_CLUSTER_DEAD_AFTER_MS: '2000' });
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) assert.equal(cl.uzzap('user', 'add', `${u}@localhost`, 'secret').status, 0);
    await cl.node('n1');
    await cl.node('n2');
    await cl.node('n3');
    await cl.node('wk', { UZZAP_WORKERS: '2' });
  });
  after(async () => {
    await stopAll(...clients);
    cl.stop();
  });

  it('every node (the two workers too) sees the whole cluster in /status and `uzzap status`', async () => {
    const [n1] = cl.procs;
    await until(async () => (await cl.status(n1!)).cluster.length === 5, 'five nodes');
    const names = (await cl.status(n1!)).cluster.map((n) => n.name).sort();
    assert.equal(names.length, 5);
    assert.ok(names.includes('n1') && names.includes('n3'));
    assert.equal(names.filter((n) => /-w[12]$/.test(n)).length, 2, names.join(','));
    const r = cl.uzzap('status', '--url', `http://127.0.0.1:${n1!.http}`);
    assert.equal(r.status, 0, String(r.stderr));
    assert.match(String(r.stdout), /cluster +5 nodes/);
  });

  it('clients on different processes talk: messages both ways, offline storage flushed on another node', async () => {
    const [n1, n2, n3, wk] = cl.procs;
    const alice = await connect(at(n1!), 'alice', { resource: 'a' });
    const bob = await connect(at(n2!), 'bob', { resource: 'b' });
    const carol = await connect(at(wk!), 'carol', { resource: 'c' });
    clients.push(alice, bob, carol);
    // the mirrors fill within a moment: a message to a full JID is retried until it lands
    await until(async () => {
      await alice.send(chat('bob@localhost/b', 'ping'));
      return bob.received.some(isMessage('ping'));
    }, 'alice reaches bob', 5000);
    await bob.send(chat('carol@localhost/c', 'to a worker'));
    await expectStanza(carol, isMessage('to a worker'));
    await carol.send(chat('alice@localhost', 'from a worker'));
    await expectStanza(alice, isMessage('from a worker'));
    // dave has no session anywhere: stored, and flushed by the node he logs in to
    await alice.send(chat('dave@localhost', 'stored'));
    await until(async () => (await cl.offlineCount('dave')) === 1, 'stored by n1');
    const dave = await connect(at(n3!), 'dave', { resource: 'd' });
    clients.push(dave);
    await expectStanza(dave, isMessage('stored'));
  });

  it('Redis restarted (its data lost): nodes re-assert their sessions, nothing sent meanwhile is lost', async () => {
    const [alice, bob] = clients as [XmppClient, XmppClient];
    cl.redis!.kill('SIGKILL');
    await until(() => cl.redis!.exitCode !== null || cl.redis!.signalCode !== null, 'redis down');
    // sent while Redis is down: waits in n1's outbox
    await alice.send(chat('bob@localhost/b', 'during the outage'));
    await cl.startRedis();
    await expectStanza(bob, isMessage('during the outage'), 15_000);
    // the registry is back: every node lists every node and the sessions again
    await until(async () => {
      const st = await cl.status(cl.procs[0]!);
      return st.cluster.length === 5 && st.cluster.reduce((n, c) => n + c.sessions, 0) >= 4;
    }, 'cluster re-asserted', 15_000);
    await bob.send(chat('alice@localhost/a', 'after the restart'));
    await expectStanza(alice, isMessage('after the restart'));
  });

  it('`uzzap user del` against the running cluster ends the user’s session on its node', async () => {
    const erin = await connect(at(cl.procs[2]!), 'erin', { resource: 'e' });
    clients.push(erin);
    const closed = new Promise<string>((res) => erin.on('error', (e: Error & { condition?: string }) => res(e.condition ?? e.message)));
    const r = cl.uzzap('user', 'del', 'erin@localhost');
    assert.equal(r.status, 0, String(r.stderr));
    assert.equal(await closed, 'not-authorized');
  });

  it('`npm start` killed with SIGKILL takes the server with it (it does not run on, orphaned, with its ports)', async () => {
    const viaNpm = await cl.node('npm1', {}, { npm: true });
    await until(async () => (await cl.status(cl.procs[0]!)).cluster.some((n) => n.name === 'npm1'), 'npm1 in the cluster');
    // the server's own pid, as its heartbeat tells the cluster (npm's child's child)
    const pid = ((await cl.status(cl.procs[0]!)).cluster.find((n) => n.name === 'npm1') as unknown as { pid: number }).pid;
    assert.ok(pid && pid !== viaNpm.proc.pid, `the server runs under npm (${pid} vs ${viaNpm.proc.pid})`);
    viaNpm.proc.kill('SIGKILL');
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      // the server (npm's grandchild) is gone within a second: its port refuses
      await until(
        () =>
          new Promise<boolean>((done) => {
            const s = net.connect(viaNpm.c2s, '127.0.0.1');
            s.once('connect', () => (s.destroy(), done(false)));
            s.once('error', () => done(true));
          }),
        'the server behind npm gone',
        3000,
      );
      await until(() => !alive(), 'no server process left');
    } finally {
      if (alive()) process.kill(pid, 'SIGKILL'); // (only when this test failed)
    }
  });

  it('SIGTERM on a node: it leaves the cluster; its resumable session waits on another node, where its client resumes it', async () => {
    const n2 = cl.procs[1]!;
    const [alice] = clients as [XmppClient];
    // bob's client (@xmpp/client) enabled XEP-0198 resumption on n2
    const bobOnN2 = clients.find((c) => c.jid?.toString() === 'bob@localhost/b')!;
    const sm = (bobOnN2 as unknown as { streamManagement: { id: string; inbound: number } }).streamManagement;
    const smId = sm.id;
    assert.ok(smId, 'bob’s client has a resumable session');
    n2.proc.kill('SIGTERM');
    await until(() => n2.proc.exitCode !== null, 'n2 exited', 30_000);
    assert.equal(n2.proc.exitCode, 0);
    await until(async () => !(await cl.status(cl.procs[0]!)).cluster.some((n) => n.name === 'n2'), 'n2 gone from the cluster');
    // bob's session moved to n1 (the drain): a message to him waits in it, without an error
    await alice.send(chat('bob@localhost', 'after n2 left'));
    const raw = await authenticated(cl.procs[0]!.c2s, 'bob', 'secret');
    raw.data = '';
    // the count of stanzas bob's client had (it may have acknowledged some: a lower h is refused)
    raw.send(`<resume xmlns='urn:xmpp:sm:3' previd='${smId}' h='${sm.inbound}'/>`);
    await raw.waitFor(/<resumed xmlns='urn:xmpp:sm:3'/);
    await raw.waitFor('<body>after n2 left</body>');
    raw.socket.destroy();
  });
});
