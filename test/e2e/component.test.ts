// XEP-0114 external components with a real component library (@xmpp/component),
// raw-socket probes for the handshake's error paths, rate limits that pause
// reading, and the monitoring endpoints (/metrics, /status).
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';

// @xmpp/component is CommonJS
const { component } = createRequire(import.meta.url)('@xmpp/component') as {
  component: (o: { service: string; domain: string; password: string }) => Component;
};
interface Component {
  on(ev: 'stanza', fn: (s: Element) => void): void;
  on(ev: 'error', fn: (e: Error & { condition?: string }) => void): void;
  on(ev: 'online', fn: () => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: Element): Promise<void>;
  iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
  iqCallee: { get(ns: string, name: string, fn: (ctx: { stanza: Element }) => Element): void };
  reconnect: { stop(): void };
  received: Element[];
}

async function startComponent(server: Server, domain: string, password: string): Promise<Component> {
  const c = component({ service: `xmpp://127.0.0.1:${server.ports.component}`, domain, password });
  c.reconnect.stop();
  c.received = [];
  c.on('stanza', (s) => c.received.push(s));
  c.on('error', () => undefined);
  await c.start();
  return c;
}

async function waitFor(c: { received: Element[] }, pred: (s: Element) => boolean, what: string): Promise<Element> {
  await until(() => c.received.some(pred), what);
  const s = c.received.find(pred)!;
  c.received.splice(c.received.indexOf(s), 1);
  return s;
}

/** a raw component connection: returns everything the server wrote until it closed (or timeout) */
async function rawComponent(port: number, domain: string, handshake: (id: string) => string | undefined, after?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    let sent = false;
    const t = setTimeout(() => {
      s.destroy();
      resolve(data);
    }, 3000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      data += d;
      const m = /id='([^']+)'/.exec(data);
      if (m && !sent) {
        sent = true;
        const h = handshake(m[1]!);
        if (h !== undefined) s.write(`<handshake>${h}</handshake>`);
      }
      if (after && data.includes('<handshake/>') && !data.includes('SENT')) {
        data += 'SENT';
        s.write(after);
      }
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(data);
    });
    s.on('error', () => undefined);
    s.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
    );
  });
}
const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

