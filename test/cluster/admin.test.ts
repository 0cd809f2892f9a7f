// XEP-0133 administration covers the whole cluster (issue 15): an admin on node A
// counts and lists users online on node B, ends a session there and announces to it.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer } from '../helpers/server.js';
import { connect, expectStanza, stopAll, until, type XmppClient } from '../helpers/clients.js';
import { ADMIN, commandOf, fieldValues, runCommand } from '../helpers/adhoc.js';

const last = (rs: Element[]): Element => rs[rs.length - 1]!;
const done = (r: Element): Element => {
  assert.equal(commandOf(r).attrs.status, 'completed', r.toString());
  return r;
};

describe('cluster: admin commands cover every node (two nodes, Postgres + Redis)', function () {
  this.timeout(20_000);
  let a: Server, b: Server;
  let admin: XmppClient, bob: XmppClient, carol: XmppClient;
  before(async () => {
    const slot = await newStorageSlot();
    const config = { admins: ['admin@localhost'] };
    a = await startServer({ slot, config, users: { admin: 'secret', bob: 'secret', carol: 'secret' } });
    b = await startServer({ slot, config });
    admin = await connect(a, 'admin', { resource: 'console' });
    bob = await connect(b, 'bob', { resource: 'pc' });
    carol = await connect(b, 'carol', { resource: 'web' });
    await until(() => a.sessions.get('bob@localhost', 'pc')?.available === true && a.sessions.get('carol@localhost', 'web')?.available === true, 'A knows B’s users');
  });
  after(async () => {
    await stopAll(admin, bob, carol);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('online users: the count and the list include the other node’s users', async () => {
    const n = fieldValues(done(last(await runCommand(admin, ADMIN('get-online-users-num')))), 'onlineusersnum');
    assert.deepEqual(n, ['3']);
    const list = fieldValues(done(last(await runCommand(admin, ADMIN('get-online-users-list'), { max_items: '25' }))), 'onlineuserjids') ?? [];
    assert.ok(list.includes('bob@localhost') && list.includes('carol@localhost'), list.join(','));
  });

  it('an announcement reaches users on the other node', async () => {
    done(last(await runCommand(admin, ADMIN('announce'), { announcement: ['Maintenance', 'at noon'] })));
    const m = await expectStanza(bob, (s) => s.is('message') && s.attrs.from === 'localhost');
    assert.match(m.getChildText('body') ?? '', /at noon/);
  });

  it('end-user-session ends a session on the other node', async () => {
    const closed = new Promise<string>((res) => carol.on('error', (e: Error & { condition?: string }) => res(e.condition ?? e.message)));
    done(last(await runCommand(admin, ADMIN('end-user-session'), { accountjids: 'carol@localhost' })));
    assert.ok(await closed);
    await until(() => a.sessions.get('carol@localhost', 'web') === undefined, 'A forgot carol');
  });
});
