"""Interop probe for Multi-User Chat (XEP-0045) with slixmpp's xep_0045 plugin.

Alice creates a room (201, locked) and unlocks it as an instant room, Bob
joins, both chat, Alice changes the subject, self-pings (XEP-0410), and kicks
Bob; Bob comes back and leaves with unavailable presence to the bare room JID;
Bob comes back again, and Alice moderates his message with slixmpp's xep_0425
plugin (the XEP-0425 0.2 form, urn:xmpp:message-moderate:0) and reads the room
archive (XEP-0313) to find a tombstone in its place. Prints one `PASS <check>` or `FAIL <check>: <why>` line per check and a
final `DONE passed=N failed=M`; exits non-zero if any check failed or a step
the rest depends on broke.

usage: python3 slixmpp_muc.py HOST PORT
       SLIXMPP_DEBUG=1 adds slixmpp's debug log (with every stanza) on stderr.
"""
import asyncio
import sys

from slixmpp import JID

from checks import Abort, ProbeClient, check, require, run_all, first_match
from slixmpp.exceptions import IqError, IqTimeout, PresenceError

HOST, PORT = sys.argv[1], int(sys.argv[2])
ROOM = 'interop@conference.localhost'
NS_SID = 'urn:xmpp:sid:0'
NS_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig'
STEP = 5  # seconds to wait for any single answer
TOTAL = 20  # seconds for the whole run




def codes(pres):
    return set(pres['muc']['status_codes'])


class Client(ProbeClient):
    def __init__(self, jid, password):
        super().__init__(jid, password, ('xep_0030', 'xep_0004', 'xep_0045', 'xep_0199', 'xep_0359', 'xep_0425', 'xep_0313'))
        self.messages = asyncio.Queue()  # groupchat messages with a body
        self.subjects = asyncio.Queue()  # subject changes
        self.presences = asyncio.Queue()  # MUC presences
        self.moderations = asyncio.Queue()  # XEP-0425 (0.2) moderation announcements
        self.add_event_handler('groupchat_message', self.messages.put_nowait)
        self.add_event_handler('groupchat_subject', self.subjects.put_nowait)
        self.add_event_handler('groupchat_presence', self.presences.put_nowait)
        self.add_event_handler('moderated_message', self.moderations.put_nowait)

    async def wait_for(self, queue, pred, what):
        """The first item in `queue` matching `pred` (earlier ones are dropped)."""
        return await first_match(queue, pred, what, STEP, self.boundjid.bare)


async def check_not_occupant(client, nick, name):
    """XEP-0410: a self-ping from someone not in the room is answered not-acceptable."""
    try:
        r = await client['xep_0199'].send_ping(f'{ROOM}/{nick}', timeout=STEP)
        check(name, False, f'got {r}')
    except IqError as e:
        check(name, e.iq['error']['condition'] == 'not-acceptable', str(e.iq))
    except IqTimeout:
        check(name, False, 'timeout')


def stanza_id_ok(msg):
    sid = msg['stanza_id']
    return bool(sid['id']) and sid['by'] == ROOM, f"stanza-id id={sid['id']!r} by={sid['by']!r} in {msg}"


