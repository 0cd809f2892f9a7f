// reconnect: time, round trips and CPU from TCP connect to a resumed session, over a
// link with 100 ms more round-trip time: SASL1 SCRAM + stream restart + XEP-0198
// <resume/>, against SASL2 (XEP-0388) + FAST (XEP-0484, HT-SHA-256-NONE) with the
// resumption inline in <authenticate/> (XEP-0198 §"SASL2 and Bind 2"), waiting for the
// stream features or not (pipelined). Uzzap only.
//
// All connections use direct TLS (XEP-0368) on the server's c2s TLS port: SASL2 is
// only offered after TLS. A delaying proxy (bench/lib/delay-proxy.mjs, a child
// process) sits in front of it on loopback and delays every chunk by `delay` ms
// (50) each way, in order.
//
// Setup (direct, no proxy): each of N users logs in once with SASL2 PLAIN, a
// <user-agent id=UUID/>, Bind 2 (<tag>bench</tag>, <enable xmlns='urn:xmpp:sm:3'
// resume='true'/>) and <request-token mechanism='HT-SHA-256-NONE'/>; the SM id and the
// token are kept, and the socket is destroyed (no </stream:stream>): the session is
// detached and resumable. Then `warmup` unmeasured rounds and `rounds` measured ones;
// in each round every path reconnects all N sessions (at most `concurrency` in flight)
// and each reconnect ends by destroying its socket again, so the next path resumes
// the same sessions. Between two paths the run waits until the server has closed
// every socket on its TLS port (/proc/net/tcp). The order of the paths rotates from
// round to round.
//
// Paths:
//   sasl1-scram-resume           header / features, SASL1 SCRAM-SHA-1 (PBKDF2 on the client
//                                every time: no cached salted password), restart / features,
//                                <resume previd h/>
//   sasl2-fast-resume            header / features, <authenticate HT-SHA-256-NONE> with
//                                <user-agent/>, <resume/> and <fast/>
//   sasl2-fast-resume-pipelined  the same <authenticate/> written with the stream header right
//                                after the TLS handshake (features known from before)
//   sasl2-scram-resume           header / features, SASL2 SCRAM-SHA-1 (PBKDF2 every time) with
//                                <resume/> inline: the mechanism's cost apart from the round trips
import tls from 'node:tls';
import { createHmac, randomUUID } from 'node:crypto';
import { StanzaSplitter, attr, xmlEscape } from '../lib/xmpp-lite.mjs';
import { ScramClient } from '../lib/scram.mjs';
import { startDelayProxy } from '../lib/delay-proxy.mjs';
import {
  cpuSeconds,
  cpuSecondsSched,
  freePort,
  otherCpuSeconds,
  percentile,
  pool,
  processTree,
  round,
  serverSocketsOpen,
  sleep,
  waitForPort,
} from '../lib/proc.mjs';

export const targets = ['uzzap'];
export const needsSm = true; // UZZAP_SM_RESUME_TIMEOUT=300 (the default, stated)
export const defaults = { n: 50, rounds: 5, concurrency: 10, delay: 50, warmup: 1, tlsResume: 0 };
export const quick = { n: 10 };
export const usersNeeded = (o) => o.n;

export function resolve(p) {
  for (const k of ['n', 'rounds', 'concurrency'])
    if (!(Number.isInteger(p[k]) && p[k] > 0)) throw new Error(`reconnect: ${k} must be a positive integer (got ${p[k]})`);
  if (!(Number.isInteger(p.warmup) && p.warmup >= 0))
    throw new Error(`reconnect: warmup (rounds) must be an integer >= 0 (got ${p.warmup})`);
  if (!(p.delay >= 0)) throw new Error(`reconnect: delay must be >= 0 ms (got ${p.delay})`);
  return p;
}

