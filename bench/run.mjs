#!/usr/bin/env node
// Benchmark runner: `node bench/run.mjs <conns|chat|login|presence|muc|resume|mam|component|slowreader|cluster|failover|s2s> [options]` (see bench/README.md).
// Starts the target server pinned to CPU 0, runs the load generator in this
// process pinned to CPU 1, prints one JSON object on stdout and a one-line
// summary on stderr, then stops the server and removes its temp dir.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { XmppConn } from './lib/xmpp-lite.mjs';
import { ComponentConn } from './lib/component-lite.mjs';
import { startTarget } from './lib/targets.mjs';
import { localAddresses, machineInfo } from './lib/proc.mjs';

const WORKLOADS = ['conns', 'chat', 'login', 'presence', 'muc', 'resume', 'mam', 'component', 'slowreader', 'cluster', 'failover', 'pep', 'upload', 'reconnect', 's2s'];
const NOFILE = 200000; // wanted fd limit; capped at the hard limit (raising that needs CAP_SYS_RESOURCE)

const USAGE = `usage: npm run bench -- <${WORKLOADS.join('|')}> [options]
  --target uzzap|prosody|ejabberd|external   (default uzzap)
  --host H --port P --domain D --pid PID     for --target external (users u1..uN/pw must exist)
  --muc-domain D          muc on --target external: the MUC service (conference.<domain>)
  --component-port P      component on --target external: the server's XEP-0114 component port
  --quick                 smoke run (chat 50 pairs 5 s, login 5 s, conns N=1000,
                          muc 200 occupants / 20 rooms x 10, 5 s, resume N=100, mam 10,000 messages, 20 queries,
                          component 10 users 3 s, pep 200 users)
  --uzzap-env K=V         uzzap: extra server environment, repeatable (e.g. UZZAP_MODULES_DISABLED=mam,
                          UZZAP_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/uzzap_bench_chat: accounts go
                          there too; loopback, database named uzzap_bench*, created if missing, emptied first)
  --n N                   conns: sessions (10000); presence, pep: users (2000); resume: sessions (1000);
                          reconnect: sessions (50; --quick 10)
  --gap-messages K        resume: messages sent to each session while it is detached (5)
  --wait S                resume: seconds to wait for retransmitted messages after the last resume (5);
                          pep: at most this long for notifications after the last publish (30)
  --control-every M       pep: every M-th user's caps have no +notify: its resource must get no notification (10)
  --delay MS              reconnect: the proxy's delay each way (50: +100 ms round-trip time)
  --mb M                  upload: MiB of the one file uploaded and downloaded (1024; --quick 100)
  --rounds R              pep: publish rounds, each measured (2): round 1 creates the nodes, later ones update them;
                          reconnect: measured rounds, each path reconnecting every session once (5);
                          slowreader: episodes on the same server, each with a new slow client (1)
  --size M                mam: archived messages of the queried user u1 (100000; e.g. 1000000)
  --total T               mam: rows in the whole archive table, all owners (10 x size up to 100000, 5 x size above)
  --queries Q             mam: timed queries per kind (200)
  --warmup-queries W      mam: untimed queries of each kind first (10)
  --page P                mam: page size, RSM <max/> (50)
  --contacts K            presence, pep: contacts per user, mutual (50); mam: contacts of u1 in the seeded archive (10)
  --pairs P               chat: pairs (250); s2s: pairs across the two servers (200; --quick 20)
  --pair A-B              s2s: the two federated servers, A and B of uzzap|prosody|ejabberd (uzzap-uzzap;
                          e.g. uzzap-prosody, uzzap-ejabberd, prosody-ejabberd); s2s starts its own servers
  --domains N             s2s: instead, one Uzzap and a fake peer serving d1..dN.test: a message to each, rounds
                          of N new outgoing streams (streams/s, RSS, idle close); --rounds R (3), --wait S (60)
  --dialback callback|trust  s2s --domains: the fake peer checks Uzzap's keys with <db:verify/> (callback) or not
  --mode echo|push        component: user -> component -> user round trips (echo, default) or component -> user only
  --component-domain D    component: the component's domain (bridge.localhost)
  --component-secret S    component: the shared secret (benchsecret)
  --shape big|rooms       muc: one big room (default) or many small rooms
  --occupants N           muc: occupants per room (big 1000, rooms 20)
  --rooms R               muc: rooms (big 1, rooms 100)
  --senders S             muc: senders per room (big 10, rooms 1)
  --join-concurrency J    muc: room joins in flight (50)
  --duration S            chat/login/muc: measured seconds (20); component (10)
  --warmup S              chat/login/muc: warm-up seconds before measuring (3/2/3); component (2);
                          reconnect: unmeasured rounds first (1)
  --window W              chat: messages in flight per pair (1); muc: per sender (1); component: per user (10)
  --rate R                chat: open loop instead: R messages/s in all, spread over the pairs (0 = closed loop);
                          slowreader: the other users' messages/s (1000)
  --split 0|1             cluster: pairs split across two nodes (1, default: every message crosses) or all on node A (0)
  --noresume K --warm S --after S
                          failover: sessions on the killed node that do not come back (50); seconds of traffic
                          before the kill (5) and after it (15); with --n (1000), --rate (200 msgs/s), --wait (30)
  --sm 0|1                chat/cluster: every client enables XEP-0198 with resumption and answers ack requests (0)
  --messages M            slowreader: messages sent to the client that stopped reading (20000)
  --body-size B           chat/muc/component: message body bytes (100)
  --concurrency C         conns: logins in flight (200); login: parallel loops (20); chat/muc: logins in flight (100);
                          resume: logins and resumes in flight (100); component: logins in flight (50);
                          pep: logins and publishes in flight (100); reconnect: reconnects in flight (10)
  --users U               login: size of the user pool (500); component: users (50)
  --mech M                SCRAM-SHA-1 (default) | PLAIN
  --password PW --user-prefix PFX   account names PFX1..PFXn (pw, u)
  --addrs K               source addresses 127.0.0.10.. to spread ports over (16)
  --progress              chat/muc/resume/component: print per-second rates on stderr
  --ref-archive sqlite     prosody/ejabberd: archive every message (mod_mam) in SQLite; rows counted after the stop
  --no-pin                don't pin with taskset; --keep-tmp  keep the server's temp dir`;

