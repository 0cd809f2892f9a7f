// failover: a node of a cluster killed with SIGKILL under traffic (issue 16's numbers).
// Two Uzzap nodes, A (the bench's target) and B (a peer), and a private Redis, all on
// the server core; the storage is the target's (SQLite by default: both nodes are on
// this host; --uzzap-env UZZAP_POSTGRES_URL=... for Postgres).
//   - N sessions (u1..uN) log in on B with XEP-0198 resumption; the client counts 'h'
//     and answers <r/>.
//   - A watcher (u N+2) on A subscribes to the first 2 × `noresume` of them (they
//     accept), so it sees their presence: the first `noresume` will not come back, the
//     next `noresume` will (their 'unavailable', if any, is a flap).
//   - A sender (u N+1) on A sends chat messages to the other sessions' full JIDs at
//     `rate` per second, round-robin, each body unique (tag|session|seq), during
//     `warm` s, then B is killed, and it goes on for `after` s.
//   - Every session except the first `noresume` reconnects to A the moment its socket
//     closes and resumes (<resume previd h/>), at most `concurrency` at a time.
//   - Then, for up to `wait` s, every message sent must arrive.
// Measured: time from the kill to each <resumed/> (p50/p99/max) and <failed/> answers;
// messages sent, received, lost, duplicated (the same body twice) and duplicated under
// another stanza-id (must be 0: clients deduplicate on it); time from the kill to the
// watcher's 'unavailable' for each session that did not come back (≤ 10 s promised), and
// how many of the watched sessions that did come back were seen unavailable (flaps).
import { attr, SmFailed } from '../lib/xmpp-lite.mjs';
import { countError, percentile, pool, quantiles, round, sleep } from '../lib/proc.mjs';
import { startRedis } from '../lib/redis.mjs';

export const needsSm = true;
export const defaults = { n: 1000, noresume: 50, rate: 200, warm: 5, after: 15, concurrency: 100, wait: 30 };
export const quick = { n: 100, noresume: 10, warm: 3, after: 12, wait: 20 };
export const usersNeeded = (o) => o.n + 2;
export const targets = ['uzzap'];