/** the server's direct TLS c2s port (XEP-0368): a free port, unless --uzzap-env sets one */
export async function prepare({ uzzapEnv }) {
  if (!Number(uzzapEnv.UZZAP_C2S_TLS_PORT)) uzzapEnv.UZZAP_C2S_TLS_PORT = String(await freePort());
  return { tlsPort: Number(uzzapEnv.UZZAP_C2S_TLS_PORT) };
}

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_SASL2 = 'urn:xmpp:sasl:2';
const NS_SM = 'urn:xmpp:sm:3';
const NS_FAST = 'urn:xmpp:fast:0';
const FAST_MECH = 'HT-SHA-256-NONE';
const HOST = '127.0.0.1';
const TIMEOUT_MS = 20000; // bound on one login or reconnect
const NOTICE_MAX_MS = 15000; // bound on waiting for the server to close the dropped sockets
const SETTLE_MS = 100; // then this much more before the next path
const PATHS = ['sasl1-scram-resume', 'sasl2-fast-resume', 'sasl2-fast-resume-pipelined', 'sasl2-scram-resume', 'baseline-tls-header'];
/** no authentication, no resumption: what every path pays (TCP, TLS, a stream header, the drop), subtracted below */
const BASELINE = 'baseline-tls-header';

const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s.replace(/\s+/g, ''), 'base64').toString('utf8');
const inner = (s) => (s.endsWith('/>') ? '' : s.slice(s.indexOf('>') + 1, s.lastIndexOf('<')));
const condition = (s) => /^<[^>]*>\s*<([\w-]+)/.exec(s)?.[1] ?? s.slice(0, 120);

/** <failure/> (SASL or SASL2) or <failed/> (XEP-0198): counted apart from other errors */
class Refused extends Error {
  constructor(kind, stanza) {
    super(`${kind}: ${condition(stanza)}`);
    this.kind = kind; // 'sasl_failure' | 'sm_failed'
  }
}

/**
 * One direct-TLS c2s connection, raw: stanzas cut by the shared splitter, read in
 * order with next(). `waits` counts the client's round trips after the TLS handshake:
 * each time it has to wait for the server after having sent something.
 */
class Conn {
  constructor(port, sess) {
    this.port = port;
    this.sess = sess;
    this.h = sess.h; // XEP-0198 inbound count, carried over
    this.counting = false;
    this.queue = [];
    this.waiter = null;
    this.closed = false;
    this.error = null;
    this.waits = 0;
    this.sent = false; // something sent since the last wait
    this.split = new StanzaSplitter({
      stanza: (s) => this._stanza(s),
      header: () => {},
      end: () => this._closed(new Error('stream closed by server')),
    });
  }

  open() {
    return new Promise((resolve, reject) => {
      const s = tls.connect({
        host: HOST,
        port: this.port,
        servername: 'localhost',
        rejectUnauthorized: false,
        ALPNProtocols: ['xmpp-client'],
        // --tls-resume 1: as a phone does, the TLS session of the last connection is resumed (TLS 1.3 PSK)
        ...(TLS_RESUME && this.sess.tlsSession ? { session: this.sess.tlsSession } : {}),
      });
      if (TLS_RESUME) s.on('session', (t) => (this.sess.tlsSession = t));
      this.sock = s;
      s.setNoDelay(true);
      s.setEncoding('utf8');
      s.once('secureConnect', () => {
        this.tlsVersion = s.getProtocol();
        this.tlsReused = s.isSessionReused();
        resolve();
      });
      s.on('data', (d) => this.split.feed(d));
      s.on('error', (e) => {
        this.error = e;
        reject(e);
        this._closed(e);
      });
      s.on('close', () => {
        reject(new Error('connection closed during the TLS handshake'));
        this._closed(new Error('connection closed'));
      });
    });
  }

  send(str) {
    this.sent = true;
    this.sock.write(str);
  }

  /** the stream header (a new stream, or the restart after SASL1), with `then` in the same write */
  header(then = '') {
    this.split.depth = 0;
    const { user, domain } = this.sess;
    this.send(
      `<?xml version='1.0'?><stream:stream to='${domain}' from='${user}@${domain}' xmlns='jabber:client' ` +
        `xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>${then}`,
    );
  }

  destroy() {
    this.sock?.destroy();
    this._closed(null);
  }

