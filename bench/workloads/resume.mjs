// resume: XEP-0198 stream resumption after a mass disconnect. N sessions log
// in and enable stream management with resumption (<enable resume='true'/>,
// the 'id' kept; the client counts inbound stanzas in 'h' and answers <r/>),
// then send initial presence. A sender connection (user N+1) sends each one
// chat message, to check delivery and 'h' before the drop. Then all N drop at
// once (sockets destroyed, no </stream:stream>); once the server has closed
// all their sockets (/proc/net/tcp) and 1 s more, the sender sends K chat
// messages to each dropped session's full JID, each with a unique body (run
// tag, session, message index), and a ping to know the server has taken them
// all. Then all N reconnect, authenticate (SCRAM-SHA-1), and send
// <resume previd=ID h=H/> with at most `concurrency` resumes in flight. Measured:
// resumes/s (successes / first connect -> last <resumed/>), per-session resume
// latency (connect -> <resumed/>), <failed/> answers; then, for up to `wait`
// seconds, the retransmitted stanzas: every session must get each of its K gap
// messages exactly once (loss and duplicates counted), and no message it had
// received before the drop may come again (its 'h' acknowledged it).
//
// Receiving is string scanning only: '<body>' found with indexOf, the body
// split on '|'.
import { attr, SmFailed } from '../lib/xmpp-lite.mjs';
import { countError, cpuMeter, cpuSeconds, percentile, pool, round, rssBytes, serverSocketsOpen, sleep } from '../lib/proc.mjs';

export const needsSm = true;
export const defaults = { n: 1000, gapMessages: 5, concurrency: 100, wait: 5 };
export const quick = { n: 100, wait: 3 };
export const usersNeeded = (o) => o.n + 1; // u1..uN resume, u(N+1) sends

