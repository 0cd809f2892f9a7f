// component: message routing through an XEP-0114 external component
// (jabber:component:accept). The generator opens ONE component connection
// (domain bridge.localhost, shared secret, handshake = hex SHA-1(stream id +
// secret)) and U users log in over c2s (initial presence sent).
//
// --mode echo (default): user -> component -> user. Each user keeps `window`
// chat messages in flight to echo@bridge.localhost (closed loop: it sends the
// next one when an echo comes back). The component answers every message with
// the same body from the address it was sent to (echo@bridge.localhost) to
// the full JID it came from. Each round trip is two messages routed by the
// server (c2s -> component, component -> c2s). Latency = echo receipt - send
// time stamped into the body (same process).
//
// --mode push: component -> user only. The component keeps `window` messages
// in flight to each user's full JID (from push@bridge.localhost); each receipt
// makes it send that user the next one.
//
// Bodies are "<performance.now()>|<seq>|xxx…" (--body-size bytes), so the
// receive paths need no XML parsing beyond indexOf and one attribute regex.
// After the measured window the senders stop and the run waits for what is in
// flight (at most 5 s): anything still missing then is `lost`. Every
// type='error' stanza, at a user or at the component, is counted in `errors`
// (by condition, first one printed).
import { ComponentConn } from '../lib/component-lite.mjs';
import { attr } from '../lib/xmpp-lite.mjs';
import { countError, cpuMeter, cpuSeconds, percentile, pool, round, rssBytes, sleep } from '../lib/proc.mjs';

export const needsComponent = true;
export const defaults = { mode: 'echo', users: 50, window: 10, duration: 10, warmup: 2, bodySize: 100, concurrency: 50 };
export const quick = { users: 10, duration: 3, warmup: 1 };
export const usersNeeded = (o) => o.users;

