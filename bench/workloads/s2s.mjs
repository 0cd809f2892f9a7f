// s2s: federation (RFC 6120 server-to-server, XEP-0220 dialback) under load. The workload
// starts its own servers (startTarget below, bench/lib/s2s-servers.mjs), all pinned to
// CPU 0; the generator (and the fake peer) run on CPU 1.
//
// Pairs mode (default): two federated servers, `--pair A-B` of uzzap|prosody|ejabberd
// (uzzap-uzzap, uzzap-prosody, uzzap-ejabberd, prosody-ejabberd, ...), side A serving
// a.test on 127.0.2.1, side B b.test on 127.0.2.2 (c2s 5222, s2s 5269 on each). P pairs:
// u<i>@a.test and u<i>@b.test (resource 'chat', presence sent, no roster) ping-pong
// `type='chat'` messages to each other's full JID across the s2s link, `window` in flight
// per pair (a closed loop, as `chat`). First one exchange on pair 1 makes the streams both
// ways (its timing is `link_setup_ms`), then every pair starts, a warm-up, and `duration`
// measured seconds: msgs/s, latency (the body carries the sender's performance.now()),
// and the CPU of each server's process tree per 10k messages. Every message carries a
// sequence number: after the window nobody answers, what is in flight drains, and every
// message sent must have arrived exactly once (lost, duplicates) or come back as an error
// (bounced).
//
// Domains mode (`--domains N`): one Uzzap (a.test) and a fake peer (a child process of the
// generator, bench/lib/s2s-fake-peer.mjs) answering s2s streams for d1.test..dN.test on
// 127.0.2.3:5269, all N listed in UZZAP_S2S_HOSTS. For each of `rounds` rounds, one user
// sends one message to r<round>@d<i>.test for every i at once: each needs a new outgoing
// stream (connect, header, dialback with a real <db:verify/> callback to Uzzap unless
// `--dialback trust`). Measured: streams/s (domains whose first message arrived at the
// fake peer / time from the first send to the last arrival), time to first delivery per
// domain, Uzzap's CPU per stream, then Uzzap's RSS (sampled every 100 ms) and its streams
// (the fake peer's count and Uzzap's uzzap_s2s_streams) until every stream is closed by
// s2s.idle_timeout (UZZAP_S2S_IDLE_TIMEOUT, 5 s here unless --uzzap-env says otherwise).
import fs from 'node:fs';
import { attr } from '../lib/xmpp-lite.mjs';
import { cpuSeconds, otherCpuSeconds, percentile, pool, processTree, quantiles, round, rssBytes, sleep } from '../lib/proc.mjs';
import { FAKE_IP, KINDS, S2S_PORT, SIDES, scrapeMetrics, startFakePeer, startFederated } from '../lib/s2s-servers.mjs';
import { tail } from '../lib/targets.mjs';

export const defaults = {
  pair: 'uzzap-uzzap',
  pairs: 200,
  duration: 20,
  warmup: 3,
  window: 1,
  bodySize: 100,
  concurrency: 100,
  domains: 0,
  rounds: 3,
  dialback: 'callback',
  wait: 60,
};
export const quick = { pairs: 20, duration: 5, warmup: 1 };
export const usersNeeded = (o) => (o.domains ? 1 : o.pairs);
/** seconds an unused outgoing stream stays open in the --domains mode (Uzzap's default is 600) */
const DOMAINS_IDLE_TIMEOUT = 5;
export const uzzapEnv = (o) => (o.domains ? { UZZAP_S2S_IDLE_TIMEOUT: String(DOMAINS_IDLE_TIMEOUT) } : {});

