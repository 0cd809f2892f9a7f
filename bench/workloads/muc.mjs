// muc: Multi-User Chat (XEP-0045) fan-out. R rooms of N occupants each (one
// user per occupant); in each room S senders keep `window` groupchat messages
// in flight (closed loop: a sender sends its next message when the room
// reflects its own back). Every message reaches all N occupants of its room,
// so deliveries = messages x N. Shapes: `big` (1 room x 1000, 10 senders) and
// `rooms` (100 rooms x 20, 1 sender per room).
//
// Join, the same on every server: each occupant sends
//   <presence to='room@service/nick'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>
// and waits for its self-presence (status 110). The first occupant of a room
// creates it (status 201) and unlocks it by submitting the room configuration
// form (FORM_TYPE + muc#roomconfig_maxusers; an empty instant-room form if the
// server refuses that) before anyone else joins. The join presence flood (N^2
// presences per room) is only counted, never parsed beyond a status check.
//
// Receiving is string scanning only: '<body>' is found with indexOf, the body
// starts with the sender's performance.now() and its tag ("<ms>|<tag>|xxx..."),
// so latency (send -> receipt at each occupant) and "is this my own message"
// need no XML parsing.
import { attr } from '../lib/xmpp-lite.mjs';
import { countError, cpuMeter, cpuSeconds, percentile, pool, round, rssBytes, sleep } from '../lib/proc.mjs';

export const needsMuc = true;
// At the end every occupant leaves at once: N^2/2 unavailable presences that
// Prosody takes tens of seconds to send. Nothing is measured then and the
// server's temp dir is thrown away, so SIGKILL comes 5 s after SIGTERM (not 15).
export const stopGraceMs = 5000;
export const defaults = { shape: 'big', window: 1, duration: 20, warmup: 3, bodySize: 100, concurrency: 100, joinConcurrency: 50 };
export const quick = { duration: 5, warmup: 1 };

// per-shape sizes, unless given on the command line (--rooms, --occupants, --senders)
const SHAPES = {
  big: { rooms: 1, occupants: 1000, senders: 10 },
  rooms: { rooms: 100, occupants: 20, senders: 1 },
};
const QUICK_SHAPES = {
  big: { rooms: 1, occupants: 200, senders: 10 },
  rooms: { rooms: 20, occupants: 10, senders: 1 },
};

const NS_MUC = 'http://jabber.org/protocol/muc';
const JOIN_TIMEOUT_MS = 60000; // one join (or configuration form)
const JOIN_PHASE_MAX_MS = 300000; // no join starts after this: the run fails instead
const SETTLE_MAX_MS = 60000; // bound on waiting for the join presence flood to end
const DRAIN_MAX_MS = 5000; // bound on waiting for in-flight messages after the window
const MAX_LATENCY_SAMPLES = 32 * 1024 * 1024; // Float32Array: 128 MiB at most

