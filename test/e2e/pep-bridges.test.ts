// The bridges from PEP to older protocols: bookmarks (XEP-0402 with XEP-0048/0049/0411) and
// avatars (XEP-0084 with vCard-temp, XEP-0398, XEP-0153), over real sockets.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';
import { capsClient, isEvent, items, notify, NS_EVENT, NS_PUBSUB, publish } from '../helpers/pep.js';
import { createRoom, join, SERVICE } from '../helpers/muc.js';

const NS_B = 'urn:xmpp:bookmarks:1';
const NS_PRIVATE = 'jabber:iq:private';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
const PNG_ID = createHash('sha1').update(PNG).digest('hex');

async function befriend(server: Server, a: string, b: string): Promise<void> {
  const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };
  await server.storage.roster.put(a, { jid: `${b}@localhost`, ...both });
  await server.storage.roster.put(b, { jid: `${a}@localhost`, ...both });
}

const legacy = (...conferences: Element[]) => xml('storage', { xmlns: 'storage:bookmarks' }, ...conferences);
const room = (jid: string, name: string, nick?: string) =>
  xml('conference', { jid, name, autojoin: 'true' }, ...(nick ? [xml('nick', {}, nick)] : []));

async function privateGet(c: XmppClient): Promise<Element> {
  const r = await iq(c, xml('iq', { type: 'get' }, xml('query', { xmlns: NS_PRIVATE }, xml('storage', { xmlns: 'storage:bookmarks' }))));
  assert.equal(r.attrs.type, 'result', r.toString());
  return r.getChild('query')!.getChild('storage')!;
}

