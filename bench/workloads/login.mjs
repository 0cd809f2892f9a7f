// login: connect + SASL + bind, then close, in a loop with bounded concurrency.
// Users are taken round-robin from a pool; after a warm-up, count completed
// logins for `duration` seconds.
import { countError, cpuMeter, percentile, round, sleep } from '../lib/proc.mjs';

export const defaults = { duration: 20, warmup: 2, concurrency: 20, users: 500 };
export const quick = { duration: 5, warmup: 1 };
export const usersNeeded = (o) => o.users;

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  let measuring = false;
  let stop = false;
  let ok = 0;
  let failed = 0;
  let next = 0;
  const errors = {};
  const times = [];

  const worker = async () => {
    while (!stop) {
      const c = newConn((next++ % o.users) + 1);
      const t = performance.now();
      try {
        await c.login({ presence: false, roster: false });
        if (measuring) {
          ok++;
          times.push(performance.now() - t);
        }
      } catch (e) {
        if (measuring) failed++;
        countError(errors, e);
        if (failed > 1000) stop = true; // something is badly wrong; don't spin
      }
      c.close();
    }
  };
  const workers = Array.from({ length: o.concurrency }, worker);
  await sleep(o.warmup * 1000);
  const meter = cpuMeter(target.pid);
  measuring = true;
  await sleep(o.duration * 1000);
  measuring = false;
  const m = meter();
  stop = true;
  await Promise.all(workers);

  times.sort((x, y) => x - y);
  const cpu = m.server_cpu_s;
  const result = {
    mech: o.mech,
    logins: ok,
    failed,
    errors,
    duration_s: round(m.wall, 2),
    logins_per_s: round(ok / m.wall, 1),
    login_ms: { p50: round(percentile(times, 50), 2), p99: round(percentile(times, 99), 2) },
    server_cpu_pct: m.server_cpu_pct,
    server_cpu_ms_per_login: cpu == null || !ok ? null : round((cpu / ok) * 1000, 3),
    generator_cpu_pct: m.generator_cpu_pct,
    other_cpu_pct: m.other_cpu_pct,
  };
  const summary =
    `login ${target.name} (${o.mech}): ${result.logins_per_s} logins/s, p50 ${result.login_ms.p50} ms, ` +
    `${failed} failed (server ${result.server_cpu_pct ?? '?'}% CPU, generator ${result.generator_cpu_pct}% CPU)`;
  return { result, summary };
}