export function resolve(p) {
  for (const k of ['n', 'rate', 'concurrency'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`failover: ${k} must be a positive integer (got ${p[k]})`);
  if (!(Number.isInteger(p.noresume) && p.noresume >= 0 && 2 * p.noresume < p.n))
    throw new Error(`failover: noresume must be in [0, n/2) (got ${p.noresume})`);
  for (const k of ['warm', 'after', 'wait']) if (!(p[k] >= 0)) throw new Error(`failover: ${k} must be >= 0 (got ${p[k]})`);
  return p;
}

/** a private redis-server on the server core, before the nodes start (they need its URL) */
export async function prepare({ uzzapEnv }) {
  const redis = await startRedis();
  uzzapEnv.UZZAP_REDIS_URL = redis.url;
  return { redis };
}

const SID = /<stanza-id xmlns=["']urn:xmpp:sid:0["'] id=["']([^"']+)["']/;

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const { redis } = ctx.prepared;
  const N = o.n;
  const watched = o.noresume; // sessions 0..watched-1 do not come back
  const tag = `fo${(process.pid % 46656).toString(36)}${Date.now().toString(36).slice(-4)}`;
  const peer = await target.startPeer('bench-b');
  for (let i = 0; i < 100 && Number(redis.cli('scard', `uzzap:${target.domain}:nodes`).trim()) < 2; i++) await sleep(100);
  const watcherJid = `${newConn(N + 2).o.user}@${target.domain}`;

  // --- receiving: every message by body, with its stanza-id
  const firstSid = new Map(); // body -> stanza-id of its first copy
  let dups = 0;
  let dupsNewId = 0;
  let errors = 0;
  const onMessage = (s) => {
    if (attr(s, 'type') === 'error') return void errors++;
    const b = s.indexOf('<body>');
    if (b < 0) return;
    const body = s.slice(b + 6, s.indexOf('</body>', b));
    if (!body.startsWith(tag)) return;
    const sid = SID.exec(s)?.[1] ?? '';
    const seen = firstSid.get(body);
    if (seen === undefined) firstSid.set(body, sid);
    else {
      dups++;
      if (seen !== sid) dupsNewId++;
    }
  };

  // --- N sessions on B
  const conns = new Array(N);
  const loginErrors = {};
  await pool(N, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    c.o.port = peer.port;
    try {
      await c.login({ presence: true, roster: false, resource: 'fo', sm: 'resume' });
    } catch (e) {
      countError(loginErrors, e);
      return;
    }
    c.onStanza = (s) => {
      if (s.startsWith('<message')) onMessage(s);
      else if (s.startsWith('<presence') && attr(s, 'type') === 'subscribe') c.send(`<presence to='${watcherJid}' type='subscribed'/>`);
    };
    conns[i] = c;
  });
  const failedLogins = conns.filter((c) => !c).length + (N - conns.length);
  if (failedLogins) throw new Error(`${failedLogins} of ${N} logins on node B failed: ${JSON.stringify(loginErrors)}`);

  // --- the watcher on A, subscribed to the sessions that will not come back
  const watcher = newConn(N + 2);
  await watcher.login({ presence: true, roster: true, resource: 'watch' });
  const available = new Set();
  const gone = new Map(); // bare JID -> ms after the kill
  let tKill = 0;
  watcher.onStanza = (s) => {
    if (!s.startsWith('<presence')) return;
    const from = (attr(s, 'from') ?? '').split('/')[0];
    const type = attr(s, 'type');
    if (!type) available.add(from);
    else if (type === 'unavailable' && tKill && !gone.has(from)) gone.set(from, performance.now() - tKill);
  };
  for (let i = 0; i < 2 * watched; i++) watcher.send(`<presence to='${conns[i].jid.split('/')[0]}' type='subscribe'/>`);
  for (let t = 0; available.size < 2 * watched && t < 300; t++) await sleep(100);
  if (available.size < 2 * watched) throw new Error(`the watcher sees ${available.size} of ${2 * watched} sessions available`);

  // --- the sender on A
  const sender = newConn(N + 1);
  await sender.login({ presence: false, roster: false, resource: 'send' });
  let senderErrors = 0;
  sender.onStanza = (s) => {
    if (s.startsWith('<message') && attr(s, 'type') === 'error' && senderErrors++ === 0) console.error(`[bench] the sender got an error: ${s.slice(0, 300)}`);
  };
  const movers = N - watched;
  let sent = 0;
  let sending = true;
  const interval = 1000 / o.rate;
  const tSend = performance.now();
  const sendLoop = (async () => {
    while (sending) {
      const due = Math.floor((performance.now() - tSend) / interval);
      while (sent < due) {
        const i = watched + (sent % movers);
        sender.send(`<message type='chat' to='${conns[i].jid}' id='${tag}.${sent}'><body>${tag}|${i}|${sent}</body></message>`);
        sent++;
      }
      await sleep(Math.max(1, interval));
    }
  })();

  await sleep(o.warm * 1000);

  // --- kill B; every session but the watched ones resumes on A the moment its socket closes
  const resumedAt = new Float64Array(N).fill(NaN);
  const failedConds = {};
  const resumeErrors = {};
  let failed = 0;
  const resumed = new Array(N);
  const queue = [];
  let running = 0;
  const next = () => {
    while (running < o.concurrency && queue.length) {
      const i = queue.shift();
      running++;
      const c = newConn(i + 1); // to A
      c.resume({ previd: conns[i].sm.id, h: conns[i].sm.h }, (s) => {
        if (s.startsWith('<message')) onMessage(s);
      })
        .then(() => {
          resumedAt[i] = performance.now() - tKill;
          resumed[i] = c;
        })
        .catch((e) => {
          if (e instanceof SmFailed) {
            failed++;
            countError(failedConds, new Error(e.condition));
          } else countError(resumeErrors, e);
        })
        .finally(() => {
          running--;
          next();
        });
    }
  };
  for (let i = watched; i < N; i++)
    conns[i].onClose = () => {
      queue.push(i);
      next();
    };
  tKill = performance.now();
  process.kill(peer.pid, 'SIGKILL');
  console.error(`[bench] node B (pid ${peer.pid}) killed after ${sent} messages; ${movers} sessions resume on A`);

  await sleep(o.after * 1000);
  sending = false;
  await sendLoop;
  const sentTotal = sent;
  // every message sent must arrive (the dead node's inbox is replayed by the sweep)
  const tWait = performance.now();
  while (firstSid.size < sentTotal && performance.now() - tWait < o.wait * 1000) await sleep(50);
  await sleep(1000); // late duplicates
  for (let t = 0; [...Array(watched).keys()].some((i) => !gone.has(conns[i].jid.split('/')[0])) && t < 100; t++) await sleep(100);

  const lat = [...resumedAt].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const isGone = (i) => gone.has(conns[i].jid.split('/')[0]);
  const unavail = [];
  for (let i = 0; i < watched; i++) if (isGone(i)) unavail.push(gone.get(conns[i].jid.split('/')[0]));
  unavail.sort((a, b) => a - b);
  let flaps = 0;
  for (let i = watched; i < 2 * watched; i++) if (isGone(i)) flaps++;
  for (const c of resumed) c?.close();
  for (let i = 0; i < watched; i++) conns[i]?.destroy();
  sender.close();
  watcher.close();
  await sleep(300);

  const result = {
    sessions_on_killed_node: N,
    resuming: movers,
    not_resuming: watched,
    rate_msgs_per_s: o.rate,
    resumed: lat.length,
    resume_failed: failed,
    resume_failed_conditions: failedConds,
    resume_errors: resumeErrors,
    resumed_after_kill_ms: quantiles(lat, 0),
    messages_sent: sentTotal,
    messages_received_unique: firstSid.size,
    messages_lost: sentTotal - firstSid.size,
    duplicates_same_stanza_id: dups - dupsNewId,
    duplicates_new_stanza_id: dupsNewId,
    error_messages_at_sessions: errors,
    sender_errors: senderErrors,
    unavailable_seen: unavail.length,
    watched_resumed: watched,
    flaps_unavailable_for_resumed: flaps,
    unavailable_after_kill_ms: {
      min: round(unavail[0], 0),
      p50: round(percentile(unavail, 50), 0),
      max: round(unavail[unavail.length - 1], 0),
    },
  };
  const summary =
    `failover: ${lat.length}/${movers} resumed on the surviving node, after the kill p50 ${result.resumed_after_kill_ms.p50} ms, ` +
    `p99 ${result.resumed_after_kill_ms.p99} ms; ${sentTotal} msgs sent, ${result.messages_lost} lost, ` +
    `${result.duplicates_same_stanza_id} duplicates (same stanza-id), ${dupsNewId} under a new id; ` +
    `${unavail.length}/${watched} not resumed seen unavailable, the last ${result.unavailable_after_kill_ms.max} ms after the kill; ` +
    `${flaps}/${watched} resumed ones seen unavailable (flaps)`;
  return { result, summary };
}
