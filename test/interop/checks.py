"""Check bookkeeping shared by the slixmpp interop scripts: `PASS <check>` /
`FAIL <check>: <why>` lines, a step the rest depends on (require), the final
`DONE passed=N failed=M` line and exit code; SLIXMPP_DEBUG=1 logs slixmpp's
stanzas on stderr."""
import asyncio
import logging
import os
import ssl
import sys

import slixmpp

if os.environ.get('SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, format='%(levelname)-8s %(message)s', stream=sys.stderr)

counts = {'passed': 0, 'failed': 0}


class ProbeClient(slixmpp.ClientXMPP):
    """A slixmpp client for the probes: loads `plugins`, does not check the test
    server's certificate, and resolves `online` once the session started and
    initial presence went out (or fails it when authentication fails)."""

    def __init__(self, jid, password, plugins=(), **kwargs):
        super().__init__(jid, password, **kwargs)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE  # the test server's self-signed certificate
        self.online = asyncio.get_event_loop().create_future()
        for p in plugins:
            self.register_plugin(p)
        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler(
            'failed_all_auth', lambda _: self.online.done() or self.online.set_exception(RuntimeError('auth failed'))
        )

    async def before_presence(self):
        """Runs at session start, before initial presence (e.g. to fetch the roster)."""

    async def _on_session_start(self, _):
        await self.before_presence()
        self.send_presence()
        if not self.online.done():
            self.online.set_result(True)


async def first_match(queue, pred, what, within, who=''):
    """The first item in `queue` matching `pred` (earlier ones are dropped), within `within` seconds."""

    async def scan():
        while True:
            item = await queue.get()
            if pred(item):
                return item

    try:
        return await asyncio.wait_for(scan(), within)
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError(f'{who}{": " if who else ""}no {what} within {within}s') from None


def check(name, ok, detail=''):
    if ok:
        counts['passed'] += 1
        print(f'PASS {name}', flush=True)
    else:
        counts['failed'] += 1
        print(f'FAIL {name}: {detail}', flush=True)
    return ok


class Abort(Exception):
    """A step the remaining checks depend on failed."""


def require(name, ok, detail=''):
    if not check(name, ok, detail):
        raise Abort(name)


def done():
    print(f"DONE passed={counts['passed']} failed={counts['failed']}", flush=True)
    sys.exit(1 if counts['failed'] else 0)


def run_all(run, make_clients, total):
    """Make the clients (inside the event loop slixmpp needs), run `run(*clients)`
    within `total` seconds, then disconnect them, print the DONE line and exit."""

    async def main():
        clients = make_clients()
        try:
            await asyncio.wait_for(run(*clients), total)
        except Abort as e:
            print(f'ABORT after failed step: {e}', flush=True)
        except asyncio.TimeoutError as e:
            check('run finished in time', False, str(e) or f'whole run over {total}s')
        finally:
            for c in clients:
                c.disconnect()
            await asyncio.sleep(0.3)

    asyncio.run(main())
    done()
