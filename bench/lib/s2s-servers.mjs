// Federated servers for the `s2s` workload: Uzzap, Prosody or ejabberd serving one
// domain on an address of its own in 127/8 (the whole block is loopback), c2s on 5222 and
// s2s on 5269 there, each finding the others by a private name table, never DNS or the
// machine's /etc/hosts:
//   - Uzzap: UZZAP_S2S_HOSTS=domain=ip:5269,... (s2s.hosts), UZZAP_S2S_REQUIRE_VALID_CERTS=false
//     (its certificate is one its own local CA issues at start: peers authenticate it by dialback);
//   - Prosody: a hosts file read by libunbound (lua-unbound, `unbound = { hoststxt = ... }`),
//     as test/interop/s2s-prosody.test.ts does;
//   - ejabberd: a private mount namespace (unshare --mount) with that hosts file bound over
//     /etc/hosts, as test/interop/s2s-ejabberd.test.ts does (ejabberd resolves names only
//     through /etc/hosts and DNS); the node itself is started as bench/lib/targets.mjs does
//     (erl directly, its own node name and cookie, no epmd), so this needs root.
// Prosody and ejabberd get a self-signed certificate for their domain (openssl) and
// authenticate peers by dialback (XEP-0220) over STARTTLS, like Uzzap.
// Every server is pinned to CPU 0 (taskset -c 0) like the other bench targets; accounts
// u1..uN/pw are written before the start (Uzzap, Prosody) or registered over Erlang RPC
// (ejabberd), with one shared salt.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fork, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { scramCredentials } from './scram.mjs';
import { seedUzzap } from './uzzap-seed.mjs';
import { freePort, sleep, waitForPort } from './proc.mjs';
import {
  SCRAM_ITERATIONS,
  dpkgVersion,
  ejabberdErlLibs,
  ejabberdRegister,
  lua,
  makeTmp,
  rmTmp,
  spawnServer,
  stopChild,
  tail,
  uzzapBuild,
} from './targets.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const C2S_PORT = 5222;
export const S2S_PORT = 5269;
/** Uzzap's HTTP port on its address (the `--domains` mode reads /metrics there) */
export const HTTP_PORT = 5280;
export const KINDS = ['uzzap', 'prosody', 'ejabberd'];
/** the two sides of a pair run; the fake many-domain peer (`--domains`) listens on FAKE_IP */
export const SIDES = {
  a: { ip: '127.0.2.1', domain: 'a.test' },
  b: { ip: '127.0.2.2', domain: 'b.test' },
};
export const FAKE_IP = '127.0.2.3';

const log = (...a) => console.error('[bench]', ...a);

/** true if something accepts on host:port now */
function accepting(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** refuse to start beside a leftover server (an interop test, an earlier run) on the same address */
async function portsFree(ip, ports) {
  for (const p of ports) if (await accepting(ip, p)) throw new Error(`something already listens on ${ip}:${p}: stop it first`);
}

/** a self-signed P-256 certificate for `domain` (as the interop tests make) */
function selfSigned(dir, domain) {
  const key = path.join(dir, `${domain}.key`);
  const crt = path.join(dir, `${domain}.crt`);
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${domain}`,
      '-addext',
      `subjectAltName=DNS:${domain}`,
      '-keyout',
      key,
      '-out',
      crt,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr || r.error}`);
  return { key, crt };
}

/** wait for every port on ip, or stop the child and throw with its logs */
async function ready(child, ip, ports, timeoutMs, logs, name) {
  try {
    for (const p of ports) await waitForPort(ip, p, timeoutMs, () => !child.exited);
  } catch (e) {
    for (const f of logs) console.error(`--- ${f}\n${tail(f)}`);
    await stopChild(child);
    throw new Error(`${name}: ${e.message}`);
  }
}

/**
 * One federated server.
 * @param {'uzzap'|'prosody'|'ejabberd'} kind
 * @param {{ ip: string, domain: string, peers: Record<string, string>, users: number, userPrefix: string,
 *   password: string, pin: boolean, keepTmp: boolean, env?: Record<string,string>, tag: string,
 *   metrics?: boolean, stopGraceMs?: number }} o  peers: domain -> ip (s2s on 5269 there); env: Uzzap only
 *   (over the defaults below); metrics: Uzzap's HTTP port on (HTTP_PORT, for /metrics)
 * @returns {Promise<{ name, version, build?, host, port, domain, pid, env?, stop(), tmp, logs: string[] }>}
 */
