// Start real Uzzap servers in-process on free ports, on the backend the run
// selected: UZZAP_TEST_BACKEND=embedded (SQLite + memory registry) or
// postgres (UZZAP_TEST_POSTGRES_URL + UZZAP_TEST_REDIS_URL).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino, { type Logger } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { Server } from '../../src/server.js';
import { generateCert, type GeneratedCert } from '../../src/tls.js';

export const BACKEND = process.env.UZZAP_TEST_BACKEND === 'postgres' ? 'postgres' : 'embedded';
export const PG_URL = process.env.UZZAP_TEST_POSTGRES_URL ?? '';
export const REDIS_URL = process.env.UZZAP_TEST_REDIS_URL ?? '';

// One local CA per test process (in a temp dir) and a certificate for localhost it
// issued: every test server presents that certificate, and every test client trusts
// that CA (testCa()) and verifies the server with it; nothing switches verification off.
let certs: Promise<GeneratedCert> | undefined;
export function testCert(): Promise<GeneratedCert> {
  return (certs ??= generateCert('localhost', mkdtempSync(join(tmpdir(), 'uzzap-cert-'))));
}

let caPem: Promise<Buffer> | undefined;
/** The test CA's certificate (PEM), for a client's `ca` option. */
export function testCa(): Promise<Buffer> {
  return (caPem ??= testCert().then((c) => readFileSync(c.ca)));
}

/** Where a test server keeps its data, so a second server can reopen it (restart tests). */
export interface StorageSlot {
  dataDir: string;
  postgresUrl: string;
  redisPrefix: string;
}

const dataDirs = new Set<string>();
process.once('exit', () => {
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh Postgres schema in the test database (for archive shards); its URL selects it. */
export async function newPostgresSchema(): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const u = new URL(PG_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/** A fresh SQLite dir, or a fresh Postgres schema, plus a Redis key prefix. */
export async function newStorageSlot(): Promise<StorageSlot> {
  const dataDir = mkdtempSync(join(tmpdir(), 'uzzap-data-'));
  // removed when the test process ends (a slot outlives a server restart within a test)
  dataDirs.add(dataDir);
  const redisPrefix = `uzzap-test:${randomBytes(4).toString('hex')}:`;
  if (BACKEND !== 'postgres') return { dataDir, postgresUrl: '', redisPrefix };
  return { dataDir, postgresUrl: await newPostgresSchema(), redisPrefix };
}

export interface StartOptions {
  config?: Record<string, unknown>;
  slot?: StorageSlot;
  users?: Record<string, string>;
  /** the server's logger (default: pino at UZZAP_TEST_LOG, silent) */
  log?: Logger;
}

export async function startServer(opts: StartOptions = {}): Promise<Server> {
  const slot = opts.slot ?? (await newStorageSlot());
  const { cert, key } = await testCert();
  const level = process.env.UZZAP_TEST_LOG ?? 'silent';
  const base = {
    domain: 'localhost',
    c2s: { port: 0, tls_port: 0 },
    http: { port: 0 },
    // no federation listener unless a test asks for one (5269 is shared by every test server)
    s2s: { port: 0, tls_port: 0 },
    bind_address: '127.0.0.1',
    data_dir: slot.dataDir,
    postgres_url: slot.postgresUrl,
    redis_url: BACKEND === 'postgres' ? REDIS_URL : '',
    tls: { cert, key },
    log_level: level,
    sasl: { scram_iterations: 4096 },
    auth: { failure_delay: 0 },
  };
  const { config } = loadConfig({ env: {}, cwd: slot.dataDir, overrides: deepMerge(base, opts.config ?? {}) });
  const server = new Server({ config, log: opts.log ?? pino({ level }), redisPrefix: slot.redisPrefix });
  await server.start();
  for (const [u, p] of Object.entries(opts.users ?? {})) await server.accounts.create(u, p);
  return server;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = a[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && av && typeof av === 'object' && !Array.isArray(av)
        ? deepMerge(av as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
