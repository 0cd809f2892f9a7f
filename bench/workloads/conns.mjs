// conns: ramp N authenticated idle sessions (auth, bind, presence, roster get),
// report sessions/s during the ramp and server RSS per session at N.
import { countError, cpuMeter, rssBytes, pool, round, sleep } from '../lib/proc.mjs';

export const defaults = { n: 10000, concurrency: 200, settle: 3 };
export const quick = { n: 1000, settle: 1 };
export const usersNeeded = (o) => o.n;

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const rssBefore = rssBytes(target.pid);
  const meter = cpuMeter(target.pid);
  const conns = [];
  const errors = {};
  let ok = 0;
  let dropped = 0;
  let rosterErrors = 0;
  const t0 = performance.now();
  await pool(o.n, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    try {
      await c.login({ presence: true, roster: true, resource: 'idle' });
      ok++;
      if (c.rosterError) rosterErrors++ || console.error(`[bench] roster get failed (counted, not fatal): ${c.rosterError}`);
      conns.push(c);
      c.onClose = (err) => err && dropped++; // our own close() passes no error
    } catch (e) {
      countError(errors, e);
    }
  });
  const rampS = (performance.now() - t0) / 1000;
  const m = meter();
  await sleep(o.settle * 1000); // let the server finish post-login work (e.g. GC) before sampling
  const rssAfter = rssBytes(target.pid);
  const open = conns.filter((c) => !c.closed).length;
  for (const c of conns) c.close();
  await sleep(500);

  const rssPer = rssBefore != null && ok ? (rssAfter - rssBefore) / ok : null;
  const result = {
    sessions_ok: ok,
    sessions_failed: o.n - ok,
    sessions_open_at_sample: open,
    sessions_dropped: dropped,
    roster_errors: rosterErrors,
    errors,
    ramp_s: round(rampS, 2),
    sessions_per_s: round(ok / rampS, 1),
    server_rss_before_bytes: rssBefore,
    server_rss_after_bytes: rssAfter,
    server_rss_per_session_bytes: round(rssPer, 0),
    server_rss_per_session_kib: rssPer == null ? null : round(rssPer / 1024, 1),
    server_cpu_s_ramp: round(m.server_cpu_s, 2),
    server_cpu_pct: m.server_cpu_pct,
    generator_cpu_pct: m.generator_cpu_pct,
    other_cpu_pct: m.other_cpu_pct,
  };
  const summary =
    `conns ${target.name}: ${ok}/${o.n} sessions in ${result.ramp_s}s = ${result.sessions_per_s} sessions/s; ` +
    `RSS ${result.server_rss_per_session_kib ?? '?'} KiB/session; server CPU ${result.server_cpu_pct ?? '?'}%, generator CPU ${result.generator_cpu_pct}%`;
  return { result, summary };
}
