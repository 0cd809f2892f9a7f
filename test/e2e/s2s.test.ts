// Federation between two Uzzap servers on loopback (RFC 6120 server-to-server,
// XEP-0220 dialback), each its own domain, found through s2s.hosts (UZZAP_S2S_HOSTS).
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { RawClient } from '../helpers/raw.js';
import { dialbackKey } from '../../src/s2s/dialback.js';
import { freePort, metricValue as metric } from '../helpers/federation.js';

const SERVER_HEADER = (from: string, to: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'>`;

describe('federation between two servers (s2s, dialback)', () => {
  let a: Server;
  let b: Server;
  let alice: XmppClient;
  let bob: XmppClient;
  let pb = 0;
  const fake = net.createServer();
  before(async () => {
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const fakePort = (fake.address() as net.AddressInfo).port;
    const [pa, p2, dead] = [await freePort(), await freePort(), await freePort()];
    pb = p2;
    const s2s = (port: number, hosts: Record<string, string>) => ({ port, hosts, require_valid_certs: false, connect_timeout: 2 });
    a = await startServer({
      users: { alice: 'secret' },
      config: {
        domain: 'a.test',
        s2s: s2s(pa, { 'b.test': `127.0.0.1:${pb}`, 'dead.test': `127.0.0.1:${dead}`, 'fake.test': `127.0.0.1:${fakePort}` }),
      },
    });
    b = await startServer({
      users: { bob: 'secret' },
      config: { domain: 'b.test', s2s: s2s(pb, { 'a.test': `127.0.0.1:${pa}`, 'conference.a.test': `127.0.0.1:${pa}` }) },
    });
    alice = await connect(a, 'alice', { domain: 'a.test', resource: 'home' });
    bob = await connect(b, 'bob', { domain: 'b.test', resource: 'work' });
  });
  after(async () => {
    fake.close();
    await stopAll(alice, bob);
    await a?.stop();
    await b?.stop();
  });

  it('a message goes to the other server and a reply comes back on the same connection (dialback, XEP-0288 bidi)', async () => {
    const streams = async (s: Server, direction: string): Promise<number> =>
      metric(s, 'uzzap_s2s_streams', `direction="${direction}",state="authenticated"`);
    const [bOut, aIn] = [await streams(b, 'out'), await streams(a, 'in')];
    await alice.send(xml('message', { to: 'bob@b.test/work', type: 'chat', id: 'm1' }, xml('body', {}, 'hello from a')));
    const m = await expectStanza(bob, (s) => s.is('message') && s.getChildText('body') === 'hello from a', 5000);
    assert.equal(m.attrs.from, 'alice@a.test/home');
    await bob.send(xml('message', { to: 'alice@a.test/home', type: 'chat' }, xml('body', {}, 'hello from b')));
    const r = await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'hello from b', 5000);
    assert.equal(r.attrs.from, 'bob@b.test/work');
    // b.test answered over a.test's connection: it authenticated no stream of its own (the one it
    // opened to check a.test's dialback key carries no stanzas)
    assert.equal(await streams(b, 'out'), bOut);
    assert.equal(await streams(a, 'in'), aIn);
    assert.ok((await metric(b, 'uzzap_s2s_stanzas_total', 'direction="out",domain="a.test"')) >= 1);
  });

  it('on a stream we opened with bidi, the peer may send only from its own domain to a domain authenticated on it', async () => {
    // fake.test: a raw server a.test connects to; it offers bidi, takes any dialback key, sends back
    const got = new Promise<{ socket: net.Socket; data: () => string }>((resolve) => {
      fake.once('connection', (socket: net.Socket) => {
        let data = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          data += d;
          if (/<stream:stream[^>]*>/.test(d))
            socket.write(
              `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='fake1' from='fake.test' to='a.test' version='1.0'><stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback><bidi xmlns='urn:xmpp:features:bidi'/></stream:features>`,
            );
          if (d.includes('<db:result')) socket.write(`<db:result from='fake.test' to='a.test' type='valid'/>`);
        });
        resolve({ socket, data: () => data });
      });
    });
    await alice.send(xml('message', { to: 'x@fake.test', type: 'chat' }, xml('body', {}, 'to fake')));
    const peer = await got;
    await until(() => peer.data().includes('to fake'), 'the message at fake.test', 5000);
    assert.match(peer.data(), /<bidi xmlns='urn:xmpp:bidi'\/>/);
    peer.socket.write(`<message from='x@fake.test/r' to='alice@a.test/home' type='chat'><body>from fake</body></message>`);
    const m = await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'from fake', 5000);
    assert.equal(m.attrs.from, 'x@fake.test/r');
    // another domain on that stream: not proven by it, so the stream ends
    peer.socket.write(`<message from='eve@other.test' to='alice@a.test/home' type='chat'><body>forged</body></message>`);
    await until(() => peer.data().includes('<invalid-from'), 'invalid-from at fake.test', 5000);
    assert.ok(!alice.received.some((s) => s.getChildText('body') === 'forged'));
    peer.socket.destroy();
  });

  it('an IQ to the other server is answered (XEP-0092 version of b.test)', async () => {
    const res = await iq(alice, xml('iq', { type: 'get', to: 'b.test' }, xml('query', { xmlns: 'jabber:iq:version' })), 5000);
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.attrs.from, 'b.test');
    assert.equal(res.getChild('query')?.getChildText('name'), 'Uzzap');
  });

  it('presence subscription across servers: request, approval, presence', async () => {
    await alice.send(xml('presence', { to: 'bob@b.test', type: 'subscribe' }));
    await expectStanza(bob, (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'alice@a.test', 5000);
    await bob.send(xml('presence', { to: 'alice@a.test', type: 'subscribed' }));
    await until(async () => (await a.storage.roster.getItem('alice', 'bob@b.test'))?.subscription === 'to', "alice's roster: to bob", 5000);
    // bob's presence reaches his new subscriber on the other server
    await bob.send(xml('presence', {}, xml('status', {}, 'at work')));
    await expectStanza(
      alice,
      (s) => s.is('presence') && s.attrs.from === 'bob@b.test/work' && s.getChildText('status') === 'at work',
      5000,
    );
  });

  it('a user of the other server joins a room here and chats in it (a remote occupant)', async () => {
    const MUC = 'http://jabber.org/protocol/muc';
    const selfIn = (c: XmppClient, full: string) =>
      expectStanza(
        c,
        (s) =>
          s.is('presence') &&
          s.attrs.from === full &&
          !!s
            .getChild('x', `${MUC}#user`)
            ?.getChildren('status')
            .some((st) => st.attrs.code === '110'),
        8000,
        `self-presence ${full}`,
      );
    await alice.send(xml('presence', { to: 'lobby@conference.a.test/alice' }, xml('x', { xmlns: MUC })));
    await selfIn(alice, 'lobby@conference.a.test/alice');
    const made = await iq(
      alice,
      xml(
        'iq',
        { type: 'set', to: 'lobby@conference.a.test' },
        xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      ),
    );
    assert.equal(made.attrs.type, 'result', made.toString());
    await bob.send(xml('presence', { to: 'lobby@conference.a.test/bob' }, xml('x', { xmlns: MUC })));
    await selfIn(bob, 'lobby@conference.a.test/bob');
    await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'lobby@conference.a.test/bob', 5000);
    await alice.send(xml('message', { to: 'lobby@conference.a.test', type: 'groupchat' }, xml('body', {}, 'hi room')));
    await expectStanza(
      bob,
      (s) => s.is('message') && s.attrs.from === 'lobby@conference.a.test/alice' && s.getChildText('body') === 'hi room',
      5000,
    );
    await bob.send(xml('message', { to: 'lobby@conference.a.test', type: 'groupchat' }, xml('body', {}, 'hi from b')));
    await expectStanza(
      alice,
      (s) => s.is('message') && s.attrs.from === 'lobby@conference.a.test/bob' && s.getChildText('body') === 'hi from b',
      5000,
    );
  });

  it('a domain that cannot be reached: remote-server-timeout', async () => {
    const res = await iq(alice, xml('iq', { type: 'get', to: 'dead.test' }, xml('query', { xmlns: 'jabber:iq:version' })), 8000);
    assert.equal(res.attrs.type, 'error');
    assert.ok(res.getChild('error')?.getChild('remote-server-timeout', 'urn:ietf:params:xml:ns:xmpp-stanzas'), res.toString());
  });

  it('a domain that does not resolve: remote-server-not-found', async () => {
    await alice.send(xml('message', { to: 'romeo@montague.invalid', type: 'chat' }, xml('body', {}, 'anyone?')));
    const err = await expectStanza(
      alice,
      (s) => s.is('message') && s.attrs.type === 'error' && s.attrs.from === 'romeo@montague.invalid',
      8000,
    );
    assert.ok(err.getChild('error')?.getChild('remote-server-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), err.toString());
  });

  it('an incoming stream that sends stanzas without dialback, or with a key nobody gave, is refused', async () => {
    const raw = await RawClient.connect(pb);
    raw.send(SERVER_HEADER('a.test', 'b.test'));
    await raw.waitFor('</stream:features>');
    raw.send(`<message from='alice@a.test/x' to='bob@b.test' type='chat'><body>forged</body></message>`);
    await raw.waitFor(/<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await raw.waitClosed();
    const raw2 = await RawClient.connect(pb);
    raw2.send(SERVER_HEADER('a.test', 'b.test'));
    const id = /id='([^']+)'/.exec(await raw2.waitFor(/<stream:stream[^>]*>/))![1]!;
    await raw2.waitFor('</stream:features>');
    // a key made with another secret: a.test (the authoritative server) says invalid
    raw2.send(`<db:result from='a.test' to='b.test'>${dialbackKey('not the secret', 'b.test', 'a.test', id)}</db:result>`);
    await raw2.waitFor(/<db:result from='b.test' to='a.test' type='invalid'/, 5000);
    await raw2.waitClosed();
    assert.ok(!bob.received.some((s) => s.getChildText('body') === 'forged'));
  });

  it('a key that is not a key (markup for the question we would ask) ends the stream; a key naming us or an address is refused', async () => {
    const raw = await RawClient.connect(pb);
    raw.send(SERVER_HEADER('a.test', 'b.test'));
    await raw.waitFor('</stream:features>');
    raw.send(
      `<db:result from='a.test' to='b.test'>&lt;/db:verify&gt;&lt;message from='bob@b.test' to='alice@a.test'&gt;&lt;body&gt;forged&lt;/body&gt;&lt;/message&gt;</db:result>`,
    );
    await raw.waitFor(/<improper-addressing xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await raw.waitClosed();
    const raw2 = await RawClient.connect(pb);
    raw2.send(SERVER_HEADER('a.test', 'b.test'));
    await raw2.waitFor('</stream:features>');
    raw2.send(`<db:result from='b.test' to='b.test'>${'ab'.repeat(32)}</db:result>`);
    await raw2.waitFor(/<db:result from='b.test' to='b.test' type='error'><error type='cancel'><not-acceptable /);
    raw2.send(`<db:result from='127.0.0.1' to='b.test'>${'ab'.repeat(32)}</db:result>`);
    await raw2.waitFor(/<db:result from='b.test' to='127.0.0.1' type='error'>/);
    raw2.end();
    assert.ok(!alice.received.some((s) => s.getChildText('body') === 'forged'));
  });

  it('a key for a domain this server does not serve is a dialback error, not a stream error', async () => {
    const raw = await RawClient.connect(pb);
    raw.send(SERVER_HEADER('a.test', 'b.test'));
    await raw.waitFor('</stream:features>');
    raw.send(`<db:result from='a.test' to='other.test'>abc</db:result>`);
    await raw.waitFor(/<db:result from='other.test' to='a.test' type='error'><error type='cancel'><item-not-found /);
    raw.end();
  });

  it('a key whose authoritative server cannot be asked is a dialback error (XEP-0220 §2.4), not "invalid", and the stream stays', async () => {
    // dead.test: a.test's s2s.hosts names a closed port; nowhere.invalid does not resolve
    const raw = await RawClient.connect(a.ports.s2s);
    try {
      raw.send(SERVER_HEADER('dead.test', 'a.test'));
      await raw.waitFor('</stream:features>');
      raw.send(`<db:result from='dead.test' to='a.test'>${'ab'.repeat(32)}</db:result>`);
      await raw.waitFor(/<db:result from='a.test' to='dead.test' type='error'><error type='cancel'><remote-connection-failed /, 8000);
      raw.send(`<db:result from='nowhere.invalid' to='a.test'>${'cd'.repeat(32)}</db:result>`);
      await raw.waitFor(
        /<db:result from='a.test' to='nowhere.invalid' type='error'><error type='cancel'><remote-server-not-found /,
        15_000,
      );
      assert.doesNotMatch(raw.data, /<stream:error>|type='invalid'/);
    } finally {
      raw.end();
    }
  });
});

