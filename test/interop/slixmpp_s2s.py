"""Interop probe for federation: a user of Prosody (or any server) talks to a
user of Uzzap across server-to-server streams.

user@remote logs in to its own server, sends a chat message to the Uzzap user,
waits for the reply, asks for the Uzzap user's presence and waits for the
approval and the presence that follows. The Uzzap side (the mocha test) answers.
Prints one `PASS <check>` or `FAIL <check>: <why>` line per check and a final
`DONE passed=N failed=M`.

usage: python3 slixmpp_s2s.py JID PASSWORD HOST PORT PEER_JID
"""
import asyncio
import sys

from checks import ProbeClient, check, first_match, require, run_all

JID, PASSWORD, HOST, PORT, PEER = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
STEP = 15  # seconds for any single answer (the first one waits for the streams to be made)
TOTAL = 45


class Client(ProbeClient):
    def __init__(self):
        super().__init__(JID, PASSWORD)
        self.roster.auto_authorize = True
        self.roster.auto_subscribe = False
        self.messages = asyncio.Queue()
        self.approvals = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.add_event_handler('message', self.messages.put_nowait)
        self.add_event_handler('presence_subscribed', self.approvals.put_nowait)
        self.add_event_handler('presence_available', self.presences.put_nowait)

    async def before_presence(self):
        # an interested resource (RFC 6121 §2.1.6): its server forwards subscription approvals to it
        await self.get_roster()


async def run(c):
    c.connect((HOST, PORT))
    await asyncio.wait_for(c.online, STEP)
    require('logged in to its own server', True)
    c.send_message(mto=PEER, mbody='hello from the other server', mtype='chat')
    try:
        m = await first_match(c.messages, lambda m: m['type'] == 'error' or m['body'] == 'hello back', 'reply', STEP, JID)
        check('the reply from the Uzzap user arrives', m['type'] != 'error', str(m))
        check("the reply's sender is the Uzzap user's full JID", str(m['from']).startswith(PEER + '/'), str(m['from']))
    except asyncio.TimeoutError as e:
        check('the reply from the Uzzap user arrives', False, str(e))
    c.send_presence(pto=PEER, ptype='subscribe')
    try:
        a = await first_match(c.approvals, lambda p: str(p['from'].bare) == PEER, 'approval', STEP, JID)
        check('the subscription is approved across servers', True)
        p = await first_match(c.presences, lambda p: str(p['from'].bare) == PEER, 'presence', STEP, JID)
        check("the Uzzap user's presence follows the approval", p['status'] == 'federated', str(p))
    except asyncio.TimeoutError as e:
        check('the subscription is approved across servers', False, str(e))


run_all(run, lambda: [Client()], TOTAL)
