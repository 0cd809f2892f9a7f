// The fake many-domain peer of the `s2s` workload's `--domains N` mode, run as a child
// process of the generator (bench/lib/s2s-servers.mjs startFakePeer; commands over IPC).
// One listener answers server-to-server streams (RFC 6120) for d1.test..dN.test: to each
// stream Uzzap opens it answers a header for the domain asked and features with dialback
// only (no STARTTLS offered: Uzzap, with s2s.require_valid_certs off, goes on without it).
// Uzzap's <db:result/> (XEP-0220) is checked for real by default (`verify: 'callback'`):
// a new stream from dN.test to Uzzap's s2s port carries <db:verify/> with the key and this
// stream's id, and the answer (valid or not) is what Uzzap's <db:result/> gets; the callback
// stream is then closed. `verify: 'trust'` answers valid at once, without the callback.
// What then arrives on a stream is counted: the first message per domain is timestamped
// (epoch ms, performance.timeOrigin + performance.now(), comparable with the generator's).
// A stream Uzzap closes (s2s.idle_timeout) is closed back.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { StanzaSplitter, attr } from './xmpp-lite.mjs';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_DIALBACK = 'jabber:server:dialback';
const now = () => performance.timeOrigin + performance.now();

let cfg = null;
let server = null;
const sockets = new Set();
const st = {
  open: 0,
  open_max: 0,
  accepted: 0,
  closed_by_uzzap: 0,
  closed_other: 0,
  results: 0,
  verify: { valid: 0, invalid: 0, failed: 0 },
  verify_open: 0,
  verify_open_max: 0,
  messages: 0,
  unknown_domain: 0,
};
let first = new Map(); // domain -> epoch ms of its first message (since the last reset)

const header = (from, to, id) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS_STREAM}' xmlns:db='${NS_DIALBACK}'` +
  `${id ? ` id='${id}'` : ''} from='${from}' to='${to}' version='1.0'>`;

function served(domain) {
  const m = /^d(\d+)\.test$/.exec(domain ?? '');
  return !!m && Number(m[1]) >= 1 && Number(m[1]) <= cfg.domains;
}

/** XEP-0220 step 2-3: ask the authoritative server (Uzzap) whether it gave `key` for this stream */
function callback(receiving, originating, id, key) {
  return new Promise((resolve) => {
    let done = false;
    st.verify_open++;
    st.verify_open_max = Math.max(st.verify_open_max, st.verify_open);
    const s = net.connect({ host: cfg.auth.ip, port: cfg.auth.port, noDelay: true });
    const finish = (ok, how) => {
      if (done) return;
      done = true;
      st.verify_open--;
      st.verify[how]++;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      s.destroy();
      finish(false, 'failed');
    }, 30000);
    s.setEncoding('utf8');
    const split = new StanzaSplitter({
      header: () => {},
      stanza: (x) => {
        if (x.startsWith('<stream:features')) s.write(`<db:verify from='${receiving}' to='${originating}' id='${id}'>${key}</db:verify>`);
        else if (x.startsWith('<db:verify')) {
          const ok = attr(x, 'type') === 'valid';
          s.end('</stream:stream>');
          finish(ok, ok ? 'valid' : 'invalid');
        } else if (x.startsWith('<stream:error')) finish(false, 'failed');
      },
      end: () => {
        s.end();
        finish(false, 'failed');
      },
    });
    s.on('data', (d) => split.feed(d));
    s.on('connect', () => s.write(header(receiving, originating)));
    s.on('error', () => finish(false, 'failed'));
    s.on('close', () => finish(false, 'failed'));
  });
}

function accept(sock) {
  st.accepted++;
  st.open++;
  st.open_max = Math.max(st.open_max, st.open);
  sockets.add(sock);
  sock.setNoDelay(true);
  sock.setEncoding('utf8');
  let domain = null;
  let id = null;
  let byUzzap = false;
  const split = new StanzaSplitter({
    header: (h) => {
      const to = attr(h, 'to');
      const from = attr(h, 'from') ?? '';
      id = randomBytes(8).toString('hex');
      if (!served(to)) {
        st.unknown_domain++;
        sock.end(
          `${header('d0.test', from, id)}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`,
        );
        return;
      }
      domain = to;
      sock.write(
        `${header(to, from, id)}<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`,
      );
    },
    stanza: (x) => {
      if (x.startsWith('<db:result')) {
        st.results++;
        const from = attr(x, 'from');
        const to = attr(x, 'to');
        const key = x.slice(x.indexOf('>') + 1, x.lastIndexOf('<')).trim();
        const answer = (ok) => !sock.destroyed && sock.write(`<db:result from='${to}' to='${from}' type='${ok ? 'valid' : 'invalid'}'/>`);
        if (cfg.verify === 'trust') answer(true);
        else void callback(to, from, id, key).then(answer);
      } else if (x.startsWith('<message')) {
        st.messages++;
        if (domain && !first.has(domain)) first.set(domain, now());
      }
    },
    end: () => {
      byUzzap = true;
      sock.end('</stream:stream>');
    },
  });
  sock.on('data', (d) => split.feed(d));
  sock.on('error', () => {});
  sock.on('close', () => {
    sockets.delete(sock);
    st.open--;
    if (byUzzap) st.closed_by_uzzap++;
    else st.closed_other++;
  });
}

process.on('message', (m) => {
  const reply = (x) => process.send({ re: m.re, ...x });
  if (m.cmd === 'listen') {
    cfg = { domains: m.domains, auth: m.auth, verify: m.verify };
    server = net.createServer(accept);
    server.once('error', (e) => reply({ error: e.message }));
    server.listen({ host: m.ip, port: m.port, backlog: 4096 }, () => reply({ ok: true }));
  } else if (m.cmd === 'stats') reply({ stats: { ...st, verify: { ...st.verify }, delivered: first.size } });
  else if (m.cmd === 'deliveries') reply({ first: Object.fromEntries(first) });
  else if (m.cmd === 'reset') {
    first = new Map();
    // per round from here (accepted, closed_* and unknown_domain count the whole run)
    st.results = 0;
    st.messages = 0;
    st.verify = { valid: 0, invalid: 0, failed: 0 };
    st.open_max = st.open;
    st.verify_open_max = st.verify_open;
    reply({ ok: true });
  }
});

process.on('SIGTERM', () => {
  server?.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