export function resolve(p) {
  for (const k of ['n', 'gapMessages', 'concurrency'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`resume: ${k} must be a positive integer (got ${p[k]})`);
  if (!(p.wait >= 0)) throw new Error(`resume: wait must be >= 0 (got ${p.wait})`);
  return p;
}

const PRE_MAX_MS = 30000; // bound on waiting for the pre-drop messages
const NOTICE_MAX_MS = 15000; // bound on waiting for the server to close the dropped sockets
const AFTER_NOTICE_MS = 1000; // then this much more before the gap messages
const GAP_ACK_MAX_MS = 60000; // bound on the sender's ping round trip after the gap messages
const QUIET_MS = 1000; // after every expected message arrived: late duplicates?

const mib = (b) => (b == null ? null : round(b / 1048576, 1));
const errorCondition = (s) => {
  const m = /<error[^>]*>\s*<([\w-]+)/.exec(s);
  return m ? m[1] : s.slice(0, 120);
};

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const N = o.n;
  const K = o.gapMessages;
  const tag = `rs${(process.pid % 46656).toString(36)}${Date.now().toString(36).slice(-4)}`; // bodies unique per run

  // --- receive-side counters (index i = session 0..N-1)
  const preRecv = new Uint16Array(N); // pre-drop message, on the first connection
  const gapRecv = new Uint16Array(N * K); // gap messages, any connection
  let gapUnique = 0;
  const lastK = new Int16Array(N).fill(-1); // per session: index of the last gap message received
  let outOfOrder = 0; // a gap message after a later one of the same session
  let sample = null; // the first gap message received, as the server sent it (delay stamps, ids)
  let tLastGap = 0; // when the last new gap message arrived
  let preRedelivered = 0; // pre-drop messages that came again after the resume
  let misrouted = 0; // a bench body for another session
  let sessErrors = 0; // type='error' messages received by the sessions
  let foreign = 0; // message bodies that are not ours
  const afterResume = { message: 0, presence: 0, iq: 0 }; // non-bench stanzas on resumed streams
  let dropped = 0; // connections the server closed outside the drop

  const onStanza = (c, i, resumed) => (s) => {
    const k = s.charCodeAt(1);
    if (k !== 109 /* <message */) {
      if (resumed) afterResume[k === 112 ? 'presence' : k === 105 ? 'iq' : 'message']++;
      return;
    }
    const gt = s.indexOf('>');
    const t = s.indexOf(' type=');
    if (t >= 0 && t < gt && s.startsWith('error', t + 7)) {
      if (sessErrors++ === 0) console.error(`[bench] a session got an error message: ${s.slice(0, 300)}`);
      return;
    }
    const b = s.indexOf('<body>');
    const body = b < 0 ? null : s.slice(b + 6, s.indexOf('</body>', b));
    if (!body || !body.startsWith(tag)) {
      if (resumed) afterResume.message++;
      if (body) foreign++;
      return;
    }
    const f = body.split('|'); // tag|p|i  or  tag|g|i|k
    const j = Number(f[2]);
    if (j !== i) {
      misrouted++;
      return;
    }
    if (f[1] === 'p') {
      if (resumed) preRedelivered++;
      else preRecv[i]++;
    } else {
      const gk = Number(f[3]);
      if (gapRecv[i * K + gk]++ === 0) {
        gapUnique++;
        tLastGap = performance.now();
      }
      if (gk < lastK[i]) outOfOrder++;
      lastK[i] = gk;
      sample ??= s.slice(0, 600);
    }
  };

  // --- log in: N sessions with SM + resumption, then the sender
  const rssStart = rssBytes(target.pid);
  const conns = new Array(N);
  const loginErrors = {};
  const tLogin = performance.now();
  const cpuLogin0 = cpuSeconds(target.pid);
  await pool(N, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    try {
      await c.login({ presence: true, roster: false, resource: 'sm', sm: 'resume' });
    } catch (e) {
      countError(loginErrors, e);
      return;
    }
    c.onStanza = onStanza(c, i, false);
    c.onClose = (err) => err && dropped++;
    conns[i] = c;
  });
  let failedLogins = 0;
  for (let i = 0; i < N; i++) if (!conns[i]) failedLogins++;
  if (failedLogins) throw new Error(`${failedLogins} of ${N} logins failed: ${JSON.stringify(loginErrors)}`);
  const notResumable = conns.filter((c) => !c.sm.id || !c.sm.resumable).length;
  if (notResumable) throw new Error(`${notResumable} of ${N} sessions got <enabled/> without an id or resume='true'`);
  const smOffered = conns.filter((c) => c.sm.offered).length;
  const smMax = [...new Set(conns.map((c) => c.sm.max))];
  const sender = newConn(N + 1);
  await sender.login({ presence: false, roster: false, resource: 'sender' });
  let senderErrors = 0;
  const senderErrorKinds = {};
  let pingWait = null;
  sender.onStanza = (s) => {
    if (s.startsWith('<message')) {
      if (attr(s, 'type') === 'error') {
        if (senderErrors++ === 0) console.error(`[bench] the sender got an error back: ${s.slice(0, 300)}`);
        countError(senderErrorKinds, new Error(errorCondition(s)));
      }
    } else if (s.startsWith('<iq') && pingWait && attr(s, 'id') === pingWait.id) pingWait.resolve(attr(s, 'type'));
  };
  sender.onClose = (err) => err && dropped++;
  const ping = (id, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sender ping ${id}: no answer in ${ms} ms`)), ms);
      pingWait = { id, resolve: (x) => (clearTimeout(timer), (pingWait = null), resolve(x)) };
      sender.send(`<iq type='get' id='${id}' to='${target.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    });
  const loginS = (performance.now() - tLogin) / 1000;
  const cpuLogin = cpuSeconds(target.pid);
  console.error(`[bench] ${N} sessions logged in with SM (resume) in ${round(loginS, 1)} s; ${smOffered} saw <sm/> in the stream features`);

  // --- one message per session before the drop: delivery and 'h' work
  for (let i = 0; i < N; i++) sender.send(`<message type='chat' to='${conns[i].jid}' id='p${i}'><body>${tag}|p|${i}</body></message>`);
  const tPre = performance.now();
  const preDone = () => preRecv.every((x) => x > 0);
  while (!preDone() && performance.now() - tPre < PRE_MAX_MS) await sleep(20);
  const preMissing = preRecv.filter((x) => x === 0).length;
  if (preMissing) console.error(`[bench] warning: ${preMissing} sessions did not get their pre-drop message in ${PRE_MAX_MS / 1000} s`);
  await sleep(300); // presence and anything else in flight

  // --- drop: all N sockets destroyed at once, 'h' kept
  const rssBeforeDrop = rssBytes(target.pid);
  const saved = conns.map((c) => ({ previd: c.sm.id, h: c.sm.h }));
  const requestsBefore = conns.reduce((a, c) => a + c.sm.requests, 0);
  const tDrop = performance.now();
  for (const c of conns) c.destroy();
  const except = new Set([sender.sock.localPort]);
  let open = serverSocketsOpen(target.port, except);
  while (open > 0 && performance.now() - tDrop < NOTICE_MAX_MS) {
    await sleep(20);
    open = serverSocketsOpen(target.port, except);
  }
  const noticedMs = performance.now() - tDrop;
  if (open) console.error(`[bench] warning: ${open} server sockets still open ${NOTICE_MAX_MS / 1000} s after the drop`);
  else console.error(`[bench] server closed all ${N} dropped sockets in ${Math.round(noticedMs)} ms`);
  await sleep(AFTER_NOTICE_MS);

  // --- the gap: K messages to each detached session's full JID
  const cpuGap0 = cpuSeconds(target.pid);
  const tGap = performance.now();
  for (let k = 0; k < K; k++)
    for (let i = 0; i < N; i++)
      sender.send(`<message type='chat' to='${conns[i].jid}' id='g${i}.${k}'><body>${tag}|g|${i}|${k}</body></message>`);
  const pingType = await ping('gapdone', GAP_ACK_MAX_MS);
  const gapSendS = (performance.now() - tGap) / 1000;
  await sleep(1000); // bounces, if the server sends any, come now
  const cpuGap = cpuSeconds(target.pid);
  const rssDetached = rssBytes(target.pid);
  const gapBounced = senderErrors;
  console.error(
    `[bench] ${N * K} gap messages sent in ${round(gapSendS, 2)} s (ping ${pingType}), ${gapBounced} bounced to the sender`,
  );

  // --- resume: all N, `concurrency` in flight
  const lat = new Float64Array(N).fill(NaN);
  const resumedConns = new Array(N);
  const serverH = [];
  let ok = 0;
  let failed = 0;
  const failedConds = {};
  const resumeErrors = {};
  const failedIdx = [];
  const meter = cpuMeter(target.pid);
  const gen0 = process.cpuUsage();
  const tResume = performance.now();
  let tLastResumed = tResume;
  const tick = o.progress ? setInterval(() => console.error(`[bench] resumed ${ok}, failed ${failed}, gap msgs ${gapUnique}`), 1000) : null;
  await pool(N, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    const t0 = performance.now();
    try {
      const h = await c.resume(saved[i], onStanza(c, i, true));
      const t1 = performance.now();
      lat[i] = t1 - t0;
      tLastResumed = t1;
      ok++;
      if (h != null) serverH.push(h);
      c.onClose = (err) => err && dropped++;
      resumedConns[i] = c;
    } catch (e) {
      failedIdx.push(i);
      if (e instanceof SmFailed) {
        failed++;
        countError(failedConds, new Error(`${e.condition}${e.h == null ? '' : ' (with h)'}`));
      } else countError(resumeErrors, e);
    }
  });
  const resumeWallS = (tLastResumed - tResume) / 1000;
  // retransmitted stanzas: wait until every resumed session has its K messages, or `wait` s
  const want = new Set(resumedConns.map((c, i) => (c ? i : -1)).filter((i) => i >= 0));
  const haveAll = () => {
    for (const i of want) for (let k = 0; k < K; k++) if (gapRecv[i * K + k] === 0) return false;
    return true;
  };
  const tWait = performance.now();
  while (!haveAll() && performance.now() - tWait < o.wait * 1000) await sleep(5);
  const m = meter();
  const gen = process.cpuUsage(gen0);
  const deliveredMs = Math.max(0, tLastGap - tLastResumed);
  clearInterval(tick);
  const rssResumed = rssBytes(target.pid);
  await sleep(QUIET_MS); // duplicates or late retransmissions
  const requestsAfter = resumedConns.reduce((a, c) => a + (c ? c.sm.requests : 0), 0);

  // --- checks
  let lostResumed = 0;
  let lostFailed = 0;
  let duplicates = 0;
  let sessionsComplete = 0;
  for (let i = 0; i < N; i++) {
    let all = true;
    for (let k = 0; k < K; k++) {
      const x = gapRecv[i * K + k];
      if (x === 0) {
        all = false;
        if (resumedConns[i]) lostResumed++;
        else lostFailed++;
      } else duplicates += x - 1;
    }
    if (all && resumedConns[i]) sessionsComplete++;
  }
  for (const c of resumedConns) c?.close();
  sender.close();
  await sleep(300);

  const samples = [...lat].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const cpu = m.server_cpu_s;
  serverH.sort((a, b) => a - b);
  const result = {
    sessions: N,
    gap_messages_per_session: K,
    login_s: round(loginS, 2),
    login_server_cpu_s: cpuLogin0 == null ? null : round(cpuLogin - cpuLogin0, 2),
    sm_feature_advertised: smOffered,
    sm_enabled_max: smMax.length === 1 ? smMax[0] : smMax,
    pre_drop_missing: preMissing,
    drop_noticed_ms: Math.round(noticedMs),
    server_sockets_open_at_gap: open,
    gap_send_s: round(gapSendS, 2),
    gap_server_cpu_s: cpuGap0 == null ? null : round(cpuGap - cpuGap0, 2),
    gap_bounced: gapBounced,
    gap_bounce_conditions: senderErrorKinds,
    resumed: ok,
    resume_failed: failed,
    resume_failed_conditions: failedConds,
    resume_errors: resumeErrors,
    resume_wall_s: round(resumeWallS, 3),
    resumes_per_s: resumeWallS > 0 ? round(ok / resumeWallS, 0) : null,
    resume_latency_ms: {
      p50: round(percentile(samples, 50), 2),
      p90: round(percentile(samples, 90), 2),
      p99: round(percentile(samples, 99), 2),
      max: round(samples[samples.length - 1], 2),
    },
    resumed_server_h: serverH.length ? { min: serverH[0], max: serverH[serverH.length - 1] } : null,
    delivery_after_last_resumed_ms: round(deliveredMs, 1),
    gap_expected: N * K,
    gap_received_unique: gapUnique,
    lost: lostResumed + lostFailed,
    lost_in_resumed_sessions: lostResumed,
    lost_in_failed_sessions: lostFailed,
    duplicates,
    out_of_order: outOfOrder,
    sessions_complete: sessionsComplete,
    pre_drop_redelivered: preRedelivered,
    misrouted,
    session_error_messages: sessErrors,
    foreign,
    other_after_resume: afterResume,
    ack_requests_answered: { before_drop: requestsBefore, after_resume: requestsAfter },
    server_cpu_s: round(cpu, 3),
    server_cpu_pct: m.server_cpu_pct,
    server_cpu_ms_per_resume: cpu == null || !ok ? null : round((cpu / ok) * 1000, 3),
    server_rss_mib: { start: mib(rssStart), logged_in: mib(rssBeforeDrop), detached: mib(rssDetached), resumed: mib(rssResumed) },
    generator_cpu_pct: m.generator_cpu_pct,
    generator_cpu_sys_pct: round((gen.system / 1e6 / m.wall) * 100, 1), // kernel (socket) share of it
    other_cpu_pct: m.other_cpu_pct,
    measured_s: round(m.wall, 3),
    sessions_dropped: dropped,
    sample_retransmitted: sample,
  };
  const summary =
    `resume ${target.name} N=${N} K=${K}: ${result.resumes_per_s} resumes/s, p50 ${result.resume_latency_ms.p50} ms, ` +
    `p99 ${result.resume_latency_ms.p99} ms, ${ok} resumed, ${failed} failed; lost ${result.lost}, duplicates ${duplicates}, ` +
    `bounced ${gapBounced}; server ${result.server_cpu_s ?? '?'} CPU s (${result.server_cpu_ms_per_resume ?? '?'} ms/resume), ` +
    `RSS ${result.server_rss_mib.resumed ?? '?'} MiB; generator ${result.generator_cpu_pct}% CPU`;
  return { result, summary };
}