export function resolve(p) {
  if (p.domains) {
    if (!(Number.isInteger(p.domains) && p.domains > 0 && p.domains <= 4000))
      throw new Error(`s2s: --domains must be 1..4000 (got ${p.domains})`);
    if (!(Number.isInteger(p.rounds) && p.rounds > 0)) throw new Error(`s2s: --rounds must be a positive integer (got ${p.rounds})`);
    if (!['callback', 'trust'].includes(p.dialback)) throw new Error(`s2s: --dialback callback|trust (got ${p.dialback})`);
    p.pair = 'uzzap-fake';
    for (const k of ['pairs', 'duration', 'warmup', 'window', 'bodySize', 'concurrency']) delete p[k];
    return p;
  }
  delete p.domains;
  delete p.rounds;
  delete p.dialback;
  const sides = String(p.pair).split('-');
  if (sides.length !== 2 || !sides.every((k) => KINDS.includes(k)))
    throw new Error(`s2s: --pair A-B with A, B of ${KINDS.join('|')} (got ${p.pair})`);
  for (const k of ['pairs', 'window', 'bodySize', 'concurrency'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`s2s: ${k} must be a positive integer (got ${p[k]})`);
  if (p.bodySize < 40) throw new Error('s2s: --body-size at least 40 (the body carries a time stamp and a sequence number)');
  return p;
}

/**
 * The servers (instead of the runner's single target): both sides of --pair, or Uzzap and the
 * fake peer. Returns a target the runner reports and stops (target.sides, target.fake).
 */
export async function startTarget(p, opts) {
  const common = {
    userPrefix: opts.userPrefix,
    password: opts.password,
    pin: opts.pin,
    keepTmp: opts.keepTmp,
    stopGraceMs: opts.stopGraceMs,
  };
  const env = opts.env && Object.keys(opts.env).length ? opts.env : undefined;
  if (p.domains) {
    const peers = {};
    for (let i = 1; i <= p.domains; i++) peers[`d${i}.test`] = FAKE_IP;
    const a = await startFederated('uzzap', { ...common, ...SIDES.a, peers, users: 1, tag: 'a', metrics: true, env });
    let fake;
    try {
      fake = await startFakePeer({ domains: p.domains, auth: { ip: SIDES.a.ip, port: S2S_PORT }, verify: p.dialback });
    } catch (e) {
      await a.stop();
      throw e;
    }
    return {
      name: 'uzzap',
      version: a.version,
      build: a.build,
      host: a.host,
      port: a.port,
      domain: a.domain,
      pid: a.pid,
      env: a.env,
      storage: { kind: 'sqlite' },
      sides: { a },
      fake,
      idleTimeout: Number(opts.env?.UZZAP_S2S_IDLE_TIMEOUT ?? DOMAINS_IDLE_TIMEOUT),
      stop: async () => {
        await fake.stop();
        await a.stop();
      },
    };
  }
  const [ka, kb] = p.pair.split('-');
  if (env && ka !== 'uzzap' && kb !== 'uzzap') throw new Error('--uzzap-env: no Uzzap in this pair');
  const a = await startFederated(ka, { ...common, ...SIDES.a, peers: { [SIDES.b.domain]: SIDES.b.ip }, users: p.pairs, tag: 'a', env });
  let b;
  try {
    b = await startFederated(kb, { ...common, ...SIDES.b, peers: { [SIDES.a.domain]: SIDES.a.ip }, users: p.pairs, tag: 'b', env });
  } catch (e) {
    await a.stop();
    throw e;
  }
  return {
    name: p.pair,
    version: `${a.name} ${a.version} / ${b.name} ${b.version}`,
    build: a.build ?? b.build,
    host: a.host,
    port: a.port,
    domain: a.domain,
    pid: a.pid,
    env,
    sides: { a, b },
    stop: async () => {
      await Promise.all([a.stop(), b.stop()]);
    },
  };
}

/** a connection of user i to `side` (the runner's newConn: user name, password, source address, mechanism) */
function sideConn(ctx, side, i) {
  const c = ctx.newConn(i);
  c.o.host = side.host;
  c.o.port = side.port;
  c.o.domain = side.domain;
  return c;
}

/** CPU of some process trees, the generator and everything else, from now on */
function meter(pids) {
  const mine = new Set([process.pid, process.ppid, ...pids.flatMap((p) => processTree(p))]);
  const s0 = pids.map((p) => cpuSeconds(p));
  const o0 = otherCpuSeconds(mine);
  const g0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const cpu = pids.map((p, k) => cpuSeconds(p) - s0[k]);
    for (const p of pids) for (const q of processTree(p)) mine.add(q);
    const g = process.cpuUsage(g0);
    return {
      wall,
      cpu,
      generator_cpu_pct: round(((g.user + g.system) / 1e6 / wall) * 100, 1),
      other_cpu_pct: round((Math.max(0, otherCpuSeconds(mine) - o0) / wall) * 100, 1),
    };
  };
}

