"""Interop probe for external components (XEP-0114) with slixmpp's ComponentXMPP.

A bridge component (bridge.localhost) connects to the component port with the
shared secret; Alice, a slixmpp client, sends it a message (the bridge echoes
it from another address at its domain) and IQs (disco#info and software
version, answered by the component's xep_0030 / xep_0092 plugins); the bridge
queries Alice's software version from one of its addresses and the server's
disco#info, and sends Alice a directed presence; a second component with a
wrong secret is refused; once the bridge leaves, IQs to it bounce with
service-unavailable and the server stops listing it. Prints one `PASS <check>` or
`FAIL <check>: <why>` line per check and a final `DONE passed=N failed=M`;
exits non-zero if any check failed or a step the rest depends on broke.

usage: python3 slixmpp_component.py HOST C2S_PORT COMPONENT_PORT SECRET
       SLIXMPP_DEBUG=1 adds slixmpp's debug log (with every stanza) on stderr.
"""
import asyncio
import sys


from checks import Abort, ProbeClient, check, require, run_all, first_match
from slixmpp.componentxmpp import ComponentXMPP
from slixmpp.exceptions import IqError, IqTimeout

HOST, C2S_PORT, COMPONENT_PORT, SECRET = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
BRIDGE = 'bridge.localhost'
STEP = 5  # seconds to wait for any single answer
TOTAL = 20  # seconds for the whole run




async def first(queue, pred, what):
    """The first item in `queue` matching `pred` (earlier ones are dropped)."""
    return await first_match(queue, pred, what, STEP)


def iq_error(e):
    return repr(e) + ' ' + str(getattr(e, 'iq', ''))


class Client(ProbeClient):
    def __init__(self, jid, password):
        super().__init__(jid, password, ('xep_0030', 'xep_0092'))
        self.messages = asyncio.Queue()
        self.presences = asyncio.Queue()
        self['xep_0092'].software_name = 'interop-alice'
        self['xep_0092'].version = '1.0'
        self.add_event_handler('message', self.messages.put_nowait)
        self.add_event_handler('presence', self.presences.put_nowait)


class Bridge(ComponentXMPP):
    """A component that echoes chat messages from nick@<its domain>."""

    def __init__(self, secret):
        super().__init__(BRIDGE, secret, HOST, COMPONENT_PORT)
        loop = asyncio.get_event_loop()
        self.online = loop.create_future()
        self.closed = loop.create_future()  # set on disconnect
        self.stream_errors = []
        self.messages = asyncio.Queue()
        for p in ('xep_0030', 'xep_0092'):
            self.register_plugin(p)
        self['xep_0030'].add_identity(category='gateway', itype='irc', name='Interop Bridge', jid=BRIDGE)
        self['xep_0092'].software_name = 'interop-bridge'
        self['xep_0092'].version = '0.1'
        self.add_event_handler('session_start', lambda _: self.online.done() or self.online.set_result(True))
        self.add_event_handler('stream_error', lambda e: self.stream_errors.append(e['condition']))
        self.add_event_handler('disconnected', lambda _: self.closed.done() or self.closed.set_result(True))
        self.add_event_handler('message', self.on_message)

    def on_message(self, msg):
        self.messages.put_nowait(msg)
        if msg['type'] == 'chat' and not msg['body'].startswith('echo: '):
            self.send_message(mto=msg['from'], mfrom=f'nick@{BRIDGE}', mbody=f"echo: {msg['body']}", mtype='chat')


