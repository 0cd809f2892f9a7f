// presence: N users, each with K mutual contacts (a ring), log in at an even
// rate over D seconds (auth, bind, roster get, initial presence). Every login
// broadcasts to the online contacts and gets their presence back (probes), so
// the server's presence fan-out is what is measured: presence stanzas
// delivered per second and server CPU per login.
import { countError, cpuMeter, pool, round, sleep } from '../lib/proc.mjs';

export const defaults = { n: 2000, contacts: 50, duration: 20, settle: 3 };
export const quick = { n: 400, contacts: 20, duration: 5, settle: 1 };
export const usersNeeded = (o) => o.n;
export const contactsNeeded = (o) => o.contacts;

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const counter = { n: 0, unique: new Set() };
  const meter = cpuMeter(target.pid);
  const conns = [];
  const errors = {};
  const loginMs = [];
  let ok = 0;
  const interval = (o.duration * 1000) / o.n;
  const t0 = performance.now();
  // paced arrivals: login i starts at t0 + i * interval, whatever the others are doing
  await pool(o.n, o.n, async (i) => {
    const due = t0 + i * interval - performance.now();
    if (due > 0) await sleep(due);
    const c = newConn(i + 1, counter);
    const s = performance.now();
    try {
      await c.login({ presence: true, roster: true, resource: 'p' });
      loginMs.push(performance.now() - s);
      ok++;
      conns.push(c);
    } catch (e) {
      countError(errors, e);
    }
  });
  const rampS = (performance.now() - t0) / 1000;
  await sleep(o.settle * 1000); // the last broadcasts and probe answers arrive
  const m = meter();
  const wall = (performance.now() - t0) / 1000;
  // counted before logging out: the unavailable presences of the close are not part of it
  const delivered = counter.n;
  const distinct = counter.unique.size;
  for (const c of conns) c.close();
  await sleep(500);
  loginMs.sort((a, b) => a - b);
  const pct = (p) => (loginMs.length ? round(loginMs[Math.min(loginMs.length - 1, Math.floor(p * loginMs.length))], 1) : null);
  // with a ring of K and everyone online, each user ends up with K contacts' presence + its own
  const expected = o.n * (Math.min(o.contacts, o.n - 1) + 1);
  const result = {
    logins_ok: ok,
    logins_failed: o.n - ok,
    errors,
    ramp_s: round(rampS, 2),
    presence_delivered: delivered,
    presence_distinct: distinct,
    presence_expected: expected,
    presence_per_s: round(delivered / wall, 0),
    presence_distinct_per_s: round(distinct / wall, 0),
    login_ms: { p50: pct(0.5), p99: pct(0.99) },
    server_cpu_s: round(m.server_cpu_s, 2),
    server_cpu_ms_per_login: ok ? round((m.server_cpu_s * 1000) / ok, 2) : null,
    server_cpu_pct: m.server_cpu_pct,
    generator_cpu_pct: m.generator_cpu_pct,
    other_cpu_pct: m.other_cpu_pct,
  };
  const summary =
    `presence ${target.name}: ${ok}/${o.n} logins with ${o.contacts} contacts in ${result.ramp_s}s; ` +
    `${distinct} distinct presences of ${expected} expected (${delivered} in all, ${result.presence_per_s}/s); ` +
    `server ${result.server_cpu_ms_per_login} ms CPU/login, login p50 ${result.login_ms.p50} ms p99 ${result.login_ms.p99} ms`;
  return { result, summary };
}
