// Who a server federates with, as its admins decide (issue 19): XEP-0133 Edit Blacklist
// and Edit Whitelist between two Uzzap servers on loopback (s2s.hosts, dialback), the
// lists kept over a restart (a cluster's other node following: test/cluster/s2s.test.ts); refusing
// strangers' messages (s2s.refuse_strangers); XEP-0377 reports sent with a block.
import assert from 'node:assert/strict';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { connect, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { ADMIN, NS_COMMANDS, commandOf, errorCondition, fieldValues, notes, runCommand } from '../helpers/adhoc.js';
import { capturingLogger } from '../helpers/mock-context.js';
import { freePort } from '../helpers/federation.js';

const s2s = (port: number, hosts: Record<string, string>) => ({ port, hosts, require_valid_certs: false, connect_timeout: 2 });

/** Run an ad-hoc command at `to`: execute, then (with fields) complete its one stage. */
async function command(c: XmppClient, to: string, node: string, fields?: Record<string, string[]>): Promise<Element> {
  const step = (attrs: Record<string, string | undefined>, form?: Element) =>
    iq(c, xml('iq', { type: 'set', to }, xml('command', { xmlns: NS_COMMANDS, node, ...attrs }, ...(form ? [form] : []))));
  const first = await step({ action: 'execute' });
  if (!fields || first.attrs.type !== 'result') return first;
  const form = xml(
    'x',
    { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/admin')),
    ...Object.entries(fields).map(([k, vs]) => xml('field', { var: k }, ...vs.map((v) => xml('value', {}, v)))),
  );
  return step({ action: 'complete', sessionid: commandOf(first).attrs.sessionid as string }, form);
}

const completed = (r: Element): Element => {
  assert.equal(r.attrs.type, 'result', r.toString());
  assert.equal(commandOf(r).attrs.status, 'completed', r.toString());
  return r;
};

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
/** the error message `c` gets back for the message it sent with this body */
const bounced = (c: XmppClient, body: string, timeout = 8000): Promise<Element> =>
  expectStanza(
    c,
    (s) => s.is('message') && s.attrs.type === 'error' && s.getChildText('body') === body,
    timeout,
    `the bounce of "${body}"`,
  );
const condition = (s: Element): string | undefined =>
  s
    .getChild('error')
    ?.getChildElements()
    .find((e) => e.attrs.xmlns === STANZAS)?.name;
const chat = (to: string, body: string): Element => xml('message', { to, type: 'chat' }, xml('body', {}, body));
const arrives = (c: XmppClient, body: string, timeout = 8000): Promise<Element> =>
  expectStanza(c, (s) => s.is('message') && s.attrs.type !== 'error' && s.getChildText('body') === body, timeout, `"${body}"`);

/** stanzas this server took from other servers so far (every label) */
async function stanzasIn(server: Server): Promise<number> {
  const m = server.metrics.registry.getSingleMetric('uzzap_s2s_stanzas_total');
  if (!m) return 0;
  return (await m.get()).values.filter((v) => v.labels.direction === 'in').reduce((n, v) => n + v.value, 0);
}

const metrics = async (server: Server): Promise<string> => (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();

describe('federation policy: XEP-0133 Edit Blacklist / Edit Whitelist between two servers', function () {
  this.timeout(30_000);
  let a: Server;
  let b: Server;
  let slot: StorageSlot;
  let pa = 0;
  let pb = 0;
  let boss: XmppClient;
  let alice: XmppClient;
  let bob: XmppClient;
  const startA = () =>
    startServer({
      slot,
      config: { domain: 'a.test', admins: ['boss@a.test'], s2s: s2s(pa, { 'b.test': `127.0.0.1:${pb}` }) },
    });

  before(async () => {
    [pa, pb] = [await freePort(), await freePort()];
    slot = await newStorageSlot();
    a = await startA();
    await a.accounts.create('alice', 'secret');
    await a.accounts.create('boss', 'secret');
    b = await startServer({ users: { bob: 'secret' }, config: { domain: 'b.test', s2s: s2s(pb, { 'a.test': `127.0.0.1:${pa}` }) } });
    boss = await connect(a, 'boss', { domain: 'a.test', resource: 'desk' });
    alice = await connect(a, 'alice', { domain: 'a.test', resource: 'home' });
    bob = await connect(b, 'bob', { domain: 'b.test', resource: 'work' });
  });
  after(async () => {
    await stopAll(boss, alice, bob);
    await a?.stop();
    await b?.stop();
  });

  it('a user who is not an admin gets forbidden', async () => {
    for (const node of [ADMIN('edit-blacklist'), ADMIN('edit-whitelist')]) {
      const r = await command(alice, 'a.test', node);
      assert.equal(r.attrs.type, 'error', r.toString());
      assert.deepEqual(errorCondition(r), ['forbidden']);
    }
  });

  it('blacklisting b.test: our message bounces (not-allowed), its dialback is refused (its message bounces back to it); removing it restores federation', async () => {
    const form = await command(boss, 'a.test', ADMIN('edit-blacklist'));
    assert.deepEqual(fieldValues(form, 'blacklistjids'), []);
    const field = commandOf(form)
      .getChild('x', 'jabber:x:data')!
      .getChildren('field')
      .find((f) => f.attrs.var === 'blacklistjids')!;
    assert.equal(field.attrs.type, 'jid-multi');
    assert.deepEqual(notes(completed(await command(boss, 'a.test', ADMIN('edit-blacklist'), { blacklistjids: ['b.test'] }))), [
      'info: added: b.test',
    ]);

    await alice.send(chat('bob@b.test/work', 'to a blacklisted domain'));
    assert.equal(condition(await bounced(alice, 'to a blacklisted domain')), 'not-allowed');
    // b.test opens its stream to a.test: dialback is answered with an error, so b.test bounces its user's message
    await bob.send(chat('alice@a.test/home', 'from a blacklisted domain'));
    assert.equal(condition(await bounced(bob, 'from a blacklisted domain')), 'remote-server-timeout');
    assert.match(await metrics(a), /^uzzap_s2s_dialback_total\{[^}]*direction="in"[^}]*result="error"[^}]*\} 1$/m);

    // an emptied field clears the list
    assert.deepEqual(notes(completed(await command(boss, 'a.test', ADMIN('edit-blacklist'), { blacklistjids: [] }))), [
      'info: removed: b.test',
    ]);
    await alice.send(chat('bob@b.test/work', 'federated again'));
    await arrives(bob, 'federated again');
    await bob.send(chat('alice@a.test/home', 'back again'));
    await arrives(alice, 'back again');
    assert.ok(!alice.received.some((s) => s.getChildText('body') === 'from a blacklisted domain'));
  });

  it('over a stream made before: once b.test is blacklisted, what it sends is not delivered', async () => {
    completed(await command(boss, 'a.test', ADMIN('edit-blacklist'), { blacklistjids: ['b.test'] }));
    const before = await stanzasIn(a);
    await bob.send(chat('alice@a.test/home', 'over the old stream'));
    // a.test took it (and decided on it at once); then the list is cleared and the next one passes
    await until(async () => (await stanzasIn(a)) > before, 'a.test received the message');
    completed(await command(boss, 'a.test', ADMIN('edit-blacklist'), { blacklistjids: [] }));
    await bob.send(chat('alice@a.test/home', 'after the old stream was cleared'));
    await arrives(alice, 'after the old stream was cleared');
    assert.ok(!alice.received.some((s) => s.getChildText('body') === 'over the old stream'));
  });

  it('a whitelist: only its domains are talked to; a domain JID only, not our own', async () => {
    completed(await command(boss, 'a.test', ADMIN('edit-whitelist'), { whitelistjids: ['elsewhere.test'] }));
    await alice.send(chat('bob@b.test/work', 'not whitelisted'));
    assert.equal(condition(await bounced(alice, 'not whitelisted')), 'not-allowed');
    const r = completed(await command(boss, 'a.test', ADMIN('edit-whitelist'), { whitelistjids: ['b.test'] }));
    assert.deepEqual(notes(r), [
      'info: added: b.test',
      'info: removed: elsewhere.test',
      'info: only the whitelisted domains (and their subdomains) are talked to',
    ]);
    await alice.send(chat('bob@b.test/work', 'whitelisted'));
    await arrives(bob, 'whitelisted');
    for (const bad of ['bob@b.test', 'a.test', 'b.test/res']) {
      const e = await command(boss, 'a.test', ADMIN('edit-whitelist'), { whitelistjids: [bad] });
      assert.equal(errorCondition(e)[0], 'bad-request', bad);
    }
    completed(await command(boss, 'a.test', ADMIN('edit-whitelist'), { whitelistjids: [] }));
    await alice.send(chat('bob@b.test/work', 'no whitelist'));
    await arrives(bob, 'no whitelist');
  });

  it('the lists are kept over a restart (the same storage), and shown in the form', async () => {
    completed(await command(boss, 'a.test', ADMIN('edit-blacklist'), { blacklistjids: ['b.test', 'spam.example'] }));
    await stopAll(boss, alice);
    await a.stop();
    a = await startA();
    boss = await connect(a, 'boss', { domain: 'a.test', resource: 'desk' });
    alice = await connect(a, 'alice', { domain: 'a.test', resource: 'home' });
    assert.deepEqual(fieldValues(await command(boss, 'a.test', ADMIN('edit-blacklist')), 'blacklistjids'), ['b.test', 'spam.example']);
    await alice.send(chat('bob@b.test/work', 'after the restart'));
    assert.equal(condition(await bounced(alice, 'after the restart')), 'not-allowed');
    completed(await command(boss, 'a.test', ADMIN('edit-blacklist'), { blacklistjids: ['spam.example'] }));
    await alice.send(chat('bob@b.test/work', 'allowed after the restart'));
    await arrives(bob, 'allowed after the restart');
  });
});

