"""Interop probe for room nicknames under PRECIS (RFC 8264/8266, XEP-0045 §17.1) with
slixmpp's xep_0045 plugin.

Alice creates a room; Bob tries to enter with invisible nicks (an emoji with
VARIATION SELECTOR-16, a lone ZERO WIDTH SPACE, "Romeo" with a ZERO WIDTH SPACE)
and with a fullwidth look-alike, then enters with a Greek nick through slixmpp's own
join. slixmpp prepares JIDs itself (RFC 6122 Resourceprep maps those code points to
nothing or folds them), so the refused nicks are sent as raw XML, as a client that
does not prepare them would send them. Prints one `PASS <check>` or `FAIL <check>:
<why>` line per check and a final `DONE passed=N failed=M`.

usage: python3 slixmpp_precis.py HOST PORT
       SLIXMPP_DEBUG=1 adds slixmpp's debug log (with every stanza) on stderr.
"""
import asyncio
import sys
from xml.sax.saxutils import quoteattr


from checks import ProbeClient, check, require, run_all

HOST, PORT = sys.argv[1], int(sys.argv[2])
ROOM = 'precis@conference.localhost'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
STEP = 5  # seconds to wait for any single answer
TOTAL = 20  # seconds for the whole run


class Client(ProbeClient):
    def __init__(self, jid, password):
        super().__init__(jid, password, ('xep_0030', 'xep_0004', 'xep_0045'))
        self.errors = {}  # presence id -> future of the error condition
        self.presences = asyncio.Queue()  # MUC presences
        self.add_event_handler('groupchat_presence', self.presences.put_nowait)
        # Errors to our raw joins are taken from the XML before any handler sees them: their
        # 'from' is the refused occupant JID, which slixmpp's JID class rewrites or, for a lone
        # ZERO WIDTH SPACE, rejects ("Resource must not be 0 bytes"), dropping the connection.
        self.add_filter('in', self.take_join_error)

    def take_join_error(self, stanza):
        xml = stanza.xml
        fut = self.errors.get(xml.get('id'))
        if xml.tag != '{jabber:client}presence' or xml.get('type') != 'error' or fut is None or fut.done():
            return stanza
        error = xml.find('{jabber:client}error')
        conds = [c.tag.split('}')[1] for c in (error if error is not None else []) if c.tag.startswith('{' + NS_STANZAS + '}')]
        fut.set_result(next((c for c in conds if c != 'text'), None))
        return None  # consumed

    async def enter_raw(self, nick, pid):
        """Send a MUC join to ROOM/nick exactly as given; the error condition that answers it."""
        self.errors[pid] = asyncio.get_event_loop().create_future()
        self.send_raw(f"<presence id={quoteattr(pid)} to={quoteattr(ROOM + '/' + nick)}><x xmlns='{NS_MUC}'/></presence>")
        try:
            return await asyncio.wait_for(self.errors[pid], STEP)
        except asyncio.TimeoutError:
            return 'no error within %ds' % STEP


async def run(alice, bob):
    for c in (alice, bob):
        c.connect((HOST, PORT))
    await asyncio.wait_for(asyncio.gather(alice.online, bob.online), STEP * 2)
    print('logged in', alice.boundjid.full, bob.boundjid.full, flush=True)

    try:
        await alice['xep_0045'].join_muc_wait(ROOM, 'alice', maxstanzas=0, timeout=STEP)
        await alice['xep_0045'].set_room_config(ROOM, alice['xep_0004'].make_form(ftype='submit'), timeout=STEP)
        require('room: alice creates an instant room', True)
    except Exception as e:  # noqa: BLE001 — report anything as a failure
        require('room: alice creates an instant room', False, repr(e))

    refused = [
        ('invisible nick: emoji + VARIATION SELECTOR-16 is refused with jid-malformed', '\U0001f916\ufe0f', 'jid-malformed'),
        ('invisible nick: a lone ZERO WIDTH SPACE is refused with jid-malformed', '\u200b', 'jid-malformed'),
        ('invisible nick: "Romeo" + ZERO WIDTH SPACE is refused with jid-malformed', 'Romeo\u200b', 'jid-malformed'),
        ('look-alike nick: fullwidth "Ｒｏｍｅｏ" is refused with not-acceptable', '\uff32\uff4f\uff4d\uff45\uff4f', 'not-acceptable'),
    ]
    for i, (name, nick, want) in enumerate(refused):
        got = await bob.enter_raw(nick, f'precis{i}')
        check(name, got == want, f'got {got!r}')

    # slixmpp's own join with a nick of Greek letters: entered, and Alice sees it.
    nick = '\u03a9\u03bc\u03ad\u03b3\u03b1'
    try:
        pres, _subject, _occ, _hist = await bob['xep_0045'].join_muc_wait(ROOM, nick, maxstanzas=0, timeout=STEP)
        check('greek nick: bob enters as Ωμέγα', pres['from'].resource == nick, str(pres))
    except Exception as e:  # noqa: BLE001
        check('greek nick: bob enters as Ωμέγα', False, repr(e))

    async def arrival():
        while True:
            p = await alice.presences.get()
            if p['from'] == f'{ROOM}/{nick}' and p['type'] != 'unavailable':
                return p

    try:
        await asyncio.wait_for(arrival(), STEP)
        check('greek nick: alice sees Ωμέγα arrive', True)
    except asyncio.TimeoutError:
        check('greek nick: alice sees Ωμέγα arrive', False, f'no presence from {ROOM}/{nick} within {STEP}s')

if __name__ == '__main__':
    run_all(run, lambda: (Client('alice@localhost', 'secret'), Client('bob@localhost', 'secret')), TOTAL)
