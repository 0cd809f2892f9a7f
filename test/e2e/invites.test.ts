// Invitations (XEP-0401 ad-hoc commands and landing page, XEP-0445 pre-authenticated
// registration, XEP-0379 pre-authenticated subscription) and `uzzap invite`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectStanza, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { runStep, runCommand, fieldValues, errorCondition, commandOf } from '../helpers/adhoc.js';
import { openToSasl, type RawClient } from '../helpers/raw.js';
import { createInvite } from '../../xeps/0401-invites/invites.js';

const BIN = fileURLToPath(new URL('../../bin/uzzap.js', import.meta.url));
const FINAL = (id: string): RegExp => new RegExp(`<iq[^>]*id=.${id}.[^>]*(?:/>|>[\\s\\S]*?</iq>)`);

/** the token of an invitation URI */
const tokenOf = (uri: string): string => /preauth=([A-Za-z0-9_-]+)/.exec(uri)![1]!;

/** On a fresh unauthenticated stream: give the token, then register; the two answers. */
async function registerWith(server: Server, token: string | undefined, username: string): Promise<{ preauth?: string; register: string; c: RawClient }> {
  const c = await openToSasl(server.ports.c2s);
  let preauth: string | undefined;
  if (token !== undefined) {
    c.data = '';
    // no 'to', as Conversations sends it
    c.send(`<iq type='set' id='pa1'><preauth xmlns='urn:xmpp:pars:0' token='${token}'/></iq>`);
    preauth = await c.waitFor(FINAL('pa1'));
  }
  c.data = '';
  c.send(`<iq type='set' id='rg1'><query xmlns='jabber:iq:register'><username>${username}</username><password>pw-${username}</password></query></iq>`);
  return { preauth, register: await c.waitFor(FINAL('rg1')), c };
}

async function invite(c: XmppClient, node: string, fields?: Record<string, string>): Promise<{ uri: string; landing: string; expire: string }> {
  const r = fields ? (await runCommand(c, node, fields)).at(-1)! : await runStep(c, node);
  assert.equal(r.attrs.type, 'result', r.toString());
  assert.equal(commandOf(r).attrs.status, 'completed');
  assert.deepEqual(fieldValues(r, 'FORM_TYPE'), ['urn:xmpp:invite#invitation']);
  return { uri: fieldValues(r, 'uri')![0]!, landing: fieldValues(r, 'landing-url')![0]!, expire: fieldValues(r, 'expire')![0]! };
}

