// Rooms and components in a cluster of two nodes (issue 15): a room is served by one
// node and its occupants may be on any node; a component connected to one node is
// reachable from every node. Postgres + Redis pass only.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { connect, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { SERVICE, configure, createRoom, join, presenceFrom } from '../helpers/muc.js';

const { component } = createRequire(import.meta.url)('@xmpp/component') as {
  component: (o: { service: string; domain: string; password: string }) => {
    on(ev: string, fn: (s: Element) => void): void;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    reconnect: { stop(): void };
  };
};

const groupchat = (room: string, body: string) => xml('message', { to: `${room}@${SERVICE}`, type: 'groupchat' }, xml('body', {}, body));
const isGroupchat = (body: string) => (s: Element) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body') === body;

describe('cluster: rooms and components across nodes (two nodes, Postgres + Redis)', function () {
  this.timeout(20_000);
  let slot: StorageSlot;
  let a: Server, b: Server;
  let alice: XmppClient, bob: XmppClient;
  before(async () => {
    slot = await newStorageSlot();
    const config = { component: { port: 0, secret: 'shared' } };
    a = await startServer({ slot, config, users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    b = await startServer({ slot, config });
    alice = await connect(a, 'alice', { resource: 'phone' });
    bob = await connect(b, 'bob', { resource: 'pc' });
    await until(() => a.sessions.get('bob@localhost', 'pc') !== undefined && b.sessions.get('alice@localhost', 'phone') !== undefined, 'mirrors');
  });
  after(async () => {
    await stopAll(alice, bob);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('a room created on one node is joined from the other; every occupant sees the same messages in the same order', async () => {
    await createRoom(alice, 'lobby', 'al');
    await join(bob, 'lobby', 'bo');
    await expectStanza(alice, presenceFrom(`lobby@${SERVICE}/bo`));
    // one node serves the room: the one where it was created
    assert.equal(await b.cluster!.rooms.ownerOf(`lobby@${SERVICE}`), a.nodeId);
    for (let i = 0; i < 20; i++) await (i % 2 ? bob : alice).send(groupchat('lobby', `m${i}`));
    const order = async (c: XmppClient): Promise<string[]> => {
      await until(() => c.received.filter((s) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body')?.startsWith('m')).length >= 20, 'all 20');
      return c.received.filter((s) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body')?.match(/^m\d+$/)).map((s) => s.getChildText('body')!);
    };
    const [seenA, seenB] = [await order(alice), await order(bob)];
    assert.deepEqual(seenA, seenB);
    assert.equal(new Set(seenA).size, 20);
    // the same stanza-id for every occupant
    const idOf = (c: XmppClient, body: string) => c.received.find(isGroupchat(body))?.getChild('stanza-id')?.attrs.id;
    assert.ok(idOf(alice, 'm5'));
    assert.equal(idOf(alice, 'm5'), idOf(bob, 'm5'));
  });

  it('the room directory (disco#items on the service) lists the public rooms of every node; a room made private leaves it', async () => {
    await createRoom(alice, 'plaza', 'al', { 'muc#roomconfig_publicroom': '1', 'muc#roomconfig_roomname': 'The Plaza' });
    const items = async (c: XmppClient): Promise<Record<string, string>> => {
      const r = await iq(c, xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
      return Object.fromEntries(r.getChild('query')!.getChildren('item').map((i: Element) => [i.attrs.jid, i.attrs.name]));
    };
    // asked on node B, which does not serve it (its listing reaches Redis within 250 ms)
    await until(async () => (await items(bob))[`plaza@${SERVICE}`] === 'The Plaza', 'B lists the plaza');
    const r = await configure(alice, 'plaza', { 'muc#roomconfig_publicroom': '0' });
    assert.equal(r.attrs.type, 'result');
    await until(async () => !(`plaza@${SERVICE}` in (await items(bob))), 'B no longer lists it');
  });

  it('an occupant whose session ends on its node leaves the room served by the other node', async () => {
    const carol = await connect(b, 'carol', { resource: 'web' });
    await join(carol, 'lobby', 'ca');
    await expectStanza(alice, presenceFrom(`lobby@${SERVICE}/ca`));
    await stopAll(carol);
    await expectStanza(alice, presenceFrom(`lobby@${SERVICE}/ca`, 'unavailable'));
  });

  it('a component connected to node A is reachable from a user on node B, and answers back', async () => {
    const bridge = component({ service: `xmpp://127.0.0.1:${a.ports.component}`, domain: 'bridge.localhost', password: 'shared' });
    bridge.reconnect.stop();
    const got: Element[] = [];
    bridge.on('stanza', (s) => {
      got.push(s);
      if (s.is('iq') && s.attrs.type === 'get')
        void bridge.send(xml('iq', { type: 'result', id: s.attrs.id, to: s.attrs.from, from: s.attrs.to }, xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'bridge'))));
    });
    bridge.on('error', () => undefined);
    await bridge.start();
    try {
      await until(() => b.router.services.has('bridge.localhost'), 'B routes to the bridge');
      await bob.send(xml('message', { to: 'chan@bridge.localhost', type: 'chat' }, xml('body', {}, 'hi bridge')));
      await until(() => got.some((s) => s.is('message') && s.getChildText('body') === 'hi bridge'), 'the bridge got it');
      assert.equal(got.find((s) => s.is('message'))?.attrs.from, 'bob@localhost/pc');
      await bridge.send(xml('message', { from: 'nick@bridge.localhost', to: 'bob@localhost/pc', type: 'chat' }, xml('body', {}, 'hello from the bridge')));
      await expectStanza(bob, (s) => s.is('message') && s.getChildText('body') === 'hello from the bridge');
      const res = await iq(bob, xml('iq', { type: 'get', to: 'bridge.localhost', id: 'bv' }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal(res.attrs.type, 'result');
      // a second connection for the domain, on the other node: refused, as on one node
      const twin = component({ service: `xmpp://127.0.0.1:${b.ports.component}`, domain: 'bridge.localhost', password: 'shared' });
      twin.reconnect.stop();
      const refused = new Promise<string>((resolve) => twin.on('error', (e) => resolve(String((e as unknown as { condition?: string }).condition ?? e))));
      await twin.start().catch(() => undefined);
      assert.equal(await refused, 'conflict');
      await twin.stop().catch(() => undefined);
      // the first one still gets its traffic
      await bob.send(xml('message', { to: 'chan@bridge.localhost', type: 'chat' }, xml('body', {}, 'still you')));
      await until(() => got.some((s) => s.is('message') && s.getChildText('body') === 'still you'), 'the first bridge still gets it');
    } finally {
      await bridge.stop();
    }
    // gone from A: B answers service-unavailable again
    await until(async () => {
      const r = await iq(bob, xml('iq', { type: 'get', to: 'bridge.localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
      return r.attrs.type === 'error';
    }, 'B knows the bridge left');
  });
});
