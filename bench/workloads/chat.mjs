// chat: P pairs of online users ping-pong 100-byte chat messages to each
// other's full JID. Each delivered message triggers the reply, so `window`
// messages per pair are in flight at any time (closed loop). After a warm-up,
// count deliveries for `duration` seconds; latency = receive time - send time
// stamped into the body.
// With --rate R (open loop), nobody replies: every 10 ms the generator sends what
// R messages/s owe so far, round robin over the pairs and both directions, so
// the offered load does not slow down when the server does (a stall shows as
// latency, not as a lower rate).
import { attr } from '../lib/xmpp-lite.mjs';
import { cpuMeter, cpuSeconds, percentile, round, sleep } from '../lib/proc.mjs';
import { loginPairs, openLoop } from '../lib/pairs.mjs';

export const defaults = { pairs: 250, duration: 20, warmup: 3, window: 1, bodySize: 100, concurrency: 100, rate: 0, sm: 0 };
export const quick = { pairs: 50, duration: 5, warmup: 1 };
export const usersNeeded = (o) => 2 * o.pairs;

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  // --- log in 2P users
  const conns = await loginPairs(newConn, o.pairs, o.concurrency, Boolean(o.sm));

  const pad = 'x'.repeat(o.bodySize);
  let running = true;
  let measuring = false;
  let delivered = 0;
  let sent = 0;
  let dropped = 0;
  let bounced = 0;
  let seq = 0;
  const lat = [];

  const sendTo = (c, peerJid) => {
    const ts = performance.now().toFixed(3);
    const body = (ts + '|' + pad).slice(0, o.bodySize);
    c.send(`<message type='chat' to='${peerJid}' id='m${(++seq).toString(36)}'><body>${body}</body></message>`);
    sent++;
  };

  for (let p = 0; p < o.pairs; p++) {
    const a = conns[2 * p];
    const b = conns[2 * p + 1];
    for (const [me, peer] of [[a, b], [b, a]]) {
      me.onClose = (err) => err && running && dropped++;
      me.onStanza = (s) => {
        if (!s.startsWith('<message')) return;
        const i = s.indexOf('<body>');
        if (i < 0) return;
        if (attr(s, 'type') !== 'chat') {
          bounced++; // e.g. type='error' bounces carry our body too: not a delivery
          if (bounced === 1 && measuring) console.error(`[bench] unexpected: ${s.slice(0, 300)}`);
          return;
        }
        if (process.env.BENCH_DEBUG && seq < 3) console.error(s);
        const now = performance.now();
        if (measuring) {
          delivered++;
          lat.push(now - parseFloat(s.slice(i + 6, s.indexOf('|', i))));
        }
        if (running && !o.rate) sendTo(me, peer.jid);
      };
    }
  }

  // --- run: warm-up, then measurement window
  let pacer = null;
  if (o.rate) pacer = openLoop(conns, o.pairs, o.rate, (from, to) => running && sendTo(from, to.jid));
  else for (let p = 0; p < o.pairs; p++) for (let w = 0; w < o.window; w++) sendTo(conns[2 * p], conns[2 * p + 1].jid);
  await sleep(o.warmup * 1000);
  // on Postgres the database's work is in its own processes: measured apart (db_cpu_*)
  const meter = cpuMeter(target.pid, target.dbProcs ? await target.dbProcs() : null);
  const t0 = performance.now();
  measuring = true;
  let last = 0;
  let lastCpu = cpuSeconds(target.pid);
  const tick = o.progress
    ? setInterval(() => {
        const c = cpuSeconds(target.pid);
        console.error(`[bench] +${Math.round(performance.now() - t0)} ms: ${delivered - last} msgs, server CPU ${round(c - lastCpu, 2)} s`);
        last = delivered;
        lastCpu = c;
      }, 1000)
    : null;
  await sleep(o.duration * 1000);
  const dbEnd = target.dbProcs ? await target.dbProcs() : undefined;
  clearInterval(tick);
  measuring = false;
  const m = meter(dbEnd);
  running = false;
  if (pacer) clearInterval(pacer);
  await sleep(500);
  for (const c of conns) c.close();
  await sleep(300);

  lat.sort((x, y) => x - y);
  const cpu = m.server_cpu_s;
  const result = {
    delivered,
    duration_s: round(m.wall, 2),
    msgs_per_s: round(delivered / m.wall, 0),
    offered_msgs_per_s: o.rate || null,
    latency_ms: {
      p50: round(percentile(lat, 50), 2),
      p90: round(percentile(lat, 90), 2),
      p99: round(percentile(lat, 99), 2),
      max: round(lat[lat.length - 1], 2),
    },
    server_cpu_s: round(cpu, 2),
    server_cpu_pct: m.server_cpu_pct,
    server_cpu_s_per_10k_msgs: cpu == null || !delivered ? null : round((cpu / delivered) * 10000, 3),
    ...(m.db_cpu_s == null
      ? {}
      : {
          db_cpu_s: round(m.db_cpu_s, 2),
          db_cpu_pct: m.db_cpu_pct,
          db_cpu_s_per_10k_msgs: delivered ? round((m.db_cpu_s / delivered) * 10000, 3) : null,
          db_exited_cpu_s: round(m.db_exited_cpu_s, 2), // Postgres workers that came and went (autovacuum), see proc.mjs
        }),
    generator_cpu_pct: m.generator_cpu_pct,
    other_cpu_pct: m.other_cpu_pct,
    sessions_dropped: dropped,
    bounced,
    sent_total: sent,
  };
  const summary =
    `chat ${target.name}: ${result.msgs_per_s} msgs/s, p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms, ` +
    `${result.server_cpu_s_per_10k_msgs ?? '?'} server CPU s/10k msgs (server ${result.server_cpu_pct ?? '?'}% CPU, ` +
    (result.db_cpu_s == null ? '' : `Postgres ${result.db_cpu_s_per_10k_msgs} CPU s/10k msgs, ${result.db_cpu_pct}% CPU, `) +
    `generator ${result.generator_cpu_pct}% CPU)`;
  return { result, summary };
}
