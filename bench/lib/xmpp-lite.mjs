// Minimal XMPP c2s client for load generation: raw TCP, no XML DOM.
// The incoming byte stream is cut into top-level stanzas by scanning for tags
// (indexOf + a quote-aware scan for the tag end) and tracking nesting depth.
// Stream management (XEP-0198) is off unless a workload asks for it
// (login({ sm }) / resume()): only then are inbound stanzas counted and the
// server's <r/> answered.
import net from 'node:net';
import { ScramClient } from './scram.mjs';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
export const NS_SM = 'urn:xmpp:sm:3';

/** A <failed/> answer to <enable/> or <resume/>: `condition` and the server's 'h' (if it sent one). */
export class SmFailed extends Error {
  constructor(what, stanza) {
    const cond = /<failed[^>]*>\s*<([\w-]+)/.exec(stanza);
    super(`${what} failed: ${cond ? cond[1] : stanza.slice(0, 200)}`);
    this.condition = cond ? cond[1] : null;
    const h = attr(stanza, 'h');
    this.h = h === undefined ? null : Number(h);
  }
}

export const xmlEscape = (s) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);

const attrRe = new Map();
/** Value of attribute `name` in the opening tag at the start of `stanza`. */
export function attr(stanza, name) {
  let re = attrRe.get(name);
  if (!re) attrRe.set(name, (re = new RegExp(`^[^>]*?\\s${name}=(?:'([^']*)'|"([^"]*)")`)));
  const m = re.exec(stanza);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Index of the '>' closing the tag that starts at `lt`, skipping quoted values; -1 if incomplete. */
function tagEnd(buf, lt) {
  let q = 0;
  for (let i = lt + 1; i < buf.length; i++) {
    const c = buf.charCodeAt(i);
    if (q) {
      if (c === q) q = 0;
    } else if (c === 62 /* > */) return i;
    else if (c === 34 || c === 39) q = c;
  }
  return -1;
}

/**
 * Cuts a stream into its top-level elements by scanning tags, shared by the
 * client and component connections (no validation: a load generator trusts its
 * server, and a real parser would cost more than what it measures).
 */
export class StanzaSplitter {
  constructor(handler) {
    this.h = handler; // { stanza(s), header(h), end() }
    this.buf = '';
    this.scan = 0; // where scanning resumes in buf
    this.depth = 0; // 0 = outside stream, 1 = inside <stream:stream>, >1 = inside a stanza
    this.start = 0; // start of the current top-level stanza in buf
  }

  feed(chunk) {
    const buf = (this.buf = this.buf.length ? this.buf + chunk : chunk);
    let pos = this.scan;
    for (;;) {
      const lt = buf.indexOf('<', pos);
      if (lt < 0) {
        pos = buf.length;
        break;
      }
      const gt = tagEnd(buf, lt);
      if (gt < 0) {
        pos = lt;
        break;
      }
      pos = gt + 1;
      const c = buf.charCodeAt(lt + 1);
      if (c === 63 /* ? */ || c === 33 /* ! */) continue; // <?xml ...?>, comments
      if (c === 47 /* / */) {
        if (--this.depth === 1) this.h.stanza(buf.slice(this.start, pos));
        else if (this.depth <= 0) {
          this.depth = 0;
          this.h.end();
        }
      } else if (buf.charCodeAt(gt - 1) === 47 /* self-closing */) {
        if (this.depth === 1) this.h.stanza(buf.slice(lt, pos));
      } else if (this.depth === 0) {
        this.depth = 1; // <stream:stream ...>
        this.h.header(buf.slice(lt, pos));
      } else {
        if (this.depth === 1) this.start = lt;
        this.depth++;
      }
    }
    // Keep only what is still needed: the partial stanza, or a partial tag.
    const keepFrom = this.depth > 1 ? this.start : pos;
    this.buf = buf.slice(keepFrom);
    this.scan = pos - keepFrom;
    this.start = 0;
  }
}

let resourceSeq = 0;

export class XmppConn {
  /**
   * @param {object} o
   * @param {string} o.host  @param {number} o.port  @param {string} o.domain
   * @param {string} o.user  local part  @param {string} o.password
   * @param {string} [o.localAddress]  @param {string} [o.mech] 'SCRAM-SHA-1' | 'PLAIN'
   * @param {number} [o.timeoutMs] bound on the whole login
   */
  constructor(o) {
    this.o = o;
    this.split = new StanzaSplitter({
      stanza: (st) => this._stanza(st),
      header: (h) => (this.streamHeader = h),
      end: () => this._streamEnd(),
    });
    this.queue = []; // stanzas not yet consumed by the login sequence
    this.waiter = null;
    this.onStanza = null; // set after login: (stanza) => void
    this.onClose = null;
    this.closed = false;
    this.jid = null;
    // XEP-0198 state, null unless enabled: { h (stanzas received since <enabled/> or, on a
    // resumed stream, carried over), counting, id, max, requests (<r/> answered), offered }
    this.sm = null;
  }

  // ---- transport -------------------------------------------------------
  _connect() {
    return new Promise((resolve, reject) => {
      const { host, port, localAddress } = this.o;
      const s = net.connect({ host, port, localAddress, noDelay: true });
      this.sock = s;
      s.setEncoding('utf8');
      s.once('connect', resolve);
      s.on('data', (d) => this._feed(d));
      s.on('error', (e) => {
        this.error = e;
        reject(e);
        this._closed(e);
      });
      s.on('close', () => this._closed(new Error('connection closed')));
    });
  }

  send(str) {
    if (!this.closed) this.sock.write(str);
  }

  /** Politely close the stream and the socket (does not wait for the server). */
  close() {
    if (this.closed) return;
    const s = this.sock;
    s.end('</stream:stream>');
    setTimeout(() => s.destroy(), 2000).unref(); // don't wait long for the server's FIN
    this._closed(null);
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
    this.onClose?.(err);
  }

  _feed(chunk) {
    this.split.feed(chunk);
  }

  _streamEnd() {
    this.sock.end();
    this._closed(new Error('stream closed by server'));
  }

  _stanza(s) {
    const sm = this.sm;
    if (sm !== null) {
      // XEP-0198 nonzas never reach the workload; only stanzas count towards 'h'
      const k = s.charCodeAt(1);
      if (k === 114 /* r */ && (s.startsWith('<r ') || s.startsWith('<r/'))) {
        sm.requests++;
        this.send(`<a xmlns='${NS_SM}' h='${sm.h}'/>`);
        return;
      }
      if (k === 97 /* a */ && (s.startsWith('<a ') || s.startsWith('<a/'))) return; // acks of what we sent
      if (sm.counting) {
        if (k === 109 ? s.startsWith('<message') : k === 112 ? s.startsWith('<presence') : k === 105 && s.startsWith('<iq'))
          sm.h = (sm.h + 1) >>> 0;
      } else if (s.startsWith('<enabled') || s.startsWith('<resumed')) sm.counting = true; // count what follows it
    }
    // presence counting for the presence workload, whatever phase the login is in
    if (this.o.presenceCounter && s.startsWith('<presence')) {
      const pc = this.o.presenceCounter;
      pc.n++;
      // distinct (recipient, sender, type): a server may legitimately repeat a presence
      pc.unique?.add(`${this.o.user} ${attr(s, 'from')} ${attr(s, 'type') ?? ''}`);
    }
    if (this.onStanza) this._online(s);
    else if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(s);
    } else this.queue.push(s);
  }

  /** Online: answer server pings, hand the rest to the workload. */
  _online(s) {
    if (s.startsWith('<iq') && s.includes('urn:xmpp:ping') && attr(s, 'type') === 'get') {
      const from = attr(s, 'from');
      this.send(`<iq type='result' id='${xmlEscape(attr(s, 'id') || '')}'${from ? ` to='${xmlEscape(from)}'` : ''}/>`);
      return;
    }
    this.onStanza(s);
  }

  /** Next top-level stanza during login; stream errors become exceptions. */
  _next() {
    const check = (s) => {
      if (s.startsWith('<stream:error') || s.startsWith('<error')) throw new Error(`stream error: ${s.slice(0, 200)}`);
      return s;
    };
    if (this.queue.length) return Promise.resolve(check(this.queue.shift()));
    if (this.closed) return Promise.reject(this.error || new Error('closed'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    }).then(check);
  }

  async _expect(prefix, what) {
    const s = await this._next();
    if (!s.startsWith(prefix)) throw new Error(`expected ${what}, got: ${s.slice(0, 200)}`);
    return s;
  }

  async _iq(type, id, payload) {
    this.send(`<iq type='${type}' id='${id}'>${payload}</iq>`);
    for (;;) {
      const s = await this._next();
      if (s.startsWith('<iq') && attr(s, 'id') === id) {
        if (attr(s, 'type') !== 'result') {
          const cond = /<error[^>]*>\s*<([\w-]+)/.exec(s);
          throw new Error(`iq ${id} failed: ${cond ? cond[1] : s.slice(0, 200)}`);
        }
        return s;
      }
      // anything else (e.g. a roster push, presence) is ignored during login
    }
  }

  _openStream() {
    this.split.depth = 0;
    this.send(
      `<?xml version='1.0'?><stream:stream to='${this.o.domain}' xmlns='jabber:client' ` +
        `xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`,
    );
  }

  async _features() {
    for (;;) {
      const s = await this._next();
      if (s.startsWith('<stream:features') || s.startsWith('<features')) return s;
    }
  }

  // ---- login sequence --------------------------------------------------
  /**
   * Connect, authenticate, bind; optionally establish a session, send initial
   * presence and fetch the roster. Resolves with the bound full JID.
   */
  login({ presence = false, roster = false, resource, sm = false } = {}) {
    return this._bounded('login', () => this._login(presence, roster, resource, sm));
  }

  /** Run `fn` bounded by o.timeoutMs (30 s); on failure or timeout the socket is destroyed. */
  async _bounded(what, fn) {
    const timeoutMs = this.o.timeoutMs ?? 30000;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`${what} timeout after ${timeoutMs} ms`));
        this.destroy();
      }, timeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (e) {
      this.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** connect, stream, SASL, stream restart; resolves with the post-auth features */
  async _authenticate() {
    await this._connect();
    this._openStream();
    const features = await this._features();
    await this._sasl(features);
    this._openStream(); // stream restart after SASL success
    return this._features();
  }

  /** @param {false|true|'resume'} sm  enable XEP-0198 after binding (before presence), with resumption if 'resume' */
  async _login(presence, roster, resource, sm) {
    const features = await this._authenticate();
    if (!features.includes(NS_BIND)) throw new Error('server offers no resource binding');
    const res = resource ?? `b${(++resourceSeq).toString(36)}`;
    const bound = await this._iq('set', 'bind1', `<bind xmlns='${NS_BIND}'><resource>${res}</resource></bind>`);
    const m = /<jid>([^<]+)<\/jid>/.exec(bound);
    this.jid = m ? m[1] : `${this.o.user}@${this.o.domain}/${res}`;
    // RFC 6121 dropped sessions; send one only if offered and not marked optional.
    const si = features.indexOf(NS_SESSION);
    if (si >= 0) {
      const tail = features.slice(si, features.indexOf('</session>', si) + 1 || si + 200);
      if (!tail.includes('<optional')) await this._iq('set', 'sess1', `<session xmlns='${NS_SESSION}'/>`);
    }
    if (sm) await this._enableSm(sm === 'resume', features.includes(NS_SM));
    if (presence) this.send('<presence/>');
    if (roster) {
      // An error reply still completes the exchange: note it (workloads report it) and go on.
      await this._iq('get', 'roster1', "<query xmlns='jabber:iq:roster'/>").catch((e) => {
        if (this.closed || !/^iq roster1 failed/.test(e.message)) throw e;
        this.rosterError = e.message;
      });
    }
    this.queue.length = 0;
    this.onStanza = () => {};
    return this.jid;
  }

  // ---- stream management (XEP-0198) -----------------------------------
  async _enableSm(resume, offered) {
    this.sm = { h: 0, counting: false, id: null, max: null, requests: 0, offered };
    this.send(`<enable xmlns='${NS_SM}'${resume ? " resume='true'" : ''}/>`);
    for (;;) {
      const s = await this._next(); // counting starts with <enabled/> (in _stanza)
      if (s.startsWith('<enabled')) {
        this.sm.id = attr(s, 'id') ?? null;
        const max = attr(s, 'max');
        this.sm.max = max === undefined ? null : Number(max);
        this.sm.resumable = attr(s, 'resume') === 'true' || attr(s, 'resume') === '1';
        return;
      }
      if (s.startsWith('<failed')) throw new SmFailed('enable', s);
      // anything else before <enabled/> is not counted and ignored
    }
  }

  /**
   * Authenticate on a new connection and resume the session `previd` (XEP-0198 §5),
   * telling the server we received `h` stanzas. Resolves with the server's 'h' from
   * <resumed/>; then `onStanza` gets the retransmitted stanzas and everything after
   * them, and 'h' keeps counting from `h`. A <failed/> rejects with SmFailed.
   * Bounded by o.timeoutMs like login.
   */
  resume({ previd, h }, onStanza) {
    return this._bounded('resume', async () => {
      const features = await this._authenticate();
      this.sm = { h, counting: false, id: previd, max: null, requests: 0, offered: features.includes(NS_SM) };
      this.send(`<resume xmlns='${NS_SM}' previd='${xmlEscape(previd)}' h='${h}'/>`);
      for (;;) {
        const s = await this._next();
        if (s.startsWith('<resumed')) {
          // stanzas that came with <resumed/> wait in the queue (already counted): hand them over in order
          this.onStanza = onStanza;
          const q = this.queue;
          this.queue = [];
          for (const x of q) this._online(x);
          const sh = attr(s, 'h');
          return sh === undefined ? null : Number(sh);
        }
        if (s.startsWith('<failed')) throw new SmFailed('resume', s);
      }
    });
  }

  async _sasl(features) {
    const offered = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1].trim());
    const mech = this.o.mech || 'SCRAM-SHA-1';
    if (!offered.includes(mech)) throw new Error(`server does not offer ${mech} (offers ${offered.join(' ') || 'nothing'})`);
    const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
    const unb64 = (s) => Buffer.from(s.trim(), 'base64').toString('utf8');
    const inner = (s) => s.slice(s.indexOf('>') + 1, s.lastIndexOf('<'));
    if (mech === 'PLAIN') {
      this.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${b64(`\0${this.o.user}\0${this.o.password}`)}</auth>`);
      const r = await this._next();
      if (!r.startsWith('<success')) throw new Error(`SASL PLAIN failed: ${r.slice(0, 200)}`);
      return;
    }
    if (mech !== 'SCRAM-SHA-1') throw new Error(`unsupported mechanism ${mech}`);
    const sc = new ScramClient(this.o.user, this.o.password);
    this.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-1'>${b64(sc.first())}</auth>`);
    const ch = await this._next();
    if (!ch.startsWith('<challenge')) throw new Error(`SCRAM: expected challenge, got ${ch.slice(0, 200)}`);
    this.send(`<response xmlns='${NS_SASL}'>${b64(sc.final(unb64(inner(ch))))}</response>`);
    let r = await this._next();
    if (r.startsWith('<challenge')) {
      // Some servers send server-final in a challenge, then an empty success.
      sc.verify(unb64(inner(r)));
      this.send(`<response xmlns='${NS_SASL}'/>`);
      r = await this._next();
      if (!r.startsWith('<success')) throw new Error(`SCRAM failed: ${r.slice(0, 200)}`);
      return;
    }
    if (!r.startsWith('<success')) throw new Error(`SCRAM failed: ${r.slice(0, 200)}`);
    if (!r.endsWith('/>')) sc.verify(unb64(inner(r)));
  }
}
