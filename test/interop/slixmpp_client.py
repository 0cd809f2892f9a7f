"""Interop probe: two slixmpp clients log in to Uzzap (default mechanism choice),
exchange a message, ping the server and query disco#info. Prints one line per
check; exits non-zero on the first failure.

usage: python3 slixmpp_client.py HOST PORT [MECHANISM]
"""
import asyncio
import sys

from checks import ProbeClient

HOST, PORT = sys.argv[1], int(sys.argv[2])
MECH = sys.argv[3] if len(sys.argv) > 3 else None


class Client(ProbeClient):
    def __init__(self, jid, password):
        super().__init__(jid, password, ('xep_0030', 'xep_0199'), sasl_mech=MECH)
        self.inbox = asyncio.Queue()
        self.add_event_handler('message', lambda m: self.inbox.put_nowait(m))


async def main():
    alice = Client('alice@localhost/slix', 'secret')
    bob = Client('bob@localhost/slix', 'secret')
    for c in (alice, bob):
        c.connect((HOST, PORT))
    await asyncio.wait_for(asyncio.gather(alice.online, bob.online), 10)
    print('logged in', alice.boundjid.full, bob.boundjid.full, 'with', alice.plugin['feature_mechanisms'].mech.name, flush=True)
    alice.send_message(mto='bob@localhost/slix', mbody='hello from slixmpp', mtype='chat')
    msg = await asyncio.wait_for(bob.inbox.get(), 5)
    assert msg['body'] == 'hello from slixmpp' and msg['from'] == 'alice@localhost/slix', msg
    print('message delivered', flush=True)
    await alice['xep_0199'].ping('localhost', timeout=5)
    print('ping answered', flush=True)
    info = await alice['xep_0030'].get_info('localhost', timeout=5)
    assert 'urn:xmpp:ping' in info['disco_info']['features']
    print('disco#info answered', flush=True)
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.3)


asyncio.run(main())
print('OK', flush=True)
