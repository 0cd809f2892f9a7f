// Small helpers: /proc readings for a server process tree, ports, stats.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }), 10) || 100;
} catch {}

/** pid plus all its descendants (via /proc/<pid>/task/<tid>/children). */
export function processTree(pid) {
  const out = [];
  const walk = (p) => {
    out.push(p);
    let tasks = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {}
      for (const k of kids.split(' ').filter(Boolean)) walk(Number(k));
    }
  };
  walk(pid);
  return out;
}

/** utime+stime in seconds, summed over the process tree (null if unknown). */
export function cpuSeconds(pid) {
  if (!pid) return null;
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // fields 14 and 15 (utime, stime)
    } catch {}
  }
  return ticks / clkTck;
}

/** CPU seconds from the scheduler (se.sum_exec_runtime of each thread in /proc/<pid>/task/<tid>/sched, ns
 *  resolution, where utime+stime count 10 ms ticks), summed over the process tree; threads that exited in
 *  between are missed. null if the kernel does not expose it. */
export function cpuSecondsSched(pid) {
  if (!pid) return null;
  let ms = 0;
  let seen = false;
  for (const p of processTree(pid)) {
    let tasks = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const m = /se\.sum_exec_runtime\s*:\s*([\d.]+)/.exec(fs.readFileSync(`/proc/${p}/task/${t}/sched`, 'utf8'));
        if (m) {
          ms += Number(m[1]);
          seen = true;
        }
      } catch {}
    }
  }
  return seen ? ms / 1000 : null;
}

/** VmRSS in bytes, summed over the process tree (null if unknown). */
export function rssBytes(pid) {
  if (!pid) return null;
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {}
  }
  return kib * 1024;
}

/** CPU seconds (incl. reaped children) of every user-space process outside `exclude`:
 *  tells whether something else on the machine competed with the run. */
export function otherCpuSeconds(exclude) {
  let ticks = 0;
  for (const d of fs.readdirSync('/proc')) {
    const pid = Number(d);
    if (!pid || exclude.has(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === 2 || pid === 2) continue; // kernel threads (children of kthreadd)
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {}
  }
  return ticks / clkTck;
}

/** utime+stime in seconds of each pid in `pids` (no descendants), as a Map (absent: gone or unreadable). */
export function cpuSecondsEach(pids) {
  const out = new Map();
  for (const p of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(p, (Number(f[11]) + Number(f[12])) / clkTck);
    } catch {}
  }
  return out;
}

/** cutime+cstime in seconds of `pid`: CPU of its children that exited and were reaped (null if unknown). */
export function reapedChildrenCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / clkTck;
  } catch {
    return null;
  }
}