describe('federation policy: refusing strangers (s2s.refuse_strangers)', function () {
  this.timeout(30_000);
  let s: Server;
  let t: Server;
  let sue: XmppClient;
  let tom: XmppClient;
  before(async () => {
    const [ps, pt] = [await freePort(), await freePort()];
    s = await startServer({
      users: { sue: 'secret' },
      config: { domain: 's.test', s2s: { ...s2s(ps, { 't.test': `127.0.0.1:${pt}` }), refuse_strangers: true } },
    });
    t = await startServer({ users: { tom: 'secret' }, config: { domain: 't.test', s2s: s2s(pt, { 's.test': `127.0.0.1:${ps}` }) } });
    sue = await connect(s, 'sue', { domain: 's.test', resource: 'phone' });
    tom = await connect(t, 'tom', { domain: 't.test', resource: 'pc' });
  });
  after(async () => {
    await stopAll(sue, tom);
    await s?.stop();
    await t?.stop();
  });

  it("a stranger's message is refused with service-unavailable and counted; once sue asked to subscribe to him, his messages arrive", async () => {
    await tom.send(chat('sue@s.test', 'buy cheap watches'));
    const err = await bounced(tom, 'buy cheap watches');
    assert.equal(err.attrs.from, 'sue@s.test');
    assert.equal(condition(err), 'service-unavailable');
    assert.match(await metrics(s), /^uzzap_s2s_strangers_refused_total 1$/m);

    // sue asks to see tom's presence (ask=subscribe): his answer and his messages come through
    await sue.send(xml('presence', { to: 'tom@t.test', type: 'subscribe' }));
    await expectStanza(tom, (p) => p.is('presence') && p.attrs.type === 'subscribe' && p.attrs.from === 'sue@s.test', 8000);
    await tom.send(chat('sue@s.test/phone', 'hello sue, it is tom'));
    await arrives(sue, 'hello sue, it is tom');
    assert.match(await metrics(s), /^uzzap_s2s_strangers_refused_total 1$/m);
  });
});

