"""Interop probe for PEP (XEP-0163) over PubSub (XEP-0060) with slixmpp's own plugins:
xep_0060, xep_0163, xep_0115 (caps +notify), xep_0030, xep_0004, xep_0084 (User Avatar),
xep_0118 (User Tune), xep_0048/xep_0049 (legacy bookmarks, private storage), xep_0223
(private PEP), xep_0054/xep_0153 (vCard avatars). slixmpp 1.8 has no xep_0402 plugin, so the
XEP-0402 items are published with xep_0060 as a XEP-0402 client sends them.

Bob is Alice's contact (the test befriends them in storage) and his client asks for the
OMEMO device lists through caps (xep_0163 add_interest). Alice publishes her OMEMO device
lists and bundles, XEP-0384 0.8 (urn:xmpp:omemo:2) and legacy (eu.siacs.conversations.axolotl),
with publish-options (access_model open, max_items max for bundles): Bob is notified and
reads a bundle by item id, a resource of Bob's that comes online later gets the newest device
list, and Carol (no contact) reads the open nodes. A publish whose options do not match the
node gets precondition-not-met; the owner reconfigures the node (node_config) and the publish
goes through. Alice publishes a User Avatar (data + metadata, open, as Conversations does):
Bob gets the metadata notification and fetches the data, Carol reads the vCard the server
made of it (XEP-0398) and Bob sees its hash in Alice's presence (XEP-0153). Alice publishes a
XEP-0402 bookmark and reads it back through private storage (XEP-0049/0048) and the
storage:bookmarks node (XEP-0411); a private-storage write comes back as XEP-0402 items. A
XEP-0223 private item is unreadable by Bob, and no private node notifies him.

Prints one `PASS <check>` or `FAIL <check>: <why>` line per check and a final
`DONE passed=N failed=M`; exits non-zero if any check failed or a step the rest depends on broke.

usage: python3 slixmpp_pep.py HOST PORT
       SLIXMPP_DEBUG=1 adds slixmpp's debug log (with every stanza) on stderr.
"""
import asyncio
import base64
import struct
import sys
import zlib
from hashlib import sha1

from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.plugins.xep_0048.stanza import Bookmarks
from slixmpp.plugins.xep_0060.stanza import Item
from slixmpp.xmlstream import ET, ElementBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from checks import ProbeClient, check, require, run_all, first_match

HOST, PORT = sys.argv[1], int(sys.argv[2])
ALICE = 'alice@localhost'
STEP = 5  # seconds to wait for any single answer
TOTAL = 25  # seconds for the whole run

NS_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options'
NS_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config'
NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
# OMEMO (XEP-0384 0.8) and its legacy form (0.3, as Conversations, Dino, Gajim publish it)
NS_OMEMO = 'urn:xmpp:omemo:2'
DEVICES = 'urn:xmpp:omemo:2:devices'
BUNDLES = 'urn:xmpp:omemo:2:bundles'
NS_AXOLOTL = 'eu.siacs.conversations.axolotl'
LEGACY_DEVICES = NS_AXOLOTL + '.devicelist'
LEGACY_BUNDLES = NS_AXOLOTL + '.bundles:'
DEVICE, DEVICE2 = '1234567', '7654321'
# bookmarks and a XEP-0223 private node
NS_BOOKMARKS = 'urn:xmpp:bookmarks:1'
NS_LEGACY_BOOKMARKS = 'storage:bookmarks'
PRIVATE_NODE = 'urn:uzzap:interop:private'
ROOM, ROOM2 = 'interop@conference.localhost', 'second@conference.localhost'
TUNE = 'http://jabber.org/protocol/tune'


class Secret(ElementBase):
    """The payload of the XEP-0223 private node."""
    namespace = PRIVATE_NODE
    name = 'secret'
    plugin_attrib = 'secret'
    interfaces = {'value'}
    sub_interfaces = {'value'}


register_stanza_plugin(Item, Secret)