  _closed(err) {
    if (this.closed) return;
    this.closed = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(err || new Error('closed'));
    }
  }

  _stanza(s) {
    if (this.counting) {
      const k = s.charCodeAt(1);
      if (k === 109 ? s.startsWith('<message') : k === 112 ? s.startsWith('<presence') : k === 105 && s.startsWith('<iq'))
        this.h = (this.h + 1) >>> 0;
    } else if (
      s.startsWith('<resumed') ||
      s.startsWith('<enabled') ||
      (s.startsWith('<success') && /<(resumed|enabled) xmlns='urn:xmpp:sm:3'/.test(s))
    )
      this.counting = true; // what follows it counts towards 'h'
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(s);
    } else this.queue.push(s);
  }

  next() {
    const check = (s) => {
      if (s.startsWith('<stream:error')) throw new Error(`stream error: ${s.slice(0, 200)}`);
      return s;
    };
    if (this.queue.length) return Promise.resolve(check(this.queue.shift()));
    if (this.closed) return Promise.reject(this.error || new Error('closed'));
    if (this.sent) {
      this.waits++;
      this.sent = false;
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject })).then(check);
  }

  async features() {
    for (;;) {
      const s = await this.next();
      if (s.startsWith('<stream:features')) return s;
    }
  }
}

const userAgent = (sess) => `<user-agent id='${sess.ua}'><software>uzzap-bench</software></user-agent>`;
const inlineResume = (sess) => `<resume xmlns='${NS_SM}' previd='${xmlEscape(sess.smId)}' h='${sess.h}'/>`;

/** a SASL2 <success/>: checks the mechanism's final data, keeps a rotated token, wants <resumed/> */
function sasl2Resumed(r, sess, checkData) {
  if (r.startsWith('<failure')) throw new Refused('sasl_failure', r);
  if (!r.startsWith('<success')) throw new Error(`expected <success/>, got ${r.slice(0, 200)}`);
  const data = /<additional-data>([^<]*)<\/additional-data>/.exec(r);
  checkData(data ? data[1] : null);
  const tok = /<token xmlns='urn:xmpp:fast:0'[^>]*\/>/.exec(r);
  if (tok) {
    sess.token = attr(tok[0], 'token');
    sess.tokenExpiry = attr(tok[0], 'expiry');
    sess.rotations++;
  }
  const failed = /<failed xmlns='urn:xmpp:sm:3'[\s\S]*?(<\/failed>|\/>)/.exec(r);
  if (failed) throw new Refused('sm_failed', failed[0]);
  if (!/<resumed xmlns='urn:xmpp:sm:3'/.test(r)) throw new Error(`no <resumed/> in ${r.slice(0, 300)}`);
}

/** XEP-0198: no stream features after an inline resumption (only what came with <success/> is seen) */
const featuresAfterResumed = (c) => c.queue.some((s) => s.startsWith('<stream:features'));

function htAuthenticate(sess) {
  const mac = createHmac('sha256', sess.token).update('Initiator').digest();
  const ir = Buffer.concat([Buffer.from(`${sess.user}\0`), mac]).toString('base64');
  return (
    `<authenticate xmlns='${NS_SASL2}' mechanism='${FAST_MECH}'><initial-response>${ir}</initial-response>` +
    `${userAgent(sess)}${inlineResume(sess)}<fast xmlns='${NS_FAST}'/></authenticate>`
  );
}

function htCheck(sess) {
  const want = createHmac('sha256', sess.token).update('Responder').digest('base64');
  return (data) => {
    if (data !== want) throw new Error(`HT: wrong or no responder data (${data})`);
  };
}

const offers = (features, mech) => features.includes(`<mechanism>${mech}</mechanism>`);
const sasl2Part = (f) => /<authentication xmlns='urn:xmpp:sasl:2'>[\s\S]*?<\/authentication>/.exec(f)?.[0] ?? '';
const sasl1Part = (f) => /<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[\s\S]*?<\/mechanisms>/.exec(f)?.[0] ?? '';

