// `npm start` runs the server two processes down: npm -> sh -c -> node. npm passes
// SIGTERM and SIGINT on, but a SIGKILL of npm leaves the server running, orphaned, with
// its ports, sessions and rooms: `kill -9 <pid of npm start>` would not stop anything.
// Started by npm, the server watches npm's process and dies with it, as abruptly
// (SIGKILL: no drain, exactly what the kill meant). Written by hand: what the kernel
// offers (prctl PR_SET_PDEATHSIG) needs a native addon and covers only the direct
// parent (sh here); reading /proc is enough. Linux only; elsewhere it does nothing.
import { readFileSync } from 'node:fs';

/** The state, parent pid and start time (clock ticks since boot) of a process, from /proc/<pid>/stat. */
function stat(pid: number): { state: string; ppid: number; start: string; cmd: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and parentheses
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    return { state: f[0]!, ppid: Number(f[1]), start: f[19]!, cmd };
  } catch {
    return undefined;
  }
}

/** When run by npm (npm_lifecycle_event set): exit with SIGKILL as soon as npm's process is gone. Returns the watch's stop. */
export function dieWithNpm(onGone: () => void = () => process.kill(process.pid, 'SIGKILL')): () => void {
  if (!process.env.npm_lifecycle_event || process.platform !== 'linux') return () => undefined;
  // the nearest ancestor that is npm (npm itself, or node running npm-cli.js), at most 4 up
  let pid = process.ppid;
  let npm: { pid: number; start: string } | undefined;
  for (let i = 0; i < 4 && pid > 1; i++) {
    const s = stat(pid);
    if (!s) break;
    if (/(^|\/)npm(\s|$)|npm-cli\.js/.test(s.cmd)) {
      npm = { pid, start: s.start };
      break;
    }
    pid = s.ppid;
  }
  if (!npm) return () => undefined;
  const { pid: npmPid, start } = npm;
  const timer = setInterval(() => {
    // gone, another process under its pid, or dead and not yet reaped (a zombie)
    const now = stat(npmPid);
    if (now?.start !== start || now.state === 'Z') onGone();
  }, 250);
  timer.unref();
  return () => clearInterval(timer);
}