/** the kernel's TcpExt counters (system-wide; on this loopback run, ours): ListenOverflows, TCPSynRetrans */
function tcpExt() {
  try {
    const lines = fs
      .readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0].split(' ').slice(1);
    const values = lines[1].split(' ').slice(1).map(Number);
    const get = (n) => values[names.indexOf(n)] ?? null;
    return { listen_overflows: get('ListenOverflows'), syn_retrans: get('TCPSynRetrans') };
  } catch {
    return { listen_overflows: null, syn_retrans: null };
  }
}
const delta = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] == null || b[k] == null ? null : b[k] - a[k]]));

const mib = (b) => (b == null ? null : round(b / 1048576, 1));

export async function run(ctx, o) {
  return o.domains ? runDomains(ctx, o) : runPairs(ctx, o);
}

// ---------------------------------------------------------------- pairs
async function runPairs(ctx, o) {
  const { target } = ctx;
  const { a: A, b: B } = target.sides;
  const P = o.pairs;
  const ca = new Array(P);
  const cb = new Array(P);
  const loginErrors = [];
  await pool(2 * P, o.concurrency, async (k) => {
    const i = k >> 1;
    const side = k & 1 ? B : A;
    const c = sideConn(ctx, side, i + 1);
    try {
      await c.login({ presence: true, roster: false, resource: 'chat' });
      (k & 1 ? cb : ca)[i] = c;
    } catch (e) {
      loginErrors.push(`${c.o.user}@${side.domain}: ${e.message}`);
    }
  });
  if (loginErrors.length) throw new Error(`s2s: ${loginErrors.length} logins failed, first: ${loginErrors[0]}`);
  console.error(`[bench] ${2 * P} users online (${P} on ${A.name} ${A.domain}, ${P} on ${B.name} ${B.domain})`);

  const pad = 'x'.repeat(o.bodySize);
  let running = false;
  let measuring = false;
  let delivered = 0; // in the window
  let received = 0; // all, unique
  let dups = 0;
  let sent = 0;
  let bounced = 0;
  let bounceSample = null;
  let dropped = 0;
  let seq = 0;
  let seen = new Uint8Array(1 << 20);
  const lat = [];
  const firstArrival = [0, 0]; // pair 0: performance.now() of the first message at B, then of the first back at A

  const sendTo = (c, peerJid) => {
    const s = ++seq;
    const head = `${performance.now().toFixed(3)}|${s}|`;
    c.send(
      `<message type='chat' to='${peerJid}' id='m${s.toString(36)}'><body>${head}${pad.slice(0, Math.max(0, o.bodySize - head.length))}</body></message>`,
    );
    sent++;
  };

  for (let p = 0; p < P; p++) {
    for (const [me, peer, atB] of [
      [ca[p], cb[p], false],
      [cb[p], ca[p], true],
    ]) {
      me.onClose = (err) => err && dropped++;
      me.onStanza = (s) => {
        if (!s.startsWith('<message')) return;
        const i = s.indexOf('<body>');
        if (i < 0) return;
        if (attr(s, 'type') !== 'chat') {
          bounced++;
          bounceSample ??= s.slice(0, 400);
          return;
        }
        const now = performance.now();
        const bar = s.indexOf('|', i);
        const n = parseInt(s.slice(bar + 1, s.indexOf('|', bar + 1)), 10);
        if (n >= seen.length) {
          const bigger = new Uint8Array(Math.max(seen.length * 2, n + 1));
          bigger.set(seen);
          seen = bigger;
        }
        if (seen[n]) {
          dups++;
          return;
        }
        seen[n] = 1;
        received++;
        if (p === 0 && !firstArrival[atB ? 0 : 1]) firstArrival[atB ? 0 : 1] = now;
        if (measuring) {
          delivered++;
          lat.push(now - parseFloat(s.slice(i + 6, bar)));
        }
        if (running) sendTo(me, peer.jid);
      };
    }
  }

  // --- the streams both ways: one exchange on pair 1 (its ping-pong then goes on)
  running = true;
  const t0 = performance.now();
  sendTo(ca[0], cb[0].jid);
  for (let w = 0; !firstArrival[1]; w++) {
    if (w > 600 || bounced) {
      for (const s of [A, B]) for (const f of s.logs) console.error(`--- ${s.name} ${s.domain}: ${f}\n${tail(f)}`);
      throw new Error(`s2s: no exchange between ${A.domain} and ${B.domain} in 60 s${bounceSample ? `: ${bounceSample}` : ''}`);
    }
    await sleep(100);
  }
  const linkSetup = { a_to_b: round(firstArrival[0] - t0, 1), round_trip: round(firstArrival[1] - t0, 1) };
  console.error(
    `[bench] link up: ${A.domain} -> ${B.domain} first message in ${linkSetup.a_to_b} ms, the reply back after ${linkSetup.round_trip} ms`,
  );
  for (let p = 0; p < P; p++) for (let w = p === 0 ? 1 : 0; w < o.window; w++) sendTo(ca[p], cb[p].jid);
  await sleep(o.warmup * 1000);

  // --- measured window
  const m = meter([A.pid, B.pid]);
  measuring = true;
  let last = 0;
  const cpuLast = [cpuSeconds(A.pid), cpuSeconds(B.pid)];
  const tick = o.progress
    ? setInterval(() => {
        const c = [cpuSeconds(A.pid), cpuSeconds(B.pid)];
        console.error(
          `[bench] ${delivered - last} msgs/s, CPU ${A.name} ${round(c[0] - cpuLast[0], 2)} s, ${B.name} ${round(c[1] - cpuLast[1], 2)} s`,
        );
        last = delivered;
        cpuLast.splice(0, 2, ...c);
      }, 1000)
    : null;
  await sleep(o.duration * 1000);
  measuring = false;
  const r = m();
  clearInterval(tick);
  const rss = { a: mib(rssBytes(A.pid)), b: mib(rssBytes(B.pid)) };

  // --- drain: nobody answers any more; everything sent arrives or bounces
  running = false;
  const drainStart = performance.now();
  while (received + bounced < sent && performance.now() - drainStart < 10000) await sleep(50);
  const drainMs = performance.now() - drainStart;
  for (const c of [...ca, ...cb]) c.close();
  await sleep(300);

  lat.sort((x, y) => x - y);
  const per10k = (cpu) => (delivered ? round((cpu / delivered) * 10000, 3) : null);
  const side = (s, k) => ({
    name: s.name,
    version: s.version,
    domain: s.domain,
    address: s.host,
    pid: s.pid,
    cpu_s: round(r.cpu[k], 2),
    cpu_pct: round((r.cpu[k] / r.wall) * 100, 1),
    cpu_s_per_10k_msgs: per10k(r.cpu[k]),
    rss_mib: rss[k === 0 ? 'a' : 'b'],
  });
  const result = {
    pair: o.pair,
    servers: { a: side(A, 0), b: side(B, 1) },
    pairs: P,
    link_setup_ms: linkSetup,
    delivered,
    duration_s: round(r.wall, 2),
    msgs_per_s: round(delivered / r.wall, 0),
    latency_ms: quantiles(lat, 2),
    servers_cpu_s_per_10k_msgs: per10k(r.cpu[0] + r.cpu[1]),
    servers_cpu_pct: round(((r.cpu[0] + r.cpu[1]) / r.wall) * 100, 1),
    generator_cpu_pct: r.generator_cpu_pct,
    other_cpu_pct: r.other_cpu_pct,
    sent_total: sent,
    received_total: received,
    lost: sent - received - bounced,
    duplicates: dups,
    bounced,
    ...(bounceSample ? { bounce_sample: bounceSample } : {}),
    drain_ms: round(drainMs, 0),
    sessions_dropped: dropped,
  };
  const sa = result.servers.a;
  const sb = result.servers.b;
  const summary =
    `s2s ${o.pair}: ${result.msgs_per_s} msgs/s, p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms, max ${result.latency_ms.max} ms; ` +
    `CPU s/10k msgs ${sa.name}(A) ${sa.cpu_s_per_10k_msgs} + ${sb.name}(B) ${sb.cpu_s_per_10k_msgs} = ${result.servers_cpu_s_per_10k_msgs} ` +
    `(servers ${result.servers_cpu_pct}% of CPU 0, generator ${result.generator_cpu_pct}%); ` +
    `sent ${sent}, lost ${result.lost}, dup ${dups}, bounced ${bounced}`;
  const failed = result.lost || dups || bounced ? `${result.lost} lost, ${dups} duplicated, ${bounced} bounced` : undefined;
  return { result, summary, failed };
}