const STATUS_110 = /<status\s+code=['"]110['"]/;
const STATUS_201 = /<status\s+code=['"]201['"]/;
const TYPE_ERROR = /^<[^>]*\stype=['"]error['"]/;
const errorCondition = (s) => {
  const m = /<error[^>]*>\s*<([\w-]+)/.exec(s);
  return m ? m[1] : s.slice(0, 200);
};

/** Fill the shape's sizes (called by the runner before the target starts). */
export function resolve(p, { quick: q = false } = {}) {
  const preset = (q ? QUICK_SHAPES : SHAPES)[p.shape];
  if (!preset) throw new Error(`muc: --shape must be big or rooms (got ${p.shape})`);
  for (const [k, x] of Object.entries(preset)) p[k] ??= x;
  for (const k of ['rooms', 'occupants', 'senders', 'window', 'duration', 'joinConcurrency', 'concurrency'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`muc: ${k} must be a positive integer (got ${p[k]})`);
  if (p.senders > p.occupants) throw new Error(`muc: --senders (${p.senders}) cannot exceed --occupants (${p.occupants})`);
  return p;
}

export const usersNeeded = (o) => o.rooms * o.occupants;

const mib = (b) => (b == null ? null : round(b / 1048576, 1));

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const R = o.rooms;
  const N = o.occupants;
  const total = R * N;
  const service = target.mucDomain || `conference.${target.domain}`;
  const runId = (process.pid % 46656).toString(36); // room names unique per run (matters on an external server)
  const roomJid = (r) => `bench${runId}-${r + 1}@${service}`;

  // --- counters, all updated from the receive path
  let presences = 0;
  let received = 0; // groupchat messages with a bench body, whole run
  let delivered = 0; // ... received inside the measured window
  let reflected = 0; // senders' own messages back
  let sent = 0;
  let sentWindow = 0;
  let bounced = 0; // type='error' messages
  let foreign = 0; // groupchat bodies that are not ours (e.g. a server's notice)
  let dropped = 0;
  let measuring = false;
  let running = false;
  let lat = new Float32Array(1 << 20);
  let nLat = 0;

  const pad = 'x'.repeat(o.bodySize);
  let seq = 0;
  const sendMsg = (c) => {
    const head = `${performance.now().toFixed(3)}|${c.tag}|`;
    const body = head + pad.slice(0, Math.max(0, o.bodySize - head.length));
    c.send(`<message type='groupchat' to='${c.room}' id='${c.tag}.${(++seq).toString(36)}'><body>${body}</body></message>`);
    c.inflight++;
    sent++;
    if (measuring) sentWindow++;
  };

  const onStanza = (c) => (s) => {
    const k = s.charCodeAt(1);
    if (k === 109 /* <message */) {
      const b = s.indexOf('<body>');
      if (b < 0) return; // subject, status codes
      const gt = s.indexOf('>');
      const t = s.indexOf(' type=');
      if (t < 0 || t > gt || !s.startsWith('groupchat', t + 7)) {
        bounced++;
        if (bounced === 1) console.error(`[bench] unexpected: ${s.slice(0, 300)}`);
        return;
      }
      const bar = s.indexOf('|', b);
      if (bar < 0 || bar - b > 24) {
        foreign++;
        return;
      }
      received++;
      if (measuring) {
        delivered++;
        if (nLat === lat.length && nLat < MAX_LATENCY_SAMPLES) {
          const bigger = new Float32Array(Math.min(2 * lat.length, MAX_LATENCY_SAMPLES));
          bigger.set(lat);
          lat = bigger;
        }
        if (nLat < lat.length) lat[nLat++] = performance.now() - +s.slice(b + 6, bar);
      }
      // a sender's own message back: send the next one (closed loop)
      if (c.tag !== undefined && s.startsWith(c.tag, bar + 1) && s.charCodeAt(bar + 1 + c.tag.length) === 124 /* | */) {
        c.inflight--;
        reflected++;
        if (running) sendMsg(c);
      }
      return;
    }
    if (k === 112 /* <presence */) {
      presences++;
      const w = c.joinWait;
      if (!w) return;
      if (s.indexOf('110') > 0 && STATUS_110.test(s)) {
        c.joinWait = null;
        w.resolve(STATUS_201.test(s));
      } else if (s.indexOf('error') > 0 && TYPE_ERROR.test(s)) {
        c.joinWait = null;
        w.reject(new Error(`join of ${c.room} refused: ${errorCondition(s)}`));
      }
      return;
    }
    if (k === 105 /* <iq */ && c.iqWait && attr(s, 'id') === c.iqWait.id) {
      const w = c.iqWait;
      c.iqWait = null;
      if (attr(s, 'type') === 'result') w.resolve(s);
      else w.reject(new Error(`iq ${w.id} failed: ${errorCondition(s)}`));
    }
  };

  const waitFor = (c, key, extra, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        c[key] = null;
        reject(new Error(`${what} timeout after ${JOIN_TIMEOUT_MS} ms`));
      }, JOIN_TIMEOUT_MS);
      c[key] = {
        ...extra,
        resolve: (x) => (clearTimeout(timer), resolve(x)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });

  const join = (c) => {
    const p = waitFor(c, 'joinWait', {}, 'join');
    c.send(`<presence to='${c.room}/${c.nick}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`);
    return p;
  };
  const form = (fields) =>
    `<x xmlns='jabber:x:data' type='submit'>` +
    (fields.length ? `<field var='FORM_TYPE'><value>${NS_MUC}#roomconfig</value></field>` : '') +
    fields.map(([k, x]) => `<field var='${k}'><value>${x}</value></field>`).join('') +
    `</x>`;
  let cfgSeq = 0;
  const configure = (c, fields) => {
    const id = `cfg${++cfgSeq}`;
    const p = waitFor(c, 'iqWait', { id }, 'room configuration');
    c.send(`<iq type='set' id='${id}' to='${c.room}'><query xmlns='${NS_MUC}#owner'>${form(fields)}</query></iq>`);
    return p;
  };

  // --- log in R x N users; user r*N+j+1 is occupant j of room r, senders are j < S
  const conns = new Array(total);
  const loginErrors = {};
  const tLogin = performance.now();
  await pool(total, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    try {
      await c.login({ presence: true, roster: false, resource: 'muc' });
    } catch (e) {
      countError(loginErrors, e);
      return;
    }
    const r = Math.floor(i / N);
    const j = i % N;
    c.room = roomJid(r);
    c.nick = `n${i + 1}`;
    c.inflight = 0;
    if (j < o.senders) c.tag = `s${i + 1}`;
    c.joinWait = c.iqWait = null;
    c.onStanza = onStanza(c);
    c.onClose = (err) => err && dropped++;
    conns[i] = c;
  });
  let failedLogins = 0;
  for (let i = 0; i < total; i++) if (!conns[i]) failedLogins++;
  if (failedLogins) throw new Error(`${failedLogins} of ${total} logins failed: ${JSON.stringify(loginErrors)}`);
  console.error(`[bench] ${total} users logged in in ${round((performance.now() - tLogin) / 1000, 1)} s`);

  // --- join: owners create and configure their rooms, then everyone else joins
  const rssBeforeJoin = rssBytes(target.pid);
  const cpuJoin0 = cpuSeconds(target.pid);
  const genJoin0 = process.cpuUsage();
  const tJoin = performance.now();
  const maxUsers = Math.max(100, 2 * N);
  let configured = 0;
  let configFallbacks = 0;
  let existed = 0;
  const joinErrors = {};
  await pool(R, o.joinConcurrency, async (r) => {
    const c = conns[r * N];
    const created = await join(c);
    if (!created) {
      existed++; // joined an existing room: nothing to unlock
      return;
    }
    try {
      await configure(c, [['muc#roomconfig_maxusers', maxUsers]]);
    } catch (e) {
      if (configFallbacks++ === 0) console.error(`[bench] room configuration form refused (${e.message}); submitting an instant-room form`);
      await configure(c, []);
    }
    configured++;
  });
  // occupants 1..N-1 of every room, interleaved across rooms so rooms fill together
  const order = [];
  for (let j = 1; j < N; j++) for (let r = 0; r < R; r++) order.push(r * N + j);
  let joined = R;
  const tick = o.progress ? setInterval(() => console.error(`[bench] joined ${joined}/${total}, ${presences} presences`), 1000) : null;
  await pool(order.length, o.joinConcurrency, async (k) => {
    if (performance.now() - tJoin > JOIN_PHASE_MAX_MS) {
      countError(joinErrors, new Error(`joins not done after ${JOIN_PHASE_MAX_MS / 1000} s`));
      return;
    }
    try {
      await join(conns[order[k]]);
      joined++;
    } catch (e) {
      countError(joinErrors, e);
    }
  });
  clearInterval(tick);
  if (joined < total) throw new Error(`${total - joined} of ${total} joins failed: ${JSON.stringify(joinErrors)}`);
  const joinS = (performance.now() - tJoin) / 1000;
  // the self-presence is the last one of a join, but earlier occupants may still be
  // receiving the newcomers' presence: wait until the flood has stopped
  const tSettle = performance.now();
  for (let last = -1; presences !== last && performance.now() - tSettle < SETTLE_MAX_MS; ) {
    last = presences;
    await sleep(500);
  }
  const cpuJoin = cpuSeconds(target.pid);
  const genJoin = process.cpuUsage(genJoin0);
  const joinWall = (performance.now() - tJoin) / 1000;
  const rssAfterJoin = rssBytes(target.pid);
  const joinPresences = presences;
  console.error(
    `[bench] ${R} room(s) x ${N} occupants joined in ${round(joinS, 1)} s (+${round((performance.now() - tSettle) / 1000, 1)} s ` +
      `until quiet), ${joinPresences} presences, server CPU ${round(cpuJoin - cpuJoin0, 1)} s`,
  );

  // --- messages: warm-up, then the measured window
  const senders = conns.filter((c) => c.tag !== undefined);
  running = true;
  for (const c of senders) for (let w = 0; w < o.window; w++) sendMsg(c);
  await sleep(o.warmup * 1000);
  const meter = cpuMeter(target.pid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  let lastN = 0;
  let lastCpu = cpuSeconds(target.pid);
  const ptick = o.progress
    ? setInterval(() => {
        const cpu = cpuSeconds(target.pid);
        console.error(`[bench] +${Math.round(performance.now() - t0)} ms: ${delivered - lastN} deliveries, server CPU ${round(cpu - lastCpu, 2)} s`);
        lastN = delivered;
        lastCpu = cpu;
      }, 1000)
    : null;
  await sleep(o.duration * 1000);
  clearInterval(ptick);
  measuring = false;
  const m = meter();
  const gen = process.cpuUsage(gen0);
  const rssEnd = rssBytes(target.pid);
  // stop sending; let what is in flight arrive, to check that nothing was lost
  running = false;
  const tDrain = performance.now();
  while (senders.some((c) => c.inflight > 0) && performance.now() - tDrain < DRAIN_MAX_MS) await sleep(50);
  await sleep(300);
  const expected = sent * N;
  for (const c of conns) c.destroy(); // no polite close: the leave flood is not measured
  await sleep(200);

  const samples = lat.subarray(0, nLat).sort();
  const cpu = m.server_cpu_s;
  const result = {
    shape: o.shape,
    rooms: R,
    occupants_per_room: N,
    senders_per_room: o.senders,
    join_s: round(joinS, 2),
    join_presences: joinPresences,
    join_server_cpu_s: cpuJoin0 == null ? null : round(cpuJoin - cpuJoin0, 2),
    join_generator_cpu_pct: round(((genJoin.user + genJoin.system) / 1e6 / joinWall) * 100, 1),
    rooms_configured: configured,
    rooms_config_fallback: configFallbacks,
    rooms_existing: existed,
    deliveries: delivered,
    duration_s: round(m.wall, 2),
    deliveries_per_s: round(delivered / m.wall, 0),
    msgs_sent_per_s: round(sentWindow / m.wall, 0),
    latency_ms: {
      p50: round(percentile(samples, 50), 2),
      p90: round(percentile(samples, 90), 2),
      p99: round(percentile(samples, 99), 2),
      max: round(samples[samples.length - 1], 2),
    },
    latency_samples: nLat,
    server_cpu_s: round(cpu, 2),
    server_cpu_pct: m.server_cpu_pct,
    server_cpu_us_per_delivery: cpu == null || !delivered ? null : round((cpu / delivered) * 1e6, 2),
    server_rss_mib: { before_join: mib(rssBeforeJoin), after_join: mib(rssAfterJoin), end: mib(rssEnd) },
    generator_cpu_pct: m.generator_cpu_pct,
    generator_cpu_sys_pct: round((gen.system / 1e6 / m.wall) * 100, 1), // kernel (socket) share of it
    other_cpu_pct: m.other_cpu_pct,
    sessions_dropped: dropped,
    bounced,
    foreign,
    sent_total: sent,
    received_total: received,
    missing: expected - received,
  };
  const summary =
    `muc ${target.name} ${o.shape} ${R}x${N} (${o.senders} sender(s)/room, window ${o.window}): ` +
    `${result.deliveries_per_s} deliveries/s, ${result.msgs_sent_per_s} msgs/s sent, ` +
    `p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms, ` +
    `${result.server_cpu_us_per_delivery ?? '?'} us server CPU/delivery (server ${result.server_cpu_pct ?? '?'}% CPU, ` +
    `RSS ${result.server_rss_mib.end ?? '?'} MiB, generator ${result.generator_cpu_pct}% CPU); ` +
    `join ${result.join_s} s; missing ${result.missing}, bounced ${bounced}`;
  return { result, summary };
}
