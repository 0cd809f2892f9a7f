// pep: Personal Eventing (XEP-0163) fan-out. N users, each with K mutual
// ('both') contacts on a ring (the `presence` rosters), log in and send initial
// presence with XEP-0115 entity caps; then every user publishes an avatar
// metadata item (XEP-0084) and an OMEMO device list (XEP-0384, with
// publish-options) to its own PEP service, and the server notifies every
// contact resource (and the publisher's own) whose caps say `<node>+notify`.
//
// Two caps are in use: most clients advertise +notify for both nodes (and the
// legacy OMEMO device list); every `controlEvery`-th user advertises none, so
// its resource must get no notification at all (`to_control`, must be 0). Each
// client computes its caps `ver` per XEP-0115 §5.1 and answers the server's
// disco#info queries for `node#ver`; before publishing the run waits until the
// server has asked about both vers and the stream has gone quiet.
//
// Publishing happens in `rounds` rounds (2): in round 1 every user's two nodes
// do not exist yet and are created by the publish (auto-create); round 2 and
// later publish new items to the existing nodes, the steady state of a user
// who has published before. Each round is measured on its own, first publish
// sent -> last notification received: publishes acked/s, notifications
// received/s, received vs expected, server CPU per notification, publish ->
// notification latency (publisher and receivers share this process: the send
// time is kept per (publisher, node), no stamp in the payload). The headline
// fields are the last round's. Last items sent when a contact comes online
// are not part of it: nothing is published before everyone is online.
import { createHash } from 'node:crypto';
import { attr, xmlEscape } from '../lib/xmpp-lite.mjs';
import { countError, cpuMeter, pool, quantiles, round, sleep } from '../lib/proc.mjs';
import { ringContacts } from '../lib/uzzap-seed.mjs';

export const needsPep = true;
// the logouts at the end (N unavailable presences x K contacts) are not measured and the
// temp dir is thrown away: SIGKILL 5 s after SIGTERM, as for muc
export const stopGraceMs = 5000;
export const defaults = { n: 2000, contacts: 50, concurrency: 100, controlEvery: 10, rounds: 2, wait: 30 };
export const quick = { n: 200, wait: 15 };
export const usersNeeded = (o) => o.n;
export const contactsNeeded = (o) => o.contacts;