describe('bookmarks: XEP-0402 with the XEP-0048 bridges', function () {
  this.timeout(20_000);
  let server: Server;
  const clients: XmppClient[] = [];
  const track = (c: XmppClient): XmppClient => (clients.push(c), c);
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
  });
  afterEach(async () => {
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it('advertises #compat on the account', async () => {
    const alice = track(await connect(server, 'alice'));
    const r = await iq(alice, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = r.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [`${NS_B}#compat`, `${NS_B}#compat-pep`, 'urn:xmpp:bookmarks-conversion:0']) assert.ok(features.includes(f), f);
  });

  it('a legacy client (private storage) and a XEP-0402 client share one list, both ways', async () => {
    const modern = track(await capsClient(server, 'alice', [notify(NS_B)], { resource: 'modern' }));
    const old = track(await connect(server, 'alice', { resource: 'old' }));
    const url = xml('url', { name: 'site', url: 'https://example.org/' });
    const set = await iq(
      old,
      xml('iq', { type: 'set' }, xml('query', { xmlns: NS_PRIVATE }, legacy(room('a@conference.localhost', 'A', 'al'), room('b@conference.localhost', 'B'), url))),
    );
    assert.equal(set.attrs.type, 'result', set.toString());
    // the XEP-0402 client is told of both rooms, as items with the room's JID as id
    const ids = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const ev = await expectStanza(modern, isEvent('alice@localhost', NS_B), 5000, 'bookmark notification');
      const item = ev.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!;
      ids.add(item.attrs.id);
      if (item.attrs.id === 'a@conference.localhost') {
        const c = item.getChild('conference', NS_B)!;
        assert.equal(c.attrs.name, 'A');
        assert.equal(c.attrs.autojoin, 'true');
        assert.equal(c.getChildText('nick'), 'al');
        assert.equal(c.attrs.jid, undefined, 'no jid attribute in XEP-0402');
      }
    }
    assert.deepEqual([...ids].sort(), ['a@conference.localhost', 'b@conference.localhost']);
    // writing the same list again changes nothing, so nobody is notified
    await iq(
      old,
      xml('iq', { type: 'set' }, xml('query', { xmlns: NS_PRIVATE }, legacy(room('a@conference.localhost', 'A', 'al'), room('b@conference.localhost', 'B'), url))),
    );
    await expectNothing(modern, isEvent('alice@localhost', NS_B), { after: [old] });

    // the modern client adds a room and removes one: the legacy view follows
    const opts = { 'pubsub#persist_items': 'true', 'pubsub#access_model': 'whitelist', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never' };
    const pub = await publish(modern, NS_B, 'c@conference.localhost', xml('conference', { xmlns: NS_B, name: 'C', autojoin: 'false' }), opts);
    assert.equal(pub.attrs.type, 'result', pub.toString());
    const retract = await iq(
      modern,
      xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('retract', { node: NS_B, notify: 'true' }, xml('item', { id: 'b@conference.localhost' })))),
    );
    assert.equal(retract.attrs.type, 'result');
    const view = await privateGet(old);
    assert.deepEqual(
      view.getChildren('conference').map((c) => c.attrs.jid).sort(),
      ['a@conference.localhost', 'c@conference.localhost'],
    );
    assert.equal(view.getChildren('conference').find((c) => c.attrs.jid === 'a@conference.localhost')!.getChildText('nick'), 'al');
    assert.equal(view.getChild('url')?.attrs.url, 'https://example.org/', 'URL bookmarks survive');
    // the legacy client writes back what it read: nothing changed, nobody is notified
    // (autojoin='false' in the item and no autojoin in the XEP-0048 form are the same room)
    await expectStanza(modern, isEvent('alice@localhost', NS_B)); // the publish of c@
    await expectStanza(modern, isEvent('alice@localhost', NS_B)); // the retraction of b@
    view.parent = null;
    await iq(old, xml('iq', { type: 'set' }, xml('query', { xmlns: NS_PRIVATE }, view)));
    await expectNothing(modern, isEvent('alice@localhost', NS_B), { after: [old] });
    // and so does the XEP-0048-on-PEP node (XEP-0411)
    const pepView = await items(old, 'alice@localhost', 'storage:bookmarks');
    const stored = pepView.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('storage', 'storage:bookmarks')!;
    assert.deepEqual(
      stored.getChildren('conference').map((c) => c.attrs.jid).sort(),
      ['a@conference.localhost', 'c@conference.localhost'],
    );
  });

  it('a legacy write on the storage:bookmarks PEP node reaches XEP-0402 and private storage', async () => {
    const alice = track(await connect(server, 'alice'));
    const r = await publish(alice, 'storage:bookmarks', 'current', legacy(room('d@conference.localhost', 'D')), { 'pubsub#access_model': 'whitelist' });
    assert.equal(r.attrs.type, 'result', r.toString());
    const native = await items(alice, 'alice@localhost', NS_B);
    assert.deepEqual(
      native.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id),
      ['d@conference.localhost'],
    );
    assert.deepEqual(
      (await privateGet(alice)).getChildren('conference').map((c) => c.attrs.jid),
      ['d@conference.localhost'],
    );
  });

  it("another user's bookmarks stay private", async () => {
    await befriend(server, 'alice', 'bob');
    const alice = track(await connect(server, 'alice'));
    const bob = track(await capsClient(server, 'bob', [notify(NS_B), notify('storage:bookmarks')]));
    await iq(alice, xml('iq', { type: 'set' }, xml('query', { xmlns: NS_PRIVATE }, legacy(room('e@conference.localhost', 'E')))));
    await expectNothing(bob, (s) => s.is('message') && s.attrs.from === 'alice@localhost', { after: [alice] });
    const r = await items(bob, 'alice@localhost', NS_B);
    assert.equal(r.attrs.type, 'error');
  });
});