async def run(bridge, alice):
    # 1. Handshake (XEP-0114 §3): accepted with the right secret.
    bridge.connect()
    alice.connect((HOST, C2S_PORT))
    try:
        await asyncio.wait_for(bridge.online, STEP)
        require('handshake: accepted with the right secret', True)
    except asyncio.TimeoutError:
        require('handshake: accepted with the right secret', False, f'no <handshake/> within {STEP}s; errors={bridge.stream_errors}')
    await asyncio.wait_for(alice.online, STEP * 2)
    print('online', bridge.boundjid.full, alice.boundjid.full, flush=True)
    me = alice.boundjid.full

    # 2. A user's message to an address at the component reaches it as sent.
    alice.send_message(mto=f'room42@{BRIDGE}', mbody='hi bridge', mtype='chat')
    m = await first(bridge.messages, lambda m: m['body'] == 'hi bridge', 'message at the component')
    check('message: the component receives it from the user\'s full JID', m['from'] == me, str(m))
    check('message: addressed to room42@bridge.localhost', m['to'] == f'room42@{BRIDGE}', str(m))

    # 3. The component answers from another address at its domain.
    m = await first(alice.messages, lambda m: m['body'] == 'echo: hi bridge', 'echo from the component')
    check('message: the user receives the echo from nick@bridge.localhost', m['from'] == f'nick@{BRIDGE}', str(m))

    # 4. IQs from the user, answered by the component's plugins.
    try:
        info = await alice['xep_0030'].get_info(BRIDGE, timeout=STEP)
        ids = {(cat, typ, name) for cat, typ, _lang, name in info['disco_info']['identities']}
        check('disco#info: the component answers with its gateway identity', ('gateway', 'irc', 'Interop Bridge') in ids, str(info))
        check('disco#info: answered from bridge.localhost', info['from'] == BRIDGE, str(info))
    except (IqError, IqTimeout) as e:
        check('disco#info: the component answers with its gateway identity', False, iq_error(e))
    try:
        v = await alice['xep_0092'].get_version(BRIDGE, timeout=STEP)
        check('version: the component answers jabber:iq:version', v['software_version']['name'] == 'interop-bridge', str(v))
    except (IqError, IqTimeout) as e:
        check('version: the component answers jabber:iq:version', False, iq_error(e))
    try:
        v = await alice['xep_0092'].get_version(f'room42@{BRIDGE}', timeout=STEP)
        check(
            'version: an IQ to room42@bridge.localhost is answered from that address',
            v['from'] == f'room42@{BRIDGE}' and v['software_version']['name'] == 'interop-bridge',
            str(v),
        )
    except (IqError, IqTimeout) as e:
        check('version: an IQ to room42@bridge.localhost is answered from that address', False, iq_error(e))

    # 5. An IQ from the component (from one of its addresses) to the user, and the result routed back.
    try:
        v = await bridge['xep_0092'].get_version(me, ifrom=f'bot@{BRIDGE}', timeout=STEP)
        check(
            'component IQ: the user\'s version result reaches bot@bridge.localhost',
            v['to'] == f'bot@{BRIDGE}' and v['software_version']['name'] == 'interop-alice',
            str(v),
        )
    except (IqError, IqTimeout) as e:
        check('component IQ: the user\'s version result reaches bot@bridge.localhost', False, iq_error(e))

    # 5b. The component's own IQ to the server, and a directed presence from it to the user.
    try:
        info = await bridge['xep_0030'].get_info('localhost', ifrom=BRIDGE, timeout=STEP)
        check('component IQ: the server answers the component\'s disco#info', len(info['disco_info']['features']) > 0, str(info))
    except (IqError, IqTimeout) as e:
        check('component IQ: the server answers the component\'s disco#info', False, iq_error(e))
    bridge.send_presence(pto=me, pfrom=f'nick@{BRIDGE}/irc', pstatus='on IRC')
    p = await first(alice.presences, lambda p: p['from'] == f'nick@{BRIDGE}/irc', 'directed presence from the component')
    check('presence: a directed presence from nick@bridge.localhost/irc reaches the user', p['status'] == 'on IRC', str(p))
    try:
        items = await alice['xep_0030'].get_items('localhost', timeout=STEP)
        jids = [str(jid) for jid, _node, _name in items['disco_items']['items']]
        check('disco#items: the server lists bridge.localhost while it is connected', BRIDGE in jids, str(items))
    except (IqError, IqTimeout) as e:
        check('disco#items: the server lists bridge.localhost while it is connected', False, iq_error(e))

    # 6. A second component with a wrong secret is refused with a stream error.
    wrong = Bridge('not-the-secret')
    wrong.connect()
    try:
        done, _ = await asyncio.wait({wrong.online, wrong.closed}, timeout=STEP, return_when=asyncio.FIRST_COMPLETED)
        check('wrong secret: no handshake, the stream is closed', wrong.closed in done and not wrong.online.done(), f'done={done}')
        check('wrong secret: stream error not-authorized', wrong.stream_errors == ['not-authorized'], f'errors={wrong.stream_errors}')
    finally:
        wrong.disconnect()

    # 7. The first component still works.
    alice.send_message(mto=f'room42@{BRIDGE}', mbody='still there?', mtype='chat')
    m = await first(alice.messages, lambda m: m['body'] == 'echo: still there?', 'echo after the refused component')
    check('after the refusal: the connected component still echoes', m['from'] == f'nick@{BRIDGE}', str(m))

    # 8. Once the component is gone, IQs to its domain bounce and the server stops listing it.
    bridge.disconnect()
    await asyncio.wait_for(bridge.closed, STEP)
    await asyncio.sleep(0.2)  # the server notices the closed stream
    try:
        r = await alice['xep_0092'].get_version(f'bot@{BRIDGE}', timeout=STEP)
        check('gone: an IQ to bot@bridge.localhost gets service-unavailable', False, f'got {r}')
    except IqError as e:
        check('gone: an IQ to bot@bridge.localhost gets service-unavailable', e.iq['error']['condition'] == 'service-unavailable', str(e.iq))
    except IqTimeout:
        check('gone: an IQ to bot@bridge.localhost gets service-unavailable', False, 'no answer')
    try:
        items = await alice['xep_0030'].get_items('localhost', timeout=STEP)
        jids = [str(jid) for jid, _node, _name in items['disco_items']['items']]
        check('gone: the server no longer lists bridge.localhost', BRIDGE not in jids, str(items))
    except (IqError, IqTimeout) as e:
        check('gone: the server no longer lists bridge.localhost', False, iq_error(e))


run_all(run, lambda: (Bridge(SECRET), Client('alice@localhost/comp', 'secret')), TOTAL)
