// BOSH (XEP-0124 with XEP-0206) over real HTTP requests: session creation,
// SASL, restart, bind, long polling in both directions, rid rules, terminate.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { BoshSession } from '../../src/transport/bosh.js';
import { startServer } from '../helpers/server.js';
import { connect, expectStanza, stopAll, until, xml } from '../helpers/clients.js';

const NS = 'http://jabber.org/protocol/httpbind';

class Bosh {
  sid = '';
  rid = 1000 + Math.floor(Math.random() * 1000);
  constructor(readonly url: string) {}
  async post(inner: string, attrs: Record<string, string> = {}): Promise<string> {
    const a = { xmlns: NS, rid: String(this.rid++), ...(this.sid ? { sid: this.sid } : {}), ...attrs };
    const body = `<body ${Object.entries(a)
      .map(([k, v]) => `${k}='${v}'`)
      .join(' ')}>${inner}</body>`;
    const r = await fetch(this.url, { method: 'POST', body, headers: { 'content-type': 'text/xml; charset=utf-8' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    return r.text();
  }
  async create(): Promise<string> {
    const res = await this.post('', {
      to: 'localhost',
      wait: '2',
      hold: '1',
      ver: '1.6',
      'xml:lang': 'en',
      'xmpp:version': '1.0',
      'xmlns:xmpp': 'urn:xmpp:xbosh',
    });
    this.sid = /sid='([^']+)'/.exec(res)![1]!;
    return res;
  }
}

/** How many requests the server holds for the BOSH session `sid` (its transport, among the server's streams). */
function held(server: Server, sid: string): number {
  for (const s of server.streams) {
    const t = (s as { transport?: unknown }).transport;
    if (t instanceof BoshSession && t.sid === sid) return (t as unknown as { held: unknown[] }).held.length;
  }
  return 0;
}

describe('BOSH (XEP-0124, XEP-0206)', function () {
  this.timeout(30_000);
  let server: Server;
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: { http: { behind_tls_proxy: true } } });
  });
  afterEach(async () => {
    await server.stop();
  });

  it('logs in, binds, exchanges messages with a TCP user by long polling, and terminates', async () => {
    const b = new Bosh(`http://127.0.0.1:${server.ports.http}/http-bind`);
    const created = await b.create();
    assert.match(
      created,
      /^<body xmlns='http:\/\/jabber.org\/protocol\/httpbind'[^>]* sid='[^']+'[^>]* wait='2'[^>]* requests='2'[^>]* xmpp:version='1.0'/,
    );
    assert.match(created, /<stream:features xmlns:stream='http:\/\/etherx.jabber.org\/streams'>[\s\S]*<mechanism>PLAIN<\/mechanism>/);
    const auth = await b.post(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`,
    );
    assert.match(auth, /<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/);
    const restarted = await b.post('', { 'xmpp:restart': 'true', 'xmlns:xmpp': 'urn:xmpp:xbosh', to: 'localhost' });
    assert.match(restarted, /<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    const bound = await b.post(
      `<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>`,
    );
    assert.match(bound, /<iq xmlns='jabber:client' type='result' id='b1'><bind[^>]*><jid>alice@localhost\/web<\/jid>/);
    const bob = await connect(server, 'bob');
    try {
      // an empty request is held until something arrives
      const t0 = Date.now();
      const poll = b.post('');
      await until(() => held(server, b.sid) === 1, 'the empty request is held');
      await bob.send(xml('message', { to: 'alice@localhost/web', type: 'chat' }, xml('body', {}, 'to the browser')));
      const got = await poll;
      assert.ok(Date.now() - t0 < 1500, 'answered as soon as the message came');
      assert.match(got, /<message xmlns='jabber:client'[^>]*><body>to the browser<\/body>/);
      // with nothing to send, a held request returns empty after 'wait'
      const idle0 = Date.now();
      assert.match(await b.post(''), /^<body xmlns='http:\/\/jabber.org\/protocol\/httpbind'[^>]*><\/body>$/);
      assert.ok(Date.now() - idle0 >= 1800, 'held for wait seconds');
      await b.post(`<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>from the browser</body></message>`).catch(() => '');
      await expectStanza(bob, (s) => s.getChildText('body') === 'from the browser');
      // a repeated rid gets the same answer; an unknown sid is item-not-found
      b.rid--;
      const again = await b.post('');
      assert.ok(again.startsWith('<body'));
      const bad = new Bosh(`http://127.0.0.1:${server.ports.http}/http-bind`);
      bad.sid = 'nope';
      assert.match(await bad.post(''), /type='terminate' condition='item-not-found'/);
      const term = await b.post(`<presence type='unavailable' xmlns='jabber:client'/>`, { type: 'terminate' });
      assert.match(term, /type='terminate'/);
    } finally {
      await stopAll(bob);
    }
  });

  it('a request repeated while held takes the held one’s place; wait=0 polls; stream errors come as remote-stream-error', async () => {
    const b = new Bosh(`http://127.0.0.1:${server.ports.http}/http-bind`);
    await b.create();
    await b.post(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`,
    );
    await b.post('', { 'xmpp:restart': 'true', 'xmlns:xmpp': 'urn:xmpp:xbosh', to: 'localhost' });
    await b.post(
      `<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>`,
    );
    const ctrl = new AbortController();
    const rid = b.rid;
    const first = fetch(b.url, { method: 'POST', body: `<body xmlns='${NS}' rid='${rid}' sid='${b.sid}'/>`, signal: ctrl.signal }).catch(
      () => undefined,
    );
    await until(() => held(server, b.sid) === 1, 'the first request is held');
    ctrl.abort();
    await first;
    b.rid = rid; // the client repeats the request it lost
    const repeated = b.post('');
    const bob = await connect(server, 'bob');
    try {
      await bob.send(xml('message', { to: 'alice@localhost/web', type: 'chat' }, xml('body', {}, 'after a repeat')));
      assert.match(await repeated, /after a repeat/);
      // the same resource bound elsewhere: this stream ends with a conflict stream error
      const other = await connect(server, 'alice', { resource: 'web', sasl: 1 });
      const last = await b.post('');
      assert.match(last, /type='terminate' condition='remote-stream-error'/);
      assert.match(last, /<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      await stopAll(other);
    } finally {
      await stopAll(bob);
    }
    const p = new Bosh(`http://127.0.0.1:${server.ports.http}/http-bind`);
    const created = await p.post('', {
      to: 'localhost',
      wait: '0',
      hold: '0',
      ver: '1.6',
      'xmpp:version': '1.0',
      'xmlns:xmpp': 'urn:xmpp:xbosh',
    });
    assert.match(created, /wait='0'/);
    assert.match(created, /hold='0'/);
    p.sid = /sid='([^']+)'/.exec(created)![1]!;
    const t0 = Date.now();
    await p.post('');
    assert.ok(Date.now() - t0 < 500, 'a polling client is answered at once');
  });

  it('a BOSH client over its rate limit is slowed (its requests wait unanswered), in order, losing nothing', async () => {
    await server.setLive('rate_limits.c2s.stanzas', '10');
    await server.setLive('rate_limits.burst', '0.5');
    const b = new Bosh(`http://127.0.0.1:${server.ports.http}/http-bind`);
    await b.create();
    await b.post(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`,
    );
    await b.post('', { 'xmpp:restart': 'true', 'xmlns:xmpp': 'urn:xmpp:xbosh', to: 'localhost' });
    await b.post(
      `<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>`,
    );
    const bob = await connect(server, 'bob');
    try {
      const got: string[] = [];
      bob.on('stanza', (st: import('ltx').Element) => void (st.is('message') && got.push(st.getChildText('body')!)));
      const t0 = Date.now();
      const msgs = Array.from(
        { length: 30 },
        (_, i) => `<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>m${i}</body></message>`,
      );
      const first = b.post(msgs.join('')).catch(() => '');
      const second = b.post(`<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>last</body></message>`).catch(() => '');
      await Promise.all([first, second]);
      await until(() => got.length === 31, 'all 31 messages delivered', 10_000);
      assert.deepEqual(got, [...Array.from({ length: 30 }, (_, i) => `m${i}`), 'last']);
      // 31 stanzas at 10/s with a burst of 5: about 2.6 s
      assert.ok(Date.now() - t0 >= 2000, `took only ${Date.now() - t0} ms`);
    } finally {
      await stopAll(bob);
    }
  });

  it('answers CORS preflight and lists BOSH in host-meta', async () => {
    const pre = await fetch(`http://127.0.0.1:${server.ports.http}/http-bind`, { method: 'OPTIONS' });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    const json = (await (await fetch(`http://127.0.0.1:${server.ports.http}/.well-known/host-meta.json`)).json()) as {
      links: { rel: string }[];
    };
    assert.ok(json.links.some((l) => l.rel === 'urn:xmpp:alt-connections:xbosh'));
  });
});

