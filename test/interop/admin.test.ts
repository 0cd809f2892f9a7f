// Ad-hoc commands (XEP-0050) and service administration (XEP-0133) with a real
// third-party client: slixmpp's xep_0050 plugin (Debian python3-slixmpp), using
// its session workflow (start/continue/complete/cancel_command).
// Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts slixmpp's stanza log on stderr.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { itPasses, requireSlixmpp, runProbe } from './probe.js';

/** The checks slixmpp_admin.py prints as `PASS <check>` lines, in order. */
const CHECKS = [
  'list: admin#add-user is listed',
  'list: urn:uzzap:admin#server-stats is listed',
  'list: every item is at the server and has a name',
  'list: the command node is an automation/command-node',
  'list: a non-admin sees only the invitation command (XEP-0401)',
  'online-users-num: completed at once',
  'online-users-num: onlineusersnum is 2',
  'add-user: execute answers with a form (status executing)',
  'add-user: the response carries a sessionid',
  'add-user: form has accountjid, password, password-verify',
  'add-user: single stage, so the actions are complete only',
  'add-user: complete answered with status completed',
  'add-user: completed note names the new account',
  'add-user: the new account logs in with slixmpp',
  'server-stats: completed with a sessions field',
  'announce: execute answers with a form',
  'announce: completed',
  'announce: note counts 3 sessions',
  'announce: bob receives a headline from the server',
  'announce: the multi-line text arrives as one body',
  'set-setting: first stage offers the live settings',
  'set-setting: limits.max_resources is an option',
  'set-setting: first stage allows next only',
  'set-setting: next leads to the value stage',
  'set-setting: value stage allows prev and complete',
  'set-setting: value stage shows the current value',
  'set-setting: prev returns to the first stage',
  'set-setting: next again leads to the value stage',
  'set-setting: complete answered with status completed',
  'set-setting: completed note says limits.max_resources was applied',
  'cancel: a new add-user session is executing',
  'cancel: answered with status canceled',
  'cancel: the canceled session cannot be completed (session-expired)',
  'non-admin: add-user is refused with forbidden',
  'non-admin: the error type is cancel',
];

describe('interop: slixmpp ad-hoc commands (XEP-0050, XEP-0133)', function () {
  this.timeout(30_000);
  let server: Server;
  let out = '';
  before(async () => {
    requireSlixmpp();
    server = await startServer({ config: { admins: ['boss@localhost'] }, users: { boss: 'secret', bob: 'secret' } });
    out = await runProbe('slixmpp_admin.py', ['127.0.0.1', String(server.ports.c2s)]);
  });
  after(() => server?.stop());

  itPasses(() => out, CHECKS);

  it('the server state changed as the commands said: the account exists, the live limit is 5', async () => {
    assert.ok(await server.storage.accounts.get('newbie'), 'newbie@localhost was created');
    assert.equal(server.config.limits.max_resources, 5);
  });
});
