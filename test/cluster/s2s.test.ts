// Federation from a cluster (issue 19): two nodes serving a.test (same Postgres schema,
// same Redis prefix) and b.test, another server. One node holds the outgoing stream
// to b.test (src/cluster/s2s-owners.ts); a sender on the other node reaches b.test
// through it, so b.test sees one stream from a.test. When that node stops, the other
// takes the domain. Runs in the Postgres + Redis pass of `npm test` only.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer } from '../helpers/server.js';
import { connect, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { freePort, metricValue as metric } from '../helpers/federation.js';

/**
 * One address for a.test in front of both nodes, as two SRV records would give: each
 * connection goes to the first node that accepts it.
 */
async function frontOf(ports: number[]): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    sockets.add(inbound);
    inbound.pause();
    const attempt = (i: number): void => {
      if (i >= ports.length) return void inbound.destroy();
      const out = net.connect({ host: '127.0.0.1', port: ports[i]! });
      out.once('error', () => attempt(i + 1));
      out.once('connect', () => {
        sockets.add(out);
        inbound.pipe(out).pipe(inbound);
        inbound.resume();
        const end = (): void => {
          inbound.destroy();
          out.destroy();
        };
        inbound.on('close', end).on('error', end);
        out.on('close', end).on('error', end);
      });
    };
    attempt(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));
const body = (text: string) => (s: { is(n: string): boolean; getChildText(n: string): string | null }) =>
  s.is('message') && s.getChildText('body') === text;

