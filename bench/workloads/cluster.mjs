// cluster: what a hop between two nodes costs (issue 15). Two Uzzap nodes of one
// cluster (same storage, a private Redis started here) and that Redis all pinned to
// the server core; the chat workload's pairs either split across the nodes (--split 1,
// every message crosses: node A -> Redis -> node B) or all on node A (--split 0, node B
// idles beside it). Compare the two in one sitting: msgs/s, latency, the CPU of both
// nodes and Redis per 10k messages, and Redis commands per message (INFO commandstats).
import { cpuSeconds, round, sleep } from '../lib/proc.mjs';
import { startRedis } from '../lib/redis.mjs';
import * as chat from './chat.mjs';

export const defaults = { ...chat.defaults, split: 1 };
export const quick = { ...chat.quick };
export const usersNeeded = chat.usersNeeded;
export const targets = ['uzzap'];

/** a private redis-server on the server core, before the nodes start (they need its URL) */
export async function prepare({ uzzapEnv }) {
  const redis = await startRedis();
  uzzapEnv.UZZAP_REDIS_URL = redis.url;
  return { redis };
}

export async function run(ctx, o) {
  const { target } = ctx;
  const { redis } = ctx.prepared;
  const peer = await target.startPeer('bench-b');
  // wait until each node lists the other (their heartbeats)
  for (let i = 0; i < 100 && Number(redis.cli('scard', `uzzap:${target.domain}:nodes`).trim()) < 2; i++) await sleep(100);
  const onPeer = (i) => o.split && i % 2 === 0; // user 2p+2 of pair p (the second) connects to node B
  const newConn = (i, presenceCounter) => {
    const c = ctx.newConn(i, presenceCounter);
    if (onPeer(i)) c.o.port = peer.port;
    return c;
  };
  const redisCpu0 = cpuSeconds(redis.proc.pid);
  const calls0 = redis.calls();
  // node B and Redis are measured as the chat workload's "database processes"
  const out = await chat.run({ ...ctx, newConn, target: { ...target, dbProcs: async () => ({ pids: [peer.pid, redis.proc.pid], postmaster: null }) } }, o);
  const calls = redis.calls() - calls0;
  const redisCpu = cpuSeconds(redis.proc.pid) - redisCpu0;
  const r = out.result;
  const totalCpu = (r.server_cpu_s ?? 0) + (r.db_cpu_s ?? 0);
  const result = {
    split: Boolean(o.split),
    ...r,
    node_a_cpu_s: r.server_cpu_s,
    node_b_and_redis_cpu_s: r.db_cpu_s,
    redis_cpu_s_whole_run: round(redisCpu, 2),
    cluster_cpu_s_per_10k_msgs: r.delivered ? round((totalCpu / r.delivered) * 10000, 3) : null,
    redis_commands_per_msg: r.sent_total ? round(calls / r.sent_total, 3) : null,
  };
  for (const k of ['server_cpu_s', 'server_cpu_pct', 'server_cpu_s_per_10k_msgs', 'db_cpu_s', 'db_cpu_pct', 'db_cpu_s_per_10k_msgs', 'db_exited_cpu_s']) delete result[k];
  redis.stop();
  const summary =
    `cluster ${o.split ? 'split across 2 nodes' : 'all on node A'}: ${result.msgs_per_s} msgs/s, p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms, ` +
    `${result.cluster_cpu_s_per_10k_msgs} CPU s/10k msgs (both nodes + Redis), ${result.redis_commands_per_msg} Redis commands/msg`;
  return { result, summary };
}
