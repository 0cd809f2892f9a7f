"""Interop probe for RFC 6121 subscriptions with slixmpp.

Alice asks Bob for his presence while Bob is offline, with a XEP-0172 nick and
a XEP-0379 preauth token in the request; Bob logs in later and must get the
request whole. Bob approves: Alice's roster shows the subscription. Prints one
`PASS <check>` or `FAIL <check>: <why>` line per check and a final
`DONE passed=N failed=M`; exits non-zero if any check failed.

usage: python3 slixmpp_subscribe.py HOST PORT
       SLIXMPP_DEBUG=1 adds slixmpp's debug log (with every stanza) on stderr.
"""
import asyncio
import sys

from slixmpp.xmlstream import ET

from checks import ProbeClient, check, require, run_all

HOST, PORT = sys.argv[1], int(sys.argv[2])
NS_PARS = 'urn:xmpp:pars:0'
STEP = 5  # seconds to wait for any single answer
TOTAL = 20  # seconds for the whole run


class Client(ProbeClient):
    def __init__(self, jid, password):
        super().__init__(jid, password, ('xep_0030', 'xep_0172'))
        self.roster.auto_authorize = None  # the user decides, as a person would (False rejects)
        self.roster.auto_subscribe = False
        self.requests = asyncio.Queue()
        self.approvals = asyncio.Queue()
        self.add_event_handler('presence_subscribe', self.requests.put_nowait)
        self.add_event_handler('presence_subscribed', self.approvals.put_nowait)

    async def before_presence(self):
        await self.get_roster()

    async def login(self):
        self.connect((HOST, PORT))
        await asyncio.wait_for(self.online, STEP)


async def run(alice, bob):
    await alice.login()
    request = alice.make_presence(pto='bob@localhost', ptype='subscribe', pnick='Alice Liddell')
    request['id'] = 'invite-1'
    preauth = ET.Element(f'{{{NS_PARS}}}preauth', {'token': 'tok-123'})
    request.append(preauth)
    request.send()
    # the server handles a client's stanzas in order: once this round trip is
    # answered, the request is stored; bob logs in afterwards
    await alice.get_roster()
    await bob.login()
    try:
        req = await asyncio.wait_for(bob.requests.get(), STEP)
    except asyncio.TimeoutError:
        require('offline request: delivered at login', False, 'no subscription request')
    check('offline request: delivered at login from the bare JID', req['from'].full == 'alice@localhost', str(req))
    check('offline request: the XEP-0172 nick is kept', req['nick']['nick'] == 'Alice Liddell', str(req))
    token = req.xml.find(f'{{{NS_PARS}}}preauth')
    check('offline request: the XEP-0379 preauth token is kept', token is not None and token.get('token') == 'tok-123', str(req))
    check('offline request: the id is kept', req['id'] == 'invite-1', str(req))
    bob.send_presence_subscription(pto='alice@localhost', ptype='subscribed')
    try:
        ok = await asyncio.wait_for(alice.approvals.get(), STEP)
        check('approval: alice gets subscribed from bob', ok['from'].bare == 'bob@localhost', str(ok))
    except asyncio.TimeoutError:
        check('approval: alice gets subscribed from bob', False, 'no subscribed presence')
    # the roster push follows the presence (RFC 6121 §3.1.6)
    deadline = asyncio.get_running_loop().time() + STEP
    while alice.client_roster['bob@localhost']['subscription'] != 'to' and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    check("approval: alice's roster shows subscription to", alice.client_roster['bob@localhost']['subscription'] == 'to',
          str(alice.client_roster['bob@localhost']['subscription']))


run_all(run, lambda: (Client('alice@localhost', 'secret'), Client('bob@localhost', 'secret')), TOTAL)