const PATH_FNS = {
  async 'sasl1-scram-resume'(c, sess, password) {
    c.header();
    if (!offers(sasl1Part(await c.features()), 'SCRAM-SHA-1')) throw new Error('no SASL1 SCRAM-SHA-1 offered');
    const sc = new ScramClient(sess.user, password, { cache: false });
    c.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-1'>${b64(sc.first())}</auth>`);
    const ch = await c.next();
    if (ch.startsWith('<failure')) throw new Refused('sasl_failure', ch);
    if (!ch.startsWith('<challenge')) throw new Error(`SCRAM: expected a challenge, got ${ch.slice(0, 200)}`);
    c.send(`<response xmlns='${NS_SASL}'>${b64(sc.final(unb64(inner(ch))))}</response>`);
    const r = await c.next();
    if (r.startsWith('<failure')) throw new Refused('sasl_failure', r);
    if (!r.startsWith('<success')) throw new Error(`SCRAM: expected success, got ${r.slice(0, 200)}`);
    sc.verify(unb64(inner(r)));
    c.header(); // stream restart
    const f = await c.features();
    if (!f.includes(`<sm xmlns='${NS_SM}'`)) throw new Error('no <sm/> in the post-auth features');
    c.send(`<resume xmlns='${NS_SM}' previd='${xmlEscape(sess.smId)}' h='${sess.h}'/>`);
    for (;;) {
      const s = await c.next();
      if (s.startsWith('<resumed')) return;
      if (s.startsWith('<failed')) throw new Refused('sm_failed', s);
    }
  },

  async 'sasl2-fast-resume'(c, sess) {
    c.header();
    const f = sasl2Part(await c.features());
    if (!f.includes(`<fast xmlns='${NS_FAST}'`) || !offers(f, FAST_MECH) || !f.includes(`<sm xmlns='${NS_SM}'`))
      throw new Error(`no SASL2 with FAST ${FAST_MECH} and inline <sm/> offered`);
    c.send(htAuthenticate(sess));
    sasl2Resumed(await c.next(), sess, htCheck(sess));
    c.featuresAfterResumed = featuresAfterResumed(c);
  },

  async 'sasl2-fast-resume-pipelined'(c, sess) {
    c.header(htAuthenticate(sess)); // features cached from the setup login: nothing to wait for
    await c.features();
    sasl2Resumed(await c.next(), sess, htCheck(sess));
    c.featuresAfterResumed = featuresAfterResumed(c);
  },

  async 'baseline-tls-header'(c) {
    c.header();
    await c.features();
  },

  async 'sasl2-scram-resume'(c, sess, password) {
    c.header();
    if (!offers(sasl2Part(await c.features()), 'SCRAM-SHA-1')) throw new Error('no SASL2 SCRAM-SHA-1 offered');
    const sc = new ScramClient(sess.user, password, { cache: false });
    c.send(
      `<authenticate xmlns='${NS_SASL2}' mechanism='SCRAM-SHA-1'><initial-response>${b64(sc.first())}</initial-response>` +
        `${userAgent(sess)}${inlineResume(sess)}</authenticate>`,
    );
    const ch = await c.next();
    if (ch.startsWith('<failure')) throw new Refused('sasl_failure', ch);
    if (!ch.startsWith('<challenge')) throw new Error(`SCRAM: expected a challenge, got ${ch.slice(0, 200)}`);
    c.send(`<response xmlns='${NS_SASL2}'>${b64(sc.final(unb64(inner(ch))))}</response>`);
    sasl2Resumed(await c.next(), sess, (data) => sc.verify(unb64(data ?? '')));
    c.featuresAfterResumed = featuresAfterResumed(c);
  },
};

/** Run `fn(conn)` on a new connection to `port`, bounded; the socket is destroyed at the end either way. */
async function onConnection(port, sess, fn) {
  const c = new Conn(port, sess);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  const work = (async () => {
    await c.open();
    await fn(c);
  })();
  work.catch(() => {}); // after a timeout it fails later, on the destroyed socket
  try {
    await Promise.race([work, timeout]);
    return c;
  } finally {
    clearTimeout(timer);
    c.destroy(); // no </stream:stream>: the session stays, detached
  }
}

