"""Interop probe for rooms across servers (XEP-0045 over server-to-server streams):
a user of Prosody (or any server) and a user of Uzzap meet in a room on each server.

user@remote logs in to its own server, creates OWN_ROOM on its server's MUC service
(an instant room) and invites the Uzzap user (a mediated invitation, so it goes out
from the room's domain); the Uzzap user joins and writes, and gets an answer. Then
the Uzzap user invites user@remote to PEER_ROOM on Uzzap's MUC service: it joins, sees
the Uzzap user there, reads the Uzzap user's message and writes one that the room
reflects. The Uzzap side (the mocha test) does its part. Prints one `PASS <check>` or
`FAIL <check>: <why>` line per check and a final `DONE passed=N failed=M`.

usage: python3 slixmpp_s2s_muc.py JID PASSWORD HOST PORT PEER_JID OWN_ROOM PEER_ROOM
"""
import asyncio
import sys

from slixmpp.exceptions import IqError, IqTimeout, PresenceError

from checks import ProbeClient, check, first_match, require, run_all

JID, PASSWORD, HOST, PORT, PEER = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
OWN_ROOM, PEER_ROOM = sys.argv[6], sys.argv[7]
NICK = 'beta-user'
PEER_NICK = 'alice'
STEP = 20  # seconds for any single answer (the first across servers waits for streams to be made)
TOTAL = 80


class Client(ProbeClient):
    def __init__(self):
        super().__init__(JID, PASSWORD, ('xep_0030', 'xep_0004', 'xep_0045'))
        self.messages = asyncio.Queue()  # groupchat messages with a body
        self.presences = asyncio.Queue()  # presences from rooms joined
        self.invites = asyncio.Queue()  # mediated invitations
        self.add_event_handler('groupchat_message', self.messages.put_nowait)
        self.add_event_handler('groupchat_presence', self.presences.put_nowait)
        self.add_event_handler('groupchat_invite', self.invites.put_nowait)

    async def wait_for(self, queue, pred, what):
        return await first_match(queue, pred, what, STEP, JID)


def codes(pres):
    return set(pres['muc']['status_codes'])


async def run(c):
    muc = c['xep_0045']
    c.connect((HOST, PORT))
    await asyncio.wait_for(c.online, STEP)
    require('logged in to its own server', True)

    # a room on its own server: created (201), unlocked as an instant room, the Uzzap user invited
    try:
        pres, _subject, _occupants, _history = await muc.join_muc_wait(OWN_ROOM, NICK, maxstanzas=0, timeout=STEP)
        await muc.set_room_config(OWN_ROOM, c['xep_0004'].make_form(ftype='submit'), timeout=STEP)
        ok, detail = 201 in codes(pres), f'codes={sorted(codes(pres))} in {pres}'
    except (PresenceError, IqError, IqTimeout, asyncio.TimeoutError) as e:
        ok, detail = False, repr(e) + ' ' + str(getattr(e, 'iq', getattr(e, 'presence', '')))
    require("creates a room on its own server's MUC service", ok, detail)
    muc.invite(OWN_ROOM, PEER, reason='across servers')
    try:
        await c.wait_for(
            c.presences,
            lambda p: p['from'] == f'{OWN_ROOM}/{PEER_NICK}' and p['type'] not in ('error', 'unavailable'),
            "the Uzzap user's presence in the room here",
        )
        require('the Uzzap user, invited, joins the room here', True)
    except asyncio.TimeoutError as e:
        require('the Uzzap user, invited, joins the room here', False, str(e))
    try:
        m = await c.wait_for(c.messages, lambda m: m['body'] == 'hello room from uzzap', "the Uzzap user's message")
        check("the Uzzap user's groupchat message arrives from the room here", m['from'] == f'{OWN_ROOM}/{PEER_NICK}', str(m))
    except asyncio.TimeoutError as e:
        check("the Uzzap user's groupchat message arrives from the room here", False, str(e))
    c.send_message(mto=OWN_ROOM, mbody='hello room from beta', mtype='groupchat')

    # a room on Uzzap's MUC service: the Uzzap user's invitation, then join and chat there
    try:
        inv = await c.wait_for(c.invites, lambda m: m['from'] == PEER_ROOM, 'invitation to the room on Uzzap')
        check(
            'an invitation from the Uzzap user to a room on Uzzap arrives',
            str(inv['muc']['invite']['from']).startswith(PEER),
            str(inv),
        )
    except asyncio.TimeoutError as e:
        require('an invitation from the Uzzap user to a room on Uzzap arrives', False, str(e))
    try:
        pres, _subject, occupants, _history = await muc.join_muc_wait(PEER_ROOM, NICK, maxstanzas=0, timeout=STEP)
        ok, detail = 110 in codes(pres) and pres['from'] == f'{PEER_ROOM}/{NICK}', str(pres)
    except (PresenceError, asyncio.TimeoutError) as e:
        ok, detail = False, repr(e) + ' ' + str(getattr(e, 'presence', ''))
    require('joins the room on Uzzap', ok, detail)
    check(
        'sees the Uzzap user in the room on Uzzap',
        any(p['from'] == f'{PEER_ROOM}/{PEER_NICK}' for p in occupants),
        f'occupants={[str(p["from"]) for p in occupants]}',
    )
    try:
        m = await c.wait_for(
            c.messages, lambda m: m['body'] == 'hello from the room on uzzap', "the Uzzap user's message there"
        )
        check(
            "the Uzzap user's groupchat message in the room on Uzzap arrives",
            m['from'] == f'{PEER_ROOM}/{PEER_NICK}',
            str(m),
        )
    except asyncio.TimeoutError as e:
        check("the Uzzap user's groupchat message in the room on Uzzap arrives", False, str(e))
    c.send_message(mto=PEER_ROOM, mbody='hello uzzap room from beta', mtype='groupchat')
    try:
        m = await c.wait_for(c.messages, lambda m: m['body'] == 'hello uzzap room from beta', 'the reflection')
        check('its own groupchat message in the room on Uzzap is reflected', m['from'] == f'{PEER_ROOM}/{NICK}', str(m))
    except asyncio.TimeoutError as e:
        check('its own groupchat message in the room on Uzzap is reflected', False, str(e))


run_all(run, lambda: [Client()], TOTAL)
