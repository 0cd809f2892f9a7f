// Server launchers: each starts a private, throw-away instance pinned to CPU 0
// (taskset -c 0) with `users` accounts u1..uN (password from opts), and returns
// { name, version, host, port, domain, mucDomain, pid, stop() }. With `muc: true`
// the server also gets a Multi-User Chat service at conference.<domain>
// configured for load (no rate limits, large rooms): see MUC_* below. With
// `sm: true` stream management (XEP-0198) with resumption is on with a 300 s
// window (Prosody's mod_smacks, ejabberd's mod_stream_mgmt; Uzzap has it on
// by default): see SM_RESUME_TIMEOUT. With `component: { domain, secret }` the
// server also accepts one XEP-0114 external component (jabber:component:accept)
// for that domain with that shared secret on a free loopback port, returned as
// `component: { port, domain, secret }` (see componentReady()). With `pep: true`
// the reference servers load PEP (XEP-0163) with entity caps: Prosody's mod_pep,
// ejabberd's mod_caps + mod_pubsub (plugins flat, pep); Uzzap needs nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { scramCredentials } from './scram.mjs';
import { seedUzzap, ringContacts, openUzzapStorage } from './uzzap-seed.mjs';
import { benchPgUrl, dbProcs, ensureDatabase, openSql, pgSettings, redactUrl, resetDatabase } from './uzzap-pg.mjs';
import { freePort, waitForPort } from './proc.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HOST = '127.0.0.1';
const DOMAIN = 'localhost';
export const SCRAM_ITERATIONS = 4096;
const MUC_DOMAIN = `conference.${DOMAIN}`;
/** room size cap the MUC services are configured with (bench rooms stay well below it) */
const MUC_MAX_USERS = 5000;
/** seconds a detached session is kept for resumption (the sm workloads need far less) */
const SM_RESUME_TIMEOUT = 300;

const log = (...a) => console.error('[bench]', ...a);

export function dpkgVersion(pkg) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