// ---------------------------------------------------------------- domains
async function runDomains(ctx, o) {
  const { target } = ctx;
  const A = target.sides.a;
  const fake = target.fake;
  const N = o.domains;
  const now = () => performance.timeOrigin + performance.now();
  const c = sideConn(ctx, A, 1);
  await c.login({ presence: true, roster: false, resource: 'chat' });
  const bounces = {};
  let bounceSample = null;
  c.onStanza = (s) => {
    if (!s.startsWith('<message') || attr(s, 'type') !== 'error') return;
    const cond = /<error[^>]*>\s*<([\w-]+)/.exec(s)?.[1] ?? 'unknown';
    bounces[cond] = (bounces[cond] ?? 0) + 1;
    bounceSample ??= s.slice(0, 400);
  };
  const bounced = () => Object.values(bounces).reduce((x, y) => x + y, 0);
  const streams = async () => {
    try {
      const m = await scrapeMetrics(A.host, 'uzzap_s2s_streams');
      return { out: m['uzzap_s2s_streams{direction="out"}'] ?? null, in: m['uzzap_s2s_streams{direction="in"}'] ?? null };
    } catch (e) {
      return { error: e.message };
    }
  };

  // Uzzap's RSS every 100 ms; `peak` is reset per phase
  let peak = 0;
  const sampler = setInterval(() => {
    const r = rssBytes(A.pid);
    if (r > peak) peak = r;
  }, 100);
  await sleep(1000);
  const rss0 = rssBytes(A.pid);
  const m = meter([A.pid, fake.pid]);
  const rounds = [];
  const pad = 'x'.repeat(60);
  try {
    for (let rd = 1; rd <= o.rounds; rd++) {
      await fake.ask('reset');
      const b0 = bounced();
      peak = rssBytes(A.pid);
      const cpu0 = [cpuSeconds(A.pid), cpuSeconds(fake.pid)];
      const tcp0 = tcpExt();
      const sendT = new Array(N + 1);
      const t0 = now();
      for (let i = 1; i <= N; i++) {
        sendT[i] = now();
        c.send(`<message type='chat' to='r${rd}@d${i}.test' id='r${rd}d${i}'><body>round ${rd} to d${i}.test ${pad}</body></message>`);
      }
      const tSent = now();
      let stats;
      let openPeak = 0;
      let uzzapOutPeak = 0;
      for (;;) {
        stats = (await fake.ask('stats')).stats;
        openPeak = Math.max(openPeak, stats.open);
        if (stats.delivered + (bounced() - b0) >= N || now() - t0 > o.wait * 1000) break;
        await sleep(100);
      }
      const s1 = await streams();
      uzzapOutPeak = Math.max(uzzapOutPeak, s1.out ?? 0);
      const cpu1 = [cpuSeconds(A.pid), cpuSeconds(fake.pid)];
      const tcp1 = tcpExt();
      const { first } = await fake.ask('deliveries');
      const lat = [];
      let tLast = t0;
      for (let i = 1; i <= N; i++) {
        const t = first[`d${i}.test`];
        if (t == null) continue;
        lat.push(t - sendT[i]);
        if (t > tLast) tLast = t;
      }
      lat.sort((x, y) => x - y);
      const rssDelivered = rssBytes(A.pid);
      const peakDelivery = Math.max(peak, rssDelivered);
      // --- idle: every stream Uzzap opened must close by itself (s2s.idle_timeout)
      const tIdle = now();
      let closedAll = null;
      let st2 = stats;
      while (now() - tIdle < (target.idleTimeout + 30) * 1000) {
        st2 = (await fake.ask('stats')).stats;
        if (st2.open === 0) {
          closedAll = now();
          break;
        }
        await sleep(200);
      }
      await sleep(500); // Uzzap's side of the close
      const s2 = await streams();
      const rssIdle = rssBytes(A.pid);
      const peakRound = Math.max(peak, rssIdle);
      const delivered = lat.length;
      const rec = {
        round: rd,
        domains: N,
        delivered,
        bounced: bounced() - b0,
        send_ms: round(tSent - t0, 1),
        streams_per_s: delivered ? round(delivered / ((tLast - t0) / 1000), 0) : 0,
        all_delivered_s: delivered === N ? round((tLast - t0) / 1000, 3) : null,
        first_delivery_ms: quantiles(lat, 1),
        uzzap_cpu_s: round(cpu1[0] - cpu0[0], 2),
        uzzap_cpu_ms_per_stream: delivered ? round(((cpu1[0] - cpu0[0]) / delivered) * 1000, 2) : null,
        fake_peer_cpu_s: round(cpu1[1] - cpu0[1], 2),
        streams_at_peer_max: Math.max(openPeak, stats.open_max),
        streams_at_peer_after_delivery: stats.open,
        verify_callbacks: { ...stats.verify },
        verify_streams_max: stats.verify_open_max,
        tcp: delta(tcp0, tcp1),
        uzzap_s2s_streams_after_delivery: s1,
        rss_mib_peak_delivery: mib(peakDelivery),
        rss_mib_after_delivery: mib(rssDelivered),
        rss_mib_peak_round: mib(peakRound),
        idle_closed_after_s: closedAll ? round((closedAll - tIdle) / 1000, 1) : null,
        streams_at_peer_after_idle: st2.open,
        streams_closed_by_uzzap_total: st2.closed_by_uzzap,
        uzzap_s2s_streams_after_idle: s2,
        rss_mib_after_idle: mib(rssIdle),
      };
      rounds.push(rec);
      console.error(
        `[bench] round ${rd}: ${delivered}/${N} domains in ${rec.all_delivered_s ?? '?'} s (${rec.streams_per_s} streams/s, first delivery p50 ${rec.first_delivery_ms.p50} ms p99 ${rec.first_delivery_ms.p99} ms), ` +
          `Uzzap RSS ${mib(rss0)} -> ${rec.rss_mib_after_delivery} after delivery, peak ${rec.rss_mib_peak_round}, ${rec.rss_mib_after_idle} MiB after idle close (${rec.idle_closed_after_s ?? 'not all'} s), bounced ${rec.bounced}`,
      );
    }
  } finally {
    clearInterval(sampler);
  }
  const r = m();
  c.close();
  const final = (await fake.ask('stats')).stats;
  const last = rounds[rounds.length - 1];
  const result = {
    pair: 'uzzap-fake',
    mode: 'domains',
    domains: N,
    dialback: o.dialback,
    idle_timeout_s: target.idleTimeout,
    fake_peer: { address: `${FAKE_IP}:${S2S_PORT}`, starttls: false, pid: fake.pid },
    rss_mib_before: mib(rss0),
    rounds,
    streams_per_s: last.streams_per_s,
    first_delivery_ms: last.first_delivery_ms,
    rss_mib_growth_peak: round(Math.max(...rounds.map((x) => x.rss_mib_peak_round)) - mib(rss0), 1),
    rss_kib_per_stream_peak: round(((Math.max(...rounds.map((x) => x.rss_mib_peak_round)) - mib(rss0)) * 1024) / N, 1),
    rss_mib_after_idle_by_round: rounds.map((x) => x.rss_mib_after_idle),
    rss_mib_growth_after_idle: round(last.rss_mib_after_idle - mib(rss0), 1),
    streams_accepted_at_peer: final.accepted,
    streams_closed_by_uzzap: final.closed_by_uzzap,
    unknown_domain_streams: final.unknown_domain,
    bounced: bounces,
    ...(bounceSample ? { bounce_sample: bounceSample } : {}),
    duration_s: round(r.wall, 1),
    uzzap_cpu_s: round(r.cpu[0], 2),
    fake_peer_cpu_s: round(r.cpu[1], 2),
    generator_cpu_pct: r.generator_cpu_pct,
    other_cpu_pct: r.other_cpu_pct,
  };
  const pctl = (k) =>
    percentile(
      rounds.map((x) => x[k]).sort((x, y) => x - y),
      50,
    );
  const summary =
    `s2s --domains ${N}: ${rounds.map((x) => x.streams_per_s).join(' / ')} streams/s by round (median ${pctl('streams_per_s')}), ` +
    `first delivery p50 ${last.first_delivery_ms.p50} ms p99 ${last.first_delivery_ms.p99} ms, ${last.uzzap_cpu_ms_per_stream} ms Uzzap CPU per stream; ` +
    `Uzzap RSS ${result.rss_mib_before} MiB, peak +${result.rss_mib_growth_peak} MiB (${result.rss_kib_per_stream_peak} KiB/stream), ` +
    `+${result.rss_mib_growth_after_idle} MiB after the idle close; streams left ${last.streams_at_peer_after_idle}`;
  // a message bounced (e.g. resource-constraint past UZZAP_S2S_MAX_STREAMS) is an answer; one neither delivered nor bounced is not
  const bad = rounds.filter((x) => x.delivered + x.bounced !== N || x.streams_at_peer_after_idle !== 0);
  return {
    result,
    summary,
    failed: bad.length
      ? `round(s) ${bad.map((x) => x.round).join(', ')}: a message neither delivered nor bounced, or streams left open after the idle timeout`
      : undefined,
  };
}
