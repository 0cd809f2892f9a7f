// XMPP over WebSocket (RFC 7395) with @xmpp/client's WebSocket transport, raw
// WebSocket framing checks, and connection discovery (XEP-0156).
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectStanza, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';

// @xmpp/websocket uses the global WebSocket (Node 22 has one; Node 20 needs ws)
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

async function wsClient(server: Server, user: string, resource?: string): Promise<XmppClient> {
  const { client } = await import('@xmpp/client');
  const c = client({
    service: `ws://127.0.0.1:${server.ports.http}/xmpp-websocket`,
    domain: 'localhost',
    resource,
    credentials: (auth: (c: { username: string; password: string }, m: string) => Promise<void>) =>
      auth({ username: user, password: 'secret' }, 'SCRAM-SHA-1'),
  }) as XmppClient;
  c.received = [];
  c.on('stanza', (s: Element) => c.received.push(s));
  c.on('error', () => undefined);
  await c.start();
  await c.send(xml('presence'));
  return c;
}

/** A raw WebSocket speaking RFC 7395 frames. */
function rawWs(server: Server, protocols: string[] = ['xmpp']): Promise<{ ws: WebSocket; frames: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.ports.http}/xmpp-websocket`, protocols);
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(d.toString()));
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('error', reject);
  });
}

describe('XMPP over WebSocket (RFC 7395)', function () {
  this.timeout(30_000);
  let server: Server;
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: { http: { behind_tls_proxy: true } } });
  });
  afterEach(async () => {
    await server.stop();
  });

  it('logs in with SASL and binds over WebSocket, and chats with a TCP user', async () => {
    const alice = await wsClient(server, 'alice');
    const bob = await connect(server, 'bob');
    try {
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'from the web')));
      await expectStanza(bob, (s) => s.getChildText('body') === 'from the web');
      await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'from tcp')));
      await expectStanza(alice, (s) => s.getChildText('body') === 'from tcp');
    } finally {
      await stopAll(alice, bob);
    }
  });

  it('frames one element per message with <open/>/<close/>, and refuses a handshake without the xmpp subprotocol', async () => {
    const { ws, frames } = await rawWs(server);
    ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`);
    await until(() => frames.length >= 2, 'open and features');
    assert.match(
      frames[0]!,
      /^<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='[^']+' from='localhost' version='1.0' xml:lang='en'\/>$/,
    );
    assert.match(frames[1]!, /^<stream:features[\s\S]*<mechanism>SCRAM-SHA-1<\/mechanism>[\s\S]*<\/stream:features>$/);
    assert.ok(!frames[1]!.includes('starttls'), 'no STARTTLS on WebSocket');
    ws.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`);
    await until(() => frames.includes(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`), 'close answered');
    ws.close();
    await assert.rejects(rawWs(server, ['chat']), /Unexpected server response: 400/);
  });

  it('stream management resumption works over WebSocket as over TCP', async () => {
    const { client } = await import('@xmpp/client');
    const alice = client({
      service: `ws://127.0.0.1:${server.ports.http}/xmpp-websocket`,
      domain: 'localhost',
      resource: 'browser',
      credentials: (auth: (c: { username: string; password: string }, m: string) => Promise<void>) =>
        auth({ username: 'alice', password: 'secret' }, 'SCRAM-SHA-1'),
    }) as unknown as XmppClient & { streamManagement: { id: string; on(e: string, f: () => void): void } };
    const got: string[] = [];
    alice.on('error', () => undefined);
    alice.on('stanza', (st: Element) => {
      const b = st.getChildText('body');
      if (st.is('message') && b) got.push(b);
    });
    const bob = await connect(server, 'bob');
    try {
      await alice.start();
      await alice.send(xml('presence'));
      await until(() => !!alice.streamManagement.id, 'stream management enabled');
      const resumed = new Promise<void>((r) => alice.streamManagement.on('resumed', r));
      (alice as unknown as { socket: { socket: WebSocket } }).socket.socket.terminate();
      await until(
        () => [...server.sessions.all()].some((s) => s.jid.resource === 'browser' && s.detached),
        'the server sees the socket gone (session detached)',
      );
      await bob.send(xml('message', { to: 'alice@localhost/browser', type: 'chat' }, xml('body', {}, 'while away')));
      await resumed;
      await until(() => got.includes('while away'), 'delivered after resumption', 10_000);
      assert.deepEqual(got, ['while away']);
    } finally {
      await alice.stop().catch(() => undefined);
      await stopAll(bob);
    }
  });

  it('publishes the WebSocket endpoint in host-meta and host-meta.json with CORS', async () => {
    const base = `http://127.0.0.1:${server.ports.http}`;
    const xrd = await fetch(`${base}/.well-known/host-meta`);
    assert.equal(xrd.headers.get('access-control-allow-origin'), '*');
    const body = await xrd.text();
    assert.match(
      body,
      new RegExp(`<Link rel='urn:xmpp:alt-connections:websocket' href='wss://127.0.0.1:${server.ports.http}/xmpp-websocket'/>`),
    );
    const json = (await (await fetch(`${base}/.well-known/host-meta.json`)).json()) as { links: { rel: string; href: string }[] };
    assert.deepEqual(json.links, [
      // behind_tls_proxy: the public side is TLS, so the advertised URLs are wss:// and https://
      { rel: 'urn:xmpp:alt-connections:websocket', href: `wss://127.0.0.1:${server.ports.http}/xmpp-websocket` },
      { rel: 'urn:xmpp:alt-connections:xbosh', href: `https://127.0.0.1:${server.ports.http}/http-bind` },
    ]);
  });
});