const MODES = ['echo', 'push'];
const DRAIN_MAX_MS = 5000;
const MAX_LATENCY_SAMPLES = 32 * 1024 * 1024;
const TYPE_ERROR = /^<[^>]*\stype=['"]error['"]/;
const errorCondition = (s) => {
  const m = /<error[^>]*>\s*<([\w-]+)/.exec(s);
  return m ? m[1] : 'no condition';
};

export function resolve(p) {
  if (!MODES.includes(p.mode)) throw new Error(`component: --mode must be ${MODES.join(' or ')} (got ${p.mode})`);
  for (const k of ['users', 'window', 'duration', 'concurrency'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`component: ${k} must be a positive integer (got ${p[k]})`);
  return p;
}

const mib = (b) => (b == null ? null : round(b / 1048576, 1));

export async function run(ctx, o) {
  const { target, newConn, newComponent } = ctx;
  const echo = o.mode === 'echo';
  const cdomain = target.component.domain;
  const peer = `${echo ? 'echo' : 'push'}@${cdomain}`;

  // ---- counters (updated on the receive paths)
  let running = false;
  let measuring = false;
  let sent = 0; // messages sent by the load's origin (users in echo mode, the component in push mode)
  let received = 0; // ... that came back (echo) / arrived (push), whole run
  let inWindow = 0; // ... of those, received inside the measured window
  let compReceived = 0; // echo: messages the component received (and echoed)
  let duplicates = 0; // a sequence number received twice / never sent
  let outOfOrder = 0; // received before an earlier one still outstanding
  let foreign = 0; // messages that are not the bench's (e.g. a server's notice)
  let compOther = 0; // non-message stanzas at the component (presence, iq)
  let dropped = 0;
  let componentClosed = null;
  const errors = {}; // type='error' stanzas by "<where>: <condition>"
  let nErrors = 0;
  let lat = new Float32Array(1 << 20);
  let nLat = 0;

  const noteError = (where, s) => {
    nErrors++;
    const k = `${where}: ${errorCondition(s)}`;
    if (!(k in errors) && Object.keys(errors).length >= 20) errors.other = (errors.other || 0) + 1;
    else errors[k] = (errors[k] || 0) + 1;
    if (nErrors === 1) console.error(`[bench] first error stanza (${where}): ${s.slice(0, 400)}`);
  };

  const pad = 'x'.repeat(o.bodySize);
  const body = (seq) => {
    const head = `${performance.now().toFixed(3)}|${seq}|`;
    return head + pad.slice(0, Math.max(0, o.bodySize - head.length));
  };

  /** A bench body arrived for user c: check its sequence number, sample latency; true if it was expected. */
  const arrived = (c, s) => {
    const b = s.indexOf('<body>');
    const bar = b < 0 ? -1 : s.indexOf('|', b);
    const bar2 = bar < 0 ? -1 : s.indexOf('|', bar + 1);
    if (bar2 < 0 || bar - b > 24) {
      foreign++;
      return false;
    }
    const seq = +s.slice(bar + 1, bar2);
    if (!c.outstanding.delete(seq)) {
      duplicates++;
      return false;
    }
    if (seq !== c.acked + 1) outOfOrder++; // messages to one user travel one path: they should arrive in order
    c.acked = seq;
    received++;
    if (measuring) {
      inWindow++;
      if (nLat === lat.length && nLat < MAX_LATENCY_SAMPLES) {
        const bigger = new Float32Array(Math.min(2 * lat.length, MAX_LATENCY_SAMPLES));
        bigger.set(lat);
        lat = bigger;
      }
      if (nLat < lat.length) lat[nLat++] = performance.now() - +s.slice(b + 6, bar);
    }
    return true;
  };

  // ---- the component: one connection, handshake
  const comp = newComponent();
  const tHs = performance.now();
  let hs;
  try {
    hs = await comp.connect();
  } catch (e) {
    throw new Error(
      `component connection to ${target.host}:${target.component.port} as ${cdomain} failed: ${e.message}` +
        (comp.streamHeader ? ` (server's header: ${comp.streamHeader.slice(0, 300)})` : ''),
    );
  }
  console.error(
    `[bench] component ${cdomain} connected: stream header after ${round(hs.header_ms, 1)} ms, ` +
      `<handshake/> after ${round(hs.handshake_ms, 1)} ms (${round(performance.now() - tHs, 1)} ms)`,
  );
  comp.onClose = (err) => {
    if (running || measuring) componentClosed = err?.message ?? 'closed';
    if (componentClosed)
      console.error(
        `[bench] component connection closed: ${componentClosed}${comp.streamError ? ` ${comp.streamError.slice(0, 300)}` : ''}`,
      );
  };

  // ---- users
  const conns = new Array(o.users);
  const loginErrors = {};
  const tLogin = performance.now();
  await pool(o.users, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    try {
      await c.login({ presence: true, roster: false, resource: 'comp' });
    } catch (e) {
      countError(loginErrors, e);
      return;
    }
    c.seq = 0;
    c.acked = 0;
    c.outstanding = new Set();
    c.pend = [];
    c.onClose = (err) => err && dropped++;
    conns[i] = c;
  });
  let failedLogins = 0;
  for (let i = 0; i < o.users; i++) if (!conns[i]) failedLogins++;
  if (failedLogins) throw new Error(`${failedLogins} of ${o.users} logins failed: ${JSON.stringify(loginErrors)}`);
  console.error(`[bench] ${o.users} users logged in in ${round((performance.now() - tLogin) / 1000, 1)} s`);
  const byJid = new Map(conns.map((c) => [c.jid, c]));
  // BENCH_DEBUG=1: print the first stanzas the component and user 1 receive
  let debugComp = process.env.BENCH_DEBUG ? 3 : 0;
  let debugUser = debugComp;

  // Users' sends are coalesced like the component's: what one chunk of echoes makes a user
  // send goes out in one write, on the next tick (the server sees the same stanzas).
  const dirty = [];
  const flushUsers = () => {
    for (const c of dirty) {
      c.send(c.pend.length === 1 ? c.pend[0] : c.pend.join(''));
      c.pend.length = 0;
    }
    dirty.length = 0;
  };
  const userSend = (c, str) => {
    if (c.pend.push(str) === 1) {
      if (dirty.push(c) === 1) process.nextTick(flushUsers);
    }
  };

  let sendNext;
  if (echo) {
    // users send; the component echoes
    sendNext = (c) => {
      const seq = ++c.seq;
      c.outstanding.add(seq);
      userSend(c, `<message type='chat' to='${peer}' id='e${seq}'><body>${body(seq)}</body></message>`);
      sent++;
    };
    comp.onStanza = (s) => {
      if (debugComp && debugComp--) console.error(`[bench] component got: ${s}`);
      if (!s.startsWith('<message')) {
        compOther++;
        if (compOther === 1) console.error(`[bench] component got a non-message stanza: ${s.slice(0, 300)}`);
        return;
      }
      if (s.indexOf('error') > 0 && TYPE_ERROR.test(s)) return noteError('component', s);
      const b = s.indexOf('<body>');
      const e = b < 0 ? -1 : s.indexOf('</body>', b);
      const from = attr(s, 'from');
      if (e < 0 || !from) {
        foreign++;
        return;
      }
      compReceived++;
      comp.send(
        `<message from='${attr(s, 'to') ?? peer}' to='${from}' type='chat' id='${attr(s, 'id') ?? ''}'>` + `${s.slice(b, e + 7)}</message>`,
      );
    };
    for (const c of conns)
      c.onStanza = (s) => {
        if (debugUser && c === conns[0] && debugUser--) console.error(`[bench] ${c.jid} got: ${s}`);
        if (!s.startsWith('<message')) return;
        if (s.indexOf('error') > 0 && TYPE_ERROR.test(s)) {
          noteError('user', s);
          // the bounce carries our body: that message is answered (with an error), not lost
          const b = s.indexOf('<body>');
          const bar = b < 0 ? -1 : s.indexOf('|', b);
          if (bar > 0) c.outstanding.delete(+s.slice(bar + 1, s.indexOf('|', bar + 1)));
          if (running) sendNext(c);
          return;
        }
        if (arrived(c, s) && running) sendNext(c);
      };
  } else {
    // the component sends; users receive and (in-process) tell it to send the next one
    sendNext = (c) => {
      const seq = ++c.seq;
      c.outstanding.add(seq);
      comp.send(`<message from='${peer}' to='${c.jid}' type='chat' id='p${seq}'><body>${body(seq)}</body></message>`);
      sent++;
    };
    comp.onStanza = (s) => {
      if (debugComp && debugComp--) console.error(`[bench] component got: ${s}`);
      if (s.startsWith('<message') && s.indexOf('error') > 0 && TYPE_ERROR.test(s)) {
        noteError('component', s);
        const c = byJid.get(attr(s, 'from'));
        const b = s.indexOf('<body>');
        const bar = b < 0 ? -1 : s.indexOf('|', b);
        if (c && bar > 0) {
          c.outstanding.delete(+s.slice(bar + 1, s.indexOf('|', bar + 1)));
          if (running) sendNext(c);
        }
        return;
      }
      compOther++;
      if (compOther === 1) console.error(`[bench] component got an unexpected stanza: ${s.slice(0, 300)}`);
    };
    for (const c of conns)
      c.onStanza = (s) => {
        if (debugUser && c === conns[0] && debugUser--) console.error(`[bench] ${c.jid} got: ${s}`);
        if (!s.startsWith('<message')) return;
        if (s.indexOf('error') > 0 && TYPE_ERROR.test(s)) return noteError('user', s);
        if (arrived(c, s) && running) sendNext(c);
      };
  }

  // ---- warm-up, then the measured window
  const rssStart = rssBytes(target.pid);
  running = true;
  for (const c of conns) for (let w = 0; w < o.window; w++) sendNext(c);
  await sleep(o.warmup * 1000);
  const meter = cpuMeter(target.pid);
  const gen0 = process.cpuUsage();
  const sent0 = sent;
  const writes0 = comp.writes;
  const t0 = performance.now();
  measuring = true;
  let lastN = 0;
  let lastCpu = cpuSeconds(target.pid);
  const tick = o.progress
    ? setInterval(() => {
        const cpu = cpuSeconds(target.pid);
        console.error(
          `[bench] +${Math.round(performance.now() - t0)} ms: ${inWindow - lastN} ${echo ? 'round trips' : 'deliveries'}, server CPU ${round(cpu - lastCpu, 2)} s`,
        );
        lastN = inWindow;
        lastCpu = cpu;
      }, 1000)
    : null;
  await sleep(o.duration * 1000);
  clearInterval(tick);
  measuring = false;
  const m = meter();
  const gen = process.cpuUsage(gen0);
  const sentWindow = sent - sent0;
  const compWrites = comp.writes - writes0;
  const rssEnd = rssBytes(target.pid);

  // ---- drain: stop sending, wait for what is in flight
  running = false;
  const outstanding = () => conns.reduce((n, c) => n + c.outstanding.size, 0);
  const tDrain = performance.now();
  while (outstanding() > 0 && performance.now() - tDrain < DRAIN_MAX_MS && !componentClosed) await sleep(20);
  const drainMs = performance.now() - tDrain;
  await sleep(200); // late duplicates or errors
  const lost = outstanding();
  if (lost) {
    const c = conns.find((x) => x.outstanding.size);
    console.error(
      `[bench] ${lost} message(s) not ${echo ? 'echoed' : 'delivered'} ${round(drainMs)} ms after the window, e.g. ${c.jid} seq ${[...c.outstanding].slice(0, 5).join(',')}`,
    );
  }
  comp.close();
  for (const c of conns) c.close();
  await sleep(300);

  const samples = lat.subarray(0, nLat).sort();
  const cpu = m.server_cpu_s;
  const routed = echo ? 2 * inWindow : inWindow; // messages through the server in the window
  const result = {
    mode: o.mode,
    users: o.users,
    window: o.window,
    component_domain: cdomain,
    component_handshake_ms: round(hs.handshake_ms, 2),
    duration_s: round(m.wall, 2),
    ...(echo
      ? { round_trips: inWindow, round_trips_per_s: round(inWindow / m.wall, 0) }
      : { deliveries: inWindow, deliveries_per_s: round(inWindow / m.wall, 0) }),
    routed_msgs_per_s: round(routed / m.wall, 0),
    latency_ms: {
      p50: round(percentile(samples, 50), 2),
      p90: round(percentile(samples, 90), 2),
      p99: round(percentile(samples, 99), 2),
      max: round(samples[samples.length - 1], 2),
    },
    server_cpu_s: round(cpu, 2),
    server_cpu_pct: m.server_cpu_pct,
    server_cpu_us_per_routed_msg: cpu == null || !routed ? null : round((cpu / routed) * 1e6, 2),
    ...(echo ? { server_cpu_us_per_round_trip: cpu == null || !inWindow ? null : round((cpu / inWindow) * 1e6, 2) } : {}),
    server_rss_mib: { start: mib(rssStart), end: mib(rssEnd) },
    generator_cpu_pct: m.generator_cpu_pct,
    generator_cpu_sys_pct: round((gen.system / 1e6 / m.wall) * 100, 1), // kernel (socket) share of it
    other_cpu_pct: m.other_cpu_pct,
    component_writes_per_s: round(compWrites / m.wall, 0),
    sent_in_window: sentWindow,
    sent_total: sent,
    received_total: received,
    ...(echo ? { component_received: compReceived } : {}),
    lost,
    drain_ms: round(drainMs, 0),
    errors: nErrors,
    errors_by_condition: errors,
    duplicates,
    out_of_order: outOfOrder,
    foreign,
    component_other_stanzas: compOther,
    component_closed: componentClosed,
    sessions_dropped: dropped,
  };
  const rate = echo
    ? `${result.round_trips_per_s} round trips/s (${result.routed_msgs_per_s} msgs/s routed)`
    : `${result.deliveries_per_s} msgs/s component -> user`;
  const summary =
    `component ${o.mode} ${target.name} (${o.users} users, window ${o.window}): ${rate}, ` +
    `p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms, ` +
    `${result.server_cpu_us_per_routed_msg ?? '?'} us server CPU/routed msg (server ${result.server_cpu_pct ?? '?'}% CPU, ` +
    `RSS ${result.server_rss_mib.end ?? '?'} MiB, generator ${result.generator_cpu_pct}% CPU); ` +
    `lost ${lost}, errors ${nErrors}${componentClosed ? `, component closed: ${componentClosed}` : ''}`;
  return { result, summary };
}