describe('BOSH with a real client library (stanza)', function () {
  this.timeout(30_000);
  it('stanza logs in over BOSH and exchanges messages with a TCP user', async () => {
    const server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: { http: { behind_tls_proxy: true } } });
    const XMPP = await import('stanza');
    const alice = XMPP.createClient({
      jid: 'alice@localhost',
      password: 'secret',
      resource: 'stanza',
      transports: { websocket: false, bosh: `http://127.0.0.1:${server.ports.http}/http-bind` },
    });
    const bob = await connect(server, 'bob');
    try {
      const started = new Promise<void>((resolve) => alice.once('session:started', () => resolve()));
      alice.connect();
      await started;
      await alice.sendPresence();
      const got = new Promise<string>((resolve) => alice.on('chat', (m) => resolve(m.body ?? '')));
      await bob.send(xml('message', { to: 'alice@localhost/stanza', type: 'chat' }, xml('body', {}, 'hello stanza')));
      assert.equal(await got, 'hello stanza');
      alice.sendMessage({ to: 'bob@localhost', type: 'chat', body: 'hello from stanza' });
      await expectStanza(bob, (s) => s.getChildText('body') === 'hello from stanza', 5000);
    } finally {
      alice.disconnect();
      await stopAll(bob);
      await server.stop();
    }
  });
});