def png_1x1():
    """A valid 1x1 PNG (white pixel)."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b'\x00\xff\xff\xff')
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) + chunk(b'IEND', b'')


AVATAR = png_1x1()
AVATAR_ID = sha1(AVATAR).hexdigest()


def el(tag, attrs=None, *children, text=None):
    e = ET.Element(tag, attrs or {})
    for c in children:
        e.append(c)
    if text is not None:
        e.text = text
    return e


def omemo2_devices(*ids):
    return el(f'{{{NS_OMEMO}}}devices', {}, *(el(f'{{{NS_OMEMO}}}device', {'id': i, 'label': f'dev {i}'}) for i in ids))


def omemo2_bundle(dev):
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731 — not real keys: the server only stores them
    return el(
        f'{{{NS_OMEMO}}}bundle', {},
        el(f'{{{NS_OMEMO}}}spk', {'id': '1'}, text=b64(f'spk-{dev}')),
        el(f'{{{NS_OMEMO}}}spks', {}, text=b64(f'spks-{dev}')),
        el(f'{{{NS_OMEMO}}}ik', {}, text=b64(f'ik-{dev}')),
        el(f'{{{NS_OMEMO}}}prekeys', {}, *(el(f'{{{NS_OMEMO}}}pk', {'id': str(n)}, text=b64(f'pk{n}-{dev}')) for n in (1, 2, 3))),
    )


def legacy_devices(*ids):
    return el(f'{{{NS_AXOLOTL}}}list', {}, *(el(f'{{{NS_AXOLOTL}}}device', {'id': i}) for i in ids))


def legacy_bundle(dev):
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return el(
        f'{{{NS_AXOLOTL}}}bundle', {},
        el(f'{{{NS_AXOLOTL}}}signedPreKeyPublic', {'signedPreKeyId': '1'}, text=b64(f'spk-{dev}')),
        el(f'{{{NS_AXOLOTL}}}signedPreKeySignature', {}, text=b64(f'spks-{dev}')),
        el(f'{{{NS_AXOLOTL}}}identityKey', {}, text=b64(f'ik-{dev}')),
        el(f'{{{NS_AXOLOTL}}}prekeys', {},
           *(el(f'{{{NS_AXOLOTL}}}preKeyPublic', {'preKeyId': str(n)}, text=b64(f'pk{n}-{dev}')) for n in (1, 2, 3))),
    )


def bookmark(name, nick):
    return el(f'{{{NS_BOOKMARKS}}}conference', {'name': name, 'autojoin': 'true'}, el(f'{{{NS_BOOKMARKS}}}nick', {}, text=nick))


def device_ids(payload, ns):
    return [d.get('id') for d in payload.findall(f'{{{ns}}}device')] if payload is not None else None


def err_of(e):
    """An IqError as 'condition/pubsub-condition' (like the e2e tests' errorOf); slixmpp 1.8's
    error['pubsub']['condition'] does not know precondition-not-met, so read the XML."""
    app = [c.tag.split('}', 1)[1] for c in e.iq['error'].xml if c.tag.startswith(f'{{{NS_PUBSUB_ERRORS}}}')]
    return e.iq['error']['condition'] + ('/' + app[0] if app else '')


def describe(e):
    try:
        return f"{type(e).__name__} {getattr(e, 'iq', '')}"
    except Exception:  # noqa: BLE001 — a stanza slixmpp cannot print
        return type(e).__name__


class Client(ProbeClient):
    """`interests`: nodes this client asks for with +notify (caps, through xep_0163)."""

    def __init__(self, jid, password, plugins, interests=()):
        super().__init__(jid, password, ('xep_0030', 'xep_0004', 'xep_0060', 'xep_0163', 'xep_0115', *plugins))
        self.interests = list(interests)
        self.events = asyncio.Queue()  # pubsub event messages with items
        self.avatar_updates = asyncio.Queue()  # presences with a XEP-0153 photo hash
        self.caps_asked = asyncio.get_event_loop().create_future()
        self.add_event_handler('pubsub_publish', self.events.put_nowait)
        self.add_event_handler('pubsub_retract', self.events.put_nowait)
        self.add_event_handler('vcard_avatar_update', self.avatar_updates.put_nowait)
        # the server asks the client what its caps stand for (XEP-0115 §6.2); xep_0030 answers
        self.register_handler(Callback('caps question', MatchXPath(f'{{jabber:client}}iq/{{{NS_DISCO_INFO}}}query'), self._caps_question))

    def _caps_question(self, iq):
        if iq['type'] == 'get' and iq['from'] == JID(self.boundjid.domain) and '#' in iq['disco_info']['node']:
            if not self.caps_asked.done():
                self.caps_asked.set_result(iq)

    async def before_presence(self):
        # the +notify features go into the caps of the initial presence
        if self.interests:
            self['xep_0163'].add_interest(self.interests)
        await self['xep_0115'].update_caps(broadcast=False)

    async def login(self):
        self.connect((HOST, PORT))
        await asyncio.wait_for(self.online, STEP * 2)

    async def wait_for(self, queue, pred, what):
        """The first item in `queue` matching `pred` (earlier ones are dropped)."""
        return await first_match(queue, pred, what, STEP, self.boundjid.bare)

    def publish_options(self, **fields):
        form = self['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', ftype='hidden', value=NS_PUBLISH_OPTIONS)
        for var, value in fields.items():
            form.add_field(var=f'pubsub#{var}', value=value)
        return form

    def publish(self, node, item_id, payload, **options):
        return self['xep_0060'].publish(
            None, node, id=item_id, payload=payload,
            options=self.publish_options(**options) if options else None, timeout=STEP)


def is_event(node, owner=ALICE, item_id=None):
    def pred(msg):
        if msg['from'] != JID(owner) or msg['pubsub_event']['items']['node'] != node:
            return False
        return item_id is None or any(i['id'] == item_id for i in msg['pubsub_event']['items'])
    return pred


def event_payload(msg):
    items = [i for i in msg['pubsub_event']['items'] if i.name == 'item']
    return items[0]['payload'] if items else None


async def items_of(client, owner, node, ids=None):
    """(item ids, {id: payload}) of a node, or raises IqError."""
    if ids:
        r = await client['xep_0060'].get_items(JID(owner), node, item_ids=list(ids), timeout=STEP)
    else:
        r = await client['xep_0060'].get_items(JID(owner), node, timeout=STEP)
    got = [i for i in r['pubsub']['items'] if i.name == 'item']
    return [i['id'] for i in got], {i['id']: i['payload'] for i in got}


async def expect_error(name, coro, want, etype=None):
    """`coro` fails with the error `want` ('condition/pubsub-condition'), of type `etype` if given."""
    try:
        r = await coro
        check(name, False, f'no error: {r}')
    except IqError as e:
        got = err_of(e)
        etype_got = e.iq['error']['type']
        check(name, got == want and etype in (None, etype_got), f'got {got} type {etype_got}, want {want}: {e.iq}')
    except IqTimeout:
        check(name, False, 'timeout')


async def run(alice, bob, carol, bob_late):
    # Bob first, so his caps are known when Alice publishes; then Carol and Alice.
    await bob.login()
    try:
        await asyncio.wait_for(bob.caps_asked, STEP)
        await bob['xep_0199'].send_ping(JID('localhost'), timeout=STEP)  # his answer is in before this
        check('caps: the server asks bob what his caps (with +notify) stand for', True)
    except (asyncio.TimeoutError, IqError, IqTimeout) as e:
        check('caps: the server asks bob what his caps (with +notify) stand for', False, repr(e))
    await asyncio.gather(carol.login(), alice.login())
    print('logged in', alice.boundjid.full, bob.boundjid.full, carol.boundjid.full, flush=True)

    # 0. What OMEMO clients look for before publishing with options (XEP-0163 §6.1, XEP-0060 §7.1.5).
    try:
        info = (await alice['xep_0030'].get_info(JID(ALICE), timeout=STEP))['disco_info']
        check("disco: alice's account is a pubsub/pep service with publish-options",
              ('pubsub', 'pep') in [i[:2] for i in info['identities']]
              and 'http://jabber.org/protocol/pubsub#publish-options' in info['features'], str(info))
    except (IqError, IqTimeout) as e:
        check("disco: alice's account is a pubsub/pep service with publish-options", False, describe(e))

    # 1. OMEMO: device lists (item 'current') and bundles, open, as OMEMO clients publish them.
    open_ = {'access_model': 'open'}
    bundles = {'access_model': 'open', 'max_items': 'max'}
    for what, node, item_id, payload, opts in (
        ('device list (urn:xmpp:omemo:2:devices)', DEVICES, 'current', omemo2_devices(DEVICE), open_),
        ('bundle (urn:xmpp:omemo:2:bundles, item id = device id)', BUNDLES, DEVICE, omemo2_bundle(DEVICE), bundles),
        ('legacy device list (axolotl.devicelist)', LEGACY_DEVICES, 'current', legacy_devices(DEVICE), open_),
        ('legacy bundle (axolotl.bundles:<id>)', LEGACY_BUNDLES + DEVICE, 'current', legacy_bundle(DEVICE), open_),
    ):
        name = f'omemo: {what} published with publish-options'
        try:
            r = await alice.publish(node, item_id, payload, **opts)
            require(name, r['pubsub']['publish']['item']['id'] == item_id, str(r))
        except (IqError, IqTimeout) as e:
            require(name, False, describe(e))

    m = await bob.wait_for(bob.events, is_event(DEVICES, item_id='current'), 'omemo:2 device list notification')
    check('omemo: bob (contact, +notify by caps) is notified of the device list, from the bare JID',
          device_ids(event_payload(m), NS_OMEMO) == [DEVICE] and m['to'].resource == bob.boundjid.resource, str(m))
    m = await bob.wait_for(bob.events, is_event(LEGACY_DEVICES, item_id='current'), 'legacy device list notification')
    check('omemo: bob is notified of the legacy device list', device_ids(event_payload(m), NS_AXOLOTL) == [DEVICE], str(m))
    m = await alice.wait_for(alice.events, is_event(DEVICES), "alice's own device list notification")
    check("omemo: alice's own resource is notified of her device list", device_ids(event_payload(m), NS_OMEMO) == [DEVICE], str(m))
    try:
        r = await bob['xep_0060'].get_item(JID(ALICE), BUNDLES, DEVICE, timeout=STEP)
        got = r['pubsub']['items']['item']
        ik = got['payload'].find(f'{{{NS_OMEMO}}}ik') if got['payload'] is not None else None
        check('omemo: bob reads the bundle by item id (get_item)',
              got['id'] == DEVICE and ik is not None and ik.text == base64.b64encode(f'ik-{DEVICE}'.encode()).decode(), str(r))
    except (IqError, IqTimeout) as e:
        check('omemo: bob reads the bundle by item id (get_item)', False, describe(e))
    try:
        ids, payloads = await items_of(bob, ALICE, LEGACY_BUNDLES + DEVICE)
        ik = payloads['current'].find(f'{{{NS_AXOLOTL}}}identityKey') if ids == ['current'] else None
        check('omemo: bob reads the legacy bundle', ik is not None, f'ids={ids}')
    except (IqError, IqTimeout) as e:
        check('omemo: bob reads the legacy bundle', False, describe(e))

    # Carol, no contact, subscribes to the open device list explicitly (XEP-0060 §6.1).
    try:
        r = await carol['xep_0060'].subscribe(JID(ALICE), DEVICES, timeout=STEP)
        sub = r['pubsub']['subscription']
        check('omemo: carol (no contact) subscribes to the open device list explicitly',
              sub['subscription'] == 'subscribed' and sub['jid'] == JID('carol@localhost'), str(r))
    except (IqError, IqTimeout) as e:
        check('omemo: carol (no contact) subscribes to the open device list explicitly', False, describe(e))

    # A second device: its bundle is another item of the same node (max_items max keeps both).
    try:
        await alice.publish(BUNDLES, DEVICE2, omemo2_bundle(DEVICE2), **bundles)
        await alice.publish(DEVICES, 'current', omemo2_devices(DEVICE, DEVICE2), **open_)
        check('omemo: a second bundle and device list published with the same options', True)
    except (IqError, IqTimeout) as e:
        check('omemo: a second bundle and device list published with the same options', False, describe(e))
    m = await bob.wait_for(bob.events, lambda m: is_event(DEVICES)(m) and device_ids(event_payload(m), NS_OMEMO) == [DEVICE, DEVICE2],
                           'the new device list')
    check('omemo: bob is notified of the new device list', True)
    await carol.wait_for(carol.events, lambda m: is_event(DEVICES)(m) and device_ids(event_payload(m), NS_OMEMO) == [DEVICE, DEVICE2],
                         'the new device list (explicit subscription)')
    check('omemo: carol is notified of the new device list through her subscription', True)

    # Carol is no contact of Alice's: the open nodes are hers to read all the same.
    try:
        ids, payloads = await items_of(carol, ALICE, DEVICES)
        check('omemo: carol (no contact) reads the open device list',
              ids == ['current'] and device_ids(payloads['current'], NS_OMEMO) == [DEVICE, DEVICE2], f'ids={ids}')
    except (IqError, IqTimeout) as e:
        check('omemo: carol (no contact) reads the open device list', False, describe(e))
    try:
        ids, _ = await items_of(carol, ALICE, LEGACY_DEVICES)
        check('omemo: carol reads the open legacy device list', ids == ['current'], f'ids={ids}')
    except (IqError, IqTimeout) as e:
        check('omemo: carol reads the open legacy device list', False, describe(e))
    try:
        ids, _ = await items_of(carol, ALICE, BUNDLES, ids=[DEVICE, DEVICE2])
        check('omemo: carol reads both bundles by item id (max_items max kept both)',
              sorted(ids) == sorted([DEVICE, DEVICE2]), f'ids={ids}')
    except (IqError, IqTimeout) as e:
        check('omemo: carol reads both bundles by item id (max_items max kept both)', False, describe(e))

    # Another resource of Bob's comes online later: it gets the newest device list (XEP-0163 §4.3.4).
    await bob_late.login()
    m = await bob_late.wait_for(bob_late.events, is_event(DEVICES), 'the newest device list on coming online')
    check('omemo: a resource coming online later gets the newest device list, with a delay stamp',
          device_ids(event_payload(m), NS_OMEMO) == [DEVICE, DEVICE2] and m['delay']['stamp'] is not None, str(m))

    # 2. publish-options that the node does not meet (XEP-0060 §7.1.5): conflict + precondition-not-met.
    await expect_error('publish-options: access_model presence on the open device list: cancel, conflict/precondition-not-met',
                       alice.publish(DEVICES, 'current', omemo2_devices(DEVICE), access_model='presence'),
                       'conflict/precondition-not-met', 'cancel')
    await expect_error('publish-options: max_items 1 on the max bundles node: cancel, conflict/precondition-not-met',
                       alice.publish(BUNDLES, DEVICE, omemo2_bundle(DEVICE), max_items='1'),
                       'conflict/precondition-not-met', 'cancel')
    await expect_error('publish-options: an unknown option: cancel, conflict/precondition-not-met',
                       alice.publish(DEVICES, 'current', omemo2_devices(DEVICE), **{'frobnicate': '1'}),
                       'conflict/precondition-not-met', 'cancel')
    # the owner reconfigures the node (§8.2), as OMEMO clients do, and publishes again
    try:
        r = await alice['xep_0060'].get_node_config(None, LEGACY_DEVICES, timeout=STEP)
        form = r['pubsub_owner']['configure']['form']
        check('node config: the legacy device list says access_model open',
              form.get_fields()['pubsub#access_model']['value'] == 'open', str(form))
        config = alice['xep_0004'].make_form(ftype='submit')
        config.add_field(var='FORM_TYPE', ftype='hidden', value=NS_NODE_CONFIG)
        config.add_field(var='pubsub#access_model', value='presence')
        await alice['xep_0060'].set_node_config(None, LEGACY_DEVICES, config, timeout=STEP)
        await alice.publish(LEGACY_DEVICES, 'current', legacy_devices(DEVICE), access_model='presence')
        check('node config: after reconfiguring to presence, the publish with presence goes through', True)
    except (IqError, IqTimeout, KeyError) as e:
        check('node config: reconfigure and publish again', False, describe(e))
    await expect_error('node config: carol now gets not-authorized/presence-subscription-required',
                       items_of(carol, ALICE, LEGACY_DEVICES), 'not-authorized/presence-subscription-required')

    # 3. User Avatar (XEP-0084) with xep_0084, open like Conversations publishes it.
    try:
        await alice['xep_0084'].publish_avatar(AVATAR, options=alice.publish_options(access_model='open'), timeout=STEP)
        # width/height as strings: slixmpp 1.8.3's Info.set_width() stores an int it cannot serialise
        info = {'id': AVATAR_ID, 'bytes': len(AVATAR), 'type': 'image/png', 'width': '1', 'height': '1'}
        await alice['xep_0084'].publish_avatar_metadata(info, options=alice.publish_options(access_model='open'), timeout=STEP)
        check('avatar: data and metadata published (xep_0084)', True)
    except (IqError, IqTimeout) as e:
        require('avatar: data and metadata published (xep_0084)', False, describe(e))
    m = await bob.wait_for(bob.events, is_event('urn:xmpp:avatar:metadata'), 'avatar metadata notification')
    meta = m['pubsub_event']['items']['item']['avatar_metadata']['info']
    check('avatar: bob is notified of the metadata (xep_0084 interest)',
          meta['id'] == AVATAR_ID and int(meta['bytes']) == len(AVATAR) and meta['type'] == 'image/png', str(m))
    try:
        r = await bob['xep_0084'].retrieve_avatar(JID(ALICE), meta['id'], timeout=STEP)
        check('avatar: bob fetches the data by the id in the metadata',
              r['pubsub']['items']['item']['avatar_data']['value'] == AVATAR, str(r))
    except (IqError, IqTimeout) as e:
        check('avatar: bob fetches the data by the id in the metadata', False, describe(e))
    try:
        r = await carol['xep_0054'].get_vcard(JID(ALICE), cached=False, timeout=STEP)
        photo = r['vcard_temp']['PHOTO']
        check('avatar: carol reads it as the vCard photo (XEP-0398)', photo['BINVAL'] == AVATAR and photo['TYPE'] == 'image/png', str(r))
    except (IqError, IqTimeout) as e:
        check('avatar: carol reads it as the vCard photo (XEP-0398)', False, describe(e))
    alice.send_presence()
    p = await bob.wait_for(bob.avatar_updates, lambda p: p['from'].bare == ALICE and p['vcard_temp_update']['photo'] == AVATAR_ID,
                           "alice's presence with the avatar hash")
    check("avatar: bob's xep_0153 sees the avatar hash in alice's presence", True)

    # 4. XEP-0402 bookmarks, read back through XEP-0049 private storage (#compat) and XEP-0411.
    try:
        r = await alice.publish(NS_BOOKMARKS, ROOM, bookmark('Interop', 'al'), persist_items='true', access_model='whitelist',
                                max_items='max', send_last_published_item='never')
        check('bookmarks: XEP-0402 item published with the XEP-0402 publish-options', True)
    except (IqError, IqTimeout) as e:
        require('bookmarks: XEP-0402 item published with the XEP-0402 publish-options', False, describe(e))
    m = await alice.wait_for(alice.events, is_event(NS_BOOKMARKS, item_id=ROOM), 'own bookmark notification')
    check("bookmarks: alice's resource is notified (XEP-0402 §5)", True)
    try:
        r = await alice['xep_0048'].get_bookmarks(timeout=STEP)  # xep_0049: private XML storage
        confs = {c['jid']: c for c in r['private']['bookmarks']['conferences']}
        c = confs.get(JID(ROOM)) or confs.get(ROOM)
        check('bookmarks: private storage (xep_0048 via xep_0049) lists the XEP-0402 room',
              c is not None and c['name'] == 'Interop' and c['autojoin'] and c['nick'] == 'al', str(r))
    except (IqError, IqTimeout) as e:
        check('bookmarks: private storage (xep_0048 via xep_0049) lists the XEP-0402 room', False, describe(e))
    # a legacy client writes the list with a second room: the XEP-0402 items follow
    try:
        legacy = Bookmarks()
        legacy.add_conference(ROOM, 'al', name='Interop', autojoin=True)
        legacy.add_conference(ROOM2, 'alice2', name='Second', autojoin=False)
        legacy.add_url('https://example.org/', name='site')
        await alice['xep_0048'].set_bookmarks(legacy, timeout=STEP)
        check('bookmarks: a legacy write to private storage (xep_0048 via xep_0049) is accepted', True)
    except (IqError, IqTimeout) as e:
        require('bookmarks: a legacy write to private storage (xep_0048 via xep_0049) is accepted', False, describe(e))
    m = await alice.wait_for(alice.events, is_event(NS_BOOKMARKS, item_id=ROOM2), 'XEP-0402 notification of the legacy write')
    payload = event_payload(m)
    check('bookmarks: the new room is a XEP-0402 item with the room JID as id (notified)',
          payload is not None and payload.get('name') == 'Second' and payload.findtext(f'{{{NS_BOOKMARKS}}}nick') == 'alice2', str(m))
    try:
        ids, _ = await items_of(alice, ALICE, NS_BOOKMARKS)
        check('bookmarks: the XEP-0402 node has both rooms', sorted(ids) == sorted([ROOM, ROOM2]), f'ids={ids}')
    except (IqError, IqTimeout) as e:
        check('bookmarks: the XEP-0402 node has both rooms', False, describe(e))
    try:
        r = await alice['xep_0048'].get_bookmarks(method='xep_0223', timeout=STEP)  # storage:bookmarks on PEP
        jids = sorted(str(c['jid']) for c in r['pubsub']['items']['item']['bookmarks']['conferences'])
        check('bookmarks: the storage:bookmarks PEP node (xep_0048 via xep_0223) has both rooms (XEP-0411)',
              jids == sorted([ROOM, ROOM2]), str(r))
    except (IqError, IqTimeout) as e:
        check('bookmarks: the storage:bookmarks PEP node (xep_0048 via xep_0223) has both rooms (XEP-0411)', False, describe(e))
    try:
        r = await alice['xep_0048'].get_bookmarks(timeout=STEP)
        urls = [u['url'] for u in r['private']['bookmarks']['urls']]
        check('bookmarks: the <url/> bookmark survives in private storage', urls == ['https://example.org/'], str(r))
    except (IqError, IqTimeout) as e:
        check('bookmarks: the <url/> bookmark survives in private storage', False, describe(e))
    await expect_error("bookmarks: bob cannot read alice's XEP-0402 bookmarks",
                       items_of(bob, ALICE, NS_BOOKMARKS), 'not-allowed/closed-node')

    # 5. XEP-0223: private data on PEP (whitelist) with xep_0223.
    secret = Secret()
    secret['value'] = 'only for alice'
    try:
        await alice['xep_0223'].store(secret, node=PRIVATE_NODE, id='s1', timeout=STEP)
        check('private (XEP-0223): store with persist_items + whitelist accepted', True)
    except (IqError, IqTimeout) as e:
        require('private (XEP-0223): store with persist_items + whitelist accepted', False, describe(e))
    try:
        r = await alice['xep_0223'].retrieve(PRIVATE_NODE, timeout=STEP)
        check('private (XEP-0223): alice retrieves it', r['pubsub']['items']['item']['secret']['value'] == 'only for alice', str(r))
    except (IqError, IqTimeout) as e:
        check('private (XEP-0223): alice retrieves it', False, describe(e))
    await expect_error('private (XEP-0223): bob gets not-allowed/closed-node',
                       bob['xep_0060'].get_item(JID(ALICE), PRIVATE_NODE, 's1', timeout=STEP), 'not-allowed/closed-node')
    await expect_error('private (XEP-0223): carol gets not-allowed/closed-node',
                       carol['xep_0060'].get_item(JID(ALICE), PRIVATE_NODE, 's1', timeout=STEP), 'not-allowed/closed-node')

    # 6. Nothing private reached Bob, who asked for all of it: a tune (presence access) published
    #    last reaches him after anything published before it would have.
    try:
        await alice['xep_0118'].publish_tune(title='marker', timeout=STEP)
    except (IqError, IqTimeout) as e:
        require('marker: tune published (xep_0118)', False, describe(e))
    seen = []
    while True:
        m = await bob.wait_for(bob.events, lambda m: True, 'the tune published last')
        if is_event(TUNE)(m):
            break
        seen.append(m)
    check('marker: bob (contact) gets the tune (presence access, xep_0118)', True)
    private = [str(m) for m in seen if m['pubsub_event']['items']['node'] in (NS_BOOKMARKS, NS_LEGACY_BOOKMARKS, PRIVATE_NODE)]
    check('private nodes: bob got no notification of bookmarks or XEP-0223 items', not private, '\n'.join(private))
    await expect_error('marker: carol (no contact) gets not-authorized/presence-subscription-required for the tune',
                       items_of(carol, ALICE, TUNE), 'not-authorized/presence-subscription-required')


def clients():
    omemo = (DEVICES, LEGACY_DEVICES)
    alice = Client(f'{ALICE}/pep', 'secret', ('xep_0084', 'xep_0118', 'xep_0048', 'xep_0049', 'xep_0223', 'xep_0199'),
                   interests=(*omemo, NS_BOOKMARKS, PRIVATE_NODE))
    bob_plugins = ('xep_0084', 'xep_0118', 'xep_0048', 'xep_0054', 'xep_0153', 'xep_0199')
    # Bob asks for everything, the private nodes too: the server must still not send them
    bob = Client('bob@localhost/pep', 'secret', bob_plugins, interests=(*omemo, NS_BOOKMARKS, PRIVATE_NODE))
    carol = Client('carol@localhost/pep', 'secret', ('xep_0054', 'xep_0199'))
    bob_late = Client('bob@localhost/late', 'secret', ('xep_0199',), interests=omemo)
    return alice, bob, carol, bob_late


run_all(run, clients, TOTAL)