describe('cluster: federation (one stream per remote domain for the whole cluster)', function () {
  this.timeout(30_000);
  let n1: Server, n2: Server, b: Server;
  let alice: XmppClient, carol: XmppClient, bob: XmppClient;
  let front: { port: number; close(): void };

  before(async () => {
    const slot = await newStorageSlot();
    const [p1, p2, pb] = [await freePort(), await freePort(), await freePort()];
    const s2s = (port: number, hosts: Record<string, string>) => ({ port, hosts, require_valid_certs: false, connect_timeout: 2 });
    const hostsOfA = { 'b.test': `127.0.0.1:${pb}` };
    const admins = ['boss@a.test'];
    n1 = await startServer({
      slot,
      users: { alice: 'secret', carol: 'secret', boss: 'secret' },
      config: { domain: 'a.test', admins, s2s: s2s(p1, hostsOfA) },
    });
    n2 = await startServer({ slot, config: { domain: 'a.test', admins, s2s: s2s(p2, hostsOfA) } });
    // b.test reaches a.test at n1, or at n2 when n1 does not answer
    front = await frontOf([p1, p2]);
    b = await startServer({
      users: { bob: 'secret' },
      config: { domain: 'b.test', s2s: s2s(pb, { 'a.test': `127.0.0.1:${front.port}` }) },
    });
    alice = await connect(n1, 'alice', { domain: 'a.test', resource: 'one' });
    carol = await connect(n2, 'carol', { domain: 'a.test', resource: 'two' });
    bob = await connect(b, 'bob', { domain: 'b.test', resource: 'work' });
    await until(() => n1.cluster!.isLive(n2.nodeId) && n2.cluster!.isLive(n1.nodeId), 'the nodes see each other');
  });
  after(async () => {
    await stopAll(alice, carol, bob);
    await Promise.all([n1?.stop(), n2?.stop(), b?.stop()]);
    front?.close();
  });

  it('senders on both nodes reach the remote domain over one stream; answers come back to each', async () => {
    await alice.send(chat('bob@b.test/work', 'from n1'));
    await expectStanza(bob, body('from n1'), 5000);
    await carol.send(chat('bob@b.test/work', 'from n2'));
    const m = await expectStanza(bob, body('from n2'), 5000);
    assert.equal(m.attrs.from, 'carol@a.test/two');
    // one stream from a.test, opened by n1; n2 has none
    assert.equal(await metric(b, 'uzzap_s2s_streams', 'direction="in",state="authenticated"'), 1);
    assert.equal(await metric(n1, 'uzzap_s2s_streams', 'direction="out",state="authenticated"'), 1);
    assert.equal(await metric(n2, 'uzzap_s2s_streams', 'direction="out",state="authenticated"'), 0);
    assert.equal(await metric(n2, 'uzzap_s2s_stanzas_total', 'direction="out",domain="b.test"'), 0);
    await bob.send(chat('carol@a.test/two', 'to n2'));
    await expectStanza(carol, body('to n2'), 5000);
    // an error from the remote side finds its way back to the sender on n2
    await carol.send(chat('nobody@b.test', 'to nobody'));
    const err = await expectStanza(carol, (s) => s.is('message') && s.attrs.type === 'error' && s.attrs.from === 'nobody@b.test', 5000);
    assert.ok(err.getChild('error')?.getChild('service-unavailable'), err.toString());
  });

  it('an admin’s XEP-0133 blacklist edit on one node holds on the other at once (a cluster event)', async () => {
    const boss = await connect(n1, 'boss', { domain: 'a.test', resource: 'admin' });
    const NS = 'http://jabber.org/protocol/commands';
    const edit = async (domains: string[]): Promise<void> => {
      const step = (attrs: Record<string, string>, ...children: ReturnType<typeof xml>[]) =>
        iq(
          boss,
          xml(
            'iq',
            { type: 'set', to: 'a.test' },
            xml('command', { xmlns: NS, node: 'http://jabber.org/protocol/admin#edit-blacklist', ...attrs }, ...children),
          ),
        );
      const first = await step({ action: 'execute' });
      const sessionid = first.getChild('command', NS)!.attrs.sessionid as string;
      const form = xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/admin')),
        xml('field', { var: 'blacklistjids' }, ...domains.map((d) => xml('value', {}, d))),
      );
      const done = await step({ action: 'complete', sessionid }, form);
      assert.equal(done.getChild('command', NS)?.attrs.status, 'completed', done.toString());
    };
    try {
      await edit(['spam.example']);
      await until(() => !n2.s2s!.policy.allowed('spam.example'), 'n2 refuses spam.example');
      await edit([]);
      await until(() => n2.s2s!.policy.allowed('spam.example'), 'n2 allows spam.example again');
    } finally {
      await stopAll(boss);
    }
  });

  it('when the node holding the stream stops, the other takes the domain; what was sent meanwhile arrives, none bounced', async () => {
    await stopAll(alice);
    // n1 holds b.test (it sent first); carol on n2 keeps writing while n1 stops
    const bodies = new Set<string>();
    const bounced: string[] = [];
    const onStanza = (s: { is(n: string): boolean; attrs: Record<string, string>; getChildText(n: string): string | null }): void => {
      if (s.is('message') && s.attrs.type === 'error') bounced.push(s.getChildText('body') ?? '');
    };
    carol.on('stanza', onStanza);
    bob.on('stanza', (s: { is(n: string): boolean; getChildText(n: string): string | null }) => {
      const t = s.is('message') ? s.getChildText('body') : null;
      if (t?.startsWith('during ')) bodies.add(t);
    });
    // a client of n1 that never closes its end (a phone gone quiet): n1's stop waits for it
    // a while, and n2 keeps handing n1 what it sends to b.test meanwhile
    const quiet = net.connect({ port: n1.ports.c2s, host: '127.0.0.1', allowHalfOpen: true });
    quiet.on('error', () => undefined);
    await new Promise((r) => quiet.once('connect', r));
    let stopped = false;
    const stopping = n1.stop().then(() => (stopped = true));
    let sent = 0;
    while (!stopped) {
      await carol.send(chat('bob@b.test/work', `during ${sent++}`));
      await new Promise((r) => setImmediate(r));
    }
    await stopping;
    quiet.destroy();
    await until(() => !n2.cluster!.isLive(n1.nodeId), 'n2 knows n1 left');
    await carol.send(chat('bob@b.test/work', 'after n1'));
    await expectStanza(bob, body('after n1'), 8000);
    await until(() => bodies.size + bounced.length >= sent, `${sent} sent during the stop accounted for`, 10_000);
    carol.removeListener('stanza', onStanza);
    assert.deepEqual(bounced, []);
    assert.equal(bodies.size, sent);
    assert.equal(await metric(n2, 'uzzap_s2s_streams', 'direction="out",state="authenticated"'), 1);
  });
});