export async function startFederated(kind, o) {
  if (!KINDS.includes(kind)) throw new Error(`s2s: unknown server ${kind} (${KINDS.join('|')})`);
  await portsFree(o.ip, [C2S_PORT, S2S_PORT, ...(o.metrics ? [HTTP_PORT] : [])]);
  return { uzzap, prosody, ejabberd }[kind](o);
}

// ---------------------------------------------------------------- uzzap
async function uzzap(o) {
  const tmp = makeTmp(`s2s-uzzap-${o.tag}`);
  const bin = path.join(REPO, 'bin/uzzap.js');
  const hosts = Object.entries(o.peers)
    .map(([d, ip]) => `${d}=${ip}:${S2S_PORT}`)
    .join(',');
  const env = {
    ...process.env,
    UZZAP_DOMAIN: o.domain,
    UZZAP_BIND_ADDRESS: o.ip,
    UZZAP_C2S_PORT: String(C2S_PORT),
    UZZAP_C2S_TLS_PORT: '0',
    UZZAP_HTTP_PORT: o.metrics ? String(HTTP_PORT) : '0',
    UZZAP_COMPONENT_PORT: '0',
    UZZAP_S2S_PORT: String(S2S_PORT),
    UZZAP_S2S_TLS_PORT: '0',
    UZZAP_S2S_HOSTS: hosts,
    UZZAP_S2S_REQUIRE_VALID_CERTS: 'false',
    UZZAP_DATA_DIR: path.join(tmp, 'data'),
    UZZAP_C2S_REQUIRE_TLS: 'false',
    UZZAP_LOG_LEVEL: 'warn',
    ...(o.env ?? {}),
  };
  // one environment string may be at most 128 KiB (MAX_ARG_STRLEN): ~5,000 domains of this length
  if (Buffer.byteLength(env.UZZAP_S2S_HOSTS) > 131000)
    throw new Error(`UZZAP_S2S_HOSTS is ${Buffer.byteLength(env.UZZAP_S2S_HOSTS)} bytes: over Linux's 128 KiB per environment string`);
  fs.mkdirSync(env.UZZAP_DATA_DIR);
  try {
    await seedUzzap(env.UZZAP_DATA_DIR, { users: o.users, prefix: o.userPrefix, password: o.password, domain: o.domain });
  } catch (e) {
    rmTmp(tmp, o.keepTmp);
    throw e;
  }
  const startScript = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts.start;
  const nodeArgs = [
    ...startScript.split(' ').filter((a) => a.startsWith('--')),
    ...(process.env.BENCH_UZZAP_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const outFile = path.join(tmp, 'server.out');
  const child = spawnServer(process.execPath, [...nodeArgs, bin, 'start'], { cwd: tmp, env, outFile, pin: o.pin });
  try {
    await ready(child, o.ip, [C2S_PORT, S2S_PORT], 30000, [outFile], `uzzap ${o.domain}`);
  } catch (e) {
    rmTmp(tmp, o.keepTmp);
    throw e;
  }
  let version = null;
  try {
    version = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version;
  } catch {}
  return {
    name: 'uzzap',
    version,
    build: uzzapBuild(),
    host: o.ip,
    port: C2S_PORT,
    domain: o.domain,
    pid: child.pid,
    env: o.env && Object.keys(o.env).length ? o.env : undefined,
    tmp,
    logs: [outFile],
    stop: async () => {
      await stopChild(child, o.stopGraceMs);
      rmTmp(tmp, o.keepTmp);
    },
  };
}

// ---------------------------------------------------------------- prosody
/** Prosody's datamanager path encoding: every non-alphanumeric byte as %xx (b.test -> b%2etest) */
const prosodyEncode = (s) => s.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

async function prosody(o) {
  const tmp = makeTmp(`s2s-prosody-${o.tag}`);
  const data = path.join(tmp, 'data');
  const { key, crt } = selfSigned(tmp, o.domain);
  // accounts in internal_hashed format (what `prosodyctl register` writes), one salt for all
  const accounts = path.join(data, prosodyEncode(o.domain), 'accounts');
  fs.mkdirSync(accounts, { recursive: true });
  const salt = randomBytes(12).toString('hex');
  const c = scramCredentials(o.password, Buffer.from(salt), SCRAM_ITERATIONS);
  const body =
    `return {\n\t["iteration_count"] = ${SCRAM_ITERATIONS};\n\t["salt"] = "${salt}";\n` +
    `\t["server_key"] = "${c.serverKey.toString('hex')}";\n\t["stored_key"] = "${c.storedKey.toString('hex')}";\n};\n`;
  for (let i = 1; i <= o.users; i++) fs.writeFileSync(path.join(accounts, `${o.userPrefix}${i}.dat`), body);
  const hostsFile = path.join(tmp, 'hosts');
  fs.writeFileSync(hostsFile, [`${o.ip} ${o.domain}`, ...Object.entries(o.peers).map(([d, ip]) => `${ip} ${d}`)].join('\n') + '\n');
  const cfg = path.join(tmp, 'prosody.cfg.lua');
  const logFile = path.join(tmp, 'prosody.log');
  fs.writeFileSync(
    cfg,
    `-- private benchmark instance (s2s workload), generated by bench/lib/s2s-servers.mjs
run_as_root = true
pidfile = ${lua(path.join(tmp, 'prosody.pid'))}
data_path = ${lua(data)}
certificates = ${lua(tmp)}
log = { { levels = { min = "warn" }, to = "file", filename = ${lua(logFile)} } }
interfaces = { "${o.ip}" }
c2s_ports = { ${C2S_PORT} }
s2s_ports = { ${S2S_PORT} }
http_ports = { }; https_ports = { }
c2s_direct_tls_ports = { }; s2s_direct_tls_ports = { }
component_ports = { }
unbound = { hoststxt = ${lua(hostsFile)} }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping" }
modules_disabled = { "offline" }
s2s_secure_auth = false
s2s_require_encryption = true
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"
tcp_backlog = 1024
VirtualHost ${lua(o.domain)}
  ssl = { certificate = ${lua(crt)}; key = ${lua(key)} }
`,
  );
  const outFile = path.join(tmp, 'server.out');
  const child = spawnServer('prosody', ['--config', cfg, '-F'], { cwd: tmp, env: process.env, outFile, pin: o.pin });
  try {
    await ready(child, o.ip, [C2S_PORT, S2S_PORT], 30000, [outFile, logFile], `prosody ${o.domain}`);
  } catch (e) {
    rmTmp(tmp, o.keepTmp);
    throw e;
  }
  return {
    name: 'prosody',
    version: dpkgVersion('prosody'),
    host: o.ip,
    port: C2S_PORT,
    domain: o.domain,
    pid: child.pid,
    tmp,
    logs: [outFile, logFile],
    stop: async () => {
      await stopChild(child, o.stopGraceMs);
      rmTmp(tmp, o.keepTmp);
    },
  };
}

// ---------------------------------------------------------------- ejabberd
async function ejabberd(o) {
  if (process.getuid?.() !== 0)
    throw new Error('s2s with ejabberd runs as root: its private /etc/hosts needs unshare --mount and mount --bind');
  const tmp = makeTmp(`s2s-ejabberd-${o.tag}`);
  const spool = path.join(tmp, 'spool');
  fs.mkdirSync(spool);
  const { key, crt } = selfSigned(tmp, o.domain);
  const pem = path.join(tmp, `${o.domain}.pem`); // ejabberd wants the certificate and its key in one file
  fs.writeFileSync(pem, fs.readFileSync(crt, 'utf8') + fs.readFileSync(key, 'utf8'));
  // what ejabberd sees as /etc/hosts: its node name is …@localhost
  const hostsFile = path.join(tmp, 'hosts');
  fs.writeFileSync(
    hostsFile,
    [`127.0.0.1 localhost ${os.hostname()}`, `${o.ip} ${o.domain}`, ...Object.entries(o.peers).map(([d, ip]) => `${ip} ${d}`)].join('\n') +
      '\n',
  );
  const inetrc = path.join(tmp, 'inetrc');
  fs.writeFileSync(inetrc, '{lookup,["file","native"]}.\n');
  const cfg = path.join(tmp, 'ejabberd.yml');
  const logPath = path.join(tmp, 'ejabberd.log');
  fs.writeFileSync(
    cfg,
    `# private benchmark instance (s2s workload), generated by bench/lib/s2s-servers.mjs
hosts:
  - ${o.domain}
loglevel: warning
log_rotate_count: 0
certfiles:
  - "${pem}"
listen:
  -
    port: ${C2S_PORT}
    ip: "${o.ip}"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 262144
    starttls_required: false
    shaper: none
    access: c2s
  -
    port: ${S2S_PORT}
    ip: "${o.ip}"
    module: ejabberd_s2s_in
    backlog: 1024
    shaper: none
s2s_use_starttls: optional
outgoing_s2s_families: [ipv4]
s2s_max_retry_delay: 5
auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
  s2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_s2s_dialback: {}
`,
  );
  const node = `uzzaps2s${o.tag}${process.pid}@localhost`;
  const cookie = randomBytes(12).toString('hex');
  const distPort = await freePort(); // Erlang distribution without epmd
  const dist = ['-setcookie', cookie, '-erl_epmd_port', String(distPort), '-start_epmd', 'false'];
  const env = {
    ...process.env,
    HOME: tmp,
    EJABBERD_CONFIG_PATH: cfg,
    EJABBERD_LOG_PATH: logPath,
    ERL_LIBS: ejabberdErlLibs(),
    ERL_CRASH_DUMP: path.join(tmp, 'erl_crash.dump'),
    ERL_CRASH_DUMP_BYTES: '0',
    ERL_MAX_ETS_TABLES: '1400',
    ERL_INETRC: inetrc,
  };
  const erlArgs = [
    '-sname',
    node,
    ...dist,
    '+S',
    '1:1',
    '+SDcpu',
    '1:1',
    '+P',
    '1000000',
    '+Q',
    '262144',
    '-noinput',
    '-mnesia',
    'dir',
    `"${spool}"`,
    '-s',
    'ejabberd',
  ];
  // unshare (no --fork), sh and taskset all exec(): child.pid ends up being beam.smp's
  const argv = [
    '--mount',
    'sh',
    '-c',
    'mount --bind "$0" /etc/hosts && exec "$@"',
    hostsFile,
    ...(o.pin ? ['taskset', '-c', '0'] : []),
    'erl',
    ...erlArgs,
  ];
  const outFile = path.join(tmp, 'server.out');
  const child = spawnServer('unshare', argv, { cwd: tmp, env, outFile, pin: false });
  const stop = async () => {
    await stopChild(child, o.stopGraceMs);
    rmTmp(tmp, o.keepTmp);
  };
  try {
    await ready(child, o.ip, [C2S_PORT, S2S_PORT], 60000, [outFile, logPath], `ejabberd ${o.domain}`);
    await ejabberdRegister({ users: o.users, userPrefix: o.userPrefix, password: o.password }, { tmp, env, node, dist, domain: o.domain });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    name: 'ejabberd',
    version: dpkgVersion('ejabberd'),
    host: o.ip,
    port: C2S_PORT,
    domain: o.domain,
    pid: child.pid,
    tmp,
    logs: [outFile, logPath],
    stop,
  };
}

// ---------------------------------------------------------------- the fake many-domain peer
/**
 * The fake peer of `--domains` (bench/lib/s2s-fake-peer.mjs) as a child process of the
 * generator (so on the generator's core): answers s2s streams for d1.test..dN.test on
 * FAKE_IP:5269. Resolves with { pid, ask(cmd) -> Promise<reply>, stop() } once it listens.
 */
export async function startFakePeer({ domains, auth, verify }) {
  const script = fileURLToPath(new URL('./s2s-fake-peer.mjs', import.meta.url));
  const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  let seq = 0;
  child.on('message', (m) => {
    const w = waiting.get(m.re);
    if (w) {
      waiting.delete(m.re);
      w(m);
    }
  });
  const exited = new Promise((r) => child.once('exit', r));
  const ask = (cmd, args = {}) =>
    new Promise((resolve, reject) => {
      const re = ++seq;
      waiting.set(re, resolve);
      child.send({ re, cmd, ...args }, (err) => err && reject(err));
    });
  const r = await Promise.race([
    ask('listen', { ip: FAKE_IP, port: S2S_PORT, domains, auth, verify }),
    exited.then(() => ({ error: 'the fake peer exited' })),
    sleep(10000).then(() => ({ error: 'the fake peer did not start in 10 s' })),
  ]);
  if (r.error) {
    child.kill('SIGKILL');
    throw new Error(`fake peer: ${r.error}`);
  }
  log(`fake peer (pid ${child.pid}) answers for d1.test..d${domains}.test on ${FAKE_IP}:${S2S_PORT}, dialback ${verify}`);
  return {
    pid: child.pid,
    ask,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Uzzap's /metrics on its address: the value of each series whose name starts with `prefix`, by its full text */
export async function scrapeMetrics(ip, prefix) {
  const http = await import('node:http');
  const text = await new Promise((resolve, reject) => {
    const req = http.get({ host: ip, port: HTTP_PORT, path: '/metrics', timeout: 5000 }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(s));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
  const out = {};
  for (const line of text.split('\n'))
    if (line.startsWith(prefix)) {
      const sp = line.lastIndexOf(' ');
      out[line.slice(0, sp)] = Number(line.slice(sp + 1));
    }
  return out;
}
