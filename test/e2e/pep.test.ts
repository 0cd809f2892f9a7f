// PEP (XEP-0163) over XEP-0060 with XEP-0115 filtering, over real sockets with @xmpp/client.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { barrier, connect, expectNothing, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { capsClient, capsVer, errorOf, isEvent, items, notify, NS_EVENT, NS_OWNER, NS_PUBSUB, publish } from '../helpers/pep.js';

const TUNE = 'http://jabber.org/protocol/tune';
const AVATAR_META = 'urn:xmpp:avatar:metadata';
const DEVICES = 'urn:xmpp:omemo:2:devices';
const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', {}, title));

async function befriend(server: Server, a: string, b: string): Promise<void> {
  const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };
  await server.storage.roster.put(a, { jid: `${b}@localhost`, ...both });
  await server.storage.roster.put(b, { jid: `${a}@localhost`, ...both });
}

describe('PEP (XEP-0163, XEP-0060, XEP-0115)', function () {
  this.timeout(20_000);
  let server: Server;
  const clients: XmppClient[] = [];
  const track = (c: XmppClient): XmppClient => (clients.push(c), c);

  beforeEach(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret' } });
    await befriend(server, 'alice', 'bob');
    await befriend(server, 'alice', 'carol');
  });
  afterEach(async () => {
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it('advertises PEP on accounts and on the server (XEP-0163 §6.1, XEP-0223 §5)', async () => {
    const alice = track(await connect(server, 'alice'));
    for (const to of ['alice@localhost', 'localhost']) {
      const r = await iq(alice, xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      const q = r.getChild('query')!;
      assert.ok(q.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'), `${to}: pubsub/pep`);
      const features = q.getChildren('feature').map((f) => f.attrs.var);
      for (const f of ['publish-options', 'auto-create', 'filtered-notifications', 'persistent-items', 'access-presence', 'config-node-max'])
        assert.ok(features.includes(`${NS_PUBSUB}#${f}`), `${to}: ${f}`);
    }
  });

  it('notifies the resources that asked (+notify), from the bare JID; never one that did not', async () => {
    const bob = track(await capsClient(server, 'bob', [notify(TUNE)]));
    const carol = track(await capsClient(server, 'carol', [notify(AVATAR_META)])); // a contact, not interested in tunes
    const dave = track(await capsClient(server, 'dave', [notify(TUNE)])); // interested, not a contact
    const alice = track(await capsClient(server, 'alice', [notify(TUNE)], { resource: 'phone' }));
    const alice2 = track(await capsClient(server, 'alice', [], { resource: 'desk' })); // own resource, not interested
    const r = await publish(alice, TUNE, 'song1', tune('Yesterday'));
    assert.equal(r.attrs.type, 'result', r.toString());
    assert.equal(r.getChild('pubsub')?.getChild('publish')?.getChild('item')?.attrs.id, 'song1');
    const got = await expectStanza(bob, isEvent('alice@localhost', TUNE), 5000, 'tune notification');
    assert.equal(got.attrs.to?.split('/')[0], 'bob@localhost');
    assert.ok(got.attrs.to?.includes('/'), 'sent to the full JID');
    const item = got.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!;
    assert.equal(item.attrs.id, 'song1');
    assert.equal(item.getChild('tune', TUNE)?.getChildText('title'), 'Yesterday');
    await expectStanza(alice, isEvent('alice@localhost', TUNE), 5000, "the owner's own interested resource");
    await expectNothing(carol, isEvent('alice@localhost', TUNE), { after: [alice] });
    await expectNothing(dave, isEvent('alice@localhost', TUNE), { after: [alice] });
    await expectNothing(alice2, isEvent('alice@localhost', TUNE), { after: [alice] });
  });

  it('sends the newest item when an interested resource comes online, with a delay stamp', async () => {
    const alice = track(await connect(server, 'alice'));
    assert.equal((await publish(alice, TUNE, 'a', tune('first'))).attrs.type, 'result');
    assert.equal((await publish(alice, TUNE, 'b', tune('second'))).attrs.type, 'result');
    const bob = track(await capsClient(server, 'bob', [notify(TUNE)]));
    const got = await expectStanza(bob, isEvent('alice@localhost', TUNE), 5000, 'last item');
    assert.equal(got.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'b');
    assert.ok(got.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp);
    // a later presence of the same session does not send it again (XEP-0163 §4.3.3)
    await bob.send(xml('presence', {}, xml('show', {}, 'away')));
    await expectNothing(bob, isEvent('alice@localhost', TUNE), { after: [bob] });
  });

  it('gives items to contacts (presence access) and refuses others with presence-subscription-required', async () => {
    const alice = track(await connect(server, 'alice'));
    const bob = track(await connect(server, 'bob'));
    const dave = track(await connect(server, 'dave'));
    for (const id of ['1', '2', '3']) assert.equal((await publish(alice, TUNE, id, tune(id), { 'pubsub#max_items': '2' })).attrs.type, 'result');
    const r = await items(bob, 'alice@localhost', TUNE);
    assert.deepEqual(
      r.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id),
      ['2', '3'],
      'max_items 2 keeps the two newest, oldest first',
    );
    const newest = await items(bob, 'alice@localhost', TUNE, { max_items: '1' });
    assert.deepEqual(newest.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['3']);
    const byId = await items(bob, 'alice@localhost', TUNE, {}, ['2', 'gone']);
    assert.deepEqual(byId.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['2']);
    assert.equal(errorOf(await items(dave, 'alice@localhost', TUNE)), 'not-authorized/presence-subscription-required');
    assert.equal(errorOf(await items(bob, 'alice@localhost', 'no-such-node')), 'item-not-found');
  });

  it('OMEMO: an open device list is readable by anyone; publish-options must match an existing node', async () => {
    const alice = track(await connect(server, 'alice'));
    const dave = track(await connect(server, 'dave'));
    const devices = (id: string) => xml('devices', { xmlns: 'urn:xmpp:omemo:2' }, xml('device', { id }));
    const opts = { 'pubsub#access_model': 'open', 'pubsub#max_items': 'max' };
    assert.equal((await publish(alice, DEVICES, 'current', devices('1'), opts)).attrs.type, 'result');
    const r = await items(dave, 'alice@localhost', DEVICES);
    assert.equal(r.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('devices')!.getChild('device')!.attrs.id, '1');
    // the node is open: a publish asking for presence access does not meet it
    const refused = await publish(alice, DEVICES, 'current', devices('2'), { 'pubsub#access_model': 'presence' });
    assert.equal(errorOf(refused), 'conflict/precondition-not-met');
    assert.equal(refused.getChild('error')!.attrs.type, 'cancel');
    // an option the server does not know cannot be met either
    assert.equal(errorOf(await publish(alice, DEVICES, 'current', devices('2'), { 'pubsub#frobnicate': '1' })), 'conflict/precondition-not-met');
    // the owner reconfigures, then the publish goes through (what OMEMO clients do)
    const cfg = await iq(alice, xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS_OWNER }, xml('configure', { node: DEVICES }))));
    const form = cfg.getChild('pubsub')!.getChild('configure')!.getChild('x')!;
    const access = form.getChildren('field').find((f) => f.attrs.var === 'pubsub#access_model')!;
    assert.equal(access.getChildText('value'), 'open');
    const set = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml(
          'pubsub',
          { xmlns: NS_OWNER },
          xml(
            'configure',
            { node: DEVICES },
            xml(
              'x',
              { xmlns: 'jabber:x:data', type: 'submit' },
              xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')),
              xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'presence')),
            ),
          ),
        ),
      ),
    );
    assert.equal(set.attrs.type, 'result', set.toString());
    assert.equal((await publish(alice, DEVICES, 'current', devices('2'), { 'pubsub#access_model': 'presence' })).attrs.type, 'result');
    assert.equal(errorOf(await items(dave, 'alice@localhost', DEVICES)), 'not-authorized/presence-subscription-required');
  });

  it('private nodes (XEP-0223): whitelist keeps contacts out; only the owner is notified', async () => {
    const bob = track(await capsClient(server, 'bob', [notify('urn:xmpp:bookmarks:1')]));
    const alice = track(await capsClient(server, 'alice', [notify('urn:xmpp:bookmarks:1')]));
    const conf = xml('conference', { xmlns: 'urn:xmpp:bookmarks:1', name: 'Room', autojoin: 'true' }, xml('nick', {}, 'al'));
    const opts = { 'pubsub#persist_items': 'true', 'pubsub#access_model': 'whitelist', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never' };
    assert.equal((await publish(alice, 'urn:xmpp:bookmarks:1', 'room@conference.localhost', conf, opts)).attrs.type, 'result');
    await expectStanza(alice, isEvent('alice@localhost', 'urn:xmpp:bookmarks:1'), 5000, 'own notification');
    await expectNothing(bob, isEvent('alice@localhost', 'urn:xmpp:bookmarks:1'), { after: [alice] });
    assert.equal(errorOf(await items(bob, 'alice@localhost', 'urn:xmpp:bookmarks:1')), 'not-allowed/closed-node');
    const sub = await iq(
      bob,
      xml('iq', { type: 'set', to: 'alice@localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node: 'urn:xmpp:bookmarks:1', jid: 'bob@localhost' }))),
    );
    assert.equal(errorOf(sub), 'not-allowed/closed-node', "no subscription to another user's private node");
    // disco#items: the owner sees the node, a contact does not
    const own = await iq(alice, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    assert.ok(own.getChild('query')!.getChildren('item').some((i) => i.attrs.node === 'urn:xmpp:bookmarks:1'));
    const theirs = await iq(bob, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    assert.ok(!theirs.getChild('query')!.getChildren('item').some((i) => i.attrs.node === 'urn:xmpp:bookmarks:1'));
    // disco#info on the node (XEP-0060 §5.3): a leaf, with its meta-data, for the owner only
    const info = (c: XmppClient) =>
      iq(c, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'urn:xmpp:bookmarks:1' })));
    const mine = (await info(alice)).getChild('query')!;
    assert.equal(mine.getChild('identity')?.attrs.type, 'leaf');
    const meta = mine.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'pubsub#access_model');
    assert.equal(meta?.getChildText('value'), 'whitelist');
    assert.equal(errorOf(await info(bob)), 'item-not-found');
  });

  it('retract notifies with <retract/>; delete notifies with <delete/>; both reach storage', async () => {
    const bob = track(await capsClient(server, 'bob', [notify(TUNE)]));
    const alice = track(await connect(server, 'alice'));
    await publish(alice, TUNE, 'x', tune('x'));
    await expectStanza(bob, isEvent('alice@localhost', TUNE));
    const r = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('retract', { node: TUNE, notify: 'true' }, xml('item', { id: 'x' })))),
    );
    assert.equal(r.attrs.type, 'result', r.toString());
    const ev = await expectStanza(bob, isEvent('alice@localhost', TUNE));
    assert.equal(ev.getChild('event', NS_EVENT)!.getChild('items')!.getChild('retract')!.attrs.id, 'x');
    const again = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('retract', { node: TUNE }, xml('item', { id: 'x' })))),
    );
    assert.equal(errorOf(again), 'item-not-found');
    const del = await iq(alice, xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_OWNER }, xml('delete', { node: TUNE }))));
    assert.equal(del.attrs.type, 'result');
    const gone = await expectStanza(bob, isEvent('alice@localhost', TUNE));
    assert.ok(gone.getChild('event', NS_EVENT)!.getChild('delete'));
    assert.equal((await server.storage.pubsub.nodes('alice@localhost')).length, 0);
  });

  it('refuses bad input with the XEP-0060 errors, stores none of it, and others are not disturbed', async () => {
    const alice = track(await connect(server, 'alice'));
    const bob = track(await capsClient(server, 'bob', [notify(TUNE)]));
    const big = xml('tune', { xmlns: TUNE }, xml('title', {}, 'x'.repeat(70_000)));
    assert.equal(errorOf(await publish(alice, TUNE, 'big', big)), 'not-acceptable/payload-too-big');
    const noItem = await iq(alice, xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: TUNE }))));
    assert.equal(errorOf(noItem), 'bad-request/item-required');
    const twoPayloads = await iq(
      alice,
      xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: TUNE }, xml('item', { id: '1' }, tune('a'), tune('b'))))),
    );
    assert.equal(errorOf(twoPayloads), 'bad-request/invalid-payload');
    const noNode = await iq(alice, xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', {}, xml('item', {}, tune('a'))))));
    assert.equal(errorOf(noNode), 'bad-request/nodeid-required');
    assert.equal(errorOf(await publish(alice, TUNE, '1', tune('a'), { 'pubsub#max_items': 'many' })), 'conflict/precondition-not-met');
    assert.equal(errorOf(await publish(alice, TUNE, '1', tune('a'), { 'pubsub#access_model': 'authorize' })), 'conflict/precondition-not-met');
    // someone else's account: publishing is refused, nothing is created
    assert.equal(errorOf(await iq(bob, xml('iq', { type: 'set', to: 'alice@localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: TUNE }, xml('item', {}, tune('b'))))))), 'item-not-found');
    // a subscription to a node that does not exist
    assert.equal(
      errorOf(await iq(bob, xml('iq', { type: 'set', to: 'alice@localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node: TUNE, jid: 'bob@localhost' }))))),
      'item-not-found',
    );
    // malformed forms: publish-options of another form type, a configuration value out of range
    const wrongForm = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml(
          'pubsub',
          { xmlns: NS_PUBSUB },
          xml('publish', { node: TUNE }, xml('item', {}, tune('a'))),
          xml('publish-options', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'open')))),
        ),
      ),
    );
    assert.equal(errorOf(wrongForm), 'bad-request/invalid-options');
    const badCreate = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml(
          'pubsub',
          { xmlns: NS_PUBSUB },
          xml('create', { node: 'n' }),
          xml(
            'configure',
            {},
            xml(
              'x',
              { xmlns: 'jabber:x:data', type: 'submit' },
              xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')),
              xml('field', { var: 'pubsub#max_items' }, xml('value', {}, 'lots')),
            ),
          ),
        ),
      ),
    );
    assert.equal(errorOf(badCreate), 'not-acceptable');
    assert.equal((await server.storage.pubsub.nodes('alice@localhost')).length, 0, 'nothing stored');
    await publish(alice, TUNE, 'ok', tune('fine'));
    await expectStanza(bob, isEvent('alice@localhost', TUNE), 5000, 'normal service afterwards');
    assert.equal(
      errorOf(await iq(bob, xml('iq', { type: 'set', to: 'alice@localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node: TUNE, jid: 'carol@localhost' }))))),
      'bad-request/invalid-jid',
    );
  });

  it('bounds nodes per account (policy-violation) and explains config errors', async () => {
    await server.stop();
    server = await startServer({ users: { alice: 'secret' }, config: { modules: { pep: { max_nodes: 2, max_item_size: 100 } } } });
    const alice = track(await connect(server, 'alice'));
    assert.equal((await publish(alice, 'n1', '1', tune('a'))).attrs.type, 'result');
    assert.equal((await publish(alice, 'n2', '1', tune('a'))).attrs.type, 'result');
    assert.equal(errorOf(await publish(alice, 'n3', '1', tune('a'))), 'policy-violation/max-nodes-exceeded');
    assert.equal(errorOf(await publish(alice, 'n1', '2', tune('y'.repeat(200)))), 'not-acceptable/payload-too-big');
    const create = await iq(alice, xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('create', { node: 'n1' }))));
    assert.equal(errorOf(create), 'conflict');
    assert.equal((await server.storage.pubsub.nodes('alice@localhost')).length, 2);
  });

  it('stops notifying a contact at once when the subscription is cancelled', async () => {
    const bob = track(await capsClient(server, 'bob', [notify(TUNE)]));
    const alice = track(await connect(server, 'alice'));
    await publish(alice, TUNE, '1', tune('a'));
    await expectStanza(bob, isEvent('alice@localhost', TUNE));
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'unsubscribed' }));
    await barrier(alice);
    await publish(alice, TUNE, '2', tune('b'));
    await expectNothing(bob, isEvent('alice@localhost', TUNE), { after: [alice] });
  });

  it('does not cache caps that do not verify, and asks again', async () => {
    const asked = { n: 0 };
    const bob = track(await capsClient(server, 'bob', [notify(TUNE)], { ver: 'bm90IHRoZSByaWdodCBoYXNoIQ==', asked }));
    await until(() => asked.n === 1, 'the server asked about the caps');
    const bob2 = track(await capsClient(server, 'bob', [notify(TUNE)], { ver: 'bm90IHRoZSByaWdodCBoYXNoIQ==', asked, resource: 'two' }));
    await until(() => asked.n >= 2, 'the server asked again');
    assert.equal(await server.storage.caps.get('sha-1 bm90IHRoZSByaWdodCBoYXNoIQ=='), undefined);
    // a right hash is stored once, however many resources announce it
    const right = { n: 0 };
    track(await capsClient(server, 'carol', [notify(TUNE)], { asked: right }));
    const ver = capsVer(['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/caps', notify(TUNE)]);
    await until(async () => (await server.storage.caps.get(`sha-1 ${ver}`)) !== undefined, 'caps stored');
    const carol2 = track(await capsClient(server, 'carol', [notify(TUNE)], { asked: right, resource: 'two' }));
    await barrier(carol2);
    assert.equal(right.n, 1);
    await barrier(bob, bob2);
  });

  it('an explicit subscription ends when the node becomes private (XEP-0163 §7.1)', async () => {
    const alice = track(await connect(server, 'alice'));
    const dave = track(await connect(server, 'dave')); // a stranger
    const devices = (id: string) => xml('devices', { xmlns: 'urn:xmpp:omemo:2' }, xml('device', { id }));
    assert.equal((await publish(alice, DEVICES, 'current', devices('1'), { 'pubsub#access_model': 'open' })).attrs.type, 'result');
    const sub = await iq(dave, xml('iq', { type: 'set', to: 'alice@localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node: DEVICES, jid: 'dave@localhost' }))));
    assert.equal(sub.attrs.type, 'result', sub.toString());
    await expectStanza(dave, isEvent('alice@localhost', DEVICES), 5000, 'the newest item on subscribing');
    await publish(alice, DEVICES, 'current', devices('2'));
    await expectStanza(dave, isEvent('alice@localhost', DEVICES), 5000, 'an open node notifies its subscriber');
    const set = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml(
          'pubsub',
          { xmlns: NS_OWNER },
          xml(
            'configure',
            { node: DEVICES },
            xml(
              'x',
              { xmlns: 'jabber:x:data', type: 'submit' },
              xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')),
              xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'whitelist')),
            ),
          ),
        ),
      ),
    );
    assert.equal(set.attrs.type, 'result');
    await publish(alice, DEVICES, 'current', devices('3'));
    await expectNothing(dave, isEvent('alice@localhost', DEVICES), { after: [alice] });
    const subs = await iq(alice, xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS_OWNER }, xml('subscriptions', { node: DEVICES }))));
    assert.equal(subs.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').length, 0);
  });

  it('owner affiliations (§8.9): a member may read a whitelist node; the owner stays owner', async () => {
    const alice = track(await connect(server, 'alice'));
    const bob = track(await connect(server, 'bob'));
    const NODE = 'urn:xmpp:test:private';
    assert.equal((await publish(alice, NODE, 'x', tune('secret'), { 'pubsub#access_model': 'whitelist' })).attrs.type, 'result');
    assert.equal(errorOf(await items(bob, 'alice@localhost', NODE)), 'not-allowed/closed-node');
    const affs = (...list: [string, string][]) =>
      iq(alice, xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_OWNER }, xml('affiliations', { node: NODE }, ...list.map(([jid, a]) => xml('affiliation', { jid, affiliation: a }))))));
    assert.equal((await affs(['bob@localhost', 'member'])).attrs.type, 'result');
    assert.equal((await items(bob, 'alice@localhost', NODE)).attrs.type, 'result');
    const list = await iq(alice, xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS_OWNER }, xml('affiliations', { node: NODE }))));
    assert.deepEqual(
      list.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').map((a) => `${a.attrs.jid}=${a.attrs.affiliation}`).sort(),
      ['alice@localhost=owner', 'bob@localhost=member'],
    );
    const demote = await affs(['alice@localhost', 'none']);
    assert.equal(errorOf(demote), 'not-acceptable');
    // §8.9.2.4: the failing entry comes back as it is (owner), in place of the request
    assert.equal(demote.getChild('pubsub', NS_OWNER)?.getChild('affiliations')?.getChild('affiliation')?.attrs.affiliation, 'owner');
    assert.equal((await affs(['bob@localhost', 'none'])).attrs.type, 'result');
    assert.equal(errorOf(await items(bob, 'alice@localhost', NODE)), 'not-allowed/closed-node');
    // not the owner: forbidden
    const theirs = await iq(bob, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('pubsub', { xmlns: NS_OWNER }, xml('affiliations', { node: NODE }))));
    assert.equal(errorOf(theirs), 'forbidden');
  });

  it('removes every node and item of a deleted account', async () => {
    const alice = track(await connect(server, 'alice'));
    await publish(alice, TUNE, '1', tune('a'));
    await publish(alice, DEVICES, 'current', xml('devices', { xmlns: 'urn:xmpp:omemo:2' }));
    assert.equal((await server.storage.pubsub.nodes('alice@localhost')).length, 2);
    await stopAll(alice);
    await server.accounts.delete('alice');
    assert.equal((await server.storage.pubsub.nodes('alice@localhost')).length, 0);
    assert.equal((await server.storage.pubsub.items('alice@localhost', TUNE)).length, 0);
  });
});

