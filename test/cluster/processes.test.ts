// The cluster contract end to end (issue 15): real `uzzap start` processes — three
// nodes, plus a fourth started with UZZAP_WORKERS=2 — on one Postgres and one Redis,
// configured only through the UZZAP_* environment, with real clients. Redis is a
// private redis-server of this test, restarted in the middle (its data lost).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Server } from '../../src/server.js';
import { newPostgresSchema, testCert } from '../helpers/server.js';
import { connect, expectStanza, isMessage, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';

const BIN = resolve('bin/uzzap.js');

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
    s.on('error', rej);
  });
}

interface Proc {
  name: string;
  proc: ChildProcess;
  c2s: number;
  http: number;
  out: string;
}

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));
/** what connect() needs of a server: its c2s port */
const at = (p: Proc): Server => ({ ports: { c2s: p.c2s } }) as unknown as Server;

describe('cluster: real processes on Postgres and Redis, the public contract', function () {
  this.timeout(90_000);
  let cwd: string;
  let env: NodeJS.ProcessEnv;
  let redisPort: number;
  let redis: ChildProcess | undefined;
  const procs: Proc[] = [];
  const clients: XmppClient[] = [];

  const startRedis = async (): Promise<void> => {
    redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await until(() => spawnSync('redis-cli', ['-p', String(redisPort), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG', 'redis up', 10_000);
  };
  const uzzap = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8' });
  const node = async (name: string, extra: NodeJS.ProcessEnv = {}): Promise<Proc> => {
    const p: Proc = { name, proc: undefined as unknown as ChildProcess, c2s: await freePort(), http: await freePort(), out: '' };
    p.proc = spawn(process.execPath, [BIN, 'start'], {
      cwd,
      env: { ...env, UZZAP_NODE_NAME: name, UZZAP_C2S_PORT: String(p.c2s), UZZAP_HTTP_PORT: String(p.http), ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.proc.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
    p.proc.stderr!.on('data', (d: Buffer) => (p.out += d.toString()));
    procs.push(p);
    const listening = (extra.UZZAP_WORKERS ? Number(extra.UZZAP_WORKERS) : 1) as number;
    await until(() => (p.out.match(/Uzzap listening/g) ?? []).length >= listening, `${name} listening`, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${p.out.slice(-3000)}`);
    });
    return p;
  };
  const status = async (p: Proc): Promise<{ cluster: { name: string; sessions: number }[] }> =>
    (await (await fetch(`http://127.0.0.1:${p.http}/status`)).json()) as { cluster: { name: string; sessions: number }[] };

  const offlineCount = async (user: string): Promise<number> => {
    const c = new pg.Client({ connectionString: env.UZZAP_POSTGRES_URL });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM offline_messages WHERE username = $1', [user]);
      return Number(rows[0]?.n ?? 0);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'uzzap-cluster-'));
    redisPort = await freePort();
    await startRedis();
    const { cert, key } = await testCert();
    env = {
      ...process.env,
      UZZAP_DOMAIN: 'localhost',
      UZZAP_POSTGRES_URL: await newPostgresSchema(),
      UZZAP_REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
      UZZAP_BIND_ADDRESS: '127.0.0.1',
      UZZAP_C2S_TLS_PORT: '0',
      UZZAP_COMPONENT_PORT: '0',
      UZZAP_TLS_CERT: cert,
      UZZAP_TLS_KEY: key,
      UZZAP_LOG_LEVEL: 'info',
      UZZAP_SASL_SCRAM_ITERATIONS: '4096',
      UZZAP_AUTH_FAILURE_DELAY: '0',
      UZZAP_CLUSTER_HEARTBEAT_MS: '500',
      UZZAP_CLUSTER_DEAD_AFTER_MS: '2000',
    };
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) assert.equal(uzzap('user', 'add', `${u}@localhost`, 'secret').status, 0);
    await node('n1');
    await node('n2');
    await node('n3');
    await node('wk', { UZZAP_WORKERS: '2' });
  });
  after(async () => {
    await stopAll(...clients);
    for (const p of procs) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    redis?.kill('SIGKILL');
  });

  it('every node (the two workers too) sees the whole cluster in /status and `uzzap status`', async () => {
    const [n1] = procs;
    await until(async () => (await status(n1!)).cluster.length === 5, 'five nodes');
    const names = (await status(n1!)).cluster.map((n) => n.name).sort();
    assert.equal(names.length, 5);
    assert.ok(names.includes('n1') && names.includes('n3'));
    assert.equal(names.filter((n) => /-w[12]$/.test(n)).length, 2, names.join(','));
    const r = uzzap('status', '--url', `http://127.0.0.1:${n1!.http}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /cluster +5 nodes/);
  });

  it('clients on different processes talk: messages both ways, offline storage flushed on another node', async () => {
    const [n1, n2, n3, wk] = procs;
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
    await until(async () => (await offlineCount('dave')) === 1, 'stored by n1');
    const dave = await connect(at(n3!), 'dave', { resource: 'd' });
    clients.push(dave);
    await expectStanza(dave, isMessage('stored'));
  });

  it('Redis restarted (its data lost): nodes re-assert their sessions, nothing sent meanwhile is lost', async () => {
    const [alice, bob] = clients as [XmppClient, XmppClient];
    redis!.kill('SIGKILL');
    await until(() => redis!.exitCode !== null || redis!.signalCode !== null, 'redis down');
    // sent while Redis is down: waits in n1's outbox
    await alice.send(chat('bob@localhost/b', 'during the outage'));
    await startRedis();
    await expectStanza(bob, isMessage('during the outage'), 15_000);
    // the registry is back: every node lists every node and the sessions again
    await until(async () => {
      const st = await status(procs[0]!);
      return st.cluster.length === 5 && st.cluster.reduce((n, c) => n + c.sessions, 0) >= 4;
    }, 'cluster re-asserted', 15_000);
    await bob.send(chat('alice@localhost/a', 'after the restart'));
    await expectStanza(alice, isMessage('after the restart'));
  });

  it('`uzzap user del` against the running cluster ends the user’s session on its node', async () => {
    const erin = await connect(at(procs[2]!), 'erin', { resource: 'e' });
    clients.push(erin);
    const closed = new Promise<string>((res) => erin.on('error', (e: Error & { condition?: string }) => res(e.condition ?? e.message)));
    const r = uzzap('user', 'del', 'erin@localhost');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await closed, 'not-authorized');
  });

  it('SIGTERM on a node: it leaves the cluster and the others route around it', async () => {
    const n2 = procs[1]!;
    n2.proc.kill('SIGTERM');
    await until(() => n2.proc.exitCode !== null, 'n2 exited', 30_000);
    assert.equal(n2.proc.exitCode, 0);
    await until(async () => !(await status(procs[0]!)).cluster.some((n) => n.name === 'n2'), 'n2 gone from the cluster');
    // bob was on n2: a message to him now waits in offline storage, without an error
    const [alice] = clients as [XmppClient];
    await alice.send(chat('bob@localhost', 'after n2 left'));
    const bob = await connect(at(procs[0]!), 'bob', { resource: 'b2' });
    clients.push(bob);
    await expectStanza(bob, isMessage('after n2 left'));
  });
});