describe('external components (XEP-0114)', function () {
  this.timeout(20_000);
  let server: Server;
  let alice: XmppClient;

  beforeEach(async () => {
    server = await startServer({
      config: { component: { port: 0, secret: 'shared', secrets: { 'sms.localhost': 'sms-secret', 'irc.example.net': 'irc-secret' } } },
      users: { alice: 'secret', bob: 'secret' },
    });
    alice = await connect(server, 'alice', { resource: 'phone' });
  });
  afterEach(async () => {
    await stopAll(alice);
    await server.stop();
  });

  it('a bridge exchanges messages and IQs with users, from any address at its domain', async () => {
    const bridge = await startComponent(server, 'bridge.localhost', 'shared');
    try {
      await alice.send(xml('message', { to: 'room42@bridge.localhost', type: 'chat' }, xml('body', {}, 'hi bridge')));
      const m = await waitFor(bridge, (s) => s.is('message'), 'message at the component');
      assert.equal(m.attrs.from, 'alice@localhost/phone');
      assert.equal(m.attrs.to, 'room42@bridge.localhost');
      assert.equal(m.getChildText('body'), 'hi bridge');
      // any local part (and a subdomain) at its domain
      await bridge.send(
        xml('message', { from: 'nick@bridge.localhost', to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'hello from irc')),
      );
      const back = await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'hello from irc');
      assert.equal(back.attrs.from, 'nick@bridge.localhost');
      await bridge.send(xml('message', { from: 'x@deep.bridge.localhost', to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'sub')));
      await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'sub');
      // a user's IQ to the component, answered by it
      bridge.iqCallee.get('jabber:iq:version', 'query', () =>
        xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'test-bridge'), xml('version', {}, '1')),
      );
      const v = await iq(alice, xml('iq', { type: 'get', to: 'bridge.localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal(v.attrs.type, 'result', v.toString());
      assert.equal(v.getChild('query')!.getChildText('name'), 'test-bridge');
      // the component's IQ to the server
      const info = await bridge.iqCaller.request(
        xml(
          'iq',
          { type: 'get', from: 'bridge.localhost', to: 'localhost' },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
        ),
      );
      assert.ok(info.getChild('query')!.getChildren('feature').length > 0, info.toString());
      // listed in the server's disco#items while connected
      const items = await iq(
        alice,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })),
      );
      assert.ok(
        items
          .getChild('query')!
          .getChildren('item')
          .some((i) => i.attrs.jid === 'bridge.localhost'),
      );
    } finally {
      await bridge.stop();
    }
  });

  it('contacts at a component: subscriptions stamped with the bare JID update the roster; presence and probes reach it', async () => {
    const bridge = await startComponent(server, 'bridge.localhost', 'shared');
    try {
      await alice.send(xml('iq', { type: 'get', id: 'r1' }, xml('query', { xmlns: 'jabber:iq:roster' })));
      await expectStanza(alice, (s) => s.is('iq') && s.attrs.id === 'r1');
      await alice.send(xml('presence', { to: 'friend@bridge.localhost', type: 'subscribe' }));
      const sub = await waitFor(bridge, (s) => s.is('presence') && s.attrs.type === 'subscribe', 'subscribe at the component');
      assert.equal(sub.attrs.from, 'alice@localhost', 'RFC 6121 §3.1.2: the bare JID');
      const push = await expectStanza(alice, (s) => s.is('iq') && s.attrs.type === 'set' && !!s.getChild('query', 'jabber:iq:roster'));
      const item = push.getChild('query')!.getChild('item')!;
      assert.deepEqual([item.attrs.jid, item.attrs.ask], ['friend@bridge.localhost', 'subscribe']);
      await bridge.send(xml('presence', { from: 'friend@bridge.localhost', to: 'alice@localhost', type: 'subscribed' }));
      const push2 = await expectStanza(alice, (s) => s.is('iq') && s.attrs.type === 'set' && !!s.getChild('query', 'jabber:iq:roster'));
      assert.equal(push2.getChild('query')!.getChild('item')!.attrs.subscription, 'to');
      await bridge.send(xml('presence', { from: 'friend@bridge.localhost/irc', to: 'alice@localhost' }, xml('status', {}, 'on IRC')));
      const p = await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'friend@bridge.localhost/irc');
      assert.equal(p.getChildText('status'), 'on IRC');
      // a new login probes the contact at the component
      const alice2 = await connect(server, 'alice', { resource: 'laptop' });
      const probe = await waitFor(bridge, (s) => s.is('presence') && s.attrs.type === 'probe', 'probe at the component');
      assert.deepEqual([probe.attrs.from, probe.attrs.to], ['alice@localhost', 'friend@bridge.localhost']);
      await stopAll(alice2);
    } finally {
      await bridge.stop();
    }
  });

  it('a component going away: pending IQs get an error, later stanzas bounce, disco forgets it; it can reconnect', async () => {
    const bridge = await startComponent(server, 'bridge.localhost', 'shared');
    const pending = iq(alice, xml('iq', { type: 'get', to: 'bot@bridge.localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
    await waitFor(bridge, (s) => s.is('iq'), 'the IQ at the component');
    await bridge.stop();
    const err = await pending;
    assert.equal(err.attrs.type, 'error');
    assert.ok(err.getChild('error')!.getChild('service-unavailable'), err.toString());
    assert.equal(err.attrs.from, 'bot@bridge.localhost');
    await alice.send(xml('message', { to: 'bot@bridge.localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'anyone?')));
    const bounce = await expectStanza(alice, (s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === 'm1');
    assert.ok(bounce.getChild('error')!.getChild('service-unavailable'));
    const items = await iq(
      alice,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })),
    );
    assert.ok(
      !items
        .getChild('query')!
        .getChildren('item')
        .some((i) => i.attrs.jid === 'bridge.localhost'),
    );
    const again = await startComponent(server, 'bridge.localhost', 'shared');
    await alice.send(xml('message', { to: 'bot@bridge.localhost', type: 'chat' }, xml('body', {}, 'back?')));
    await waitFor(again, (s) => s.is('message') && s.getChildText('body') === 'back?', 'message after reconnecting');
    await again.stop();
  });

  it('an IQ the component never answers times out (component.iq_timeout); presence to a gone component is not bounced', async () => {
    await server.setLive('component.iq_timeout', '1');
    // a raw component that answers nothing (@xmpp/component would answer service-unavailable)
    const sock = net.connect({ port: server.ports.component, host: '127.0.0.1' });
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      data += d;
      const m = /id='([^']+)'/.exec(data);
      if (m && !data.includes('SENT')) {
        data += 'SENT';
        sock.write(`<handshake>${sha1(m[1]! + 'shared')}</handshake>`);
      }
    });
    sock.write(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='bridge.localhost'>`);
    await until(() => data.includes('<handshake/>'), 'handshake');
    const bridge = { stop: async () => void sock.destroy() };
    const t = Date.now();
    const r = await iq(alice, xml('iq', { type: 'get', to: 'bot@bridge.localhost' }, xml('query', { xmlns: 'jabber:iq:version' })), 5000);
    assert.ok(r.getChild('error')!.getChild('remote-server-timeout'), r.toString());
    assert.ok(Date.now() - t >= 900 && Date.now() - t < 3000, `after ${Date.now() - t} ms`);
    await bridge.stop();
    await until(() => !server.components.has('bridge.localhost'), 'the server saw the component go');
    await alice.send(xml('presence', { to: 'bot@bridge.localhost' }));
    await expectNothing(alice, (s) => s.is('presence') && s.attrs.type === 'error', { after: [alice] });
  });

  it('refuses a wrong secret, a foreign domain, a second connection, and a forged from, with the right stream errors', async () => {
    const port = server.ports.component;
    // the library's own view of a wrong secret: start() fails with the stream error
    const bad = component({ service: `xmpp://127.0.0.1:${port}`, domain: 'bridge.localhost', password: 'nope' });
    bad.reconnect.stop();
    const failed = new Promise<string>((resolve) => bad.on('error', (e) => resolve(e.condition ?? e.message)));
    void bad.start().catch(() => undefined);
    assert.equal(await failed, 'not-authorized');
    await bad.stop().catch(() => undefined);
    const wrong = await rawComponent(port, 'bridge.localhost', (id) => sha1(id + 'nope'));
    assert.match(wrong, /<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const foreign = await rawComponent(port, 'bridge.example.org', (id) => sha1(id + 'shared'));
    assert.match(foreign, /<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const badNs = await new Promise<string>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      let d = '';
      s.on('data', (b) => (d += b.toString()));
      s.on('close', () => resolve(d));
      s.write(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='bridge.localhost'>`);
    });
    assert.match(badNs, /<invalid-namespace /);
    // per-component secrets: sms.localhost has its own, the shared one does not open it
    assert.match(await rawComponent(port, 'sms.localhost', (id) => sha1(id + 'shared')), /not-authorized/);
    assert.match(await rawComponent(port, 'sms.localhost', (id) => sha1(id + 'sms-secret'), '</stream:stream>'), /<handshake\/>/);
    // a domain outside ours connects only with a secret of its own
    assert.match(await rawComponent(port, 'irc.example.net', (id) => sha1(id + 'irc-secret'), '</stream:stream>'), /<handshake\/>/);
    const bridge = await startComponent(server, 'bridge.localhost', 'shared');
    try {
      const second = await rawComponent(port, 'bridge.localhost', (id) => sha1(id + 'shared'));
      assert.match(second, /<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      // the first one still works
      await alice.send(xml('message', { to: 'bridge.localhost', type: 'chat' }, xml('body', {}, 'still there?')));
      await waitFor(bridge, (s) => s.is('message') && s.getChildText('body') === 'still there?', 'message to the first connection');
    } finally {
      await bridge.stop();
    }
    const forged = await rawComponent(
      port,
      'bridge.localhost',
      (id) => sha1(id + 'shared'),
      `<message from='alice@localhost' to='bob@localhost' type='chat'><body>spoof</body></message>`,
    );
    assert.match(forged, /<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    assert.match(metrics, /uzzap_component_auth_failures_total\{reason="not-authorized"\} [2-9]/);
    assert.match(metrics, /uzzap_component_auth_failures_total\{reason="conflict"\} 1/);
  });

  it('a component speaks only for its own domain: not the server, a parent of it, or another component', async () => {
    const port = server.ports.component;
    const a = await startComponent(server, 'a.localhost', 'shared');
    const b = await startComponent(server, 'b.a.localhost', 'shared');
    try {
      // a subdomain nobody else serves is the component's own
      await a.send(xml('message', { from: 'x@sub.a.localhost', to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'from sub')));
      await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'from sub');
      // ... but b.a.localhost is another component's
      const asB = await rawComponent(
        port,
        'c.localhost',
        (id) => sha1(id + 'shared'),
        `<message from='x@b.a.localhost' to='alice@localhost' type='chat'><body>spoof</body></message>`,
      );
      assert.match(asB, /invalid-from/);
      const asUser = await rawComponent(
        port,
        'c.localhost',
        (id) => sha1(id + 'shared'),
        `<message from='alice@localhost' to='bob@localhost' type='chat'><body>spoof</body></message>`,
      );
      assert.match(asUser, /invalid-from/);
    } finally {
      await a.stop();
      await b.stop();
    }
    // a parent of the server's domain cannot connect even with a secret of its own
    const s2 = await startServer({
      config: { domain: 'chat.example.com', component: { port: 0, secrets: { 'example.com': 'x', 'chat.example.com': 'y' } } },
    });
    try {
      assert.match(await rawComponent(s2.ports.component, 'example.com', (id) => sha1(id + 'x')), /host-unknown/);
      assert.match(await rawComponent(s2.ports.component, 'chat.example.com', (id) => sha1(id + 'y')), /host-unknown/);
    } finally {
      await s2.stop();
    }
  });

  it('stanzas without from or to, in the wrong namespace, or a second stream header get stream errors', async () => {
    const port = server.ports.component;
    const ok = (id: string): string => sha1(id + 'shared');
    assert.match(
      await rawComponent(port, 'r.localhost', ok, `<iq type='get' id='q1' from='r.localhost'><ping xmlns='urn:xmpp:ping'/></iq>`),
      /improper-addressing/,
    );
    assert.match(
      await rawComponent(port, 'r.localhost', ok, `<message to='alice@localhost'><body>x</body></message>`),
      /improper-addressing/,
    );
    assert.match(
      await rawComponent(
        port,
        'r.localhost',
        ok,
        `<message xmlns='jabber:client' from='r.localhost' to='alice@localhost'><body>x</body></message>`,
      ),
      /invalid-namespace/,
    );
    const again = await rawComponent(
      port,
      'r.localhost',
      ok,
      `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='r.localhost'><message from='r.localhost' to='alice@localhost'><body>x</body></message>`,
    );
    assert.match(again, /policy-violation/);
  });

  it('the component domain list can be restricted (component.allowed)', async () => {
    const s2 = await startServer({ config: { component: { port: 0, secret: 'shared', allowed: ['irc.localhost'] } } });
    try {
      const port = s2.ports.component;
      assert.match(await rawComponent(port, 'bridge.localhost', (id) => sha1(id + 'shared')), /host-unknown/);
      assert.match(await rawComponent(port, 'irc.localhost', (id) => sha1(id + 'shared'), '</stream:stream>'), /<handshake\/>/);
    } finally {
      await s2.stop();
    }
  });
});

describe('rate limits (traffic shaping by pausing reads)', function () {
  this.timeout(30_000);

  it('by default a client connection may send 1 MiB/s: a 3 MiB flood is paced, and all of it arrives', async () => {
    // the default rate; the recipient may have the 2 MiB burst queued at once (its own bound is 1 MiB)
    const server = await startServer({ config: { limits: { outbound_buffer: 8 * 1048576 } }, users: { flood: 'secret', sink: 'secret' } });
    const flood = await connect(server, 'flood');
    const sink = await connect(server, 'sink');
    try {
      const N = 300;
      const body = 'x'.repeat(10 * 1024);
      let got = 0;
      sink.on('stanza', (s: Element) => {
        if (s.is('message') && s.attrs.id?.startsWith('f') && s.getChild('body')) got++;
      });
      const t0 = Date.now();
      for (let i = 0; i < N; i++) void flood.send(xml('message', { to: 'sink@localhost', type: 'chat', id: `f${i}` }, xml('body', {}, body)));
      await until(() => got === N, `all ${N} messages delivered`, 20_000);
      // 3 MiB at 1 MiB/s with a 2 MiB burst: at least ~1 s
      assert.ok(Date.now() - t0 >= 900, `3 MiB went through in ${Date.now() - t0} ms`);
      const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
      assert.match(metrics, /uzzap_rate_limited_total\{stream="c2s"\} [1-9]/);
    } finally {
      await stopAll(flood, sink);
      await server.stop();
    }
  });

  it('a flooder is slowed to its rate and loses nothing, while other users stay fast; exempt accounts are not limited', async () => {
    const server = await startServer({
      config: { rate_limits: { c2s: { stanzas: 100, bytes: 0 }, burst: 0.2, exempt: ['vip@localhost'] } },
      users: { flood: 'secret', sink: 'secret', carol: 'secret', dave: 'secret', vip: 'secret' },
    });
    const flood = await connect(server, 'flood');
    const sink = await connect(server, 'sink');
    const carol = await connect(server, 'carol');
    const dave = await connect(server, 'dave');
    const vip = await connect(server, 'vip');
    try {
      const N = 300;
      let got = 0;
      let vipGot = 0;
      sink.on('stanza', (s: Element) => {
        if (s.is('message') && s.getChildText('body')?.startsWith('f')) got++;
        if (s.is('message') && s.getChildText('body')?.startsWith('v')) vipGot++;
      });
      const t0 = Date.now();
      // written in one go: the server must read them at ~100/s
      for (let i = 0; i < N; i++) void flood.send(xml('message', { to: 'sink@localhost', type: 'chat' }, xml('body', {}, `f${i}`)));
      // meanwhile another pair chats and gets answers quickly
      const rtts: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = Date.now();
        await carol.send(xml('message', { to: 'dave@localhost', type: 'chat' }, xml('body', {}, `c${i}`)));
        await expectStanza(dave, (s) => s.is('message') && s.getChildText('body') === `c${i}`);
        rtts.push(Date.now() - t);
      }
      await until(() => got === N, `all ${N} flood messages delivered (got ${got})`, 10_000);
      const took = Date.now() - t0;
      // 300 stanzas at 100/s with a 20-stanza burst: at least ~2.5 s; nothing dropped
      assert.ok(took >= 2300, `the flood took only ${took} ms`);
      assert.ok(Math.max(...rtts) < 500, `other users were slowed: ${rtts.join(',')} ms`);
      // an exempt account is not limited
      const tv = Date.now();
      for (let i = 0; i < N; i++) void vip.send(xml('message', { to: 'sink@localhost', type: 'chat' }, xml('body', {}, `v${i}`)));
      await until(() => vipGot === N, 'all vip messages', 10_000);
      assert.ok(Date.now() - tv < 2000, `vip took ${Date.now() - tv} ms`);
      const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
      assert.match(metrics, /uzzap_rate_limited_total\{stream="c2s"\} [1-9]/);
    } finally {
      await stopAll(flood, sink, carol, dave, vip);
      await server.stop();
    }
  });

  it('per-account overrides and live changes apply to sessions already connected', async () => {
    const server = await startServer({
      config: { rate_limits: { overrides: { 'bot@localhost': { stanzas: 50, bytes: 0 } }, burst: 0.2 } },
      users: { bot: 'secret', sink: 'secret' },
    });
    const bot = await connect(server, 'bot');
    const sink = await connect(server, 'sink');
    try {
      let got = 0;
      sink.on('stanza', (s: Element) => void (s.is('message') && got++));
      const burst = async (n: number): Promise<number> => {
        got = 0;
        const t = Date.now();
        for (let i = 0; i < n; i++) void bot.send(xml('message', { to: 'sink@localhost', type: 'chat' }, xml('body', {}, `b${i}`)));
        await until(() => got === n, `${n} delivered`, 15_000);
        return Date.now() - t;
      };
      const slow = await burst(110);
      assert.ok(slow >= 1500, `override of 50/s: 110 messages took ${slow} ms`);
      await server.setLive('rate_limits.overrides', '');
      // the override map is YAML-only; clearing it through the environment form leaves no override
      const fast = await burst(110);
      assert.ok(fast < 1000, `after lifting the limit: ${fast} ms`);
    } finally {
      await stopAll(bot, sink);
      await server.stop();
    }
  });
});

describe('monitoring', function () {
  this.timeout(20_000);

  it('/metrics covers sessions, SM, offline, rooms, archive, storage and Redis latency, auth, rate limits, slow consumers, components', async () => {
    const server = await startServer({ config: { component: { port: 0, secret: 's' } }, users: { alice: 'secret', bob: 'secret' } });
    const alice = await connect(server, 'alice');
    try {
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'for later')));
      await alice.send(xml('presence', { to: 'room@conference.localhost/alice' }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
      await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'room@conference.localhost/alice');
      await assert.rejects(connect(server, 'alice', { password: 'wrong' }));
      await until(
        async () =>
          /uzzap_archive_batch_seconds_count [1-9]/.test(await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text()),
        'an archive batch',
      );
      await server.stats(); // samples storage and registry latency
      const text = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
      for (const re of [
        /uzzap_sessions 1/,
        /uzzap_connections\{state="bound"\} 1/,
        /uzzap_sm_detached_sessions 0/,
        /uzzap_sm_resumed_total 0/,
        /uzzap_offline_stored_total 1/,
        /uzzap_offline_users_waiting 1/,
        /uzzap_muc_rooms 1/,
        /uzzap_muc_occupants 1/,
        /uzzap_archive_batch_seconds_bucket/,
        /uzzap_archive_batch_messages_count [1-9]/,
        /uzzap_storage_ping_seconds_count [1-9]/,
        /uzzap_registry_ping_seconds_count [1-9]/,
        /uzzap_auth_failure_total\{mechanism="SCRAM-SHA-1",condition="not-authorized"\} 1/,
        /uzzap_rate_limited_total/,
        /uzzap_slow_consumer_closes_total 0/,
        /uzzap_components 0/,
        /uzzap_routing_seconds_bucket/,
        /nodejs_eventloop_lag_p99_seconds/,
        /uzzap_event_loop_lag_seconds\{stat="p99"\}/,
        /process_resident_memory_bytes/,
      ])
        assert.match(text, re);
    } finally {
      await stopAll(alice);
      await server.stop();
    }
  });

  it('/status answers loopback clients, or whoever has the bearer token when one is set', async () => {
    const server = await startServer({ users: { alice: 'secret' } });
    const alice = await connect(server, 'alice');
    try {
      const res = await fetch(`http://127.0.0.1:${server.ports.http}/status`);
      assert.equal(res.status, 200);
      const st = (await res.json()) as {
        sessions: number;
        domain: string;
        storage: { latencyMs: number };
        modules: string[];
        extra: Record<string, number>;
      };
      assert.equal(st.sessions, 1);
      assert.equal(st.domain, 'localhost');
      assert.ok(st.storage.latencyMs >= 0);
      assert.ok(st.modules.includes('adhoc') && st.modules.includes('admin'));
      assert.equal(st.extra.rooms, 0);
      await server.setLive('http.status_token', 't0ps3cret');
      assert.equal((await fetch(`http://127.0.0.1:${server.ports.http}/status`)).status, 401);
      const ok = await fetch(`http://127.0.0.1:${server.ports.http}/status`, { headers: { authorization: 'Bearer t0ps3cret' } });
      assert.equal(ok.status, 200);
    } finally {
      await stopAll(alice);
      await server.stop();
    }
  });
});
