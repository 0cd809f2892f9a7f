// `uzzap start --workers N` (UZZAP_WORKERS): N worker processes on this machine, each a
// node of the cluster (Redis required), sharing the listening ports through node:cluster
// (the primary accepts and hands connections round-robin). The primary runs no XMPP: it
// applies the schema migrations once, forks, forwards SIGTERM/SIGINT/SIGHUP to every
// worker, and restarts a worker that died (its clients reconnect to the others; with
// stream management they resume there once issue 16's failover lands).
import cluster from 'node:cluster';
import { availableParallelism, hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';

/** how many workers `workers` asks for ("auto": one per CPU) */
export function workerCount(setting: string): number {
  return setting === 'auto' ? availableParallelism() : Number(setting);
}

/** The node names of this machine's workers: `<base>-w<i>` (base: UZZAP_NODE_NAME, else host and c2s port). */
export function workerName(cfg: Config, i: number): string {
  return `${cfg.node_name || `${hostname()}-${cfg.c2s.port}`}-w${i}`;
}

export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * Run as the primary: `migrate` prepares storage once, then `n` workers start with
 * UZZAP_NODE_NAME=<base>-w<i> and UZZAP_WORKERS=1. Resolves when every worker exited
 * after a stop signal.
 */
export async function runPrimary(cfg: Config, n: number, log: Logger, migrate: () => Promise<void>): Promise<void> {
  if (!cfg.redis_url)
    throw new Error(`${n} workers need UZZAP_REDIS_URL (redis_url): the workers of one machine are nodes of one cluster and meet in Redis`);
  await migrate();
  cluster.setupPrimary({ silent: false });
  let stopping = false;
  const byIndex = new Map<number, import('node:cluster').Worker>();
  const started = new Map<number, number>();
  const fork = (i: number): void => {
    started.set(i, Date.now());
    const w = cluster.fork({ UZZAP_NODE_NAME: workerName(cfg, i), UZZAP_WORKERS: '1' });
    byIndex.set(i, w);
    w.on('exit', (code, signal) => {
      if (byIndex.get(i) === w) byIndex.delete(i);
      if (stopping) return;
      // a worker that keeps dying at once is restarted more slowly (at most every 5 s)
      const lived = Date.now() - (started.get(i) ?? 0);
      const delay = lived < 5000 ? 5000 - lived : 0;
      log.error({ worker: workerName(cfg, i), code, signal, restartInMs: delay }, 'worker died; restarting it');
      setTimeout(() => {
        if (!stopping) fork(i);
      }, delay).unref();
    });
  };
  for (let i = 1; i <= n; i++) fork(i);
  log.info({ workers: n, names: [...Array(n).keys()].map((i) => workerName(cfg, i + 1)) }, 'started workers');
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stopping every worker');
      for (const w of byIndex.values()) w.process.kill('SIGTERM');
      const force = setTimeout(() => {
        for (const w of byIndex.values()) w.process.kill('SIGKILL');
      }, 25_000);
      force.unref();
      const check = (): void => {
        if (byIndex.size === 0) resolve();
      };
      cluster.on('exit', check);
      check();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      for (const w of byIndex.values()) w.process.kill('SIGHUP');
    });
  });
}
