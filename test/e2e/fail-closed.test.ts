// Security decisions fail closed: when the blocklist cannot be read, a stanza
// is refused (internal-server-error, wait), never delivered unchecked.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, stopAll, xml } from '../helpers/clients.js';

describe('blocking fails closed (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
  });
  after(() => server.stop());

  it('a message whose recipient’s blocklist cannot be read is refused with internal-server-error (wait), not delivered', async () => {
    const userData = server.storage.userData;
    const list = userData.list.bind(userData);
    // the storage fails for blocklists only (fault injection: the store itself is real)
    userData.list = (user: string, kind: string) => (kind === 'block' ? Promise.reject(new Error('storage is down')) : list(user, kind));
    try {
      const alice = await connect(server, 'alice');
      const bob = await connect(server, 'bob');
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'fc1' }, xml('body', {}, 'unchecked?')));
      const err = await expectStanza(alice, (s: Element) => s.is('message') && s.attrs.id === 'fc1' && s.attrs.type === 'error');
      assert.equal(err.getChild('error')?.attrs.type, 'wait');
      assert.ok(err.getChild('error')?.getChild('internal-server-error'), err.toString());
      await expectNothing(bob, (s: Element) => s.is('message') && s.getChildText('body') === 'unchecked?', { after: [alice] });
      await stopAll(alice, bob);
    } finally {
      userData.list = list;
    }
  });
});
