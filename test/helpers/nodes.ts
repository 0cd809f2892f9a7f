// Real `uzzap start` processes for the cluster tests: a private redis-server, node
// processes configured only through the UZZAP_* environment, their /status.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Server } from '../../src/server.js';
import { newPostgresSchema, testCert } from './server.js';
import { stopAll, until, type XmppClient } from './clients.js';
import { authenticated, rawSession, type RawClient } from './raw.js';

const BIN = resolve('bin/uzzap.js');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
    s.on('error', rej);
  });
}

export interface NodeProc {
  name: string;
  proc: ChildProcess;
  c2s: number;
  http: number;
  out: string;
}

/** what connect() needs of a server: its c2s port */
export const at = (p: NodeProc): Server => ({ ports: { c2s: p.c2s } }) as unknown as Server;

export interface ClusterStatus {
  cluster: { name: string; sessions: number }[];
}

/** A cluster of node processes on a fresh Postgres schema and a private Redis. */
export class ProcessCluster {
  readonly procs: NodeProc[] = [];
  redisPort = 0;
  redis: ChildProcess | undefined;
  cwd = '';
  env: NodeJS.ProcessEnv = {};

  async init(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
    this.cwd = mkdtempSync(join(tmpdir(), 'uzzap-cluster-'));
    this.redisPort = await freePort();
    await this.startRedis();
    const { cert, key } = await testCert();
    this.env = {
      ...process.env,
      UZZAP_DOMAIN: 'localhost',
      UZZAP_POSTGRES_URL: await newPostgresSchema(),
      UZZAP_REDIS_URL: `redis://127.0.0.1:${this.redisPort}/0`,
      UZZAP_BIND_ADDRESS: '127.0.0.1',
      UZZAP_C2S_TLS_PORT: '0',
      UZZAP_COMPONENT_PORT: '0',
      UZZAP_S2S_PORT: '0',
      UZZAP_S2S_TLS_PORT: '0',
      UZZAP_TLS_CERT: cert,
      UZZAP_TLS_KEY: key,
      UZZAP_LOG_LEVEL: 'info',
      UZZAP_SASL_SCRAM_ITERATIONS: '4096',
      UZZAP_AUTH_FAILURE_DELAY: '0',
      ...extraEnv,
    };
  }

  async startRedis(): Promise<void> {
    this.redis = spawn('redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await until(() => this.redisCli('ping').trim() === 'PONG', 'redis up', 10_000);
  }

  redisCli(...args: string[]): string {
    return spawnSync('redis-cli', ['-p', String(this.redisPort), ...args], { encoding: 'utf8' }).stdout ?? '';
  }

  uzzap(...args: string[]): ReturnType<typeof spawnSync> {
    return spawnSync(process.execPath, [BIN, ...args], { cwd: this.cwd, env: this.env, encoding: 'utf8' });
  }

  /**
   * Start `uzzap start` as node `name` (UZZAP_WORKERS in `extra`: that many must listen);
   * with `npm`, as the README says: `npm start` in the repository (then `proc` is npm's).
   */
  async node(name: string, extra: NodeJS.ProcessEnv = {}, how: { npm?: boolean } = {}): Promise<NodeProc> {
    const p: NodeProc = { name, proc: undefined as unknown as ChildProcess, c2s: await freePort(), http: await freePort(), out: '' };
    const env = { ...this.env, UZZAP_NODE_NAME: name, UZZAP_C2S_PORT: String(p.c2s), UZZAP_HTTP_PORT: String(p.http), UZZAP_DATA_DIR: this.cwd, ...extra };
    p.proc = how.npm
      ? spawn('npm', ['start', '--silent'], { cwd: resolve('.'), env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [BIN, 'start'], { cwd: this.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    p.proc.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
    p.proc.stderr!.on('data', (d: Buffer) => (p.out += d.toString()));
    this.procs.push(p);
    const listening = extra.UZZAP_WORKERS ? Number(extra.UZZAP_WORKERS) : 1;
    await until(() => (p.out.match(/Uzzap listening/g) ?? []).length >= listening, `${name} listening`, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${p.out.slice(-3000)}`);
    });
    return p;
  }

  async status(p: NodeProc): Promise<ClusterStatus> {
    return (await (await fetch(`http://127.0.0.1:${p.http}/status`)).json()) as ClusterStatus;
  }

  /** offline messages waiting for `user` (straight from Postgres) */
  async offlineCount(user: string): Promise<number> {
    const c = new pg.Client({ connectionString: this.env.UZZAP_POSTGRES_URL });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM offline_messages WHERE username = $1', [user]);
      return Number(rows[0]?.n ?? 0);
    } finally {
      await c.end();
    }
  }

  stop(): void {
    for (const p of this.procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
    this.redis?.kill('SIGKILL');
  }

  /** A fresh cluster with these users (password 'secret') and nodes n1..n<count>. */
  async start(users: string[], count = 3, extraEnv: NodeJS.ProcessEnv = {}): Promise<NodeProc[]> {
    await this.init(extraEnv);
    return this.startNodes(users, count);
  }

  /** Users (password 'secret') and nodes n1..n<count> on an initialised cluster. */
  async startNodes(users: string[], count = 3): Promise<NodeProc[]> {
    for (const u of users) {
      const r = this.uzzap('user', 'add', `${u}@localhost`, 'secret');
      if (r.status !== 0) throw new Error(`uzzap user add ${u}: ${String(r.stderr)}`);
    }
    const nodes: NodeProc[] = [];
    for (let i = 1; i <= count; i++) nodes.push(await this.node(`n${i}`));
    return nodes;
  }

  /** The end of a test: clients closed, then every process (each node's log printed first with DUMP=1). */
  async shutdown(clients: XmppClient[] = [], raws: RawClient[] = []): Promise<void> {
    for (const r of raws) r.socket.destroy();
    await stopAll(...clients);
    if (process.env.DUMP) for (const p of this.procs) console.log(`----- ${p.name}\n${p.out.slice(-6000)}`);
    for (const p of this.procs) if (p.proc.signalCode === null && p.proc.exitCode === null) p.proc.kill('SIGCONT');
    this.stop();
  }
}

/**
 * A TCP relay to `port` that can be cut: every connection through it closed, and new
 * ones refused, until it is restored. Puts a shared part (Postgres) out of reach of
 * the nodes without stopping the server the rest of the suite uses.
 */
export class TcpCut {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private down = false;
  port = 0;

  constructor(private readonly target: number) {
    this.server = net.createServer((client) => {
      if (this.down) return void client.destroy();
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.down = false;
  }

  close(): void {
    this.cut();
    this.server.close();
  }
}

/** A raw session on `port` that sent initial presence and enabled XEP-0198 resumption: the client and its SM id. */
export async function resumableSession(port: number, user: string, resource: string): Promise<{ c: RawClient; id: string }> {
  const c = await rawSession(port, user, 'secret', resource);
  c.send('<presence/>');
  c.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`);
  const id = /id=['"]([^'"]+)['"]/.exec(await c.waitFor(/<enabled[^>]*\/>/))![1]!;
  return { c, id };
}

/** A new connection to `port` that resumes session `id` (XEP-0198, h=0) and got <resumed/>; its data starts there. */
export async function resumeOn(port: number, user: string, id: string): Promise<RawClient> {
  const c = await authenticated(port, user, 'secret');
  c.data = '';
  c.send(`<resume xmlns='urn:xmpp:sm:3' previd='${id}' h='0'/>`);
  await c.waitFor(/<resumed xmlns='urn:xmpp:sm:3' previd='[^']+' h='[0-9]+'\/>/);
  return c;
}