describe('avatars: XEP-0084 with vCard-temp (XEP-0398, XEP-0153)', function () {
  this.timeout(20_000);
  let server: Server;
  const clients: XmppClient[] = [];
  const track = (c: XmppClient): XmppClient => (clients.push(c), c);
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    await befriend(server, 'alice', 'bob');
  });
  afterEach(async () => {
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it('a PEP avatar (open) becomes the vCard photo, and its hash rides on presence', async () => {
    const alice = track(await connect(server, 'alice', { presence: false }));
    const bob = track(await capsClient(server, 'bob', [notify('urn:xmpp:avatar:metadata')]));
    const b64 = PNG.toString('base64');
    const open = { 'pubsub#access_model': 'open' };
    assert.equal((await publish(alice, 'urn:xmpp:avatar:data', PNG_ID, xml('data', { xmlns: 'urn:xmpp:avatar:data' }, b64), open)).attrs.type, 'result');
    const meta = xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' }, xml('info', { id: PNG_ID, bytes: String(PNG.length), type: 'image/png', width: '1', height: '1' }));
    assert.equal((await publish(alice, 'urn:xmpp:avatar:metadata', PNG_ID, meta, open)).attrs.type, 'result');
    await expectStanza(bob, isEvent('alice@localhost', 'urn:xmpp:avatar:metadata'), 5000, 'avatar metadata notification');
    const carol = track(await connect(server, 'carol'));
    const card = await iq(carol, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal(card.getChild('vCard')?.getChild('PHOTO')?.getChildText('BINVAL'), b64);
    assert.equal(card.getChild('vCard')?.getChild('PHOTO')?.getChildText('TYPE'), 'image/png');
    await alice.send(xml('presence'));
    const p = await expectStanza(bob, (s) => s.is('presence') && s.attrs.from?.startsWith('alice@localhost/') && !s.attrs.type, 5000, "alice's presence");
    assert.equal(p.getChild('x', 'vcard-temp:x:update')?.getChildText('photo'), PNG_ID);
  });

  it('a vCard photo is published as a PEP avatar; an explicit empty <photo/> is left alone', async () => {
    const bob = track(await capsClient(server, 'bob', [notify('urn:xmpp:avatar:metadata')]));
    const alice = track(await connect(server, 'alice'));
    const set = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice'), xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, PNG.toString('base64'))))),
    );
    assert.equal(set.attrs.type, 'result');
    const ev = await expectStanza(bob, isEvent('alice@localhost', 'urn:xmpp:avatar:metadata'), 5000, 'metadata from the vCard');
    const info = ev.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('metadata')!.getChild('info')!;
    assert.equal(info.attrs.id, PNG_ID);
    assert.equal(info.attrs.bytes, String(PNG.length));
    const data = await items(bob, 'alice@localhost', 'urn:xmpp:avatar:data', {}, [PNG_ID]);
    assert.equal(data.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChildText('data'), PNG.toString('base64'));
    const withUpdate = (s: Element): boolean => s.is('presence') && !!s.attrs.from?.startsWith('alice@localhost/') && !!s.getChild('x', 'vcard-temp:x:update');
    await alice.send(xml('presence', {}, xml('x', { xmlns: 'vcard-temp:x:update' }, xml('photo'))));
    const p = await expectStanza(bob, withUpdate, 5000, 'presence');
    assert.equal(p.getChild('x', 'vcard-temp:x:update')?.getChildText('photo'), '');
    await alice.send(xml('presence', {}, xml('x', { xmlns: 'vcard-temp:x:update' })));
    const p2 = await expectStanza(bob, withUpdate, 5000, 'presence');
    assert.equal(p2.getChild('x', 'vcard-temp:x:update')?.getChildText('photo'), PNG_ID, 'an empty <x/> gets the hash');
  });
});

describe('displayed markers: XEP-0490 server assist', function () {
  this.timeout(20_000);
  let server: Server;
  const clients: XmppClient[] = [];
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    await befriend(server, 'alice', 'bob');
  });
  afterEach(async () => {
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it('takes <displayed/> out of a sent message, publishes it privately, and routes the rest', async () => {
    const NS_MDS = 'urn:xmpp:mds:displayed:0';
    const phone = await capsClient(server, 'alice', [notify(NS_MDS)], { resource: 'phone' });
    const desk = await capsClient(server, 'alice', [notify(NS_MDS)], { resource: 'desk' });
    const bob = await capsClient(server, 'bob', [notify(NS_MDS)]);
    clients.push(phone, desk, bob);
    const marker = xml('displayed', { xmlns: NS_MDS }, xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: 'alice@localhost', id: 'abc' }));
    await phone.send(
      xml('message', { to: 'bob@localhost', type: 'chat', id: 'm1' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x1' }), marker),
    );
    const ev = await expectStanza(desk, isEvent('alice@localhost', NS_MDS), 5000, "the other resource's MDS notification");
    const item = ev.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!;
    assert.equal(item.attrs.id, 'bob@localhost');
    assert.equal(item.getChild('displayed', NS_MDS)?.getChild('stanza-id')?.attrs.id, 'abc');
    const routed = await expectStanza(bob, (s) => s.is('message') && s.attrs.id === 'm1', 5000, 'the chat marker');
    assert.ok(routed.getChild('displayed', 'urn:xmpp:chat-markers:0'));
    assert.equal(routed.getChild('displayed', NS_MDS), undefined, 'the MDS element was taken out');
    await expectNothing(bob, isEvent('alice@localhost', NS_MDS), { after: [phone] });
    const r = await items(bob, 'alice@localhost', NS_MDS);
    assert.equal(r.attrs.type, 'error', 'the node is private');
  });
});

