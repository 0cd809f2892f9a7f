// XEP-0050 ad-hoc commands and XEP-0133 service administration, run from a
// real client (@xmpp/client) against a real server, stage by stage.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { ADMIN, NS_COMMANDS, commandOf, errorCondition, fieldValues, notes, runCommand, runStep } from '../helpers/adhoc.js';

const UZZAP = (name: string): string => `urn:uzzap:admin#${name}`;
const completed = (r: Element): Element => {
  assert.equal(r.attrs.type, 'result', r.toString());
  assert.equal(commandOf(r).attrs.status, 'completed', r.toString());
  return r;
};
const last = (rs: Element[]): Element => rs[rs.length - 1]!;
/** the stream error condition the server closes this client's stream with */
const streamError = (c: XmppClient): Promise<string> =>
  new Promise((resolve) => c.on('error', (e: { condition?: string }) => e.condition && resolve(e.condition)));

describe('ad-hoc commands (XEP-0050) and service administration (XEP-0133)', function () {
  this.timeout(20_000);
  let server: Server;
  let admin: XmppClient;
  let bob: XmppClient;

  beforeEach(async () => {
    server = await startServer({
      config: { admins: ['boss@localhost'] },
      users: { boss: 'secret', bob: 'secret', carol: 'secret' },
    });
    admin = await connect(server, 'boss', { resource: 'desk' });
    bob = await connect(server, 'bob', { resource: 'phone' });
  });
  afterEach(async () => {
    await stopAll(admin, bob);
    await server.stop();
  });

  describe('discovery and access', () => {
    it('lists the commands an admin may run on the commands node; a plain user sees none and gets forbidden', async () => {
      const info = await iq(
        admin,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
      );
      assert.ok(
        info
          .getChild('query')!
          .getChildren('feature')
          .some((f) => f.attrs.var === NS_COMMANDS),
      );
      const items = await iq(
        admin,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: NS_COMMANDS })),
      );
      const nodes = items
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.node as string);
      for (const n of [
        'add-user',
        'delete-user',
        'disable-user',
        'reenable-user',
        'end-user-session',
        'change-user-password',
        'get-user-roster',
      ])
        assert.ok(nodes.includes(ADMIN(n)), `${n} listed`);
      for (const n of [
        'get-user-lastlogin',
        'get-registered-users-num',
        'get-online-users-list',
        'announce',
        'set-motd',
        'edit-motd',
        'delete-motd',
        'edit-admin',
      ])
        assert.ok(nodes.includes(ADMIN(n)), `${n} listed`);
      for (const n of ['server-stats', 'reload', 'set-setting', 'list-rooms', 'destroy-room', 'kick-occupant'])
        assert.ok(nodes.includes(UZZAP(n)), `${n} listed`);
      assert.ok(
        items
          .getChild('query')!
          .getChildren('item')
          .every((i) => i.attrs.jid === 'localhost' && i.attrs.name),
      );

      const node = await iq(
        admin,
        xml(
          'iq',
          { type: 'get', to: 'localhost' },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: ADMIN('add-user') }),
        ),
      );
      const id = node.getChild('query')!.getChild('identity')!;
      assert.deepEqual([id.attrs.category, id.attrs.type], ['automation', 'command-node']);

      const bobItems = await iq(
        bob,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: NS_COMMANDS })),
      );
      // a user sees the commands every user may run: the XEP-0401 contact invitation, no admin command
      assert.deepEqual(
        bobItems
          .getChild('query')!
          .getChildren('item')
          .map((i) => i.attrs.node),
        ['urn:xmpp:invite#invite'],
      );
      const denied = await runStep(bob, ADMIN('add-user'));
      assert.equal(denied.attrs.type, 'error');
      assert.deepEqual(errorCondition(denied), ['forbidden']);
      assert.equal(denied.getChild('error')!.attrs.type, 'cancel');
      const unknown = await runStep(admin, 'urn:nope');
      assert.deepEqual(errorCondition(unknown), ['item-not-found']);
    });

    it('a session times out after modules.adhoc.timeout', async () => {
      const s2 = await startServer({
        config: { admins: ['boss@localhost'], modules: { adhoc: { timeout: 1 } } },
        users: { boss: 'secret' },
      });
      const a = await connect(s2, 'boss');
      try {
        const sid = commandOf(await runStep(a, ADMIN('delete-user'))).attrs.sessionid as string;
        await new Promise((r) => setTimeout(r, 1200)); // a fixed wait: what is tested is the 1 s timeout itself
        const r = await runStep(a, ADMIN('delete-user'), { action: 'complete', sessionid: sid, fields: { accountjids: 'boss@localhost' } });
        assert.deepEqual(errorCondition(r), ['not-allowed', 'session-expired']);
        assert.ok(await s2.storage.accounts.get('boss'), 'nothing was deleted');
      } finally {
        await stopAll(a);
        await s2.stop();
      }
    });

    it('review fixes: command-list identity, forbidden node info, cancel-type forms, sessions end with their client', async () => {
      const info = await iq(
        admin,
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: NS_COMMANDS })),
      );
      const id = info.getChild('query')!.getChild('identity')!;
      assert.deepEqual([id.attrs.category, id.attrs.type], ['automation', 'command-list']);
      const bobInfo = await iq(
        bob,
        xml(
          'iq',
          { type: 'get', to: 'localhost' },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: ADMIN('add-user') }),
        ),
      );
      assert.deepEqual(errorCondition(bobInfo), ['forbidden']);
      // §4.4.1: a form of type 'cancel' is taken as a submission
      const sid = commandOf(await runStep(admin, ADMIN('get-registered-users-list'))).attrs.sessionid as string;
      const r = await iq(
        admin,
        xml(
          'iq',
          { type: 'set', to: 'localhost' },
          xml(
            'command',
            { xmlns: NS_COMMANDS, node: ADMIN('get-registered-users-list'), sessionid: sid, action: 'complete' },
            xml('x', { xmlns: 'jabber:x:data', type: 'cancel' }, xml('field', { var: 'max_items' }, xml('value', {}, '25'))),
          ),
        ),
      );
      completed(r);
      assert.equal(commandOf(r).attrs['xml:lang'], 'en');
      // max_items must be positive
      assert.deepEqual(errorCondition(last(await runCommand(admin, ADMIN('get-registered-users-list'), { max_items: '0' }))), [
        'bad-request',
        'bad-payload',
      ]);
      // edit-admin without its field changes nothing
      assert.deepEqual(errorCondition(last(await runCommand(admin, ADMIN('edit-admin'), {}))), ['bad-request', 'bad-payload']);
      // a client's open command sessions end when it goes: its next login may open new ones
      const s2 = await startServer({
        config: { admins: ['boss@localhost'], modules: { adhoc: { max_sessions_per_user: 2 } } },
        users: { boss: 'secret' },
      });
      try {
        const a = await connect(s2, 'boss', { resource: 'r1' });
        await runStep(a, ADMIN('add-user'));
        await runStep(a, ADMIN('add-user'));
        assert.deepEqual(errorCondition(await runStep(a, ADMIN('add-user'))), ['resource-constraint']);
        await stopAll(a);
        await until(() => s2.sessions.size === 0, 'the session ended');
        const a2 = await connect(s2, 'boss', { resource: 'r1' });
        assert.equal(commandOf(await runStep(a2, ADMIN('add-user'))).attrs.status, 'executing');
        await stopAll(a2);
      } finally {
        await s2.stop();
      }
    });

    it('multi-stage sessions: next, prev, complete, cancel, and the XEP-0050 errors', async () => {
      // a two-stage command: pick a setting, then give its value
      const first = await runStep(admin, UZZAP('set-setting'));
      const cmd = commandOf(first);
      assert.equal(cmd.attrs.status, 'executing');
      const sid = cmd.attrs.sessionid as string;
      assert.ok(sid);
      const actions = cmd.getChild('actions')!;
      assert.equal(actions.attrs.execute, 'next');
      assert.ok(actions.getChild('next') && !actions.getChild('prev'));
      const options = cmd
        .getChild('x', 'jabber:x:data')!
        .getChildren('field')
        .find((f) => f.attrs.var === 'setting')!
        .getChildren('option')
        .map((o) => o.getChildText('value'));
      assert.ok(options.includes('limits.max_resources') && options.includes('log_level') && options.includes('rate_limits.c2s.stanzas'));
      assert.ok(!options.includes('c2s.port'), 'restart-only settings are not offered');
      const labels = cmd
        .getChild('x', 'jabber:x:data')!
        .getChildren('field')
        .find((f) => f.attrs.var === 'setting')!
        .getChildren('option')
        .map((o) => o.attrs.label as string);
      assert.ok(labels.includes('component.secret (now: (not set))'), labels.join('|'));
      await server.setLive('component.secret', 'topsecret');
      const again0 = await runStep(admin, UZZAP('set-setting'));
      assert.ok(!again0.toString().includes('topsecret'), 'secrets are never shown');
      assert.ok(again0.toString().includes('component.secret (now: (set))'));

      // 'complete' on a stage that is not the last is a bad action
      const early = await runStep(admin, UZZAP('set-setting'), {
        action: 'complete',
        sessionid: sid,
        fields: { setting: 'limits.max_resources' },
      });
      assert.deepEqual(errorCondition(early), ['bad-request', 'bad-action']);
      const second = await runStep(admin, UZZAP('set-setting'), {
        action: 'next',
        sessionid: sid,
        fields: { setting: 'limits.max_resources' },
      });
      const c2 = commandOf(second);
      assert.equal(c2.attrs.status, 'executing');
      assert.ok(c2.getChild('actions')!.getChild('prev') && c2.getChild('actions')!.getChild('complete'));
      assert.equal(c2.getChild('actions')!.attrs.execute, 'complete');
      assert.deepEqual(fieldValues(second, 'value'), ['32']);
      // back to the first stage, and forward again
      const back = await runStep(admin, UZZAP('set-setting'), { action: 'prev', sessionid: sid });
      assert.ok(fieldValues(back, 'setting') !== undefined);
      await runStep(admin, UZZAP('set-setting'), { action: 'next', sessionid: sid, fields: { setting: 'limits.max_resources' } });
      const tooEarly = await runStep(admin, UZZAP('set-setting'), { action: 'next', sessionid: sid, fields: { value: '1' } });
      assert.deepEqual(errorCondition(tooEarly), ['bad-request', 'bad-action']);
      const bad = await runStep(admin, UZZAP('set-setting'), { action: 'complete', sessionid: sid, fields: { value: 'many' } });
      assert.equal(bad.attrs.type, 'error');
      assert.match(bad.getChild('error')!.getChildText('text') ?? '', /not a number/);
      const done = completed(await runStep(admin, UZZAP('set-setting'), { action: 'complete', sessionid: sid, fields: { value: '1' } }));
      assert.ok(
        notes(done).some((n) => n.includes('limits.max_resources')),
        notes(done).join('|'),
      );
      assert.equal(server.config.limits.max_resources, 1);
      // the live limit applies at once: a second resource is refused, the first session stays
      await assert.rejects(connect(server, 'bob', { resource: 'tablet' }));
      const ping = await iq(bob, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(ping.attrs.type, 'result');

      // the session is over now
      const again = await runStep(admin, UZZAP('set-setting'), { action: 'next', sessionid: sid, fields: { setting: 'log_level' } });
      assert.deepEqual(errorCondition(again), ['not-allowed', 'session-expired']);
      const bogus = await runStep(admin, UZZAP('set-setting'), { action: 'next', sessionid: 'nope', fields: { setting: 'log_level' } });
      assert.deepEqual(errorCondition(bogus), ['bad-request', 'bad-sessionid']);
      assert.equal(bogus.getChild('error')!.getChild('bad-sessionid')!.attrs.xmlns, NS_COMMANDS);
      const malformed = await runStep(admin, UZZAP('set-setting'), { action: 'jump' });
      assert.deepEqual(errorCondition(malformed), ['bad-request', 'malformed-action']);

      // cancel
      const s2 = commandOf(await runStep(admin, ADMIN('add-user'))).attrs.sessionid as string;
      const canceled = await runStep(admin, ADMIN('add-user'), { action: 'cancel', sessionid: s2 });
      assert.equal(commandOf(canceled).attrs.status, 'canceled');
      assert.deepEqual(errorCondition(await runStep(admin, ADMIN('add-user'), { action: 'complete', sessionid: s2, fields: {} })), [
        'not-allowed',
        'session-expired',
      ]);
      // another user cannot continue an admin's session
      const s3 = commandOf(await runStep(admin, ADMIN('delete-user'))).attrs.sessionid as string;
      const other = await connect(server, 'boss', { resource: 'laptop' }).catch(() => undefined);
      assert.equal(other, undefined, 'max_resources=1 keeps a second boss resource out too');
      await runStep(admin, ADMIN('delete-user'), { action: 'cancel', sessionid: s3 });
      // a form that is missing is a bad payload
      const s4 = commandOf(await runStep(admin, ADMIN('delete-user'))).attrs.sessionid as string;
      assert.deepEqual(errorCondition(await runStep(admin, ADMIN('delete-user'), { action: 'complete', sessionid: s4 })), [
        'bad-request',
        'bad-payload',
      ]);
    });
  });

  describe('accounts', () => {
    it('add-user shows the XEP-0133 form and creates an account that can log in; duplicates and mismatched passwords are refused', async () => {
      const first = await runStep(admin, ADMIN('add-user'));
      const vars = commandOf(first)
        .getChild('x', 'jabber:x:data')!
        .getChildren('field')
        .map((f) => `${f.attrs.var}:${f.attrs.type}`);
      assert.deepEqual(vars, [
        'FORM_TYPE:hidden',
        'accountjid:jid-single',
        'password:text-private',
        'password-verify:text-private',
        'email:text-single',
        'given_name:text-single',
        'surname:text-single',
      ]);
      const sid = commandOf(first).attrs.sessionid as string;
      const done = await runStep(admin, ADMIN('add-user'), {
        action: 'complete',
        sessionid: sid,
        fields: { accountjid: 'dave@localhost', password: 'pw-dave', 'password-verify': 'pw-dave', email: 'dave@example.com' },
      });
      completed(done);
      const dave = await connect(server, 'dave', { password: 'pw-dave' });
      await stopAll(dave);
      const dup = last(await runCommand(admin, ADMIN('add-user'), { accountjid: 'dave@localhost', password: 'x', 'password-verify': 'x' }));
      assert.deepEqual(errorCondition(dup), ['conflict']);
      assert.ok(!dup.toString().includes('<value>x</value>'), 'the error does not echo the password');
      const mismatch = last(
        await runCommand(admin, ADMIN('add-user'), { accountjid: 'erin@localhost', password: 'a', 'password-verify': 'b' }),
      );
      assert.deepEqual(errorCondition(mismatch), ['bad-request', 'bad-payload']);
      const foreign = last(
        await runCommand(admin, ADMIN('add-user'), { accountjid: 'erin@elsewhere.example', password: 'a', 'password-verify': 'a' }),
      );
      assert.deepEqual(errorCondition(foreign), ['bad-request', 'bad-payload']);
    });

    it('change-user-password, disable-user (sessions end, login refused), reenable-user, delete-user', async () => {
      completed(last(await runCommand(admin, ADMIN('change-user-password'), { accountjid: 'carol@localhost', password: 'new-pw' })));
      await assert.rejects(connect(server, 'carol', { password: 'secret' }));
      const carol = await connect(server, 'carol', { password: 'new-pw' });
      const ended = streamError(carol);
      const dis = completed(last(await runCommand(admin, ADMIN('disable-user'), { accountjids: ['carol@localhost', 'ghost@localhost'] })));
      assert.ok(
        notes(dis).some((n) => /carol@localhost: disabled, 1 session/.test(n)),
        notes(dis).join('|'),
      );
      assert.ok(notes(dis).some((n) => /warn: ghost@localhost: no such account/.test(n)));
      assert.equal(await ended, 'policy-violation');
      await assert.rejects(connect(server, 'carol', { password: 'new-pw' }));
      assert.equal(fieldValues(completed(last(await runCommand(admin, ADMIN('get-disabled-users-num')))), 'disabledusersnum')![0], '1');
      assert.deepEqual(
        fieldValues(last(await runCommand(admin, ADMIN('get-disabled-users-list'), { max_items: '25' })), 'disableduserjids'),
        ['carol@localhost'],
      );
      completed(last(await runCommand(admin, ADMIN('reenable-user'), { accountjids: 'carol@localhost' })));
      await stopAll(await connect(server, 'carol', { password: 'new-pw' }));
      // one bad JID fails the whole list before anything changes
      const mixed = last(await runCommand(admin, ADMIN('delete-user'), { accountjids: ['carol@localhost', 'x@example.org'] }));
      assert.deepEqual(errorCondition(mixed), ['bad-request', 'bad-payload']);
      assert.ok(await server.storage.accounts.get('carol'), 'carol was not deleted');
      completed(last(await runCommand(admin, ADMIN('delete-user'), { accountjids: 'carol@localhost' })));
      assert.equal(await server.storage.accounts.get('carol'), undefined);
    });

    it('end-user-session ends one resource (full JID) or all (bare JID) with a stream error', async () => {
      const bob2 = await connect(server, 'bob', { resource: 'tablet' });
      const gone = streamError(bob2);
      const r = completed(last(await runCommand(admin, ADMIN('end-user-session'), { accountjids: 'bob@localhost/tablet' })));
      assert.ok(notes(r).some((n) => n.includes('1 session(s) ended')));
      assert.equal(await gone, 'policy-violation');
      const ping = await iq(bob, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(ping.attrs.type, 'result', 'the other resource stays');
      const gone2 = streamError(bob);
      completed(last(await runCommand(admin, ADMIN('end-user-session'), { accountjids: 'bob@localhost' })));
      assert.equal(await gone2, 'policy-violation');
    });

    it('get-user-roster returns the roster as jabber:iq:roster inside the form; get-user-lastlogin gives an XEP-0082 time', async () => {
      await server.storage.roster.put('bob', {
        jid: 'carol@localhost',
        name: 'Carol',
        subscription: 'both',
        ask: false,
        approved: false,
        groups: ['Friends'],
      });
      const r = completed(last(await runCommand(admin, ADMIN('get-user-roster'), { accountjids: 'bob@localhost' })));
      const q = commandOf(r).getChild('x', 'jabber:x:data')!.getChild('query', 'jabber:iq:roster')!;
      const item = q.getChild('item')!;
      assert.deepEqual(
        [item.attrs.jid, item.attrs.name, item.attrs.subscription, item.getChildText('group')],
        ['carol@localhost', 'Carol', 'both', 'Friends'],
      );
      const ll = completed(last(await runCommand(admin, ADMIN('get-user-lastlogin'), { accountjids: 'bob@localhost' })));
      const stamp = fieldValues(ll, 'lastlogin')![0]!;
      assert.match(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.ok(Math.abs(Date.parse(stamp) - Date.now()) < 60_000);
      const never = completed(last(await runCommand(admin, ADMIN('get-user-lastlogin'), { accountjids: 'carol@localhost' })));
      assert.ok(notes(never).some((n) => n.includes('never logged in')));
    });
  });

  describe('counts and lists', () => {
    it('registered, online, active and idle users, with max_items and paging', async () => {
      for (let i = 0; i < 5; i++) await server.accounts.create(`user${i}`, 'pw');
      assert.equal(fieldValues(completed(last(await runCommand(admin, ADMIN('get-registered-users-num')))), 'registeredusersnum')![0], '8');
      assert.equal(fieldValues(completed(last(await runCommand(admin, ADMIN('get-online-users-num')))), 'onlineusersnum')![0], '2');
      assert.equal(fieldValues(completed(last(await runCommand(admin, ADMIN('get-active-users-num')))), 'activeusersnum')![0], '2');
      assert.equal(fieldValues(completed(last(await runCommand(admin, ADMIN('get-idle-users-num')))), 'idleusersnum')![0], '0');
      assert.deepEqual(fieldValues(last(await runCommand(admin, ADMIN('get-active-users'), { max_items: '25' })), 'activeuserjids'), [
        'bob@localhost',
        'boss@localhost',
      ]);
      const stats = completed(last(await runCommand(admin, ADMIN('user-stats'), { accountjid: 'bob@localhost' })));
      assert.deepEqual(fieldValues(stats, 'onlineresources'), ['phone']);
      assert.deepEqual(fieldValues(stats, 'ipaddresses'), ['127.0.0.1']);
      assert.deepEqual(fieldValues(stats, 'rostersize'), ['0']);
      // bob says he is inactive (XEP-0352): idle now
      await bob.send(xml('inactive', { xmlns: 'urn:xmpp:csi:0' }));
      await until(
        async () => fieldValues(last(await runCommand(admin, ADMIN('get-idle-users-num'))), 'idleusersnum')![0] === '1',
        'bob idle',
      );
      assert.deepEqual(fieldValues(last(await runCommand(admin, ADMIN('get-idle-users'), { max_items: 'none' })), 'activeuserjids'), [
        'bob@localhost',
      ]);
      assert.deepEqual(fieldValues(last(await runCommand(admin, ADMIN('get-online-users-list'), { max_items: '25' })), 'onlineuserjids'), [
        'bob@localhost',
        'boss@localhost',
      ]);
      // the first form offers the XEP's max_items options
      const form = await runStep(admin, ADMIN('get-registered-users-list'));
      const opts = commandOf(form)
        .getChild('x', 'jabber:x:data')!
        .getChildren('field')
        .find((f) => f.attrs.var === 'max_items')!
        .getChildren('option')
        .map((o) => o.getChildText('value'));
      assert.deepEqual(opts, ['25', '50', '75', '100', '150', '200', 'none']);
      await runStep(admin, ADMIN('get-registered-users-list'), { action: 'cancel', sessionid: commandOf(form).attrs.sessionid });
      // page through 8 accounts 3 at a time (any number is accepted besides the XEP's options)
      const seen: string[] = [];
      let after = '';
      for (let page = 0; page < 5; page++) {
        const r = completed(
          last(await runCommand(admin, ADMIN('get-registered-users-list'), { max_items: '3', 'x-uzzap#start-after': after })),
        );
        seen.push(...fieldValues(r, 'registereduserjids')!);
        const next = fieldValues(r, 'x-uzzap#next-after');
        if (!next) break;
        after = next[0]!;
      }
      assert.deepEqual(
        seen,
        ['bob', 'boss', 'carol', 'user0', 'user1', 'user2', 'user3', 'user4'].map((u) => `${u}@localhost`),
      );
    });
  });

  describe('announcements and the message of the day', () => {
    it('announce reaches every online session as a headline', async () => {
      const r = completed(last(await runCommand(admin, ADMIN('announce'), { announcement: ['Maintenance in', '5 minutes'] })));
      assert.ok(notes(r).some((n) => n.includes('2 session(s)')));
      const m = await expectStanza(bob, (s) => s.is('message') && s.attrs.from === 'localhost');
      assert.equal(m.attrs.type, 'headline');
      assert.equal(m.getChildText('body'), 'Maintenance in\n5 minutes');
    });

    it('set-motd is shown at login, edit-motd shows the current text, delete-motd stops it', async () => {
      completed(last(await runCommand(admin, ADMIN('set-motd'), { motd: ['Welcome to Uzzap', 'Be nice'] })));
      // users online now get it at once (XEP-0133 §4.24)
      const now = await expectStanza(bob, (s) => s.is('message') && s.attrs.from === 'localhost');
      assert.equal(now.getChildText('body'), 'Welcome to Uzzap\nBe nice');
      const carol = await connect(server, 'carol');
      const m = await expectStanza(carol, (s) => s.is('message') && s.attrs.from === 'localhost');
      assert.equal(m.getChildText('body'), 'Welcome to Uzzap\nBe nice');
      // once per session: a second presence does not repeat it
      await carol.send(xml('presence', {}, xml('show', {}, 'away')));
      await expectNothing(carol, (s) => s.is('message') && s.attrs.from === 'localhost', { after: [] });
      await stopAll(carol);
      const edit = await runStep(admin, ADMIN('edit-motd'));
      assert.deepEqual(fieldValues(edit, 'motd'), ['Welcome to Uzzap', 'Be nice']);
      await runStep(admin, ADMIN('edit-motd'), { action: 'cancel', sessionid: commandOf(edit).attrs.sessionid });
      completed(last(await runCommand(admin, ADMIN('delete-motd'))));
      const carol2 = await connect(server, 'carol');
      await expectNothing(carol2, (s) => s.is('message') && s.attrs.from === 'localhost', { after: [] });
      await stopAll(carol2);
    });
  });

  describe('admins', () => {
    it('edit-admin flags an account as admin (it may then run commands) and removes it again; configured admins stay', async () => {
      const form = await runStep(admin, ADMIN('edit-admin'));
      assert.deepEqual(fieldValues(form, 'adminjids'), ['boss@localhost']);
      await runStep(admin, ADMIN('edit-admin'), { action: 'cancel', sessionid: commandOf(form).attrs.sessionid });
      completed(last(await runCommand(admin, ADMIN('edit-admin'), { adminjids: ['boss@localhost', 'bob@localhost'] })));
      assert.equal((await server.storage.accounts.get('bob'))!.admin, true);
      completed(last(await runCommand(bob, ADMIN('get-registered-users-num'))));
      const r = completed(last(await runCommand(admin, ADMIN('edit-admin'), { adminjids: [] })));
      assert.ok(
        notes(r).some((n) => n.includes('boss@localhost is an admin by configuration')),
        notes(r).join('|'),
      );
      assert.deepEqual(errorCondition(await runStep(bob, ADMIN('get-registered-users-num'))), ['forbidden']);
      // an admin account deleted and created again is not an admin any more
      completed(last(await runCommand(admin, ADMIN('edit-admin'), { adminjids: ['boss@localhost', 'carol@localhost'] })));
      completed(last(await runCommand(admin, ADMIN('delete-user'), { accountjids: 'carol@localhost' })));
      await server.accounts.create('carol', 'new-carol');
      const carol = await connect(server, 'carol', { password: 'new-carol' });
      assert.deepEqual(errorCondition(await runStep(carol, ADMIN('get-registered-users-num'))), ['forbidden']);
      await stopAll(carol);
    });
  });

  describe('operating the server', () => {
    it('server statistics report sessions, rates, memory, loop lag and storage latency', async () => {
      const r = completed(last(await runCommand(admin, UZZAP('server-stats'))));
      assert.equal(fieldValues(r, 'sessions')![0], '2');
      assert.ok(Number(fieldValues(r, 'rss')![0]) > 10);
      assert.ok(Number(fieldValues(r, 'storage')![0]) >= 0, `storage latency ${fieldValues(r, 'storage')}`);
      assert.ok(fieldValues(r, 'lag-p99'));
      assert.equal(fieldValues(r, 'rooms')![0], '0');
    });

    it('reload applies a changed limit and disables and re-enables a module without dropping sessions', async () => {
      const base = server.config;
      let next = { ...base, limits: { ...base.limits, max_resources: 5 }, modules: { ...base.modules, disabled: ['version'] } };
      (server as unknown as { opts: { loadNext: () => unknown } }).opts.loadNext = () => next;
      const version = () => iq(bob, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal((await version()).attrs.type, 'result');
      const r = completed(last(await runCommand(admin, UZZAP('reload'))));
      assert.ok(
        notes(r).some((n) => n === 'info: applied: limits.max_resources'),
        notes(r).join('|'),
      );
      assert.ok(
        notes(r).some((n) => n === 'info: modules disabled: version'),
        notes(r).join('|'),
      );
      assert.equal(server.config.limits.max_resources, 5);
      const off = await version();
      assert.deepEqual(errorCondition(off), ['service-unavailable']);
      next = { ...next, modules: { ...base.modules, disabled: [] } };
      const r2 = completed(last(await runCommand(admin, UZZAP('reload'))));
      assert.ok(
        notes(r2).some((n) => n === 'info: modules enabled: version'),
        notes(r2).join('|'),
      );
      assert.equal((await version()).attrs.type, 'result');
      // a restart-only change is reported, not applied
      next = { ...next, c2s: { ...base.c2s, port: 1 } };
      const r3 = completed(last(await runCommand(admin, UZZAP('reload'))));
      assert.ok(
        notes(r3).some((n) => n === 'warn: need a restart to take effect: c2s.port'),
        notes(r3).join('|'),
      );
      assert.notEqual(server.config.c2s.port, 1);
      // a module's settings change: it is re-configured
      next = { ...next, c2s: base.c2s, modules: { ...base.modules, disabled: [], muc: { max_history: 5 } } } as typeof next;
      const r4 = completed(last(await runCommand(admin, UZZAP('reload'))));
      assert.ok(
        notes(r4).some((n) => n === 'info: modules re-configured: muc'),
        notes(r4).join('|'),
      );
      // a module others depend on cannot go
      next = { ...next, modules: { ...base.modules, disabled: ['disco'] } };
      const r5 = completed(last(await runCommand(admin, UZZAP('reload'))));
      assert.ok(
        notes(r5).some((n) => n.startsWith('error: cannot disable disco')),
        notes(r5).join('|'),
      );
      // both sessions lived through all of it
      assert.equal(
        (await iq(admin, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })))).attrs.type,
        'result',
      );
      assert.equal(
        (await iq(bob, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })))).attrs.type,
        'result',
      );
    });

    it('shutdown announces, waits the delay, then stops the server (system-shutdown to every stream)', async () => {
      const s2 = await startServer({ config: { admins: ['boss@localhost'] }, users: { boss: 'secret', dave: 'secret' } });
      const a = await connect(s2, 'boss');
      const d = await connect(s2, 'dave');
      const closed = streamError(d);
      const form = await runStep(a, ADMIN('shutdown'));
      const opts = commandOf(form)
        .getChild('x', 'jabber:x:data')!
        .getChildren('field')
        .find((f) => f.attrs.var === 'delay')!
        .getChildren('option')
        .map((o) => o.getChildText('value'));
      assert.deepEqual(opts, ['30', '60', '90', '120', '180', '240', '300']);
      const r = await runStep(a, ADMIN('shutdown'), {
        action: 'complete',
        sessionid: commandOf(form).attrs.sessionid,
        fields: { delay: '1', announcement: ['Going down for maintenance'] },
      });
      assert.ok(notes(completed(r)).some((n) => n.includes('shutting down in 1 s')));
      const m = await expectStanza(d, (s) => s.is('message') && s.attrs.type === 'headline');
      assert.equal(m.getChildText('body'), 'Going down for maintenance');
      const t = Date.now();
      assert.equal(await closed, 'system-shutdown');
      assert.ok(Date.now() - t < 3000);
      await stopAll(a, d);
      await s2.stop();
    });

    it('room administration: list rooms, kick an occupant, destroy a room', async () => {
      const muc = 'conference.localhost';
      await bob.send(xml('presence', { to: `lobby@${muc}/bob` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
      await expectStanza(bob, (s) => s.is('presence') && s.attrs.from === `lobby@${muc}/bob`);
      const list = completed(last(await runCommand(admin, UZZAP('list-rooms'))));
      assert.deepEqual(fieldValues(list, 'roomjids'), [`lobby@${muc}`]);
      assert.match(fieldValues(list, 'rooms')![0]!, /lobby@conference\.localhost: 1 occupant/);
      completed(last(await runCommand(admin, UZZAP('kick-occupant'), { roomjid: `lobby@${muc}`, nick: 'bob', reason: 'spam' })));
      const kicked = await expectStanza(
        bob,
        (s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === `lobby@${muc}/bob`,
      );
      assert.ok(kicked.toString().includes("code='307'") || kicked.toString().includes('code="307"'), kicked.toString());
      await bob.send(xml('presence', { to: `lobby@${muc}/bob` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
      await expectStanza(bob, (s) => s.is('presence') && s.attrs.from === `lobby@${muc}/bob` && s.attrs.type === undefined);
      completed(last(await runCommand(admin, UZZAP('destroy-room'), { roomjid: `lobby@${muc}`, reason: 'closing' })));
      const d = await expectStanza(bob, (s) => s.is('presence') && s.attrs.type === 'unavailable' && s.toString().includes('destroy'));
      assert.ok(d.toString().includes('closing'));
      assert.deepEqual(errorCondition(last(await runCommand(admin, UZZAP('destroy-room'), { roomjid: `lobby@${muc}` }))), [
        'item-not-found',
      ]);
    });
  });
});
