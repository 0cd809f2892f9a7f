"""Interop probe for ad-hoc commands (XEP-0050) and service administration
(XEP-0133) with slixmpp's xep_0050 plugin, driven through its session workflow
(start_command / continue_command / complete_command / cancel_command).

The admin (boss) lists the commands, counts online users, adds an account
(which then logs in), runs server statistics, makes an announcement (which Bob
receives), walks Uzzap's two-stage set-setting command forward, back and
forward again, and cancels a session; Bob, no admin, sees no commands and is
refused. Prints one `PASS <check>` or `FAIL <check>: <why>` line per check and
a final `DONE passed=N failed=M`; exits non-zero if any check failed or a step
the rest depends on broke.

usage: python3 slixmpp_admin.py HOST PORT
       SLIXMPP_DEBUG=1 adds slixmpp's debug log (with every stanza) on stderr.
"""
import asyncio
import sys


from checks import Abort, ProbeClient, check, require, run_all, first_match
from slixmpp.exceptions import IqError, IqTimeout

HOST, PORT = sys.argv[1], int(sys.argv[2])
SERVER = 'localhost'
NS_COMMANDS = 'http://jabber.org/protocol/commands'
NS_ADMIN = 'http://jabber.org/protocol/admin'
ADD_USER = f'{NS_ADMIN}#add-user'
ONLINE_NUM = f'{NS_ADMIN}#get-online-users-num'
ANNOUNCE = f'{NS_ADMIN}#announce'
SERVER_STATS = 'urn:uzzap:admin#server-stats'
SET_SETTING = 'urn:uzzap:admin#set-setting'
STEP = 5  # seconds to wait for any single answer
TOTAL = 20  # seconds for the whole run




class Client(ProbeClient):
    def __init__(self, jid, password):
        super().__init__(jid, password, ('xep_0030', 'xep_0004', 'xep_0050'))
        self.messages = asyncio.Queue()  # messages with a body
        self.add_event_handler('message', self.messages.put_nowait)

    async def wait_message(self, pred, what):
        return await first_match(self.messages, pred, what, STEP, self.boundjid.bare)

    # ---- the xep_0050 session workflow, one request at a time ----

    async def _step(self, session, send):
        """Send one request of a command session; the response (result or error) Iq.

        xep_0050 calls session['next'] with a result and session['error'] with an
        error, and keeps the server's sessionid in session['id'] for the next call.
        """
        fut = asyncio.get_event_loop().create_future()

        def done(iq, _session):
            if not fut.done():
                fut.set_result(iq)

        session['next'] = done
        session['error'] = done
        send()
        try:
            return await asyncio.wait_for(fut, STEP)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f'no answer to {session.get("node")} within {STEP}s') from None

    def start(self, node, session):
        return self._step(session, lambda: self['xep_0050'].start_command(SERVER, node, session))

    def next(self, session, payload=None):
        session['payload'] = payload
        return self._step(session, lambda: self['xep_0050'].continue_command(session, 'next'))

    def prev(self, session):
        session['payload'] = None
        return self._step(session, lambda: self['xep_0050'].continue_command(session, 'prev'))

    def complete(self, session, payload=None):
        session['payload'] = payload
        return self._step(session, lambda: self['xep_0050'].complete_command(session))

    def cancel(self, session):
        session['payload'] = None
        return self._step(session, lambda: self['xep_0050'].cancel_command(session))


def answer(iq, values):
    """The stage's form from `iq`, filled in with `values` and turned into a submit form."""
    form = iq['command']['form']
    form.set_values(values)
    form['type'] = 'submit'  # drops labels, options, required, and non-hidden field types
    return form


def fields_of(iq):
    return iq['command']['form'].get_fields()


def value(iq, var):
    fields = fields_of(iq)
    return fields[var]['value'] if var in fields else None


def execute_attr(iq):
    actions = iq['command'].xml.find(f'{{{NS_COMMANDS}}}actions')
    return None if actions is None else actions.get('execute')


def show(iq):
    return str(iq)


def is_result(iq, status):
    return iq['type'] == 'result' and iq['command']['status'] == status