async def run(alice, bob):
    muc_a, muc_b = alice['xep_0045'], bob['xep_0045']
    for c in (alice, bob):
        c.connect((HOST, PORT))
    await asyncio.wait_for(asyncio.gather(alice.online, bob.online), STEP * 2)
    print('logged in', alice.boundjid.full, bob.boundjid.full, flush=True)

    # 1. Alice creates the room: self-presence with 110 + 201, owner/moderator, room locked (§10.1.1).
    try:
        pres, _subject, _occ, _hist = await muc_a.join_muc_wait(ROOM, 'alice', maxstanzas=0, timeout=STEP)
    except Exception as e:  # noqa: BLE001 — report anything as a failure
        require('create room: join answered', False, repr(e))
    require(
        'create room: self-presence has status 110 and 201',
        {110, 201} <= codes(pres),
        f'codes={sorted(codes(pres))} in {pres}',
    )
    check(
        'create room: creator is owner/moderator',
        (pres['muc']['affiliation'], pres['muc']['role']) == ('owner', 'moderator'),
        f"affiliation={pres['muc']['affiliation']} role={pres['muc']['role']}",
    )

    # 1b. While locked, nobody else may enter (§10.1.1): <item-not-found/>.
    try:
        await muc_b.join_muc_wait(ROOM, 'bob', maxstanzas=0, timeout=STEP)
        check('locked room: bob is refused with item-not-found', False, 'bob entered the locked room')
    except PresenceError as e:
        check('locked room: bob is refused with item-not-found', e.condition == 'item-not-found', str(e.presence))
    except asyncio.TimeoutError:
        check('locked room: bob is refused with item-not-found', False, 'no answer')

    # 2. Instant room (§10.1.2): an empty submit form unlocks it.
    try:
        await muc_a.set_room_config(ROOM, alice['xep_0004'].make_form(ftype='submit'), timeout=STEP)
        require('instant room: empty submit form accepted', True)
    except (IqError, IqTimeout) as e:
        require('instant room: empty submit form accepted', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))

    # 2b. The owner's configuration form round-trips through slixmpp's data forms.
    try:
        form = await muc_a.get_room_config(ROOM, timeout=STEP)
        fields = form.get_fields()
        # slixmpp 1.8 reads a hidden field's value as a list
        form_type = fields['FORM_TYPE']['value'] if 'FORM_TYPE' in fields else None
        ok = form_type in (NS_ROOMCONFIG, [NS_ROOMCONFIG])
        check('config form: has FORM_TYPE muc#roomconfig', ok, f'FORM_TYPE={form_type!r} in {form}')
        form.set_values({'muc#roomconfig_roomname': 'Interop room'})
        await muc_a.set_room_config(ROOM, form, timeout=STEP)
        check('config form: modified form submitted back is accepted', True)
        name = (await muc_a.get_room_config(ROOM, timeout=STEP)).get_fields()['muc#roomconfig_roomname']['value']
        check('config form: the new room name is stored', name == 'Interop room', f'roomname={name!r}')
    except (IqError, IqTimeout, ValueError) as e:
        check('config form: get + submit back', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))

    # A message before Bob arrives, so Bob's join carries history.
    alice.send_message(mto=ROOM, mbody='before bob', mtype='groupchat')
    await alice.wait_for(alice.messages, lambda m: m['body'] == 'before bob', 'reflection of "before bob"')

    # 3. Bob joins: 110 without 201, sees Alice, gets history (with delay and stanza-id) and the subject.
    try:
        pres, _subject, occupants, history = await muc_b.join_muc_wait(ROOM, 'bob', maxstanzas=10, timeout=STEP)
    except Exception as e:  # noqa: BLE001
        require('join: bob enters the unlocked room', False, repr(e))
    require(
        'join: bob self-presence has 110 (and no 201)',
        110 in codes(pres) and 201 not in codes(pres),
        f'codes={sorted(codes(pres))} in {pres}',
    )
    check(
        'join: bob sees alice in the room',
        any(p['from'].resource == 'alice' for p in occupants),
        f'occupants={[str(p["from"]) for p in occupants]}',
    )
    hist = [m for m in history if m['body'] == 'before bob']
    if check('join: history message delivered with delay from the room', len(hist) == 1, f'history={history}'):
        check('join: history message carries stanza-id by the room', *stanza_id_ok(hist[0]))
    await alice.wait_for(
        alice.presences,
        lambda p: p['from'] == f'{ROOM}/bob' and p['type'] != 'unavailable',
        "bob's join presence",
    )
    check('join: alice sees bob arrive', True)

    # 4. Groupchat messages both ways, each with a stanza-id from the room.
    alice.send_message(mto=ROOM, mbody='hello from alice', mtype='groupchat')
    m = await bob.wait_for(bob.messages, lambda m: m['body'] == 'hello from alice', "alice's message")
    check('groupchat: bob receives alice\'s message from room/alice', m['from'] == f'{ROOM}/alice', str(m))
    check('groupchat: bob\'s copy carries stanza-id by the room', *stanza_id_ok(m))
    bob.send_message(mto=ROOM, mbody='hello from bob', mtype='groupchat')
    m = await alice.wait_for(alice.messages, lambda m: m['body'] == 'hello from bob', "bob's message")
    check('groupchat: alice receives bob\'s message from room/bob', m['from'] == f'{ROOM}/bob', str(m))
    check('groupchat: alice\'s copy carries stanza-id by the room', *stanza_id_ok(m))
    m = await bob.wait_for(bob.messages, lambda m: m['body'] == 'hello from bob', 'reflection of own message')
    check('groupchat: bob gets his own message reflected', m['from'] == f'{ROOM}/bob', str(m))

    # 5. Subject change by the owner reaches Bob.
    muc_a.set_subject(ROOM, 'interop subject')
    m = await bob.wait_for(bob.subjects, lambda m: m['subject'] == 'interop subject', 'subject change')
    check('subject: bob sees the new subject from room/alice', m['from'] == f'{ROOM}/alice', str(m))

    # 6. XEP-0410 self-ping: an IQ ping to our own occupant JID gets a result while joined.
    try:
        r = await alice['xep_0199'].send_ping(f'{ROOM}/alice', timeout=STEP)
        check('self-ping: alice pinging room/alice gets a result', r['type'] == 'result', str(r))
    except (IqError, IqTimeout) as e:
        check('self-ping: alice pinging room/alice gets a result', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))

    # 7. Kick (§8.2): role none; Bob gets unavailable self-presence with 110 + 307, Alice sees 307.
    try:
        await muc_a.set_role(ROOM, 'bob', 'none', reason='interop kick', timeout=STEP)
        check('kick: set_role none answered with result', True)
    except (IqError, IqTimeout) as e:
        require('kick: set_role none answered with result', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))
    p = await bob.wait_for(
        bob.presences,
        lambda p: p['type'] == 'unavailable' and p['from'] == f'{ROOM}/bob',
        'own unavailable presence after kick',
    )
    check('kick: bob gets own unavailable presence with 110 and 307', {110, 307} <= codes(p), f'codes={sorted(codes(p))} in {p}')
    check('kick: the kick reason reaches bob', p['muc']['item']['reason'] == 'interop kick', str(p))
    p = await alice.wait_for(
        alice.presences,
        lambda p: p['type'] == 'unavailable' and p['from'] == f'{ROOM}/bob',
        "bob's unavailable presence",
    )
    check('kick: alice sees bob leave with 307 (no 110)', 307 in codes(p) and 110 not in codes(p), f'codes={sorted(codes(p))} in {p}')

    # 8. XEP-0410: once out of the room, a self-ping is an error (not-acceptable).
    await check_not_occupant(bob, 'bob', 'self-ping after kick: error not-acceptable')

    # 9. Leaving by unavailable presence to the bare room JID, as Prosody and ejabberd accept it:
    #    Bob enters again, then sends <presence type='unavailable' to='room@service'/> (no nick).
    try:
        await muc_b.join_muc_wait(ROOM, 'bob', maxstanzas=0, timeout=STEP)
    except Exception as e:  # noqa: BLE001
        require('bare-JID leave: bob enters again', False, repr(e))
    await alice.wait_for(
        alice.presences,
        lambda p: p['from'] == f'{ROOM}/bob' and p['type'] != 'unavailable',
        "bob's second arrival",
    )
    bob.send_presence(pto=ROOM, ptype='unavailable', pstatus='leaving by the room JID')
    p = await bob.wait_for(
        bob.presences,
        lambda p: p['type'] == 'unavailable' and p['from'] == f'{ROOM}/bob',
        'own unavailable presence after leaving by the room JID',
    )
    check('bare-JID leave: bob gets own unavailable presence with 110', 110 in codes(p), f'codes={sorted(codes(p))} in {p}')
    p = await alice.wait_for(
        alice.presences,
        lambda p: p['type'] == 'unavailable' and p['from'] == f'{ROOM}/bob',
        "bob's unavailable presence after he left by the room JID",
    )
    check(
        'bare-JID leave: alice sees bob leave with role none and his status',
        p['muc']['role'] == 'none' and p['status'] == 'leaving by the room JID',
        str(p),
    )
    await check_not_occupant(bob, 'bob', 'bare-JID leave: bob is no longer an occupant (self-ping not-acceptable)')


    # 10. Moderation with slixmpp's xep_0425 plugin, which sends the XEP-0425 0.2 form
    #     (<apply-to xmlns='urn:xmpp:fasten:0'><moderate xmlns='urn:xmpp:message-moderate:0'>):
    #     the room announces it in that form, and its archive keeps a tombstone, not the message.
    try:
        await muc_b.join_muc_wait(ROOM, 'bob', maxstanzas=0, timeout=STEP)
    except Exception as e:  # noqa: BLE001
        require('moderation: bob enters again', False, repr(e))
    bob.send_message(mto=ROOM, mbody='interop spam', mtype='groupchat')
    m = await alice.wait_for(alice.messages, lambda m: m['body'] == 'interop spam', "bob's spam")
    sid = m['stanza_id']['id']
    require('moderation: the message to moderate has a stanza-id', bool(sid), str(m))
    try:
        await alice['xep_0425'].moderate(JID(ROOM), sid, reason='interop moderation', timeout=STEP)
        check('moderation: the :0 request is answered with result', True)
    except (IqError, IqTimeout) as e:
        require('moderation: the :0 request is answered with result', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))
    for c, who in ((bob, 'bob'), (alice, 'alice')):
        a = await c.wait_for(c.moderations, lambda a: a['apply_to']['id'] == sid, f'the moderation announcement to {who}')
        moderated = a['apply_to']['moderated']
        check(
            f'moderation: {who} gets the :0 announcement from the room, by room/alice, with the reason',
            a['from'] == ROOM and moderated['by'] == f'{ROOM}/alice' and moderated['reason'] == 'interop moderation',
            str(a),
        )
    try:
        r = await alice['xep_0313'].retrieve(jid=JID(ROOM), timeout=STEP, rsm={'max': 50})
        archived = [res['mam_result']['forwarded']['stanza'] for res in r['mam']['results']]
        moderated = [m for m in archived if m['stanza_id']['id'] == sid]
        check('moderation: the room archive still has an entry for the message', len(moderated) == 1, str(archived))
        if moderated:
            t = moderated[0]
            check('moderation: the archived entry has no body any more', t['body'] == '', str(t))
            check(
                'moderation: the archived entry is a tombstone slixmpp reads (moderated by room/alice, retracted)',
                t['moderated']['by'] == f'{ROOM}/alice' and t['moderated']['retracted']['stamp'] is not None,
                str(t),
            )
        check('moderation: the body is nowhere in the archive', all(m['body'] != 'interop spam' for m in archived), str(archived))
    except (IqError, IqTimeout) as e:
        check('moderation: MAM query to the room', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))


run_all(run, lambda: (Client('alice@localhost/muc', 'secret'), Client('bob@localhost/muc', 'secret')), TOTAL)