function parse() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      target: { type: 'string', default: 'uzzap' },
      host: { type: 'string' },
      port: { type: 'string' },
      domain: { type: 'string' },
      'muc-domain': { type: 'string' },
      'component-port': { type: 'string' },
      'component-domain': { type: 'string', default: 'bridge.localhost' },
      'component-secret': { type: 'string', default: 'benchsecret' },
      mode: { type: 'string' },
      pid: { type: 'string' },
      quick: { type: 'boolean', default: false },
      n: { type: 'string' },
      contacts: { type: 'string' },
      pairs: { type: 'string' },
      pair: { type: 'string' },
      domains: { type: 'string' },
      dialback: { type: 'string' },
      shape: { type: 'string' },
      occupants: { type: 'string' },
      rooms: { type: 'string' },
      senders: { type: 'string' },
      'join-concurrency': { type: 'string' },
      'gap-messages': { type: 'string' },
      messages: { type: 'string' },
      wait: { type: 'string' },
      'control-every': { type: 'string' },
      mb: { type: 'string' },
      delay: { type: 'string' },
      'tls-resume': { type: 'string' },
      rounds: { type: 'string' },
      size: { type: 'string' },
      total: { type: 'string' },
      queries: { type: 'string' },
      'warmup-queries': { type: 'string' },
      page: { type: 'string' },
      'uzzap-env': { type: 'string', multiple: true },
      'ref-archive': { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      window: { type: 'string' },
      rate: { type: 'string' },
      split: { type: 'string' },
      noresume: { type: 'string' },
      after: { type: 'string' },
      warm: { type: 'string' },
      sm: { type: 'string' },
      concurrency: { type: 'string' },
      users: { type: 'string' },
      'body-size': { type: 'string' },
      mech: { type: 'string', default: 'SCRAM-SHA-1' },
      password: { type: 'string', default: 'pw' },
      'user-prefix': { type: 'string', default: 'u' },
      addrs: { type: 'string', default: '16' },
      'no-pin': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      progress: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return { values, workload: positionals[0] };
}