describe('room avatars: XEP-0486', function () {
  this.timeout(20_000);
  let server: Server;
  const clients: XmppClient[] = [];
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
  });
  afterEach(async () => {
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it('an owner sets the room vCard; occupants hear status 104; disco#info carries the hash; others may not set it', async () => {
    const alice = await connect(server, 'alice');
    const bob = await connect(server, 'bob');
    clients.push(alice, bob);
    const ROOM = `pics@${SERVICE}`;
    await createRoom(alice, 'pics', 'al', { 'muc#roomconfig_persistentroom': '1' });
    await join(bob, 'pics', 'bo');
    const photo = xml('vCard', { xmlns: 'vcard-temp' }, xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, PNG.toString('base64'))));
    const refused = await iq(bob, xml('iq', { type: 'set', to: ROOM }, photo));
    assert.equal(refused.getChild('error')?.getChild('forbidden')?.name, 'forbidden');
    const set = await iq(alice, xml('iq', { type: 'set', to: ROOM }, xml('vCard', { xmlns: 'vcard-temp' }, ...photo.children.map((c) => c as Element))));
    assert.equal(set.attrs.type, 'result', set.toString());
    const note = await expectStanza(bob, (s) => s.is('message') && s.attrs.from === ROOM && !!s.getChild('x')?.getChildren('status').some((c) => c.attrs.code === '104'));
    assert.ok(note);
    const info = await iq(bob, xml('iq', { type: 'get', to: ROOM }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const q = info.getChild('query')!;
    assert.ok(q.getChildren('feature').some((f) => f.attrs.var === 'vcard-temp'));
    const hash = q.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'muc#roominfo_avatarhash');
    assert.equal(hash?.getChildText('value'), PNG_ID);
    const card = await iq(bob, xml('iq', { type: 'get', to: ROOM }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal(card.getChild('vCard')?.getChild('PHOTO')?.getChildText('BINVAL'), PNG.toString('base64'));
    // an empty vCard removes it
    assert.equal((await iq(alice, xml('iq', { type: 'set', to: ROOM }, xml('vCard', { xmlns: 'vcard-temp' })))).attrs.type, 'result');
    const after = await iq(bob, xml('iq', { type: 'get', to: ROOM }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.equal(after.getChild('query')!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'muc#roominfo_avatarhash'), undefined);
  });
});

describe('avatars restricted to contacts (XEP-0398 with a presence-access data node)', function () {
  this.timeout(20_000);
  let server: Server;
  const clients: XmppClient[] = [];
  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    await befriend(server, 'alice', 'bob');
  });
  afterEach(async () => {
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it("contacts get the picture as the vCard photo, strangers do not; a room join carries no hash they cannot fetch", async () => {
    const alice = await connect(server, 'alice', { presence: false });
    const bob = await connect(server, 'bob');
    const carol = await connect(server, 'carol');
    clients.push(alice, bob, carol);
    // as Gajim and Dino publish: the default (presence) access model
    assert.equal((await publish(alice, 'urn:xmpp:avatar:data', PNG_ID, xml('data', { xmlns: 'urn:xmpp:avatar:data' }, PNG.toString('base64')))).attrs.type, 'result');
    const meta = xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' }, xml('info', { id: PNG_ID, bytes: String(PNG.length), type: 'image/png' }));
    assert.equal((await publish(alice, 'urn:xmpp:avatar:metadata', PNG_ID, meta)).attrs.type, 'result');
    const vcard = (c: XmppClient) => iq(c, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.equal((await vcard(bob)).getChild('vCard')?.getChild('PHOTO')?.getChildText('BINVAL'), PNG.toString('base64'));
    const theirs = await vcard(carol);
    assert.equal(theirs.getChild('vCard')?.getChild('PHOTO'), undefined, theirs.toString());
    // nothing was written to the stored vCard
    assert.equal(await server.storage.userData.get('alice', 'vcard', ''), undefined);
    await alice.send(xml('presence'));
    const p = await expectStanza(bob, (s) => s.is('presence') && !!s.attrs.from?.startsWith('alice@localhost/') && !s.attrs.type, 5000, 'broadcast');
    assert.equal(p.getChild('x', 'vcard-temp:x:update')?.getChildText('photo'), PNG_ID, 'contacts get the hash');
    await createRoom(carol, 'hall', 'ca');
    await join(alice, 'hall', 'al');
    const seen = await expectStanza(carol, (s) => s.is('presence') && s.attrs.from === `hall@${SERVICE}/al`, 5000, "alice's room presence");
    assert.equal(seen.getChild('x', 'vcard-temp:x:update'), undefined, 'no hash for a picture the room cannot fetch');
  });
});