export function resolve(p) {
  for (const k of ['n', 'contacts', 'concurrency', 'controlEvery', 'rounds', 'wait'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`pep: ${k} must be a positive integer (got ${p[k]})`);
  if (p.contacts >= p.n) throw new Error(`pep: --contacts (${p.contacts}) must be below --n (${p.n})`);
  if (p.contacts % 2) throw new Error(`pep: --contacts must be even (a ring: K/2 on each side), got ${p.contacts}`);
  return p;
}

const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
const NODE_AVATAR = 'urn:xmpp:avatar:metadata';
const NODE_DEVICES = 'urn:xmpp:omemo:2:devices';
const NODES = [NODE_AVATAR, NODE_DEVICES];
const CAPS_NODE = 'https://uzzap.bench/pep';
const IDENTITY = { category: 'client', type: 'pc', name: 'uzzap-bench' };
const FEATURES_NOTIFY = [
  NS_DISCO_INFO,
  NS_CAPS,
  `${NODE_AVATAR}+notify`,
  'eu.siacs.conversations.axolotl.devicelist+notify',
  `${NODE_DEVICES}+notify`,
];
const FEATURES_CONTROL = [NS_DISCO_INFO, NS_CAPS];

/** publish-options tried for the device list, in order; the next one after the server refuses one */
const PUBLISH_OPTIONS = [
  { name: 'access_model=open,max_items=max', fields: { 'pubsub#access_model': 'open', 'pubsub#max_items': 'max' } },
  { name: 'access_model=open', fields: { 'pubsub#access_model': 'open' } },
  { name: 'none', fields: null },
];
/** error conditions taken as transient (retried after a pause, same publish-options): ejabberd
 *  23.01 answers item-not-found when concurrent node creations abort each other in Mnesia */
const RETRY_CONDITIONS = /^(item-not-found|internal-server-error|remote-server-timeout)\b/;
const PUBLISH_RETRIES = 20;
const RETRY_PAUSE_MS = 50; // x attempt (at most 1 s), plus up to as much again at random

const IQ_TIMEOUT_MS = 15000; // one publish
const CAPS_WAIT_MS = 10000; // after the last login: how long to wait for the server's disco#info queries
const SETTLE_MAX_MS = 60000; // bound on waiting for the login presence flood to end
const QUIET_MS = 1000; // "quiet": nothing received for this long
const DRAIN_QUIET_MS = 2000; // after the last ack: no notification for this long ends the drain early
const TAIL_MAX_MS = 5000; // after a round: late stanzas (duplicates...) still counted, until QUIET_MS of quiet
const PUBLISH_PHASE_MAX_MS = 300000; // no publish of a round starts after this
const ABORT_AFTER_FAILURES = 50; // failed publishes with none accepted: the server has no PEP
const ABORT_AFTER_TIMEOUTS = 20; // unanswered publishes: the server does not answer them

/** XEP-0115 §5.1 verification string and its SHA-1, base64 (no extended forms). */
export function capsVer(identity, features) {
  const sorted = [...new Set(features)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const s = `${identity.category}/${identity.type}//${identity.name}<` + sorted.map((f) => `${f}<`).join('');
  return createHash('sha1').update(s, 'utf8').digest('base64');
}

const CAPS = {
  notify: { ver: capsVer(IDENTITY, FEATURES_NOTIFY), features: FEATURES_NOTIFY },
  control: { ver: capsVer(IDENTITY, FEATURES_CONTROL), features: FEATURES_CONTROL },
};

function discoInfo(caps, node) {
  return (
    `<query xmlns='${NS_DISCO_INFO}'${node ? ` node='${xmlEscape(node)}'` : ''}>` +
    `<identity category='${IDENTITY.category}' type='${IDENTITY.type}' name='${IDENTITY.name}'/>` +
    caps.features.map((f) => `<feature var='${f}'/>`).join('') +
    '</query>'
  );
}

const unescape = (s) => s.replace(/&(apos|quot|lt|gt|amp);/g, (_, e) => ({ apos: "'", quot: '"', lt: '<', gt: '>', amp: '&' })[e]);

/** "cond" or "cond+app-cond" (+ ": text") of an error reply */
function errorCondition(s) {
  const m = /<error[^>]*>([\s\S]*?)<\/error>/.exec(s);
  if (!m) return /\/>$/.test(s) ? 'error without <error/>' : s.slice(0, 120);
  const names = [...m[1].matchAll(/<([\w-]+)[\s/>]/g)].map((x) => x[1]).filter((n) => n !== 'text');
  const text = /<text[^>]*>([^<]*)<\/text>/.exec(m[1]);
  return names.join('+') + (text ? `: ${unescape(text[1]).slice(0, 100)}` : '');
}

function publishXml(id, node, itemId, payload, options) {
  let opts = '';
  if (options) {
    opts =
      `<publish-options><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE' type='hidden'><value>${NS_PUBSUB}#publish-options</value></field>` +
      Object.entries(options)
        .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
        .join('') +
      `</x></publish-options>`;
  }
  return (
    `<iq type='set' id='${id}'><pubsub xmlns='${NS_PUBSUB}'><publish node='${node}'>` +
    `<item id='${itemId}'>${payload}</item></publish>${opts}</pubsub></iq>`
  );
}

class IqTimeout extends Error {}

function newRoundStats(r, N) {
  return {
    round: r,
    notif: { total: 0, good: 0, self: 0, contact: 0, duplicate: 0, unexpected: 0, unknownFrom: 0, unknownNode: 0 },
    control: { total: 0, self: 0, contact: 0, other: 0 },
    seen: new Set(), // `${recipient} ${publisher} ${nodeIdx}`
    sentAt: new Float64Array(N * 2).fill(NaN), // per (publisher, node): when the accepted publish was sent
    latencies: [],
    firstNotifAt: null,
    lastNotifAt: null,
    controlSamples: [],
    duplicateSamples: [],
  };
}

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const N = o.n;
  const K = o.contacts;
  const isControl = (i) => (i + 1) % o.controlEvery === 0; // i 0-based; u10, u20, ... are the control users
  const runTag = `${process.pid}-${Date.now()}`;

  // ---- state updated by the receive path
  const conns = new Array(N).fill(null);
  const bareToIdx = new Map();
  const capsQueries = { notify: 0, control: 0, other: 0 };
  const capsQueryFrom = new Set(); // who asked (servers ask from the domain, or from a user's bare JID)
  let lastStanzaAt = performance.now();
  let presences = 0;
  let iqAnsweredError = 0;
  let sessionsDropped = 0;
  let closing = false; // set when the run closes the sessions itself
  let cur = null; // the round being counted (null: before the first publish)
  let eventsBeforePublish = 0;
  let eventsOther = 0; // pubsub#event messages without <items node=...> (purge, delete, configuration...)

  const contactSets = Array.from({ length: N }, (_, i) => new Set(ringContacts(i + 1, N, K).map((j) => j - 1)));

  function onEvent(r, s) {
    const R = cur;
    if (!R) {
      eventsBeforePublish++;
      return;
    }
    const m = /<items\s[^>]*?node=(['"])([^'"]+)\1/.exec(s);
    if (!m) {
      eventsOther++;
      return;
    }
    const now = performance.now();
    const n = R.notif;
    n.total++;
    R.firstNotifAt ??= now;
    R.lastNotifAt = now;
    const from = (attr(s, 'from') ?? '').split('/')[0];
    const p = bareToIdx.get(from);
    const ni = NODES.indexOf(m[2]);
    if (isControl(r)) {
      R.control.total++;
      if (p === r) R.control.self++;
      else if (p !== undefined && contactSets[r].has(p)) R.control.contact++;
      else R.control.other++;
      if (R.controlSamples.length < 2) R.controlSamples.push(s.slice(0, 300));
      return;
    }
    if (p === undefined) {
      n.unknownFrom++;
      return;
    }
    if (ni < 0) {
      n.unknownNode++;
      return;
    }
    const key = `${r} ${p} ${ni}`;
    if (R.seen.has(key)) {
      n.duplicate++;
      if (R.duplicateSamples.length < 2) R.duplicateSamples.push(s.slice(0, 300));
      return;
    }
    R.seen.add(key);
    if (p === r) n.self++;
    else if (contactSets[r].has(p)) n.contact++;
    else {
      n.unexpected++;
      return;
    }
    n.good++;
    const t = R.sentAt[p * 2 + ni];
    if (!Number.isNaN(t)) R.latencies.push(now - t);
  }

  function handler(i, c) {
    const pending = (c.pending = new Map());
    return (s) => {
      lastStanzaAt = performance.now();
      const k = s.charCodeAt(1);
      if (k === 109 /* m */) {
        if (s.startsWith('<message') && s.includes(NS_EVENT)) onEvent(i, s);
        return;
      }
      if (k === 112 /* p */) {
        presences++;
        return;
      }
      if (k !== 105 /* i */ || !s.startsWith('<iq')) return;
      const type = attr(s, 'type');
      const id = attr(s, 'id') ?? '';
      if (type === 'result' || type === 'error') {
        const w = pending.get(id);
        if (w) {
          pending.delete(id);
          w(s);
        }
        return;
      }
      const from = attr(s, 'from');
      const to = from ? ` to='${xmlEscape(unescape(from))}'` : '';
      const rid = xmlEscape(unescape(id));
      if (type === 'get' && s.includes(NS_DISCO_INFO)) {
        const node = /<query\s[^>]*?node=(['"])([^'"]*)\1/.exec(s)?.[2];
        capsQueryFrom.add(from ?? '');
        let caps = isControl(i) ? CAPS.control : CAPS.notify;
        if (node) {
          const kind =
            node === `${CAPS_NODE}#${CAPS.notify.ver}` ? 'notify' : node === `${CAPS_NODE}#${CAPS.control.ver}` ? 'control' : null;
          if (!kind) {
            capsQueries.other++;
            c.send(
              `<iq type='error' id='${rid}'${to}><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
            );
            return;
          }
          capsQueries[kind]++;
          caps = CAPS[kind];
        } else capsQueries.other++;
        c.send(`<iq type='result' id='${rid}'${to}>${discoInfo(caps, node && unescape(node))}</iq>`);
        return;
      }
      if (type === 'get' || type === 'set') {
        iqAnsweredError++;
        c.send(
          `<iq type='error' id='${rid}'${to}><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
        );
      }
    };
  }

  let iqSeq = 0;
  /** send an IQ and resolve with the reply (result or error); rejects on timeout or a closed stream */
  function iq(c, build) {
    const id = `pep${(++iqSeq).toString(36)}`;
    return new Promise((resolve, reject) => {
      if (c.closed) {
        reject(new Error('session closed'));
        return;
      }
      const timer = setTimeout(() => {
        c.pending.delete(id);
        reject(new IqTimeout(`no reply to a publish within ${IQ_TIMEOUT_MS} ms`));
      }, IQ_TIMEOUT_MS);
      c.pending.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      c.send(build(id));
    });
  }

  // ---- 1. log in: bind, roster get, then initial presence with caps
  const loginErrors = {};
  const loginMeter = cpuMeter(target.pid);
  const tLogin0 = performance.now();
  await pool(N, o.concurrency, async (i) => {
    const c = newConn(i + 1);
    try {
      await c.login({ presence: false, roster: true, resource: 'pep' });
      const caps = isControl(i) ? CAPS.control : CAPS.notify;
      c.onStanza = handler(i, c);
      c.onClose = () => {
        if (!closing) sessionsDropped++;
      };
      bareToIdx.set(c.jid.split('/')[0], i);
      conns[i] = c;
      c.send(`<presence><c xmlns='${NS_CAPS}' hash='sha-1' node='${CAPS_NODE}' ver='${caps.ver}'/></presence>`);
    } catch (e) {
      countError(loginErrors, e);
    }
  });
  const loginS = (performance.now() - tLogin0) / 1000;
  const online = conns.map((c) => c !== null);
  const loggedIn = online.filter(Boolean).length;
  const closeAll = async () => {
    closing = true;
    for (const c of conns) c?.close();
    await sleep(300);
  };
  if (!loggedIn) {
    await closeAll();
    throw new Error(`pep on ${target.name}: no user could log in (${JSON.stringify(loginErrors)})`);
  }

  // ---- 2. settle: the server asked about both caps and the presence flood is over
  const tSettle0 = performance.now();
  const anyControl = online.some((x, i) => x && isControl(i));
  let capsResolved = false;
  let settleNote = null;
  for (;;) {
    const t = performance.now();
    capsResolved = capsQueries.notify > 0 && (!anyControl || capsQueries.control > 0);
    const quiet = t - lastStanzaAt >= QUIET_MS;
    if (quiet && (capsResolved || t - tSettle0 >= CAPS_WAIT_MS)) break;
    if (t - tSettle0 >= SETTLE_MAX_MS) {
      settleNote = `stanzas still arriving ${SETTLE_MAX_MS / 1000} s after the last login`;
      break;
    }
    await sleep(50);
  }
  if (!capsResolved)
    settleNote = `${settleNote ? settleNote + '; ' : ''}the server did not ask about every caps ver within ${CAPS_WAIT_MS / 1000} s (disco#info queries: ${JSON.stringify(capsQueries)})`;
  const loginCpu = loginMeter();
  const settleS = (performance.now() - tSettle0) / 1000;
  if (settleNote) console.error(`[bench] pep: ${settleNote}`);
  console.error(
    `[bench] pep: ${loggedIn}/${N} online in ${round(loginS, 2)} s, settled in ${round(settleS, 2)} s; caps queries ${JSON.stringify(capsQueries)}`,
  );

  // fan-out per publisher: its contacts' +notify resources online, and its own if +notify
  const fanout = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    if (!online[i]) continue;
    let f = !isControl(i) ? 1 : 0;
    for (const j of contactSets[i]) if (online[j] && !isControl(j)) f++;
    fanout[i] = f;
  }
  const users = [];
  for (let i = 0; i < N; i++) if (online[i]) users.push(i);
  const tasks = users.length * 2;

  // ---- 3. publish rounds: 2 items per user, `concurrency` publishes in flight
  let variant = 0; // index into PUBLISH_OPTIONS for the device list (kept across rounds)
  const optionsRejected = {}; // publish-options name -> the server's error condition
  const rounds = [];
  let abortReason = null;

  for (let r = 1; r <= o.rounds && !abortReason; r++) {
    const R = newRoundStats(r, N);
    const st = { acked: 0, sent: 0, failed: 0, timeouts: 0, retries: 0, expected: 0, lastAckAt: null, rtts: [], errors: {}, retried: {} };
    const ackedBy = { [NODE_AVATAR]: 0, [NODE_DEVICES]: 0 };
    const meter = cpuMeter(target.pid);
    cur = R;
    const tPub0 = performance.now();
    await pool(tasks, o.concurrency, async (j) => {
      if (abortReason) return;
      if (performance.now() - tPub0 > PUBLISH_PHASE_MAX_MS) {
        abortReason ??= `round ${r} longer than ${PUBLISH_PHASE_MAX_MS / 1000} s`;
        return;
      }
      const p = users[j >> 1];
      const ni = j & 1;
      const c = conns[p];
      const node = NODES[ni];
      let build;
      if (ni === 0) {
        const sha = createHash('sha1').update(`avatar ${runTag} ${p} ${r}`).digest('hex');
        const payload = `<metadata xmlns='${NODE_AVATAR}'><info bytes='1234' id='${sha}' height='64' width='64' type='image/png'/></metadata>`;
        build = () => (id) => publishXml(id, node, sha, payload, null);
      } else {
        const payload = `<devices xmlns='urn:xmpp:omemo:2'><device id='${r * 1000000 + p}'/></devices>`;
        build = (v) => (id) => publishXml(id, node, 'current', payload, PUBLISH_OPTIONS[v].fields);
      }
      for (let attempt = 0; ;) {
        const v = variant;
        const t = performance.now();
        R.sentAt[p * 2 + ni] = t;
        st.sent++;
        let reply;
        try {
          reply = await iq(c, build(v));
        } catch (e) {
          st.failed++;
          if (e instanceof IqTimeout && ++st.timeouts >= ABORT_AFTER_TIMEOUTS)
            abortReason ??= `${st.timeouts} publishes got no reply within ${IQ_TIMEOUT_MS / 1000} s`;
          countError(st.errors, e);
          return;
        }
        if (attr(reply, 'type') === 'result') {
          const now = performance.now();
          st.rtts.push(now - t);
          st.acked++;
          ackedBy[node]++;
          st.lastAckAt = now;
          st.expected += fanout[p];
          return;
        }
        const cond = errorCondition(reply);
        if (RETRY_CONDITIONS.test(cond) && attempt < PUBLISH_RETRIES) {
          attempt++;
          st.retries++;
          st.retried[cond] = (st.retried[cond] || 0) + 1;
          await sleep(Math.min(1000, RETRY_PAUSE_MS * attempt) * (1 + Math.random()));
          continue;
        }
        if (ni === 1 && v < PUBLISH_OPTIONS.length - 1 && !RETRY_CONDITIONS.test(cond)) {
          // the server refused these publish-options (or the publish altogether): try the next, simpler set
          optionsRejected[PUBLISH_OPTIONS[v].name] ??= cond;
          if (variant === v) {
            variant = v + 1;
            console.error(
              `[bench] pep: ${target.name} refused publish-options ${PUBLISH_OPTIONS[v].name} (${cond}); now ${PUBLISH_OPTIONS[variant].name}`,
            );
          }
          continue;
        }
        st.failed++;
        st.errors[`${node}: ${cond}`] = (st.errors[`${node}: ${cond}`] || 0) + 1;
        if (st.acked === 0 && st.failed >= Math.min(ABORT_AFTER_FAILURES, tasks))
          abortReason ??= `the first ${st.failed} publishes were all refused`;
        return;
      }
    });
    const tPubEnd = performance.now();

    // drain: until every expected notification is in, or none for DRAIN_QUIET_MS, or --wait
    if (!abortReason) {
      for (;;) {
        const t = performance.now();
        if (R.notif.good >= st.expected) break;
        if (t - Math.max(R.lastNotifAt ?? 0, st.lastAckAt ?? 0, tPubEnd) >= DRAIN_QUIET_MS) break;
        if (t - tPubEnd >= o.wait * 1000) break;
        await sleep(10);
      }
    }
    const m = meter();
    const received = R.notif.total; // at the end of the measured interval
    const good = R.notif.good;
    const lastNotifAt = R.lastNotifAt;
    // tail (not measured): late duplicates or notifications to control resources still count against correctness
    const tTail0 = performance.now();
    while (performance.now() - lastStanzaAt < QUIET_MS && performance.now() - tTail0 < TAIL_MAX_MS) await sleep(20);
    cur = null;

    const pubSpanS = ((st.lastAckAt ?? tPubEnd) - tPub0) / 1000;
    const notifSpanS = ((lastNotifAt ?? tPub0) - tPub0) / 1000;
    R.latencies.sort((a, b) => a - b);
    st.rtts.sort((a, b) => a - b);
    const n = R.notif;
    const res = {
      round: r,
      nodes: r === 1 ? 'new' : 'existing',
      publish_options: PUBLISH_OPTIONS[variant].name,
      publishes: tasks,
      publishes_sent: st.sent,
      publishes_acked: st.acked,
      publishes_acked_by_node: ackedBy,
      publishes_failed: st.failed,
      publish_errors: st.errors,
      publish_retries: st.retries,
      publish_retried_on: st.retried,
      publish_s: round(pubSpanS, 3),
      publishes_per_s: pubSpanS > 0 ? round(st.acked / pubSpanS, 0) : null,
      publish_rtt_ms: st.rtts.length ? quantiles(st.rtts, 1) : null,
      notifications_expected: st.expected,
      notifications_received: received,
      notifications_delivered: good,
      notifications_missing: st.expected - n.good,
      notifications_to_contacts: n.contact,
      notifications_to_self: n.self,
      to_control: R.control.total,
      to_control_by_publisher: { self: R.control.self, contact: R.control.contact, other: R.control.other },
      duplicates: n.duplicate,
      unexpected: { not_a_contact: n.unexpected, unknown_from: n.unknownFrom, unknown_node: n.unknownNode },
      received_after_measure: n.total - received,
      notification_s: round(notifSpanS, 3),
      notifications_per_s: notifSpanS > 0 ? round(received / notifSpanS, 0) : null,
      latency_ms: R.latencies.length ? quantiles(R.latencies, 1) : null,
      measured_s: round(m.wall, 3),
      server_cpu_s: round(m.server_cpu_s, 3),
      server_cpu_pct: m.server_cpu_pct,
      // per notification delivered: distinct expected (recipient, publisher, node) notifications
      server_cpu_us_per_notification: good && m.server_cpu_s != null ? round((m.server_cpu_s * 1e6) / good, 1) : null,
      // per notification received, duplicates and notifications to control resources included
      server_cpu_us_per_received: received && m.server_cpu_s != null ? round((m.server_cpu_s * 1e6) / received, 1) : null,
      server_cpu_us_per_publish: st.acked && m.server_cpu_s != null ? round((m.server_cpu_s * 1e6) / st.acked, 1) : null,
      generator_cpu_pct: m.generator_cpu_pct,
      other_cpu_pct: m.other_cpu_pct,
      ...(R.controlSamples.length ? { control_samples: R.controlSamples } : {}),
      ...(R.duplicateSamples.length ? { duplicate_samples: R.duplicateSamples } : {}),
    };
    rounds.push(res);
    if (!st.acked) break; // nothing to measure: the verdict below says why
    console.error(
      `[bench] pep round ${r} (${res.nodes} nodes): ${st.acked}/${tasks} acked (${res.publishes_per_s}/s, ${st.retries} retries), ` +
        `${good}/${st.expected} notifications (${received} received, ${res.notifications_per_s}/s), to control ${res.to_control}, dup ${n.duplicate}; ` +
        `${res.server_cpu_us_per_notification} µs CPU/notification (${res.server_cpu_pct}%), latency p50 ${res.latency_ms?.p50} ms p99 ${res.latency_ms?.p99} ms` +
        (res.other_cpu_pct > 10 ? ` [other processes ${res.other_cpu_pct}% of a core]` : ''),
    );
  }
  await closeAll();

  const last = rounds[rounds.length - 1];
  const sum = (k) => rounds.reduce((a, x) => a + (x[k] ?? 0), 0);
  // headline: the last round (nodes exist: the steady state); every round in `rounds`
  const headline = {};
  for (const k of [
    'publish_options',
    'publishes_per_s',
    'publishes_acked',
    'notifications_expected',
    'notifications_received',
    'notifications_delivered',
    'notifications_missing',
    'to_control',
    'duplicates',
    'notifications_per_s',
    'latency_ms',
    'server_cpu_s',
    'server_cpu_pct',
    'server_cpu_us_per_notification',
    'server_cpu_us_per_received',
    'generator_cpu_pct',
    'other_cpu_pct',
  ])
    headline[k] = last?.[k] ?? null;
  const result = {
    users: N,
    contacts: K,
    logins_ok: loggedIn,
    logins_failed: N - loggedIn,
    login_errors: loginErrors,
    control_users: users.filter(isControl).length,
    caps: {
      node: CAPS_NODE,
      ver_notify: CAPS.notify.ver,
      ver_control: CAPS.control.ver,
      disco_queries: capsQueries,
      disco_query_senders: capsQueryFrom.size,
      resolved_before_publish: capsResolved,
    },
    login_s: round(loginS, 2),
    settle_s: round(settleS, 2),
    login_server_cpu_s: round(loginCpu.server_cpu_s, 2),
    presences_received: presences,
    events_before_publish: eventsBeforePublish,
    other_events: eventsOther,
    publish_options_rejected: optionsRejected,
    headline_round: last?.round ?? null,
    ...headline,
    to_control_all_rounds: sum('to_control'),
    rounds,
    iq_answered_with_error: iqAnsweredError,
    sessions_dropped: sessionsDropped,
    ...(settleNote ? { settle_note: settleNote } : {}),
  };

  // ---- verdict: a run that measured nothing fails (the JSON line is still printed); wrong deliveries are problems
  const problems = [];
  const ackedAll = sum('publishes_acked');
  const receivedAll = sum('notifications_received');
  if (abortReason) problems.push(`publishing aborted: ${abortReason} (${JSON.stringify(last?.publish_errors ?? {})})`);
  else if (!ackedAll) problems.push(`no publish was accepted (${JSON.stringify(last?.publish_errors ?? {})})`);
  if (ackedAll && !receivedAll) problems.push(`${ackedAll} publishes accepted but no notification arrived`);
  if (result.to_control_all_rounds) problems.push(`${result.to_control_all_rounds} notifications went to resources without +notify`);
  const missingAll = sum('notifications_missing');
  if (ackedAll && receivedAll && missingAll > 0) problems.push(`${missingAll} expected notifications missing`);
  if (sum('duplicates')) problems.push(`${sum('duplicates')} duplicate notifications`);
  if (!ackedAll && Object.keys(optionsRejected).length)
    result.publish_options_note = 'inconclusive: the server refused every publish, with publish-options or without';
  if (abortReason || !ackedAll || !receivedAll) {
    result.failed = `pep on ${target.name}: ${problems.join('; ')}. Does the server do PEP (XEP-0163) with entity caps (XEP-0115)?`;
  } else if (problems.length) result.problems = problems;

  const summary = result.failed
    ? `pep ${target.name}: ${loggedIn}/${N} users online; ${ackedAll} publishes accepted, ${receivedAll} notifications received`
    : `pep ${target.name}: ${loggedIn}/${N} users, ${K} contacts, ${result.control_users} without +notify; round ${result.headline_round}: ` +
      `${result.publishes_acked}/${tasks} publishes acked (${result.publishes_per_s}/s, options ${result.publish_options}); ` +
      `${result.notifications_delivered}/${result.notifications_expected} notifications (${result.notifications_received} received, ${result.notifications_per_s}/s), ` +
      `to control ${result.to_control}, dup ${result.duplicates}; server ${result.server_cpu_us_per_notification} µs CPU/notification (${result.server_cpu_pct}%), ` +
      `latency p50 ${result.latency_ms?.p50} ms p99 ${result.latency_ms?.p99} ms` +
      (problems.length ? `\n[bench] problems: ${problems.join('; ')}` : '');
  return { result, summary, failed: result.failed };
}
