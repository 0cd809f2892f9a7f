// Logging in: every SASL mechanism, both TLS modes, wrong passwords, binding.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer, testCa } from '../helpers/server.js';
import { connect, expectStanza, stopAll, xml, iq, type XmppClient } from '../helpers/clients.js';
import { HEADER, RawClient, channelBinding, openToSasl, scramLogin, authenticated } from '../helpers/raw.js';

describe('login (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
  });
  after(() => server.stop());

  it('PLAIN over STARTTLS with @xmpp/client', async () => {
    const c = await connect(server, 'alice', { mechanism: 'PLAIN', resource: 'plain' });
    assert.equal(c.jid?.toString(), 'alice@localhost/plain');
    await stopAll(c);
  });

  it('SCRAM-SHA-1 over direct TLS (XEP-0368) with @xmpp/client', async () => {
    const c = await connect(server, 'alice', { mechanism: 'SCRAM-SHA-1', transport: 'direct', resource: 'direct' });
    assert.equal(c.jid?.toString(), 'alice@localhost/direct');
    await stopAll(c);
  });

  it('direct TLS negotiates ALPN xmpp-client', async () => {
    const c = await RawClient.connect(server.ports.c2sTls, { tls: true });
    assert.equal((c.socket as import('node:tls').TLSSocket).alpnProtocol, 'xmpp-client');
    c.end();
  });

  it('offers SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS), PLAIN and XEP-0440 channel bindings after TLS', async () => {
    const c = await openToSasl(server.ports.c2s);
    for (const m of ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']) {
      assert.match(c.data, new RegExp(`<mechanism>${m}</mechanism>`));
    }
    assert.match(
      c.data,
      /<sasl-channel-binding xmlns=.urn:xmpp:sasl-cb:0.><channel-binding type=.tls-exporter.\/><channel-binding type=.tls-server-end-point.\/>/,
    );
    c.end();
  });

  for (const mech of ['SCRAM-SHA-256', 'SCRAM-SHA-1'] as const) {
    it(`${mech} succeeds and the server signature verifies`, async () => {
      const c = await openToSasl(server.ports.c2s);
      assert.match(await scramLogin(c, mech, 'bob', 'secret'), /^<success/);
      c.end();
    });
  }

  for (const mech of ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'] as const) {
    for (const type of ['tls-exporter', 'tls-server-end-point', 'tls-unique']) {
      it(`${mech} with ${type} channel binding`, async () => {
        const c = await openToSasl(server.ports.c2s);
        assert.match(await scramLogin(c, mech, 'bob', 'secret', { type, data: channelBinding(c, type) }), /^<success/);
        c.end();
      });
    }
  }

  it('the "y" flag (client thinks we cannot bind) is rejected as a downgrade when -PLUS was offered (RFC 5802)', async () => {
    const c = await openToSasl(server.ports.c2s);
    assert.match(
      await scramLogin(c, 'SCRAM-SHA-256', 'bob', 'secret', undefined, 'y'),
      /<not-authorized\/><text[^>]*>channel binding downgrade/,
    );
    c.end();
  });

  it('the "y" flag is fine on a stream where -PLUS is not offered (plaintext test mode)', async () => {
    const plain = await startServer({ users: { bob: 'secret' }, config: { c2s: { require_tls: false } } });
    const c = await openToSasl(plain.ports.c2s, { tls: 'none' });
    assert.doesNotMatch(c.data, /-PLUS/);
    assert.match(await scramLogin(c, 'SCRAM-SHA-1', 'bob', 'secret', undefined, 'y'), /^<success/);
    c.end();
    await plain.stop();
  });

  it('-PLUS with wrong channel-binding data fails with not-authorized', async () => {
    const c = await openToSasl(server.ports.c2s);
    const out = await scramLogin(c, 'SCRAM-SHA-256-PLUS', 'bob', 'secret', { type: 'tls-exporter', data: Buffer.alloc(32) });
    assert.match(out, /<failure[^>]*><not-authorized\/>/);
    c.end();
  });

  it('wrong password gives <not-authorized/>, for SCRAM and PLAIN, and unknown users look the same', async () => {
    await assert.rejects(connect(server, 'alice', { password: 'nope' }), /not-authorized/);
    await assert.rejects(connect(server, 'alice', { password: 'nope', mechanism: 'PLAIN' }), /not-authorized/);
    await assert.rejects(connect(server, 'nobody', { password: 'nope' }), /not-authorized/);
    const c = await openToSasl(server.ports.c2s);
    assert.match(await scramLogin(c, 'SCRAM-SHA-256', 'alice', 'wrong'), /<not-authorized\/>/);
    c.end();
  });

  it('unknown mechanism gives <invalid-mechanism/>, bad base64 <incorrect-encoding/>, abort <aborted/>', async () => {
    const c = await openToSasl(server.ports.c2s);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
    await c.waitFor('<invalid-mechanism/>');
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!notbase64!!</auth>");
    await c.waitFor('<incorrect-encoding/>');
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/>");
    await c.waitFor('<challenge');
    c.send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    await c.waitFor('<aborted/>');
    c.end();
  });

  it('SASL before STARTTLS fails with <encryption-required/> when TLS is required', async () => {
    const c = await RawClient.connect(server.ports.c2s);
    c.send(HEADER());
    await c.waitFor('</stream:features>');
    assert.match(c.data, /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/);
    assert.doesNotMatch(c.data, /<mechanisms/);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`);
    await c.waitFor('<encryption-required/>');
    c.end();
  });

  it('the stream header reply starts with the XML declaration and TLS 1.1 is refused', async () => {
    const c = await RawClient.connect(server.ports.c2s);
    c.send(HEADER());
    await c.waitFor('</stream:features>');
    assert.ok(c.data.startsWith("<?xml version='1.0'?><stream:stream"), c.data);
    c.end();
    const tls = await import('node:tls');
    const ca = await testCa();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tls.connect(
          { port: server.ports.c2sTls, host: '127.0.0.1', servername: 'localhost', ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' },
          () => resolve(s),
        );
        s.on('error', reject);
      }),
    );
  });

  it('binds a server-generated resource when none is asked for, and answers the optional session IQ', async () => {
    const c = await connect(server, 'alice');
    assert.match(c.jid!.resource, /^.+$/);
    const r = await iq(c, xml('iq', { type: 'set' }, xml('session', { xmlns: 'urn:ietf:params:xml:ns:xmpp-session' })));
    assert.equal(r.attrs.type, 'result');
    await stopAll(c);
  });

  it('advertises session as optional in the post-auth features', async () => {
    const c = await authenticated(server.ports.c2s, 'alice', 'secret');
    assert.match(
      c.data,
      /<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional\/><\/session>/,
    );
    // anything but bind now is a not-authorized stream error
    c.send("<message to='bob@localhost'><body>x</body></message>");
    await c.waitFor('<not-authorized');
    await c.waitClosed();
  });

  it('bind conflict: the newer session wins, the older gets <conflict/>', async () => {
    const first = await connect(server, 'alice', { resource: 'same', sasl: 1 });
    const closed = new Promise<string>((resolve) => first.on('error', (e: Error) => resolve(e.message)));
    const second = await connect(server, 'alice', { resource: 'same', sasl: 1 });
    assert.match(await closed, /conflict/);
    const bob = await connect(server, 'bob');
    await bob.send(xml('message', { to: 'alice@localhost/same', type: 'chat' }, xml('body', {}, 'to the new one')));
    await expectStanza(second, (s) => s.is('message') && s.getChildText('body') === 'to the new one');
    await stopAll(first, second, bob);
  });

  it('counts auth successes and failures in /metrics', async () => {
    // one of each here: the counters do not rely on the tests before
    const c = await connect(server, 'alice', { mechanism: 'SCRAM-SHA-1', resource: 'metrics' });
    await assert.rejects(connect(server, 'alice', { password: 'nope', mechanism: 'PLAIN' }), /not-authorized/);
    const res = await fetch(`http://127.0.0.1:${server.ports.http}/metrics`);
    const text = await res.text();
    await stopAll(c);
    assert.match(text, /uzzap_auth_success_total\{mechanism="SCRAM-SHA-1"\} \d+/);
    assert.match(text, /uzzap_auth_failure_total\{mechanism="PLAIN",condition="not-authorized"\} \d+/);
    assert.match(text, /uzzap_connections\{state="bound"\}/);
    assert.match(text, /nodejs_eventloop_lag_seconds/);
    assert.match(text, /uzzap_routing_seconds_bucket/);
  });

  it('counts stanzas and routing times exactly in /metrics, across reads', async () => {
    const scrape = async (): Promise<{ inMsg: number; outMsg: number; routed: number; buckets: number[]; inf: number }> => {
      const text = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
      const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
      const buckets = [...text.matchAll(/^uzzap_routing_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)];
      return {
        inMsg: num(/^uzzap_stanzas_in_total\{kind="message"\} (\d+)$/m),
        outMsg: num(/^uzzap_stanzas_out_total\{kind="message"\} (\d+)$/m),
        routed: num(/^uzzap_routing_seconds_count (\d+)$/m),
        buckets: buckets.filter((m) => m[1] !== '+Inf').map((m) => Number(m[2])),
        inf: Number(buckets.find((m) => m[1] === '+Inf')?.[2] ?? -1),
      };
    };
    const a = await connect(server, 'alice', { resource: 'count' });
    const b = await connect(server, 'bob', { resource: 'count' });
    const before = await scrape();
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) await a.send(xml('message', { to: 'bob@localhost/count', type: 'chat' }, xml('body', {}, `m${round}.${i}`)));
      await expectStanza(b, (s) => s.getChildText('body') === `m${round}.4`);
    }
    const after = await scrape();
    await stopAll(a, b);
    assert.equal(after.inMsg - before.inMsg, 10);
    assert.equal(after.outMsg - before.outMsg, 10);
    assert.ok(after.routed - before.routed >= 10, `routed ${before.routed} -> ${after.routed}`);
    // cumulative buckets, the last one (+Inf) equal to the count
    assert.equal(after.inf, after.routed);
    for (let i = 1; i < after.buckets.length; i++) assert.ok(after.buckets[i]! >= after.buckets[i - 1]!, `bucket ${i}`);
    assert.ok(after.buckets[after.buckets.length - 1]! <= after.inf);
    // each of those took less than the largest bound (1 s) to route
    const last = (b: number[]): number => b[b.length - 1] ?? 0;
    assert.ok(last(after.buckets) - last(before.buckets) >= 10, `le=1 ${last(before.buckets)} -> ${last(after.buckets)}`);
  });
});

describe('authentication failure throttling (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { alice: 'secret' }, config: { auth: { failure_delay: 150, failure_delay_max: 400 } } });
  });
  after(() => server.stop());

  it('slows repeated failures from one address (bounded), successes stay fast', async () => {
    const c = await openToSasl(server.ports.c2s);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      assert.match(await scramLogin(c, 'SCRAM-SHA-1', 'alice', 'bad'), /not-authorized/);
      times.push(Date.now() - t);
    }
    assert.ok(times[0]! >= 140, `first failure answered after ${times[0]} ms`);
    assert.ok(times[1]! >= 290, `second failure answered after ${times[1]} ms`);
    assert.ok(times[2]! >= 390 && times[2]! < 1500, `third failure capped: ${times[2]} ms`);
    const t = Date.now();
    assert.match(await scramLogin(c, 'SCRAM-SHA-1', 'alice', 'secret'), /^<success/);
    assert.ok(Date.now() - t < 300);
    c.end();
  });
});

export type { XmppClient };