export function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Spawn `cmd args` pinned to CPU 0 (unless pin=false), output to a file; returns the ChildProcess. */
export function spawnServer(cmd, args, { cwd, env, outFile, pin }) {
  const out = fs.openSync(outFile, 'a');
  const argv = pin ? ['taskset', '-c', '0', cmd, ...args] : [cmd, ...args];
  log(`starting: ${argv.join(' ')}`);
  // taskset, env (prosody's #!) and erl all exec(), so child.pid is the server's pid.
  const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.exited = false;
  child.on('exit', () => (child.exited = true));
  return child;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Only ever signals our own child's pid. */
export async function stopChild(child, graceMs = 15000) {
  graceMs ??= 15000;
  if (!child || child.exited) return;
  const done = new Promise((r) => child.once('exit', r));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {}
  const t = setTimeout(() => {
    try {
      if (!child.exited) process.kill(child.pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  await done;
  clearTimeout(t);
}

export function makeTmp(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `uzzap-bench-${name}-`));
}

export function rmTmp(dir, keep) {
  if (!dir) return;
  if (keep) log(`keeping ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}

async function started(child, port, timeoutMs, logs) {
  try {
    await waitForPort(HOST, port, timeoutMs, () => !child.exited);
  } catch (e) {
    for (const f of logs) console.error(`--- ${f}\n${tail(f)}`);
    await stopChild(child);
    throw e;
  }
}

/** Wait for the component port too (the c2s port is up): a server without a working
 *  component listener fails here, with its logs, instead of in the workload. */
async function componentReady(child, comp, timeoutMs, logs, name) {
  if (!comp) return;
  try {
    await waitForPort(HOST, comp.port, timeoutMs, () => !child.exited);
  } catch (e) {
    for (const f of logs) console.error(`--- ${f}\n${tail(f)}`);
    await stopChild(child);
    throw new Error(`${name}: component port ${comp.port} (${comp.domain}): ${e.message}`);
  }
}

/** o.component + a free port (the launched targets pick their own) */
async function componentPort(o) {
  return o.component ? { port: await freePort(), domain: o.component.domain, secret: o.component.secret } : null;
}

// ---------------------------------------------------------------- uzzap
/** What was measured: HEAD, when dist/ was built, and how many src/*.ts files are newer than that build. */
export function uzzapBuild() {
  const mtimes = (dir, ext) => {
    const out = [];
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
      if (e.isFile() && e.name.endsWith(ext)) out.push(fs.statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs);
    return out;
  };
  try {
    const built = Math.max(...mtimes(path.join(REPO, 'dist/src'), '.js'));
    let commit = null;
    try {
      commit = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {}
    return {
      commit,
      dist_built: new Date(built).toISOString(),
      src_files_newer: mtimes(path.join(REPO, 'src'), '.ts').filter((t) => t > built).length,
    };
  } catch {
    return null;
  }
}

/** Archived messages: in mam_chunks (n each), or rows of mam_messages in an older build; null if neither is there. */
async function archiveRows(sql) {
  for (const text of ['SELECT coalesce(sum(n), 0) AS n FROM mam_chunks', 'SELECT count(*) AS n FROM mam_messages']) {
    try {
      const [r] = await sql.query(text);
      return Number(r.n);
    } catch {
      // not this build's table
    }
  }
  return null;
}

/**
 * o.env: extra server environment (--uzzap-env K=V), applied last. With UZZAP_POSTGRES_URL the
 * accounts go to that database (loopback, named uzzap_bench*, created if missing) and, unless
 * o.keepDb, it is emptied first (DROP SCHEMA public CASCADE) so every run starts from a fresh
 * schema. After the stop, `after.archive_rows` counts the archived messages (mam_chunks) (the server flushes its archive
 * queue on SIGTERM); with o.keepDb it is not counted (a workload's own seeded archive).
 */
async function uzzap(o) {
  if (o.env?.UZZAP_POSTGRES_URL) benchPgUrl(o.env.UZZAP_POSTGRES_URL); // refuse a wrong database before anything
  const tmp = makeTmp('uzzap');
  const port = await freePort();
  const comp = await componentPort(o);
  const bin = path.join(REPO, 'bin/uzzap.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found`);
  const env = {
    ...process.env,
    UZZAP_DOMAIN: DOMAIN,
    UZZAP_C2S_PORT: String(port),
    UZZAP_C2S_TLS_PORT: '0',
    UZZAP_HTTP_PORT: '0',
    UZZAP_COMPONENT_PORT: '0',
    UZZAP_S2S_PORT: '0',
    UZZAP_S2S_TLS_PORT: '0',
    UZZAP_DATA_DIR: path.join(tmp, 'data'),
    UZZAP_C2S_REQUIRE_TLS: 'false',
    UZZAP_LOG_LEVEL: 'warn',
  };
  if (o.muc) {
    // MUC at conference.<domain> (the module's default) with its per-occupant
    // message rate limit off (UZZAP_MODULES_<MODULE>_<KEY> sets modules.<module>.<key>).
    env.UZZAP_MODULES_MUC_MESSAGE_RATE = '0';
  }
  if (o.sm) env.UZZAP_SM_RESUME_TIMEOUT = String(SM_RESUME_TIMEOUT); // the default, stated
  if (comp) {
    // XEP-0114: any subdomain of UZZAP_DOMAIN may connect with this secret
    env.UZZAP_COMPONENT_PORT = String(comp.port);
    env.UZZAP_COMPONENT_SECRET = comp.secret;
  }
  Object.assign(env, o.env ?? {});
  fs.mkdirSync(env.UZZAP_DATA_DIR);
  const pgUrl = env.UZZAP_POSTGRES_URL || null;
  let sql = null; // the bench's own connection to the server's Postgres database
  let database = null;
  let storage = null;
  try {
    if (pgUrl) {
      ({ database } = benchPgUrl(pgUrl));
      if (await ensureDatabase(pgUrl)) log(`uzzap: created database ${database}`);
      else if (!o.keepDb) {
        await resetDatabase(pgUrl);
        log(`uzzap: database ${database} emptied`);
      }
    }
    // accounts (one shared salt, like the other targets) and rosters straight into storage
    const t0 = Date.now();
    await seedUzzap(env.UZZAP_DATA_DIR, {
      users: o.users,
      prefix: o.userPrefix,
      password: o.password,
      domain: DOMAIN,
      contacts: o.contacts ?? 0,
      postgresUrl: pgUrl,
    });
    log(
      `uzzap: ${o.users} users${o.contacts ? ` with ${o.contacts} contacts each` : ''} added in ${Date.now() - t0} ms${pgUrl ? ` (Postgres ${database})` : ''}`,
    );
    if (pgUrl) {
      sql = await openSql(pgUrl, 1);
      storage = { kind: 'postgres', database, url: redactUrl(pgUrl), settings: await pgSettings(sql) };
    } else storage = { kind: 'sqlite' };
  } catch (e) {
    await sql?.close();
    rmTmp(tmp, o.keepTmp);
    throw e;
  }
  const outFile = path.join(tmp, 'server.out');
  // the node options of `npm start` (package.json), so the bench runs what a user starts;
  // BENCH_UZZAP_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" adds some (profiling)
  const startScript = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts.start;
  const nodeArgs = [
    ...startScript.split(' ').filter((a) => a.startsWith('--')),
    ...(process.env.BENCH_UZZAP_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const child = spawnServer(process.execPath, [...nodeArgs, bin, 'start'], { cwd: tmp, env, outFile, pin: o.pin });
  await started(child, port, 30000, [outFile]);
  await componentReady(child, comp, 10000, [outFile], 'uzzap');
  let version = null;
  try {
    version = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version;
  } catch {}
  const peers = [];
  const target = {
    name: 'uzzap',
    version,
    build: uzzapBuild(),
    host: HOST,
    port,
    domain: DOMAIN,
    mucDomain: MUC_DOMAIN,
    pid: child.pid,
    env: o.env && Object.keys(o.env).length ? Object.fromEntries(Object.entries(o.env).map(([k, v]) => [k, redactUrl(v)])) : undefined,
    storage,
    component: comp,
    sql,
    after: null,
    /** the Postgres processes serving the server, { pids, postmaster } (none on SQLite: its work is in the server's process) */
    dbProcs: sql ? () => dbProcs(sql, database) : undefined,
    /** another node of the same server (the `cluster` workload): same storage, its own port and name, pinned like this one */
    startPeer: async (name) => {
      const peerPort = await freePort();
      const peer = spawnServer(process.execPath, [...nodeArgs, bin, 'start'], {
        cwd: tmp,
        env: { ...env, UZZAP_C2S_PORT: String(peerPort), UZZAP_NODE_NAME: name },
        outFile: path.join(tmp, `${name}.out`),
        pin: o.pin,
      });
      await started(peer, peerPort, 30000, [path.join(tmp, `${name}.out`)]);
      peers.push(peer);
      return { pid: peer.pid, port: peerPort };
    },
    stop: async () => {
      for (const p of peers) await stopChild(p, o.stopGraceMs);
      await stopChild(child, o.stopGraceMs);
      try {
        if (sql) {
          if (!o.keepDb) target.after = { archive_rows: await archiveRows(sql) };
          await sql.close();
        } else {
          const st = await openUzzapStorage({ dataDir: env.UZZAP_DATA_DIR });
          try {
            target.after = { archive_rows: await archiveRows(st.sql) };
          } finally {
            await st.close();
          }
        }
      } catch (e) {
        log(`uzzap: counting archived rows failed: ${e.message}`);
      }
      rmTmp(tmp, o.keepTmp);
    },
  };
  return target;
}

// ---------------------------------------------------------------- prosody
export function lua(s) {
  return JSON.stringify(s); // a JSON string literal is a valid Lua string literal for our paths
}

/** Prosody 0.12's mod_muc: anyone may create rooms (restrict_room_creation = false, the
 *  default), no occupant limit or message rate limit exists in 0.12's mod_muc (those are
 *  community modules), new rooms are locked until configured (muc_room_locking, default).
 *  The live-room cache (default 100) would swap rooms to disk beyond 100 rooms. */
function prosodyMuc() {
  return `
Component "${MUC_DOMAIN}" "muc"
restrict_room_creation = false
muc_room_locking = true
muc_room_cache_size = 100000
muc_tombstones = false
`;
}

/** Prosody 0.12's mod_component: the component's host with its secret (component_ports and
 *  component_interfaces are global options, set above the VirtualHost). */
function prosodyComponent(comp) {
  return `
Component ${lua(comp.domain)}
component_secret = ${lua(comp.secret)}
`;
}

async function prosody(o) {
  const tmp = makeTmp('prosody');
  const port = await freePort();
  const comp = await componentPort(o);
  const data = path.join(tmp, 'data');
  const certs = path.join(tmp, 'certs');
  fs.mkdirSync(certs);
  // Accounts in internal_hashed format (what `prosodyctl register` writes), but
  // pre-computed: one salt for all bench users, so this costs one PBKDF2.
  const accounts = path.join(data, DOMAIN, 'accounts');
  fs.mkdirSync(accounts, { recursive: true });
  const salt = randomBytes(12).toString('hex');
  const c = scramCredentials(o.password, Buffer.from(salt), SCRAM_ITERATIONS);
  const body =
    `return {\n\t["iteration_count"] = ${SCRAM_ITERATIONS};\n\t["salt"] = "${salt}";\n` +
    `\t["server_key"] = "${c.serverKey.toString('hex')}";\n\t["stored_key"] = "${c.storedKey.toString('hex')}";\n};\n`;
  for (let i = 1; i <= o.users; i++) fs.writeFileSync(path.join(accounts, `${o.userPrefix}${i}.dat`), body);
  if (o.contacts) {
    // rosters in Prosody's internal storage format (what mod_roster writes)
    const rosters = path.join(data, DOMAIN, 'roster');
    fs.mkdirSync(rosters, { recursive: true });
    for (let i = 1; i <= o.users; i++) {
      const items = ringContacts(i, o.users, o.contacts)
        .map((j) => `\t[${lua(`${o.userPrefix}${j}@${DOMAIN}`)}] = { ["subscription"] = "both"; ["groups"] = {}; };\n`)
        .join('');
      fs.writeFileSync(path.join(rosters, `${o.userPrefix}${i}.dat`), `return {\n\t[false] = { ["version"] = 1; };\n${items}};\n`);
    }
  }
  const cfg = path.join(tmp, 'prosody.cfg.lua');
  const archiveDb = refArchive(o, 'prosody') ? path.join(tmp, 'prosody.sqlite') : null;
  fs.writeFileSync(
    cfg,
    `-- private benchmark instance, generated by bench/lib/targets.mjs
run_as_root = true
pidfile = ${lua(path.join(tmp, 'prosody.pid'))}
data_path = ${lua(data)}
certificates = ${lua(certs)}
log = { { levels = { min = "warn" }, to = "file", filename = ${lua(path.join(tmp, 'prosody.log'))} } }
c2s_ports = { ${port} }
c2s_interfaces = { "${HOST}" }
s2s_ports = { }
component_ports = { ${comp ? comp.port : ''} }
${
  comp
    ? `component_interfaces = { "${HOST}" }
`
    : ''
}http_ports = { }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
${
  archiveDb
    ? `storage = { archive = "sql" }
sql = { driver = "SQLite3", database = ${lua(archiveDb)} }
default_archive_policy = true
archive_expires_after = "never"
`
    : `storage = "internal"
`
}tcp_backlog = 1024
modules_enabled = { "roster", "saslauth", "disco", "ping", "posix"${o.sm ? ', "smacks"' : ''}${archiveDb ? ', "mam"' : ''}${o.pep ? ', "pep"' : ''} }
modules_disabled = { "s2s", "tls", "offline" }
${
  o.sm
    ? `smacks_hibernation_time = ${SM_RESUME_TIMEOUT}
`
    : ''
}VirtualHost "${DOMAIN}"
${o.muc ? prosodyMuc() : ''}${comp ? prosodyComponent(comp) : ''}`,
  );
  const outFile = path.join(tmp, 'server.out');
  const child = spawnServer('prosody', ['--config', cfg, '-F'], { cwd: tmp, env: process.env, outFile, pin: o.pin });
  await started(child, port, 30000, [outFile, path.join(tmp, 'prosody.log')]);
  await componentReady(child, comp, 10000, [outFile, path.join(tmp, 'prosody.log')], 'prosody');
  const target = {
    name: 'prosody',
    version: dpkgVersion('prosody'),
    host: HOST,
    port,
    domain: DOMAIN,
    mucDomain: MUC_DOMAIN,
    pid: child.pid,
    component: comp,
    archive: archiveDb ? 'mod_mam, SQLite' : null,
    after: null,
    stop: async () => {
      await stopChild(child, o.stopGraceMs);
      if (archiveDb) target.after = { archive_rows: countSqlite(archiveDb, "SELECT count(*) FROM prosodyarchive WHERE store = 'archive'") };
      rmTmp(tmp, o.keepTmp);
    },
  };
  return target;
}

// ---------------------------------------------------------------- ejabberd
export function ejabberdErlLibs() {
  // Debian's ejabberdctl sets ERL_LIBS to where the ejabberd app lives.
  try {
    const m = /^ERL_LIBS='([^']+)'/m.exec(fs.readFileSync('/usr/sbin/ejabberdctl', 'utf8'));
    if (m) return m[1];
  } catch {}
  return '/usr/lib/x86_64-linux-gnu';
}

/** ejabberd 23.01's mod_muc: rooms capped at MUC_MAX_USERS (defaults: 200 per service and
 *  per room), presence broadcast kept on in big rooms (max_users_presence, default 1000:
 *  above it occupants no longer get each other's presence), no interval limits or shapers. */
function ejabberdMuc() {
  return `  mod_muc:
    host: "${MUC_DOMAIN}"
    access: all
    access_create: all
    max_users: ${MUC_MAX_USERS}
    max_users_presence: 1000000
    max_user_conferences: 100
    min_message_interval: 0
    min_presence_interval: 0
    room_shaper: none
    user_message_shaper: none
    user_presence_shaper: none
    history_size: 20
    default_room_options:
      max_users: ${MUC_MAX_USERS}
      persistent: false
      mam: false
      logging: false
`;
}

/** ejabberd 23.01's ejabberd_service listener (XEP-0114) for one component domain; the
 *  listener's defaults, stated: no shaper, check_from true (the component may only send
 *  from its own domain), max_fsm_queue 10000. */
function ejabberdComponent(comp) {
  return `  -
    port: ${comp.port}
    ip: "${HOST}"
    module: ejabberd_service
    access: all
    shaper_rule: none
    check_from: true
    hosts:
      ${JSON.stringify(comp.domain)}:
        password: ${JSON.stringify(comp.secret)}
`;
}

/** ejabberd 23.01's PEP (the `pep` workload): mod_caps (entity caps: which resources want
 *  which +notify) and mod_pubsub with the flat and pep node plugins, its other options at
 *  their defaults (mnesia storage; the PubSub service at pubsub.<host> comes with it). */
function ejabberdPep() {
  return `  mod_caps: {}
  mod_pubsub:
    plugins:
      - "flat"
      - "pep"
`;
}

async function ejabberd(o) {
  const tmp = makeTmp('ejabberd');
  const port = await freePort();
  const comp = await componentPort(o);
  const distPort = await freePort(); // Erlang distribution without epmd (-erl_epmd_port)
  const spool = path.join(tmp, 'spool');
  fs.mkdirSync(spool);
  const cfg = path.join(tmp, 'ejabberd.yml');
  const archiveDb = refArchive(o, 'ejabberd') ? path.join(tmp, 'ejabberd.db') : null;
  // ejabberd 23.01 does not create its SQL schema: load the one it ships
  if (archiveDb) execFileSync('sqlite3', [archiveDb], { input: fs.readFileSync('/usr/share/ejabberd/sql/lite.sql') });
  fs.writeFileSync(
    cfg,
    `# private benchmark instance, generated by bench/lib/targets.mjs
hosts:
  - ${DOMAIN}
loglevel: warning
${archiveDb ? `sql_type: sqlite\nsql_database: "${archiveDb}"\n` : ''}
log_rotate_count: 0
listen:
  -
    port: ${port}
    ip: "${HOST}"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 262144
    starttls_required: false
    shaper: none
    access: c2s
${comp ? ejabberdComponent(comp) : ''}auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
${
  archiveDb
    ? `  mod_mam:
    db_type: sql
    default: always
`
    : ''
}${
  o.sm
    ? `  mod_stream_mgmt:
    resume_timeout: ${SM_RESUME_TIMEOUT}
`
    : ''
}${o.muc ? ejabberdMuc() : ''}${o.pep ? ejabberdPep() : ''}`,
  );
  const node = `uzzapbench${process.pid}@localhost`;
  const cookie = randomBytes(12).toString('hex');
  const dist = ['-setcookie', cookie, '-erl_epmd_port', String(distPort), '-start_epmd', 'false'];
  const env = {
    ...process.env,
    HOME: tmp,
    EJABBERD_CONFIG_PATH: cfg,
    EJABBERD_LOG_PATH: path.join(tmp, 'ejabberd.log'),
    ERL_LIBS: ejabberdErlLibs(),
    ERL_CRASH_DUMP: path.join(tmp, 'erl_crash.dump'),
    ERL_CRASH_DUMP_BYTES: '0',
    ERL_MAX_ETS_TABLES: '1400',
  };
  const outFile = path.join(tmp, 'server.out');
  const child = spawnServer(
    'erl',
    [
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
    ],
    { cwd: tmp, env, outFile, pin: o.pin },
  );
  let target;
  const stop = async () => {
    await stopChild(child, o.stopGraceMs);
    if (archiveDb && target) target.after = { archive_rows: countSqlite(archiveDb, 'SELECT count(*) FROM archive') };
    rmTmp(tmp, o.keepTmp);
  };
  await started(child, port, 60000, [outFile, env.EJABBERD_LOG_PATH]);
  await componentReady(child, comp, 10000, [outFile, env.EJABBERD_LOG_PATH], 'ejabberd');
  try {
    await ejabberdRegister(o, { tmp, env, node, dist });
  } catch (e) {
    await stop();
    throw e;
  }
  target = {
    name: 'ejabberd',
    version: dpkgVersion('ejabberd'),
    host: HOST,
    port,
    domain: DOMAIN,
    mucDomain: MUC_DOMAIN,
    pid: child.pid,
    component: comp,
    archive: archiveDb ? 'mod_mam, SQLite' : null,
    after: null,
    stop,
  };
  return target;
}

/** --ref-archive: only `sqlite` is known. */
function refArchive(o, name) {
  if (!o.refArchive) return false;
  if (o.refArchive !== 'sqlite') throw new Error(`${name}: --ref-archive ${o.refArchive}: only sqlite is supported`);
  return true;
}

/** One number from a SQLite file, with Debian's sqlite3 (the server has stopped and written everything). */
function countSqlite(file, query) {
  try {
    return Number(execFileSync('sqlite3', [file, query], { encoding: 'utf8' }).trim());
  } catch (e) {
    log(`counting archived rows in ${file} failed: ${e.message}`);
    return null;
  }
}

/** One hidden Erlang node registers all users over RPC with pre-computed SCRAM credentials. */
/** `domain`: the virtual host the users are made on (DOMAIN; the s2s workload's own hosts). */
export async function ejabberdRegister(o, { tmp, env, node, dist, domain = DOMAIN }) {
  const t0 = Date.now();
  const c = scramCredentials(o.password, randomBytes(16), SCRAM_ITERATIONS);
  const b64 = (b) => b.toString('base64');
  const termsFile = path.join(tmp, 'users.eterm');
  fs.writeFileSync(
    termsFile,
    `{scram, <<"${b64(c.storedKey)}">>, <<"${b64(c.serverKey)}">>, <<"${b64(c.salt)}">>, sha, ${SCRAM_ITERATIONS}}.\n` +
      `{users, <<"${domain}">>, <<"${o.userPrefix}">>, ${o.users}}.\n`,
  );
  const code = `
    [Scram, {users, Host, Prefix, N}] = case file:consult("${termsFile}") of {ok, T} -> T end,
    Node = '${node}',
    true = net_kernel:connect_node(Node),
    %% the port can accept before mnesia has created ejabberd's tables
    ok = rpc:call(Node, mnesia, wait_for_tables, [[passwd, roster], 60000]),
    Reg = fun(I) -> U = <<Prefix/binary, (integer_to_binary(I))/binary>>,
                    rpc:call(Node, ejabberd_auth, try_register, [U, Host, Scram]) end,
    Bad = [{I, R} || I <- lists:seq(1, N), (R = Reg(I)) =/= ok],
    K = ${o.contacts ?? 0},
    Contact = fun(I, D) -> ((I - 1 + D + N) rem N) + 1 end,
    Name = fun(I) -> <<Prefix/binary, (integer_to_binary(I))/binary>> end,
    %% mod_roster's mnesia record: {roster, USJ, US, JID, Name, Subscription, Ask, Groups, AskMessage, Xs}
    [ok = rpc:call(Node, mnesia, dirty_write,
        [{roster, {Name(I), Host, {Name(J), Host, <<>>}}, {Name(I), Host}, {Name(J), Host, <<>>},
          <<>>, both, none, [], <<>>, []}])
     || K > 0, I <- lists:seq(1, N), D <- lists:seq(1, K div 2) ++ [-X || X <- lists:seq(1, K div 2)],
        J <- [Contact(I, D)], J =/= I],
    case Bad of [] -> halt(0); _ -> io:format(standard_error, "~p failures, first: ~p~n", [length(Bad), hd(Bad)]), halt(1) end.`;
  const regNode = `uzzapbenchreg${process.pid}${randomBytes(3).toString('hex')}@localhost`;
  execFileSync('erl', ['-sname', regNode, ...dist, '-dist_listen', 'false', '-hidden', '-noinput', '-eval', code], {
    cwd: tmp,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600000,
  });
  log(`ejabberd: ${o.users} users registered in ${Date.now() - t0} ms`);
}

// ---------------------------------------------------------------- external
async function external(o) {
  if (!o.port) throw new Error('--target external needs --port (and --host, --domain, optionally --pid)');
  const host = o.host || HOST;
  await waitForPort(host, o.port, 5000);
  const domain = o.domain || DOMAIN;
  let component = null;
  if (o.component) {
    if (!o.component.port)
      throw new Error('component on --target external needs --component-port (and the server configured with the secret)');
    await waitForPort(host, o.component.port, 5000);
    component = { port: o.component.port, domain: o.component.domain, secret: o.component.secret };
  }
  return {
    name: 'external',
    version: null,
    host,
    port: o.port,
    domain,
    mucDomain: o.mucDomain || `conference.${domain}`,
    pid: o.pid || null,
    component,
    stop: async () => {},
  };
}

const TARGETS = { uzzap, prosody, ejabberd, external };

/**
 * @param {string} name uzzap|prosody|ejabberd|external
 * @param {{users:number, userPrefix:string, password:string, pin:boolean, keepTmp:boolean,
 *          host?:string, port?:number, domain?:string, pid?:number, muc?:boolean, mucDomain?:string,
 *          sm?:boolean, pep?:boolean, component?:{domain:string, secret:string, port?:number}|null,
 *          stopGraceMs?:number, env?:object, keepDb?:boolean}} o   stopGraceMs: SIGTERM to SIGKILL
 *          at the end (15 s); env, keepDb: uzzap only (see uzzap())
 */
export async function startTarget(name, o) {
  const fn = TARGETS[name];
  if (!fn) throw new Error(`unknown target ${name} (uzzap|prosody|ejabberd|external)`);
  return fn(o);
}
