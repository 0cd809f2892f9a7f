// A private redis-server for the cluster workloads (cluster, failover), pinned to the
// server core beside the Uzzap nodes, started before them (they need its URL).
import { spawn, spawnSync } from 'node:child_process';
import { freePort, sleep } from './proc.mjs';

export async function startRedis() {
  const port = await freePort();
  const proc = spawn('taskset', ['-c', '0', 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  process.once('exit', () => proc.kill('SIGKILL'));
  const cli = (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout ?? '';
  for (let i = 0; i < 100; i++) {
    if (cli('ping').trim() === 'PONG') break;
    await sleep(100);
  }
  return {
    port,
    proc,
    url: `redis://127.0.0.1:${port}/0`,
    cli,
    /** total calls over every command (INFO commandstats) */
    calls() {
      let n = 0;
      for (const m of cli('info', 'commandstats').matchAll(/calls=(\d+)/g)) n += Number(m[1]);
      return n;
    },
    stop: () => proc.kill('SIGTERM'),
  };
}