/** Setup: SASL2 PLAIN + Bind 2 with SM (resume) + a FAST token, directly on the TLS port. */
async function setupLogin(port, sess, password) {
  const c = await onConnection(port, sess, async (c) => {
    c.header();
    const f = await c.features();
    sess.features ??= f;
    c.send(
      `<authenticate xmlns='${NS_SASL2}' mechanism='PLAIN'><initial-response>${b64(`\0${sess.user}\0${password}`)}</initial-response>` +
        `${userAgent(sess)}<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag><enable xmlns='${NS_SM}' resume='true'/></bind>` +
        `<request-token xmlns='${NS_FAST}' mechanism='${FAST_MECH}'/></authenticate>`,
    );
    const r = await c.next();
    if (r.startsWith('<failure')) throw new Refused('sasl_failure', r);
    if (!r.startsWith('<success')) throw new Error(`expected <success/>, got ${r.slice(0, 200)}`);
    const enabled = /<enabled xmlns='urn:xmpp:sm:3'[^>]*>/.exec(r)?.[0];
    if (!enabled || !attr(enabled, 'id') || !/^(true|1)$/.test(attr(enabled, 'resume') ?? ''))
      throw new Error(`no resumable <enabled/> in ${r.slice(0, 300)}`);
    const tok = /<token xmlns='urn:xmpp:fast:0'[^>]*\/>/.exec(r)?.[0];
    if (!tok) throw new Error(`no FAST token in ${r.slice(0, 300)}`);
    sess.smId = attr(enabled, 'id');
    sess.token = attr(tok, 'token');
    sess.tokenExpiry = attr(tok, 'expiry');
    sess.jid = /<authorization-identifier>([^<]+)</.exec(r)?.[1];
    const post = await c.features(); // no stream restart after SASL2
    if (/urn:ietf:params:xml:ns:xmpp-bind|<sm xmlns='urn:xmpp:sm:3'/.test(post)) sess.postFeaturesOdd = post;
  });
  sess.h = c.h;
}

/** wait until the server has closed every socket on its TLS port (the dropped sessions are detached) */
async function untilServerClosed(port) {
  const t0 = performance.now();
  let open = serverSocketsOpen(port);
  while (open > 0 && performance.now() - t0 < NOTICE_MAX_MS) {
    await sleep(10);
    open = serverSocketsOpen(port);
  }
  if (open) console.error(`[bench] warning: ${open} server sockets on the TLS port still open after ${NOTICE_MAX_MS / 1000} s`);
  await sleep(SETTLE_MS);
  return { open, ms: performance.now() - t0 };
}

const fmt = (x, w, d = 1) => (x == null ? '-' : typeof x === 'number' ? x.toFixed(d) : String(x)).padStart(w);

let TLS_RESUME = false;

