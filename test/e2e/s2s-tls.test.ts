// Federation authenticated by certificates (XEP-0178 SASL EXTERNAL, RFC 6125 names)
// and direct TLS between servers (XEP-0368): a.test and b.test hold certificates from
// one CA that both trust through s2s.ca_file (as a private federation would: the tests'
// CA, which the clients trust too), c.test one that names another domain. a.test reaches
// b.test with STARTTLS, b.test reaches a.test on its direct TLS port (s2s.hosts:
// xmpps://), and both authenticate their own domain with EXTERNAL, without dialback;
// c.test falls back to dialback (a.test accepts unverified peers by dialback:
// require_valid_certs false there; b.test keeps the default).
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Server } from '../../src/server.js';
import { generateCert } from '../../src/tls.js';
import { startServer, testCert } from '../helpers/server.js';
import { connect, expectStanza, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { RawClient } from '../helpers/raw.js';
import { freePort, metricValue as metric } from '../helpers/federation.js';

const SERVER_HEADER = (from: string, to: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'>`;

const body = (text: string) => (s: { is(n: string): boolean; getChildText(n: string): string | null }) =>
  s.is('message') && s.getChildText('body') === text;

describe('federation with certificates: SASL EXTERNAL (XEP-0178) and direct TLS (XEP-0368)', function () {
  this.timeout(20_000);
  let shared = '';
  /** strict.test: a raw server that offers EXTERNAL, refuses it and closes (XEP-0178), then takes dialback on the next connection */
  const strict = net.createServer();
  const strictLog: string[] = [];
  let pa = 0;
  let a: Server, b: Server, c: Server;
  let alice: XmppClient, bob: XmppClient, carol: XmppClient;
  let certA: { cert: string; key: string; ca: string };
  let certB: { cert: string; key: string };

  /** a TLS connection to a.test's direct TLS port presenting b.test's certificate (or `as`), its header sent, the features read */
  const probe = async (from: string, as: { cert: string; key: string } = certB, extra: tls.ConnectionOptions = {}): Promise<RawClient> => {
    const s = tls.connect({
      port: a.ports.s2sTls,
      host: '127.0.0.1',
      servername: 'a.test',
      ALPNProtocols: ['xmpp-server'],
      ca: readFileSync(join(shared, 'uzzap-local-ca.pem'), 'utf8'),
      cert: readFileSync(as.cert),
      key: readFileSync(as.key),
      ...extra,
    });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', () => resolve());
      s.once('error', reject);
    });
    assert.equal(s.alpnProtocol, 'xmpp-server');
    const r = RawClient.over(s);
    r.send(SERVER_HEADER(from, 'a.test'));
    await r.waitFor('</stream:features>');
    return r;
  };

  before(async () => {
    shared = dirname((await testCert()).ca);
    certA = await generateCert('a.test', shared);
    certB = await generateCert('b.test', shared);
    const certC = await generateCert('other.test', shared);
    await new Promise<void>((r) => strict.listen(0, '127.0.0.1', () => r()));
    const strictPort = (strict.address() as net.AddressInfo).port;
    let paTls: number, pb: number, pc: number;
    [pa, paTls, pb, pc] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const ca_file = certA.ca;
    a = await startServer({
      users: { alice: 'secret' },
      config: {
        domain: 'a.test',
        tls: { cert: certA.cert, key: certA.key },
        // what b.test's streams may send: 8 KiB/s (16 KiB at once); stanzas up to 4 KiB
        rate_limits: { overrides: { 'b.test': { stanzas: 0, bytes: 8192 } } },
        max_stanza_size: 1_000_000,
        s2s: {
          port: pa,
          tls_port: paTls,
          ca_file,
          require_valid_certs: false,
          max_stanza_size: 4096,
          hosts: { 'b.test': `127.0.0.1:${pb}`, 'c.test': `127.0.0.1:${pc}`, 'strict.test': `127.0.0.1:${strictPort}` },
          connect_timeout: 2,
        },
      },
    });
    b = await startServer({
      users: { bob: 'secret' },
      config: {
        domain: 'b.test',
        tls: { cert: certB.cert, key: certB.key },
        s2s: {
          port: pb,
          ca_file,
          hosts: { 'a.test': `xmpps://127.0.0.1:${paTls}`, 'conference.a.test': `xmpps://127.0.0.1:${paTls}` },
          connect_timeout: 2,
        },
      },
    });
    // c.test: a certificate for another name; dialback is what authenticates it
    c = await startServer({
      users: { carol: 'secret' },
      config: {
        domain: 'c.test',
        tls: { cert: certC.cert, key: certC.key },
        s2s: { port: pc, require_valid_certs: false, hosts: { 'a.test': `127.0.0.1:${pa}` }, connect_timeout: 2 },
      },
    });
    alice = await connect(a, 'alice', { domain: 'a.test', resource: 'home' });
    bob = await connect(b, 'bob', { domain: 'b.test', resource: 'work' });
    carol = await connect(c, 'carol', { domain: 'c.test', resource: 'x' });
  });
  after(async () => {
    strict.close();
    await stopAll(alice, bob, carol);
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  /** these counters of `s` now */
  const counters = async (s: Server): Promise<Record<string, number>> => ({
    externalOut: await metric(s, 'uzzap_s2s_sasl_external_total', 'direction="out",result="success"'),
    externalIn: await metric(s, 'uzzap_s2s_sasl_external_total', 'direction="in",result="success"'),
    dialbackOut: await metric(s, 'uzzap_s2s_dialback_total', 'direction="out",result="valid"'),
    dialbackIn: await metric(s, 'uzzap_s2s_dialback_total', 'direction="in",result="valid"'),
    outStreams: await metric(s, 'uzzap_s2s_streams', 'direction="out",state="authenticated"'),
  });
  const delta = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k]!]));

  it('a.test → b.test over STARTTLS, authenticated by SASL EXTERNAL; b.test answers on the same connection (XEP-0288)', async () => {
    const [a0, b0] = [await counters(a), await counters(b)];
    await alice.send(xml('message', { to: 'bob@b.test/work', type: 'chat' }, xml('body', {}, 'over starttls')));
    const m = await expectStanza(bob, body('over starttls'), 5000);
    assert.equal(m.attrs.from, 'alice@a.test/home');
    await bob.send(xml('message', { to: 'alice@a.test/home', type: 'chat' }, xml('body', {}, 'back on it')));
    await expectStanza(alice, body('back on it'), 5000);
    assert.deepEqual(delta(await counters(a), a0), { externalOut: 1, externalIn: 0, dialbackOut: 0, dialbackIn: 0, outStreams: 1 });
    assert.deepEqual(delta(await counters(b), b0), { externalOut: 0, externalIn: 1, dialbackOut: 0, dialbackIn: 0, outStreams: 0 });
    assert.ok((await metric(b, 'uzzap_s2s_stanzas_total', 'direction="in",domain="a.test"')) >= 1);
  });

  it('b.test → conference.a.test over direct TLS (s2s.hosts xmpps://), authenticated by SASL EXTERNAL; the room answers on it', async () => {
    const [a0, b0] = [await counters(a), await counters(b)];
    const MUC = 'http://jabber.org/protocol/muc';
    await bob.send(xml('presence', { to: 'lounge@conference.a.test/bob' }, xml('x', { xmlns: MUC })));
    await expectStanza(bob, (s) => s.is('presence') && s.attrs.from === 'lounge@conference.a.test/bob' && !s.attrs.type, 5000);
    assert.deepEqual(delta(await counters(a), a0), { externalOut: 0, externalIn: 1, dialbackOut: 0, dialbackIn: 0, outStreams: 0 });
    assert.deepEqual(delta(await counters(b), b0), { externalOut: 1, externalIn: 0, dialbackOut: 0, dialbackIn: 0, outStreams: 1 });
  });

  it('a server whose certificate does not verify is offered no EXTERNAL: dialback authenticates it', async () => {
    await carol.send(xml('message', { to: 'alice@a.test/home', type: 'chat' }, xml('body', {}, 'by dialback')));
    await expectStanza(alice, body('by dialback'), 8000);
    assert.equal(await metric(c, 'uzzap_s2s_sasl_external_total', 'direction="out",result="success"'), 0);
    assert.ok((await metric(a, 'uzzap_s2s_dialback_total', 'direction="in",result="valid"')) >= 1);
  });

  it('EXTERNAL: the identity is the certificate’s: another authorization identity, another mechanism, or a header naming another domain is refused', async () => {
    const sasl = "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'";
    // b.test's certificate, a header saying d.test: no EXTERNAL, only dialback
    const other = await probe('d.test');
    assert.doesNotMatch(other.data, /EXTERNAL/);
    other.socket.destroy();
    // each refusal ends the stream (XEP-0178): the peer may come back with dialback
    for (const [auth, condition] of [
      [`<auth ${sasl} mechanism='EXTERNAL'>${Buffer.from('d.test').toString('base64')}</auth>`, 'invalid-authzid'],
      [`<auth ${sasl} mechanism='PLAIN'>=</auth>`, 'invalid-mechanism'],
    ]) {
      const r = await probe('b.test');
      try {
        r.send(auth!);
        await r.waitFor(`<failure ${sasl}><${condition}/></failure>`);
        await r.waitFor('</stream:stream>');
      } finally {
        r.socket.destroy();
      }
    }
    const r = await probe('b.test');
    try {
      assert.match(r.data, /<mechanism>EXTERNAL<\/mechanism>/);
      // dialback for a pair whose sender the certificate names: valid at once, no callback (XEP-0344)
      r.send(`<db:result from='b.test' to='conference.a.test'>${'ab'.repeat(32)}</db:result>`);
      await r.waitFor(/<db:result from='conference.a.test' to='b.test' type='valid'>/);
      // no initial response: an empty challenge first (RFC 6120 §6.4.2)
      r.send(`<auth ${sasl} mechanism='EXTERNAL'/>`);
      await r.waitFor(`<challenge ${sasl}/>`);
      r.send(`<response ${sasl}/>`);
      await r.waitFor(`<success ${sasl}/>`);
      r.data = '';
      r.send(SERVER_HEADER('b.test', 'a.test'));
      await r.waitFor('</stream:features>');
      assert.doesNotMatch(r.data, /EXTERNAL/);
      r.send(`<message from='bob@b.test/probe' to='alice@a.test/home' type='chat'><body>after external</body></message>`);
      const m = await expectStanza(alice, body('after external'), 5000);
      assert.equal(m.attrs.from, 'bob@b.test/probe');
      // and nothing else: a stanza from a domain the stream did not authenticate ends it
      r.send(`<message from='eve@d.test' to='alice@a.test/home' type='chat'><body>forged</body></message>`);
      await r.waitFor(/<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    } finally {
      r.socket.destroy();
    }
  });

  it('a certificate naming our own domain is no way in: no EXTERNAL as a.test, no dialback as a.test', async () => {
    const r = await probe('a.test', certA);
    try {
      assert.doesNotMatch(r.data, /EXTERNAL/);
      r.send(`<db:result from='a.test' to='a.test'>${'ab'.repeat(32)}</db:result>`);
      await r.waitFor(/<db:result from='a.test' to='a.test' type='error'><error type='cancel'><not-acceptable /);
    } finally {
      r.socket.destroy();
    }
  });

  it('TLS renegotiation is refused on server-to-server connections (direct TLS and STARTTLS): a certificate cannot change after the handshake', async () => {
    const tls12 = { maxVersion: 'TLSv1.2' as const };
    const renegotiate = (s: tls.TLSSocket): Promise<Error | null> =>
      new Promise((resolve) => {
        s.once('error', (err) => resolve(err));
        s.once('close', () => resolve(new Error('closed')));
        if (!s.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err ?? null))) resolve(new Error('not started'));
      });
    const direct = await probe('b.test', certB, tls12);
    try {
      assert.notEqual(await renegotiate(direct.socket as tls.TLSSocket), null, 'renegotiation on the direct TLS port');
    } finally {
      direct.socket.destroy();
    }
    // STARTTLS on the plain port
    const plain = await RawClient.connect(pa);
    plain.send(SERVER_HEADER('b.test', 'a.test'));
    await plain.waitFor('</stream:features>');
    plain.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await plain.waitFor('<proceed');
    plain.socket.removeAllListeners('data');
    const secure = tls.connect({
      socket: plain.socket,
      servername: 'a.test',
      ca: readFileSync(join(shared, 'uzzap-local-ca.pem'), 'utf8'),
      cert: readFileSync(certB.cert),
      key: readFileSync(certB.key),
      ...tls12,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', () => resolve());
        secure.once('error', reject);
      });
      secure.write(SERVER_HEADER('b.test', 'a.test'));
      assert.notEqual(await renegotiate(secure), null, 'renegotiation after STARTTLS');
    } finally {
      secure.destroy();
    }
  });

  /** a probe authenticated as b.test by EXTERNAL, its stream restarted */
  const asB = async (): Promise<RawClient> => {
    const r = await probe('b.test');
    r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`);
    await r.waitFor('<success');
    r.data = '';
    r.send(SERVER_HEADER('b.test', 'a.test'));
    await r.waitFor('</stream:features>');
    return r;
  };

  it('an incoming stream is taken at its domain’s rate (rate_limits.s2s, overrides by domain): slower, nothing lost', async () => {
    const r = await asB();
    try {
      const before = await metric(a, 'uzzap_rate_limited_total', 'stream="s2s"');
      const pad = 'x'.repeat(1000);
      const t0 = performance.now();
      // the stream's end comes in the same write: it waits behind what the rate holds back
      let burst = '';
      for (let i = 0; i < 40; i++)
        burst += `<message from='bob@b.test/rate' to='alice@a.test/home' type='chat' id='r${i}'><body>${i} ${pad}</body></message>`;
      r.send(burst + '</stream:stream>');
      // ~43 KB at 8 KiB/s after a 16 KiB burst: about 3 s, every message delivered
      const last = await expectStanza(alice, (s) => s.is('message') && s.getChildText('body')?.startsWith('39 ') === true, 10_000);
      assert.ok(performance.now() - t0 > 2000, `taken in ${Math.round(performance.now() - t0)} ms`);
      const ids = new Set([...alice.received, last].map((s) => s.attrs.id));
      for (let i = 0; i < 40; i++) assert.ok(ids.has(`r${i}`), `r${i}`);
      assert.ok((await metric(a, 'uzzap_rate_limited_total', 'stream="s2s"')) > before);
    } finally {
      r.socket.destroy();
    }
  });

  it('a stanza over s2s.max_stanza_size ends the stream (policy-violation), not the server', async () => {
    const r = await asB();
    try {
      r.send(`<message from='bob@b.test/big' to='alice@a.test/home' type='chat'><body>${'y'.repeat(5000)}</body></message>`);
      await r.waitFor(/<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      await r.waitFor('</stream:stream>');
    } finally {
      r.socket.destroy();
    }
    // b.test's own stream still carries messages
    await bob.send(xml('message', { to: 'alice@a.test/home', type: 'chat' }, xml('body', {}, 'still here')));
    await expectStanza(alice, body('still here'), 5000);
  });

  it('a server that refuses our EXTERNAL and closes (XEP-0178) gets dialback on a new connection; what waited is delivered', async () => {
    let connections = 0;
    strict.on('connection', (raw: net.Socket) => {
      const n = ++connections;
      const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='s${n}' from='strict.test' to='a.test' version='1.0'>`;
      raw.setEncoding('utf8');
      raw.once('data', () => raw.write(`${header}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>`));
      raw.on('data', (d: string) => {
        if (!d.includes('<starttls')) return;
        raw.removeAllListeners('data');
        raw.write(`<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
        const s = new tls.TLSSocket(raw, { isServer: true, cert: readFileSync(certB.cert), key: readFileSync(certB.key) });
        s.setEncoding('utf8');
        s.on('error', () => undefined);
        s.on('data', (t: string) => {
          strictLog.push(`${n}: ${t}`);
          if (t.includes('<stream:stream'))
            s.write(
              `${header}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`,
            );
          if (t.includes('<auth')) s.end(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure></stream:stream>`);
          if (t.includes('<db:result')) s.write(`<db:result from='strict.test' to='a.test' type='valid'/>`);
        });
      });
    });
    await alice.send(xml('message', { to: 'x@strict.test', type: 'chat' }, xml('body', {}, 'to a strict server')));
    await until(() => strictLog.some((l) => l.includes('to a strict server')), 'the message at strict.test', 8000);
    const log = strictLog.join('\n');
    assert.match(log, /^1: .*<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>/m);
    assert.equal(connections, 2);
    assert.doesNotMatch(strictLog.filter((l) => l.startsWith('2:')).join(''), /<auth/);
    assert.match(strictLog.filter((l) => l.startsWith('2:')).join(''), /<db:result from='a.test' to='strict.test'>/);
    assert.ok(!alice.received.some((s) => s.attrs.type === 'error'));
  });
});
