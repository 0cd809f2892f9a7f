"""Check bookkeeping shared by the slixmpp interop scripts: `PASS <check>` /
`FAIL <check>: <why>` lines, a step the rest depends on (require), the final
`DONE passed=N failed=M` line and exit code; SLIXMPP_DEBUG=1 logs slixmpp's
stanzas on stderr."""
import logging
import os
import sys

if os.environ.get('SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, format='%(levelname)-8s %(message)s', stream=sys.stderr)

counts = {'passed': 0, 'failed': 0}


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