async def run(boss, bob):
    for c in (boss, bob):
        c.connect((HOST, PORT))
    await asyncio.wait_for(asyncio.gather(boss.online, bob.online), STEP * 2)
    print('logged in', boss.boundjid.full, bob.boundjid.full, flush=True)
    adhoc = boss['xep_0050']

    # 1. Discovery: the commands node of the server lists what an admin may run.
    try:
        items = await adhoc.get_commands(SERVER, timeout=STEP)
    except (IqError, IqTimeout) as e:
        require('list: disco#items on the commands node answered', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))
    listed = {node: (jid, name) for jid, node, name in items['disco_items']['items']}
    check('list: admin#add-user is listed', ADD_USER in listed, f'nodes={sorted(listed)}')
    check('list: urn:uzzap:admin#server-stats is listed', SERVER_STATS in listed, f'nodes={sorted(listed)}')
    check(
        'list: every item is at the server and has a name',
        listed and all(str(jid) == SERVER and name for jid, name in listed.values()),
        str(items),
    )
    try:
        info = await boss['xep_0030'].get_info(SERVER, node=ADD_USER, timeout=STEP)
        ids = {(cat, typ) for cat, typ, _lang, _name in info['disco_info']['identities']}
        check('list: the command node is an automation/command-node', ('automation', 'command-node') in ids, str(info))
    except (IqError, IqTimeout) as e:
        check('list: the command node is an automation/command-node', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))
    try:
        bob_items = await bob['xep_0050'].get_commands(SERVER, timeout=STEP)
        nodes = [node for _jid, node, _name in bob_items['disco_items']['items']]
        check('list: a non-admin sees only the invitation command (XEP-0401)', nodes == ['urn:xmpp:invite#invite'], str(bob_items))
    except (IqError, IqTimeout) as e:
        check('list: a non-admin sees only the invitation command (XEP-0401)', False, repr(e) + ' ' + str(getattr(e, 'iq', '')))

    # 2. A command without stages completes at once, with a result form.
    r = await boss.start(ONLINE_NUM, {})
    check('online-users-num: completed at once', is_result(r, 'completed'), show(r))
    check('online-users-num: onlineusersnum is 2', value(r, 'onlineusersnum') == '2', show(r))

    # 3. add-user: execute -> form -> complete with the XEP-0133 fields.
    session = {}
    r = await boss.start(ADD_USER, session)
    require('add-user: execute answers with a form (status executing)', is_result(r, 'executing'), show(r))
    check('add-user: the response carries a sessionid', bool(r['command']['sessionid']), show(r))
    fields = fields_of(r)
    check(
        'add-user: form has accountjid, password, password-verify',
        {'accountjid', 'password', 'password-verify'} <= set(fields),
        f'fields={list(fields)}',
    )
    check(
        'add-user: single stage, so the actions are complete only',
        r['command']['actions'] == {'complete'} and execute_attr(r) == 'complete',
        show(r),
    )
    form = answer(r, {'accountjid': f'newbie@{SERVER}', 'password': 'n3wpass', 'password-verify': 'n3wpass'})
    r = await boss.complete(session, form)
    require('add-user: complete answered with status completed', is_result(r, 'completed'), show(r))
    check(
        'add-user: completed note names the new account',
        any(f'newbie@{SERVER}' in (text or '') for _t, text in r['command']['notes']),
        str(r['command']['notes']),
    )
    newbie = Client(f'newbie@{SERVER}/interop', 'n3wpass')
    newbie.connect((HOST, PORT))
    try:
        await asyncio.wait_for(newbie.online, STEP)
        check('add-user: the new account logs in with slixmpp', True)
    except Exception as e:  # noqa: BLE001 — report anything as a failure
        check('add-user: the new account logs in with slixmpp', False, repr(e))

    # 4. Uzzap's server statistics (no stages).
    r = await boss.start(SERVER_STATS, {})
    sessions = value(r, 'sessions')
    check('server-stats: completed with a sessions field', is_result(r, 'completed') and bool(sessions), show(r))

    # 5. announce: a headline from the server to every online session, Bob's included.
    session = {}
    r = await boss.start(ANNOUNCE, session)
    require('announce: execute answers with a form', is_result(r, 'executing') and 'announcement' in fields_of(r), show(r))
    r = await boss.complete(session, answer(r, {'announcement': ['Maintenance in', '5 minutes']}))
    check('announce: completed', is_result(r, 'completed'), show(r))
    check(
        'announce: note counts 3 sessions',
        any('3 session(s)' in (text or '') for _t, text in r['command']['notes']),
        str(r['command']['notes']),
    )
    m = await bob.wait_message(lambda m: m['from'] == SERVER, 'announcement')
    check('announce: bob receives a headline from the server', m['type'] == 'headline', str(m))
    check('announce: the multi-line text arrives as one body', m['body'] == 'Maintenance in\n5 minutes', repr(m['body']))

    # 6. set-setting, two stages: execute, next, prev, next, complete.
    session = {}
    r = await boss.start(SET_SETTING, session)
    require('set-setting: first stage offers the live settings', is_result(r, 'executing') and 'setting' in fields_of(r), show(r))
    options = [o['value'] for o in fields_of(r)['setting']['options']]
    check('set-setting: limits.max_resources is an option', 'limits.max_resources' in options, f'options={options}')
    check(
        'set-setting: first stage allows next only',
        r['command']['actions'] == {'next'} and execute_attr(r) == 'next',
        show(r),
    )
    r = await boss.next(session, answer(r, {'setting': 'limits.max_resources'}))
    require('set-setting: next leads to the value stage', is_result(r, 'executing') and 'value' in fields_of(r), show(r))
    check(
        'set-setting: value stage allows prev and complete',
        r['command']['actions'] == {'prev', 'complete'} and execute_attr(r) == 'complete',
        show(r),
    )
    check('set-setting: value stage shows the current value', (value(r, 'value') or '').isdigit(), show(r))
    r = await boss.prev(session)
    check(
        'set-setting: prev returns to the first stage',
        is_result(r, 'executing') and 'setting' in fields_of(r) and 'value' not in fields_of(r),
        show(r),
    )
    r = await boss.next(session, answer(r, {'setting': 'limits.max_resources'}))
    require('set-setting: next again leads to the value stage', is_result(r, 'executing') and 'value' in fields_of(r), show(r))
    r = await boss.complete(session, answer(r, {'value': '5'}))
    check('set-setting: complete answered with status completed', is_result(r, 'completed'), show(r))
    check(
        'set-setting: completed note says limits.max_resources was applied',
        ('info', 'applied: limits.max_resources') in r['command']['notes'],
        str(r['command']['notes']),
    )

    # 7. Cancel: status canceled, and the session is over afterwards.
    session = {}
    r = await boss.start(ADD_USER, session)
    require('cancel: a new add-user session is executing', is_result(r, 'executing'), show(r))
    sid = r['command']['sessionid']
    r = await boss.cancel(session)
    check('cancel: answered with status canceled', is_result(r, 'canceled'), show(r))
    try:
        r = await adhoc.send_command(SERVER, ADD_USER, action='complete', sessionid=sid, timeout=STEP)
        check('cancel: the canceled session cannot be completed (session-expired)', False, f'got {r}')
    except IqError as e:
        expired = e.iq['error'].xml.find(f'{{{NS_COMMANDS}}}session-expired') is not None
        check(
            'cancel: the canceled session cannot be completed (session-expired)',
            e.iq['error']['condition'] == 'not-allowed' and expired,
            str(e.iq),
        )

    # 8. A non-admin is refused.
    r = await bob.start(ADD_USER, {})
    check(
        'non-admin: add-user is refused with forbidden',
        r['type'] == 'error' and r['error']['condition'] == 'forbidden',
        show(r),
    )
    check('non-admin: the error type is cancel', r['type'] == 'error' and r['error']['type'] == 'cancel', show(r))

    newbie.disconnect()


run_all(run, lambda: (Client(f'boss@{SERVER}/interop', 'secret'), Client(f'bob@{SERVER}/interop', 'secret')), TOTAL)