/** NOFILE if we may raise the hard limit that far, else the current hard limit. */
function nofileLimit() {
  try {
    execFileSync('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, 'true'], { stdio: 'ignore' });
    return `${NOFILE}:${NOFILE}`;
  } catch {
    const m = /Max open files\s+\d+\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? `${m[1]}:${m[1]}` : 'unlimited'; // fallback should not happen on Linux
  }
}

/** Re-exec under a high fd limit, pinned to CPU 1; returns true if this process should just wait. */
function reexec() {
  if (process.env.UZZAP_BENCH_CHILD) return false;
  const pin = !process.argv.includes('--no-pin') && os.cpus().length >= 2;
  const argv = ['prlimit', `--nofile=${nofileLimit()}`];
  if (pin) argv.push('taskset', '-c', '1');
  argv.push(process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2));
  const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env: { ...process.env, UZZAP_BENCH_CHILD: '1' } });
  // The child handles SIGINT/SIGTERM itself (stops the server); we just wait for it.
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
  child.on('error', (e) => {
    console.error(`[bench] cannot re-exec under prlimit/taskset (${e.message}); run with ulimit -n ${NOFILE}`);
    process.exit(1);
  });
  return true;
}

async function main() {
  let parsed;
  try {
    parsed = parse();
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const { values: v, workload } = parsed;
  if (v.help || !WORKLOADS.includes(workload)) {
    console.error(USAGE);
    process.exit(v.help ? 0 : 2);
  }
  if (reexec()) return;

  const wl = await import(`./workloads/${workload}.mjs`);
  const num = (k) => (v[k] == null ? undefined : Number(v[k]));
  const cli = {
    n: num('n'),
    pairs: num('pairs'),
    pair: v.pair,
    domains: num('domains'),
    dialback: v.dialback,
    duration: num('duration'),
    warmup: num('warmup'),
    window: num('window'),
    rate: num('rate'),
    split: num('split'),
    noresume: num('noresume'),
    after: num('after'),
    warm: num('warm'),
    sm: num('sm'),
    concurrency: num('concurrency'),
    users: num('users'),
    bodySize: num('body-size'),
    contacts: num('contacts'),
    mode: v.mode,
    shape: v.shape,
    occupants: num('occupants'),
    rooms: num('rooms'),
    senders: num('senders'),
    joinConcurrency: num('join-concurrency'),
    gapMessages: num('gap-messages'),
    messages: num('messages'),
    wait: num('wait'),
    controlEvery: num('control-every'),
    mb: num('mb'),
    delay: num('delay'),
    tlsResume: num('tls-resume'),
    rounds: num('rounds'),
    size: num('size'),
    total: num('total'),
    queries: num('queries'),
    warmupQueries: num('warmup-queries'),
    page: num('page'),
  };
  const params = { ...wl.defaults, ...(v.quick ? wl.quick : {}), mech: v.mech.toUpperCase() };
  if (v.progress) params.progress = true;
  for (const [k, x] of Object.entries(cli)) if (x !== undefined) params[k] = x;
  if (wl.resolve) {
    try {
      wl.resolve(params, { quick: v.quick }); // fills defaults that depend on other options (muc's --shape)
    } catch (e) {
      console.error(`${e.message}\n${USAGE}`);
      process.exit(2);
    }
  }

  if (v.host && !/^(127\.|localhost$|::1$)/.test(v.host)) throw new Error('only loopback targets are allowed');
  if (wl.startTarget && process.argv.some((a) => a === '--target' || a.startsWith('--target='))) {
    console.error(`${workload} starts its own servers: choose them with --pair (see --help)`);
    process.exit(2);
  }
  if (wl.targets && !wl.targets.includes(v.target)) {
    console.error(`${workload} runs only on --target ${wl.targets.join('|')}`);
    process.exit(2);
  }
  // --uzzap-env K=V (repeatable), over the workload's own (mam: UZZAP_POSTGRES_URL)
  const uzzapEnv = { ...(wl.uzzapEnv?.(params) ?? {}) };
  for (const kv of v['uzzap-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0 || !/^UZZAP_[A-Z0-9_]+$/.test(kv.slice(0, eq))) {
      console.error(`--uzzap-env wants UZZAP_NAME=value (got ${kv})\n${USAGE}`);
      process.exit(2);
    }
    uzzapEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (Object.keys(uzzapEnv).length && v.target !== 'uzzap') {
    console.error('--uzzap-env is for --target uzzap');
    process.exit(2);
  }
  if (wl.needsComponent && !/^[a-z0-9.-]+$/i.test(v['component-domain'])) {
    console.error(`--component-domain: not a domain (${v['component-domain']})`);
    process.exit(2);
  }
  const prepared = wl.prepare ? await wl.prepare({ uzzapEnv }, params) : undefined; // mam: seeds the archive
  // a workload that starts its own servers (s2s: two federated ones) gives the runner one target to report and stop
  const startWith = wl.startTarget ? (_name, o) => wl.startTarget(params, o) : startTarget;
  const target = await startWith(v.target, {
    users: wl.usersNeeded(params),
    contacts: wl.contactsNeeded?.(params) ?? 0,
    muc: Boolean(wl.needsMuc),
    sm: Boolean(wl.needsSm),
    pep: Boolean(wl.needsPep),
    // XEP-0114 external component (the `component` workload): domain, secret; port for --target external
    component: wl.needsComponent ? { domain: v['component-domain'], secret: v['component-secret'], port: num('component-port') } : null,
    stopGraceMs: wl.stopGraceMs,
    mucDomain: v['muc-domain'],
    userPrefix: v['user-prefix'],
    password: v.password,
    pin: !v['no-pin'],
    keepTmp: v['keep-tmp'],
    refArchive: v['ref-archive'],
    host: v.host,
    port: num('port'),
    domain: v.domain,
    pid: num('pid'),
    env: uzzapEnv,
    keepDb: Boolean(wl.keepDatabase),
  });
  let stopping = null;
  const stop = () => (stopping ??= target.stop());
  for (const sig of ['SIGINT', 'SIGTERM'])
    process.on(sig, async () => {
      console.error(`[bench] ${sig}: stopping ${target.name}`);
      await stop();
      process.exit(130);
    });

  const addrs = localAddresses(target.host, Number(v.addrs));
  const newConn = (i, presenceCounter) =>
    new XmppConn({
      host: target.host,
      port: target.port,
      domain: target.domain,
      user: `${v['user-prefix']}${i}`,
      password: v.password,
      mech: params.mech,
      localAddress: addrs[i % addrs.length],
      presenceCounter,
    });

  const newComponent = () =>
    new ComponentConn({
      host: target.host,
      port: target.component.port,
      domain: target.component.domain,
      secret: target.component.secret,
      localAddress: addrs[0],
    });

  let out;
  try {
    console.error(`[bench] ${workload} on ${target.name} ${target.version ?? ''} (pid ${target.pid ?? '?'}, port ${target.port})`);
    out = await wl.run({ target, newConn, newComponent, prepared }, params);
  } finally {
    await stop();
  }
  const report = {
    workload,
    target: {
      name: target.name,
      version: target.version,
      build: target.build,
      pid: target.pid,
      env: target.env,
      storage: target.storage,
      ...(target.archive ? { archive: target.archive } : {}),
      ...(target.component ? { component_port: target.component.port } : {}),
    },
    params,
    ...out.result,
    machine: machineInfo(),
    date: new Date().toISOString(),
  };
  if (target.after) {
    // counted after the stop (uzzap; prosody/ejabberd with --ref-archive): archived rows; chat sends each message to an archiving server once,
    // so with the archive on there should be 2 per message sent (the sender's and the recipient's copies)
    report.archive_rows = target.after.archive_rows;
    if (out.result.sent_total && target.after.archive_rows != null)
      report.archive_rows_per_sent_msg = Math.round((target.after.archive_rows / out.result.sent_total) * 1000) / 1000;
  }
  process.stdout.write(JSON.stringify(report) + '\n');
  const perMsg = report.archive_rows_per_sent_msg != null ? ` (${report.archive_rows_per_sent_msg} per msg sent)` : '';
  console.error(out.summary + (report.archive_rows != null ? `; archive rows ${report.archive_rows}${perMsg}` : ''));
  if (out.failed) {
    // the workload measured nothing it was meant to (pep: no PEP on the server): the JSON line above says what happened
    console.error(`[bench] run failed: ${out.failed}`);
    process.exit(1);
  }
  if (out.result.generator_cpu_pct > 80)
    console.error(`[bench] warning: generator at ${out.result.generator_cpu_pct}% of its core: it may be the bottleneck`);
  if (out.result.other_cpu_pct > 10)
    console.error(`[bench] warning: other processes used ${out.result.other_cpu_pct}% of a core during the run: figures are disturbed`);
  process.exit(0); // don't linger on half-closed sockets
}

main().catch((e) => {
  console.error(`[bench] error: ${e.stack || e}`);
  process.exit(1);
});