describe('federation with the defaults (UZZAP_S2S_REQUIRE_VALID_CERTS=true)', () => {
  let c: Server;
  let d: Server;
  let carol: XmppClient;
  let pd = 0;
  before(async () => {
    const [pc, p2] = [await freePort(), await freePort()];
    pd = p2;
    // the test certificates name localhost, not c.test or d.test: they do not verify for these domains
    c = await startServer({
      users: { carol: 'secret' },
      config: { domain: 'c.test', s2s: { port: pc, hosts: { 'd.test': `127.0.0.1:${pd}` }, connect_timeout: 2 } },
    });
    d = await startServer({
      users: { dave: 'secret' },
      config: { domain: 'd.test', s2s: { port: pd, hosts: { 'c.test': `127.0.0.1:${pc}` }, connect_timeout: 2 } },
    });
    carol = await connect(c, 'carol', { domain: 'c.test' });
  });
  after(async () => {
    await stopAll(carol);
    await c?.stop();
    await d?.stop();
  });

  it('a server whose certificate does not verify for its domain is not talked to: remote-server-timeout', async () => {
    const res = await iq(carol, xml('iq', { type: 'get', to: 'd.test' }, xml('query', { xmlns: 'jabber:iq:version' })), 8000);
    assert.equal(res.attrs.type, 'error');
    assert.ok(res.getChild('error')?.getChild('remote-server-timeout', 'urn:ietf:params:xml:ns:xmpp-stanzas'), res.toString());
  });

  it('dialback before STARTTLS is refused (policy-violation), and STARTTLS is required', async () => {
    const raw = await RawClient.connect(pd);
    raw.send(SERVER_HEADER('c.test', 'd.test'));
    const features = await raw.waitFor(/<stream:features>[\s\S]*?<\/stream:features>/);
    assert.match(features, /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/);
    raw.send(`<db:result from='c.test' to='d.test'>${'ab'.repeat(32)}</db:result>`);
    await raw.waitFor(/<db:result from='d.test' to='c.test' type='error'><error type='modify'><policy-violation /);
    raw.end();
  });
});