export async function run(ctx, o) {
  TLS_RESUME = o.tlsResume === 1;
  const { target, prepared } = ctx;
  const tlsPort = prepared.tlsPort;
  const account = (i) => ctx.newConn(i).o; // user name (--user-prefix) and --password; does not connect
  const password = account(1).password;
  await waitForPort(HOST, tlsPort, 10000);
  const N = o.n;
  const sessions = Array.from({ length: N }, (_, i) => ({
    user: account(i + 1).user,
    domain: target.domain,
    ua: randomUUID(),
    h: 0,
    smId: null,
    token: null,
    rotations: 0,
  }));

  // --- setup: one SASL2 + Bind 2 + SM + FAST-token login each, directly
  const tSetup = performance.now();
  const setupErrors = [];
  await pool(N, o.concurrency, async (i) => {
    try {
      await setupLogin(tlsPort, sessions[i], password);
    } catch (e) {
      setupErrors.push(`${sessions[i].user}: ${e.message}`);
    }
  });
  if (setupErrors.length) throw new Error(`${setupErrors.length} of ${N} setup logins failed, e.g. ${setupErrors[0]}`);
  const odd = sessions.find((s) => s.postFeaturesOdd);
  if (odd) console.error(`[bench] warning: post-auth features after Bind 2 offer bind or <sm/>: ${odd.postFeaturesOdd.slice(0, 300)}`);
  await untilServerClosed(tlsPort);
  const setupS = (performance.now() - tSetup) / 1000;
  const sasl2 = sasl2Part(sessions[0].features);
  console.error(
    `[bench] ${N} sessions set up (SASL2 PLAIN + Bind 2 + SM + FAST token) in ${round(setupS, 2)} s; ` +
      `SASL2 mechanisms ${[...sasl2.replace(/<inline>[\s\S]*/, '').matchAll(/<mechanism>([^<]+)</g)].map((m) => m[1]).join(' ')}`,
  );

  const proxy = await startDelayProxy(HOST, tlsPort, o.delay);
  console.error(`[bench] delay proxy (pid ${proxy.pid}) on ${HOST}:${proxy.port} -> ${tlsPort}, ${o.delay} ms each way`);

  const stats = Object.fromEntries(
    PATHS.map((p) => [
      p,
      {
        lat: [],
        waits: new Map(), // round trips after TLS -> count
        tls: new Map(), // TLS version -> count
        reconnects: 0,
        ok: 0,
        sasl_failure: 0,
        sm_failed: 0,
        errors: {},
        server_cpu_s: 0,
        server_sched_s: 0,
        client_cpu_s: 0,
        proxy_cpu_s: 0,
        wall_s: 0,
        notice_ms: [],
        features_after_resumed: 0, // any round, warm-up included
      },
    ]),
  );
  let relogins = 0;
  const bump = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);

  /** one path over all N sessions; measured unless warm-up */
  const phase = async (path, measured) => {
    const st = stats[path];
    const fn = PATH_FNS[path];
    const dead = [];
    const lat = [];
    const cpuS0 = cpuSeconds(target.pid);
    const schedS0 = cpuSecondsSched(target.pid);
    const cpuP0 = cpuSeconds(proxy.pid);
    const g0 = process.cpuUsage();
    const t0 = performance.now();
    const res = { ok: 0, sasl_failure: 0, sm_failed: 0, errors: {} };
    await pool(N, o.concurrency, async (i) => {
      const sess = sessions[i];
      const ts = performance.now();
      try {
        const c = await onConnection(proxy.port, sess, (c) => fn(c, sess, password));
        lat.push(performance.now() - ts);
        sess.h = c.h;
        res.ok++;
        if (c.featuresAfterResumed) st.features_after_resumed++;
        if (measured) {
          bump(st.waits, c.waits);
          bump(st.tls, `${c.tlsVersion}${c.tlsReused ? ' resumed' : ''}`);
        }
      } catch (e) {
        dead.push(i);
        if (e instanceof Refused) res[e.kind]++;
        else {
          const k = e.message.replace(/\d+/g, 'N').slice(0, 120);
          res.errors[k] = (res.errors[k] ?? 0) + 1;
        }
        if (dead.length === 1) console.error(`[bench] ${path}: ${sess.user}: ${e.message}`);
      }
    });
    const g = process.cpuUsage(g0);
    const wall = (performance.now() - t0) / 1000;
    const notice = await untilServerClosed(tlsPort); // the server's side of the drops is part of the cycle
    const cpuS = cpuSeconds(target.pid) - cpuS0;
    const schedS = schedS0 == null ? null : cpuSecondsSched(target.pid) - schedS0;
    const cpuP = cpuSeconds(proxy.pid) - cpuP0;
    // a failed reconnect lost its session: a new one (direct, unmeasured) for the next paths
    for (const i of dead) {
      sessions[i].h = 0;
      await setupLogin(tlsPort, sessions[i], password);
      relogins++;
    }
    if (dead.length) await untilServerClosed(tlsPort);
    const failures = res.sasl_failure + res.sm_failed + Object.values(res.errors).reduce((a, b) => a + b, 0);
    if (measured) {
      st.reconnects += N;
      st.ok += res.ok;
      st.sasl_failure += res.sasl_failure;
      st.sm_failed += res.sm_failed;
      for (const [k, v] of Object.entries(res.errors)) st.errors[k] = (st.errors[k] ?? 0) + v;
      st.lat.push(...lat);
      st.server_cpu_s += cpuS;
      st.server_sched_s = schedS == null || st.server_sched_s === null ? null : st.server_sched_s + schedS;
      st.client_cpu_s += (g.user + g.system) / 1e6;
      st.proxy_cpu_s += cpuP;
      st.wall_s += wall;
      st.notice_ms.push(notice.ms);
    }
    lat.sort((a, b) => a - b);
    console.error(
      `[bench] ${measured ? '' : 'warm-up '}${path}: ${res.ok}/${N} resumed${failures ? `, ${failures} failed` : ''}, ` +
        `p50 ${round(percentile(lat, 50), 1)} ms, server ${round((schedS ?? cpuS) * 1000, 1)} ms CPU, client ${round((g.user + g.system) / 1e3, 0)} ms CPU`,
    );
  };

  // --- warm-up rounds, then measured rounds; the order of the paths rotates
  const exclude = () => new Set([process.pid, process.ppid, proxy.pid, ...processTree(target.pid)]);
  for (let r = 0; r < o.warmup; r++) for (const p of PATHS) await phase(p, false);
  const other0 = otherCpuSeconds(exclude());
  const tRounds = performance.now();
  for (let r = 0; r < o.rounds; r++) {
    for (let k = 0; k < PATHS.length; k++) await phase(PATHS[(r + k) % PATHS.length], true);
  }
  const roundsS = (performance.now() - tRounds) / 1000;
  const otherCpu = otherCpuSeconds(exclude()) - other0;
  await proxy.stop();

  // --- report
  const only = (m) => (m.size === 1 ? [...m.keys()][0] : Object.fromEntries(m));
  const paths = {};
  for (const p of PATHS) {
    const st = stats[p];
    const lat = st.lat.sort((a, b) => a - b);
    const failures = st.sasl_failure + st.sm_failed + Object.values(st.errors).reduce((a, b) => a + b, 0);
    const per = (s) => (st.reconnects ? round((s / st.reconnects) * 1000, 3) : null);
    const tlsRtts = [...st.tls.keys()].map((v) => (v.startsWith('TLSv1.3') ? 1 : 2));
    const waits = only(st.waits);
    paths[p] = {
      reconnects: st.reconnects,
      resumed: st.ok,
      failures,
      sasl_failure: st.sasl_failure,
      sm_failed: st.sm_failed,
      errors: st.errors,
      latency_ms: {
        p50: round(percentile(lat, 50), 1),
        p90: round(percentile(lat, 90), 1),
        p99: round(percentile(lat, 99), 1),
        max: round(lat[lat.length - 1], 1),
        mean: lat.length ? round(lat.reduce((a, b) => a + b, 0) / lat.length, 1) : null,
      },
      round_trips_after_tls: waits,
      tls: only(st.tls),
      // TCP handshake (1, not delayed by the proxy) + TLS (1 for TLS 1.3) + after TLS
      round_trips_total: typeof waits === 'number' && tlsRtts.length === 1 ? 1 + tlsRtts[0] + waits : null,
      // scheduler time (ns resolution) where the kernel has it, else utime+stime
      server_cpu_ms_per_reconnect: st.server_sched_s == null ? per(st.server_cpu_s) : per(st.server_sched_s),
      server_cpu_ms_per_reconnect_ticks: per(st.server_cpu_s),
      client_cpu_ms_per_reconnect: per(st.client_cpu_s),
      proxy_cpu_ms_per_reconnect: per(st.proxy_cpu_s),
      server_cpu_s: round(st.server_sched_s ?? st.server_cpu_s, 3),
      server_cpu_s_ticks: round(st.server_cpu_s, 2),
      client_cpu_s: round(st.client_cpu_s, 3),
      wall_s: round(st.wall_s, 2),
      drop_noticed_ms_max: st.notice_ms.length ? Math.round(Math.max(...st.notice_ms)) : null,
      ...(p.startsWith('sasl2') ? { features_after_resumed: st.features_after_resumed } : {}),
    };
  }
  const base = paths['sasl1-scram-resume'];
  const ratio = (a, b) => (a == null || !b ? null : round(a / b, 3));
  const ratios = {};
  // what authentication and resumption cost above the baseline (TCP, TLS, header, drop)
  const bl = paths[BASELINE];
  const above = (x, k) => (x[k] == null || bl[k] == null ? null : round(x[k] - bl[k], 3));
  for (const p of PATHS) {
    if (p === BASELINE) continue;
    paths[p].server_cpu_ms_above_baseline = above(paths[p], 'server_cpu_ms_per_reconnect');
    paths[p].client_cpu_ms_above_baseline = above(paths[p], 'client_cpu_ms_per_reconnect');
  }
  for (const p of PATHS.slice(1)) {
    if (p === BASELINE) continue;
    const x = paths[p];
    ratios[`${p}/sasl1-scram-resume`] = {
      server_cpu_above_baseline: ratio(x.server_cpu_ms_above_baseline, base.server_cpu_ms_above_baseline),
      client_cpu_above_baseline: ratio(x.client_cpu_ms_above_baseline, base.client_cpu_ms_above_baseline),
      server_cpu: ratio(x.server_cpu_ms_per_reconnect, base.server_cpu_ms_per_reconnect),
      client_cpu: ratio(x.client_cpu_ms_per_reconnect, base.client_cpu_ms_per_reconnect),
      latency_p50: ratio(x.latency_ms.p50, base.latency_ms.p50),
      latency_p99: ratio(x.latency_ms.p99, base.latency_ms.p99),
    };
  }
  const totalFailures = PATHS.reduce((a, p) => a + paths[p].failures, 0);
  const rotations = sessions.reduce((a, s) => a + s.rotations, 0);

  const lines = [
    `[bench] reconnect: N=${N}, ${o.rounds} rounds (+${o.warmup} warm-up), ${o.concurrency} in flight, +${2 * o.delay} ms RTT (proxy), direct TLS ${only(stats[PATHS[0]].tls)}`,
    `path                          reconnects fail  p50 ms  p99 ms  max ms  RTs after TLS (total)  server CPU ms/rc (ticks)  client CPU ms/rc`,
    ...PATHS.map((p) => {
      const x = paths[p];
      const rts = `${typeof x.round_trips_after_tls === 'number' ? x.round_trips_after_tls : JSON.stringify(x.round_trips_after_tls)} (${x.round_trips_total ?? '?'})`;
      return (
        `${p.padEnd(29)} ${fmt(x.reconnects, 10, 0)} ${fmt(x.failures, 4, 0)} ${fmt(x.latency_ms.p50, 7)} ${fmt(x.latency_ms.p99, 7)} ${fmt(x.latency_ms.max, 7)}  ` +
        `${rts.padStart(21)} ${fmt(x.server_cpu_ms_per_reconnect, 17, 3)} ${`(${fmt(x.server_cpu_ms_per_reconnect_ticks, 0, 2)})`.padStart(7)} ${fmt(x.client_cpu_ms_per_reconnect, 16, 3)}`
      );
    }),
    ...PATHS.slice(1)
      .filter((p) => p !== BASELINE)
      .map((p) => {
        const r = ratios[`${p}/sasl1-scram-resume`];
        return (
          `ratio ${p} / sasl1-scram-resume: server CPU ${r.server_cpu} (above the baseline ${r.server_cpu_above_baseline}), ` +
          `client CPU ${r.client_cpu} (above the baseline ${r.client_cpu_above_baseline}), latency p50 ${r.latency_p50}, p99 ${r.latency_p99}`
        );
      }),
  ];
  for (const l of lines) console.error(l);

  const result = {
    sessions: N,
    rounds: o.rounds,
    warmup_rounds: o.warmup,
    delay_ms_each_way: o.delay,
    tls_port: tlsPort,
    setup_s: round(setupS, 2),
    measured_s: round(roundsS, 2),
    paths,
    ratios,
    failures: totalFailures,
    relogins_after_failure: relogins,
    token_rotations: rotations,
    sasl2_feature: sasl2,
    server_cpu_source:
      cpuSecondsSched(target.pid) == null
        ? 'utime+stime (/proc/<pid>/stat, 10 ms ticks)'
        : 'se.sum_exec_runtime (/proc/<pid>/task/*/sched); _ticks: utime+stime',
    server_cpu_interval: "from a path's first connect until the server has closed all its sockets",
    other_cpu_pct: round((Math.max(0, otherCpu) / roundsS) * 100, 1),
    table: lines.slice(1),
  };
  const fast = ratios['sasl2-fast-resume/sasl1-scram-resume'];
  const pip = ratios['sasl2-fast-resume-pipelined/sasl1-scram-resume'];
  const summary =
    `reconnect uzzap N=${N} x ${o.rounds} rounds, +${2 * o.delay} ms RTT: p50 ` +
    PATHS.map((p) => `${p} ${paths[p].latency_ms.p50} ms`).join(', ') +
    `; sasl2-fast/sasl1-scram: server CPU ${fast.server_cpu}, client CPU ${fast.client_cpu}, latency ${fast.latency_p50} ` +
    `(pipelined ${pip.latency_p50}); ${totalFailures} failures`;
  return { result, summary, failed: totalFailures ? `${totalFailures} reconnects failed` : undefined };
}