describe('XEP-0377 reports sent with a block (module reporting)', function () {
  this.timeout(20_000);
  let server: Server;
  let boss: XmppClient;
  let alice: XmppClient;
  const { log, lines } = capturingLogger();
  before(async () => {
    server = await startServer({ log, config: { admins: ['boss@localhost'] }, users: { boss: 'secret', alice: 'secret' } });
    boss = await connect(server, 'boss');
    alice = await connect(server, 'alice');
  });
  after(async () => {
    await stopAll(boss, alice);
    await server.stop();
  });

  it('is advertised; the JID is blocked as usual, the report logged (bounded), counted by reason and listed to admins', async () => {
    const info = await iq(
      alice,
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
    );
    assert.ok(
      info
        .getChild('query')!
        .getChildren('feature')
        .some((f) => f.attrs.var === 'urn:xmpp:reporting:1'),
    );
    const long = `Never came trouble to my house like this. ${'x'.repeat(3000)}`;
    const r = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml(
          'block',
          { xmlns: 'urn:xmpp:blocking' },
          xml(
            'item',
            { jid: 'spammer@far.example' },
            xml(
              'report',
              { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:spam' },
              xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: 'alice@localhost', id: 'msg-1' }),
              xml('text', { 'xml:lang': 'en' }, `\n   ${long}\n `),
            ),
          ),
          xml('item', { jid: 'troll@far.example' }, xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:abuse' })),
          xml('item', { jid: 'quiet@far.example' }),
        ),
      ),
    );
    assert.equal(r.attrs.type, 'result', r.toString());
    const list = await iq(alice, xml('iq', { type: 'get' }, xml('blocklist', { xmlns: 'urn:xmpp:blocking' })));
    assert.deepEqual(
      list
        .getChild('blocklist')!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['quiet@far.example', 'spammer@far.example', 'troll@far.example'],
    );

    const logged = lines.filter((l) => l.msg === 'abuse report');
    assert.equal(logged.length, 2);
    const spam = logged.find((l) => l.reported === 'spammer@far.example')!;
    assert.equal(spam.reporter, 'alice@localhost');
    assert.equal(spam.reason, 'spam');
    assert.deepEqual(spam.ids, ['msg-1']);
    const text = spam.text as string;
    assert.ok(text.startsWith('Never came trouble to my house like this.'), text.slice(0, 50));
    assert.ok(text.length <= 1001, `the text is bounded (${text.length})`);
    assert.equal(logged.find((l) => l.reported === 'troll@far.example')!.reason, 'abuse');

    const m = await metrics(server);
    assert.match(m, /^uzzap_abuse_reports_total\{reason="spam"\} 1$/m);
    assert.match(m, /^uzzap_abuse_reports_total\{reason="abuse"\} 1$/m);

    const denied = await runCommand(alice, 'urn:uzzap:admin#abuse-reports');
    assert.deepEqual(errorCondition(denied[0]!), ['forbidden']);
    const [shown] = await runCommand(boss, 'urn:uzzap:admin#abuse-reports');
    completed(shown!);
    const reports = fieldValues(shown!, 'reports')!;
    assert.equal(reports.length, 2);
    assert.match(reports[0]!, /alice@localhost reported troll@far\.example \(abuse\)$/);
    assert.match(reports[1]!, /alice@localhost reported spammer@far\.example \(spam\): Never came trouble/);
  });
});
