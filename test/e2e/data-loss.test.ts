// Data that must not be lost when sessions end: unacknowledged messages
// (XEP-0198) that the user's other resources never got.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { rawSession, type RawClient } from '../helpers/raw.js';

const SM = "xmlns='urn:xmpp:sm:3'";

describe('no message lost when a session ends unacknowledged', function () {
  this.timeout(20_000);
  let server: Server;
  const raws: RawClient[] = [];
  const clients: XmppClient[] = [];
  beforeEach(async () => {
    server = await startServer({
      users: { alice: 'secret', bob: 'secret' },
      config: { sm: { resume_timeout: 1, ack_every: 1000, ack_interval: 60 } },
    });
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) r.socket.destroy();
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  /** a raw session with resumable SM and the given priority, available */
  const phone = async (resource: string, priority: number): Promise<RawClient> => {
    const c = await rawSession(server.ports.c2s, 'alice', 'secret', resource);
    raws.push(c);
    c.send(`<enable ${SM} resume='true'/>`);
    await c.waitFor(/<enabled[^>]*\/>/);
    c.send(`<presence><priority>${priority}</priority></presence>`);
    await c.waitFor(new RegExp(`<presence[^>]*from=['"]alice@localhost/${resource}['"]`));
    return c;
  };

  it('a message to the bare JID that only the higher-priority resource got goes to offline storage when that resource ends', async () => {
    const high = await phone('high', 5);
    const low = await phone('low', 0); // available, but a bare-JID chat goes to the highest priority only
    await high.waitFor(/from=['"]alice@localhost\/low['"]/);
    const bob = await connect(server, 'bob');
    clients.push(bob);
    high.data = '';
    low.data = '';
    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'only for the phone')));
    await high.waitFor('only for the phone');
    assert.ok(!low.data.includes('only for the phone'), 'the low-priority resource did not get it');
    high.socket.destroy(); // gone without acknowledging; the resumption window (1 s) runs out
    await until(async () => (await server.storage.offline.count('alice')) === 1, 'the message is in offline storage', 5000);
  });

  it('a message that two resources of equal priority got is stored once, by the last one to end unacknowledged', async () => {
    const one = await phone('one', 1);
    const two = await phone('two', 1);
    await one.waitFor(/from=['"]alice@localhost\/two['"]/);
    const bob = await connect(server, 'bob');
    clients.push(bob);
    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'm2' }, xml('body', {}, 'for both')));
    await one.waitFor('for both');
    await two.waitFor('for both');
    one.socket.destroy();
    await until(() => ![...server.sessions.all()].some((s) => s.jid.resource === 'one'), 'the first session ended', 5000);
    assert.equal(await server.storage.offline.count('alice'), 0, 'the other resource still has it');
    two.socket.destroy();
    await until(async () => (await server.storage.offline.count('alice')) === 1, 'stored when the last one ends', 5000);
  });
});