/** Parent pid of `pid` (null if unknown). */
export function parentPid(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/**
 * Start measuring; the returned function gives wall time and CPU use since then, for the server and the
 * generator. `db` (optional, { pids, postmaster }): processes of the server's database (Postgres backends),
 * measured apart as db_cpu_s / db_cpu_pct and left out of other_cpu_pct; pass it again at the end
 * (`meter(dbNow)`) to include backends opened during the interval (their whole CPU time counts). Processes
 * that come and go within the interval (Postgres's parallel query workers, autovacuum workers) are only
 * seen in the postmaster's reaped-children time: db_exited_cpu_s, which also holds any other client's
 * backend that exited meanwhile (exact only when nothing else uses that Postgres).
 */
export function cpuMeter(pid, db = null) {
  const dbPids = db?.pids ?? null;
  const mine = new Set([process.pid, process.ppid, ...(pid ? processTree(pid) : []), ...(dbPids ?? [])]);
  const r0 = db?.postmaster ? reapedChildrenCpuSeconds(db.postmaster) : null;
  const o0 = otherCpuSeconds(mine);
  const s0 = cpuSeconds(pid);
  const d0 = dbPids ? cpuSecondsEach(dbPids) : null;
  const g0 = process.cpuUsage();
  const t0 = performance.now();
  return (dbEnd = db) => {
    const dbPidsEnd = dbEnd?.pids ?? dbPids;
    const wall = (performance.now() - t0) / 1000;
    const s1 = cpuSeconds(pid);
    const g = process.cpuUsage(g0);
    let dbCpu = null;
    let dbNew = 0; // CPU of database processes that were not excluded at the start: counted in other, taken out
    if (d0) {
      dbCpu = 0;
      for (const [p, c] of cpuSecondsEach(new Set([...(dbPids ?? []), ...(dbPidsEnd ?? [])]))) {
        dbCpu += c - (d0.get(p) ?? 0);
        if (!mine.has(p)) dbNew += c;
      }
    }
    for (const p of pid ? processTree(pid) : []) mine.add(p);
    const other = otherCpuSeconds(mine) - o0 - dbNew;
    const pct = (x) => round((x / wall) * 100, 1);
    const out = {
      wall,
      server_cpu_s: s0 == null ? null : s1 - s0,
      server_cpu_pct: s0 == null ? null : pct(s1 - s0),
      generator_cpu_pct: pct((g.user + g.system) / 1e6),
      other_cpu_pct: pct(Math.max(0, other)),
    };
    if (dbCpu != null) Object.assign(out, { db_cpu_s: dbCpu, db_cpu_pct: pct(dbCpu) });
    if (r0 != null) {
      const exited = reapedChildrenCpuSeconds(db.postmaster) - r0;
      Object.assign(out, { db_exited_cpu_s: exited, db_exited_cpu_pct: pct(exited) });
      out.other_cpu_pct = pct(Math.max(0, other - exited));
    }
    return out;
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll-connect until the port accepts, or throw after timeoutMs. */
export async function waitForPort(host, port, timeoutMs, isAlive = () => true) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('server exited during startup');
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${host}:${port} not accepting after ${timeoutMs} ms`);
}

export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const round = (x, d = 1) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** p50, p90, p99 and max of ascending samples, rounded to `d` digits. */
export const quantiles = (sorted, d = 1) => ({
  p50: round(percentile(sorted, 50), d),
  p90: round(percentile(sorted, 90), d),
  p99: round(percentile(sorted, 99), d),
  max: round(sorted[sorted.length - 1], d),
});

/** Source addresses 127.0.0.10.. so many connections don't exhaust one address's ephemeral ports. */
export function localAddresses(host, count) {
  if (!/^127\./.test(host)) return [undefined];
  return Array.from({ length: count }, (_, i) => `127.0.0.${10 + i}`);
}

export function machineInfo() {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  return { nproc: os.cpus().length, cpu: cpu ? cpu[1] : os.cpus()[0]?.model, kernel: os.release(), node: process.version };
}

/** Count an error by its message with JIDs and numbers blanked, keeping at most 20 kinds. */
export function countError(errors, e) {
  let k = String(e?.message ?? e)
    .replace(/[\w.-]+@[\w.-]+(\/[^\s'"<]*)?/g, 'JID')
    .replace(/\d+/g, 'N')
    .slice(0, 120);
  if (!(k in errors) && Object.keys(errors).length >= 20) k = 'other';
  errors[k] = (errors[k] || 0) + 1;
}

/** Run `fn(i)` for i in [0, total) with at most `concurrency` in flight. */
export async function pool(total, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < total) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

/** Server-side TCP sockets on `port` still ESTABLISHED or CLOSE_WAIT, except those to `exceptPorts`. */
export function serverSocketsOpen(port, exceptPorts = new Set()) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 4) continue;
      const [, local, remote, st] = c;
      if (local.slice(local.lastIndexOf(':') + 1) !== hexPort) continue;
      if (st !== '01' && st !== '08') continue; // ESTABLISHED, CLOSE_WAIT
      if (exceptPorts.has(parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16))) continue;
      n++;
    }
  }
  return n;
}