describe('invitations (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { boss: 'secret', alice: 'secret', bob: 'secret' }, config: { admins: ['boss@localhost'] } });
  });
  after(() => server.stop());

  it('offers token registration (both namespaces) and in-band registration while registration is closed', async () => {
    const c = await openToSasl(server.ports.c2s);
    for (const ns of ['urn:xmpp:invite', 'urn:xmpp:ibr-token:0', 'http://jabber.org/features/iq-register']) assert.ok(c.data.includes(`<register xmlns='${ns}'/>`), ns);
    c.end();
  });

  it('an admin’s account invitation registers one account while registration is closed; used, forged or absent tokens are refused', async () => {
    const boss = await connect(server, 'boss');
    // the form first (XEP-0401 §3.2), all of it optional
    const form = await runStep(boss, 'urn:xmpp:invite#create-account');
    assert.equal(commandOf(form).attrs.status, 'executing');
    assert.deepEqual(fieldValues(form, 'roster-subscription'), ['0']);
    const inv = await invite(boss, 'urn:xmpp:invite#create-account', { FORM_TYPE: 'urn:xmpp:invite#create-account' });
    assert.match(inv.uri, /^xmpp:localhost\?register;preauth=[A-Za-z0-9_-]{24}$/);
    assert.equal(inv.landing, `http://localhost:${server.ports.http}/invite/${tokenOf(inv.uri)}`);
    assert.ok(Date.parse(inv.expire) > Date.now() + 6 * 86_400_000);
    const ok = await registerWith(server, tokenOf(inv.uri), 'newbie');
    assert.match(ok.preauth!, /type=.result./);
    assert.match(ok.register, /type=.result./);
    ok.c.end();
    const newbie = await connect(server, 'newbie', { password: 'pw-newbie' });
    // the token is spent
    const again = await registerWith(server, tokenOf(inv.uri), 'second');
    assert.match(again.preauth!, /<item-not-found/);
    assert.match(again.register, /<service-unavailable/);
    again.c.end();
    const forged = await registerWith(server, 'A'.repeat(24), 'third');
    assert.match(forged.preauth!, /type=.error.[\s\S]*<error type=.cancel.><item-not-found/);
    forged.c.end();
    const none = await registerWith(server, undefined, 'fourth');
    assert.match(none.register, /<service-unavailable/);
    none.c.end();
    assert.ok(!(await server.storage.accounts.get('second')) && !(await server.storage.accounts.get('fourth')));
    // users may not make account invitations
    const alice = await connect(server, 'alice');
    assert.deepEqual(errorCondition(await runStep(alice, 'urn:xmpp:invite#create-account')), ['forbidden']);
    await stopAll(boss, newbie, alice);
  });

  it('create-account with a username, admin and the inviter’s subscription: the invitee is all three', async () => {
    const boss = await connect(server, 'boss');
    await boss.send(xml('iq', { type: 'get', id: 'r0' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const fields = { FORM_TYPE: 'urn:xmpp:invite#create-account', username: 'frank', 'roster-subscription': '1', admin: 'true', uses: '1', expire: '1h' };
    const inv = await invite(boss, 'urn:xmpp:invite#create-account', fields);
    assert.match(inv.uri, /^xmpp:frank@localhost\?register;preauth=/);
    assert.ok(Date.parse(inv.expire) < Date.now() + 3_700_000);
    const r = await registerWith(server, tokenOf(inv.uri), 'frank');
    assert.match(r.register, /type=.result./);
    r.c.end();
    await expectStanza(boss, (s) => s.is('iq') && s.getChild('query')?.getChild('item')?.attrs.jid === 'frank@localhost');
    assert.equal((await server.storage.accounts.get('frank'))?.admin, true);
    const bad = await runCommand(boss, 'urn:xmpp:invite#create-account', { ...fields, expire: 'soon' });
    assert.deepEqual(errorCondition(bad.at(-1)!), ['bad-request', 'bad-payload']);
    await stopAll(boss);
  });

  it('a user’s contact invitation: an existing account subscribing with its token gets a mutual subscription at once', async () => {
    const alice = await connect(server, 'alice');
    await alice.send(xml('iq', { type: 'get', id: 'r0' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const inv = await invite(alice, 'urn:xmpp:invite#invite');
    // users_invite_accounts is off: the invitation befriends, it does not register
    assert.match(inv.uri, /^xmpp:alice@localhost\?roster;preauth=[A-Za-z0-9_-]{24}$/);
    const reg = await registerWith(server, tokenOf(inv.uri), 'nobody');
    assert.match(reg.preauth!, /<item-not-found/);
    reg.c.end();
    const bob = await connect(server, 'bob');
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }, xml('preauth', { xmlns: 'urn:xmpp:pars:0', token: tokenOf(inv.uri) })));
    const push = await expectStanza(alice, (s) => s.is('iq') && s.attrs.type === 'set' && !!s.getChild('query')?.getChild('item'));
    assert.equal(push.getChild('query')!.getChild('item')!.attrs.jid, 'bob@localhost');
    assert.equal(push.getChild('query')!.getChild('item')!.attrs.subscription, 'both');
    await until(async () => (await server.storage.roster.getItem('bob', 'alice@localhost'))?.subscription === 'both', 'bob subscribed both ways');
    // no request is left for alice to answer
    assert.deepEqual(await server.storage.roster.pending('alice'), []);
    await stopAll(alice, bob);
  });

  it('`uzzap invite` makes account and contact invitations; a contact invitation with registration befriends the inviter', async () => {
    const env = { ...process.env, UZZAP_DOMAIN: 'localhost', UZZAP_DATA_DIR: server.config.data_dir, UZZAP_POSTGRES_URL: server.config.postgres_url };
    const run = (...args: string[]): string => {
      const r = spawnSync(process.execPath, [BIN, 'invite', ...args], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const out = run('--uses', '2', '--expires', '1h', '--username', 'carol');
    const [landing, uri, valid] = out.trim().split('\n');
    assert.match(landing!, /\/invite\/[A-Za-z0-9_-]{24}$/);
    assert.match(uri!, /^xmpp:carol@localhost\?register;preauth=/);
    assert.match(valid!, /^valid until .*, 2 uses$/);
    // the username is fixed, and kept for the invitee: another token cannot take it
    const wrong = await registerWith(server, tokenOf(uri!), 'dora');
    assert.match(wrong.register, /<not-acceptable/);
    wrong.c.end();
    const other = run().trim().split('\n')[1]!;
    const taken = await registerWith(server, tokenOf(other), 'carol');
    assert.match(taken.register, /<conflict/);
    taken.c.end();
    const carol = await registerWith(server, tokenOf(uri!), 'carol');
    assert.match(carol.register, /type=.result./);
    carol.c.end();
    const bad = spawnSync(process.execPath, [BIN, 'invite', '--expires', 'soon'], { env, encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--expires/);

    const contact = run('--contact', 'alice@localhost').trim().split('\n')[1]!;
    assert.match(contact, /^xmpp:alice@localhost\?roster;preauth=[A-Za-z0-9_-]{24};ibr=y$/);
    const alice = await connect(server, 'alice');
    await alice.send(xml('iq', { type: 'get', id: 'r0' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const reg = await registerWith(server, tokenOf(contact), 'erin');
    assert.match(reg.register, /type=.result./);
    reg.c.end();
    await expectStanza(alice, (s) => s.is('iq') && s.getChild('query')?.getChild('item')?.attrs.jid === 'erin@localhost');
    await until(async () => (await server.storage.roster.getItem('erin', 'alice@localhost'))?.subscription === 'both', 'erin befriended');
    assert.equal((await server.storage.roster.getItem('alice', 'erin@localhost'))?.subscription, 'both');
    await stopAll(alice);
  });

  it('a refused password does not spend the invitation; a non-ASCII inviter’s page and URI work', async () => {
    const { token } = await createInvite(server.storage, { kind: 'account', inviter: '', ttl: 60 });
    const c = await openToSasl(server.ports.c2s);
    c.send(`<iq type='set' id='pa1'><preauth xmlns='urn:xmpp:pars:0' token='${token}'/></iq>`);
    await c.waitFor(FINAL('pa1'));
    c.data = '';
    // a private-use character: SASLprep refuses it
    c.send(`<iq type='set' id='rg1'><query xmlns='jabber:iq:register'><username>gil</username><password>\uE000</password></query></iq>`);
    assert.match(await c.waitFor(FINAL('rg1')), /<not-acceptable/);
    c.data = '';
    c.send(`<iq type='set' id='rg2'><query xmlns='jabber:iq:register'><username>gil</username><password>good one</password></query></iq>`);
    assert.match(await c.waitFor(FINAL('rg2')), /type=.result./);
    c.end();
    await server.accounts.create('алиса', 'secret');
    const inv = await createInvite(server.storage, { kind: 'contact', inviter: 'алиса', register: true, ttl: 60 });
    const res = await fetch(`http://127.0.0.1:${server.ports.http}/invite/${inv.token}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('link')!, /^<xmpp:%D0%B0%D0%BB%D0%B8%D1%81%D0%B0@localhost\?roster;preauth=/);
  });

  it('with registration open, an invitation still carries its username, admin flag and contact', async () => {
    const open = await startServer({ users: { ivy: 'secret' }, config: { registration: 'open' } });
    try {
      const { token } = await createInvite(open.storage, { kind: 'contact', inviter: 'ivy', register: true, ttl: 60 });
      const r = await registerWith(open, token, 'jon');
      assert.match(r.register, /type=.result./);
      r.c.end();
      await until(async () => (await open.storage.roster.getItem('jon', 'ivy@localhost'))?.subscription === 'both', 'jon befriended ivy');
    } finally {
      await open.stop();
    }
  });

  it('an expired invitation registers nobody and its page is gone', async () => {
    const { token, invite: inv } = await createInvite(server.storage, { kind: 'account', inviter: '', ttl: 60 });
    await server.storage.invites.delete(inv.id);
    await server.storage.invites.create({ ...inv, expiresAt: Date.now() - 1 });
    const r = await registerWith(server, token, 'late');
    assert.match(r.preauth!, /<item-not-found/);
    r.c.end();
    assert.equal((await fetch(`http://127.0.0.1:${server.ports.http}/invite/${token}`)).status, 404);
  });

  it('the landing page: the invitation, the clients, the xmpp: link; an unknown token gets a 404 that names nothing', async () => {
    const boss = await connect(server, 'boss');
    const inv = await invite(boss, 'urn:xmpp:invite#create-account', { FORM_TYPE: 'urn:xmpp:invite#create-account' });
    const res = await fetch(inv.landing);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('link'), `<${inv.uri}>; rel="alternate"`);
    const html = await res.text();
    assert.ok(html.includes(`href="${inv.uri}"`));
    assert.match(html, /Conversations[\s\S]*Monal[\s\S]*Gajim/);
    assert.match(html, /<svg[^>]*viewBox/);
    const missing = await fetch(inv.landing.replace(/[A-Za-z0-9_-]{24}$/, 'B'.repeat(24)));
    assert.equal(missing.status, 404);
    assert.doesNotMatch(await missing.text(), /B{24}/);
    await stopAll(boss);
  });
});
