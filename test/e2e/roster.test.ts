// RFC 6121 §2 roster retrieval and XEP-0237 versioning over real sockets.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';
import { authenticated } from '../helpers/raw.js';

describe('roster (e2e)', () => {
  let server: Server;
  let alice: XmppClient;
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    await server.storage.roster.put('alice', {
      jid: 'bob@localhost',
      name: 'Bob',
      subscription: 'both',
      ask: false,
      approved: false,
      groups: ['Friends'],
    });
    alice = await connect(server, 'alice');
  });
  after(async () => {
    await stopAll(alice);
    await server.stop();
  });

  it('advertises roster versioning after authentication', async () => {
    const c = await authenticated(server.ports.c2s, 'alice', 'secret');
    assert.match(c.data, /<ver xmlns='urn:xmpp:features:rosterver'\/>/);
    c.end();
  });

  it('returns the stored roster with its version', async () => {
    const r = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const q = r.getChild('query', 'jabber:iq:roster')!;
    assert.match(q.attrs.ver, /^\d+$/);
    const items = q.getChildren('item');
    assert.equal(items.length, 1);
    assert.deepEqual(items[0]!.attrs, { jid: 'bob@localhost', name: 'Bob', subscription: 'both' });
    assert.equal(items[0]!.getChildText('group'), 'Friends');
  });

  it('answers an unchanged version with an empty result, a stale one with the roster', async () => {
    const first = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster', ver: '' })));
    const ver = first.getChild('query')!.attrs.ver as string;
    const same = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster', ver })));
    assert.equal(same.attrs.type, 'result');
    assert.equal(same.children.length, 0);
    // another resource of alice changes the roster while this one keeps its old version
    const other = await connect(server, 'alice', { resource: 'other' });
    await iq(other, xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'carol@localhost' }))));
    await stopAll(other);
    try {
      const changed = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster', ver })));
      assert.notEqual(changed.getChild('query')!.attrs.ver, ver);
      assert.equal(changed.getChild('query')!.getChildren('item').length, 2);
    } finally {
      // the roster as the other tests expect it: bob only
      const rm = xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'carol@localhost', subscription: 'remove' }));
      assert.equal((await iq(alice, xml('iq', { type: 'set' }, rm))).attrs.type, 'result');
    }
  });

  it('refuses to show another user’s roster', async () => {
    const r = await iq(alice, xml('iq', { type: 'get', to: 'bob@localhost' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.ok(r.getChild('error')?.getChild('forbidden'));
  });
});
