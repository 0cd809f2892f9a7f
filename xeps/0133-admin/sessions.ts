// XEP-0133 §4.5, §4.8–§4.10: one user's sessions and what the server knows of
// them: ending sessions, the roster, the last login, per-user statistics.
import { x, dateTime, tryJid, StanzaError, type AdhocNote, type Element } from '../../src/api/index.js';
import { ask, first, jids, result, type AdminCommands } from './commands.js';

export function sessionCommands({ m, host, command, localUser, sessionsOf, accountjids }: AdminCommands): void {
  command('end-user-session', 'End User Session', [accountjids('The Jabber ID(s) for which to end sessions')], async (st) => {
    const notes: AdhocNote[] = [];
    // a full JID ends that session, a bare JID all of the account's; all are checked first
    const targets = jids(st, 'accountjids').map((s) => {
      const j = tryJid(s);
      if (!j || !j.local || j.domain !== host) throw new StanzaError('bad-request', `"${s}" is not a JID of an account here`);
      return j;
    });
    for (const j of targets) {
      const list = sessionsOf(j.bare).filter((x) => !j.resource || x.jid.resource === j.resource);
      for (const x of list) m.sessions.close(x, 'policy-violation', 'session ended by an administrator');
      notes.push({
        type: list.length ? 'info' : 'warn',
        text: `${j.full}: ${list.length ? `${list.length} session(s) ended` : 'not online'}`,
      });
    }
    return { notes };
  });

  command('get-user-roster', 'Get User Roster', [accountjids('The Jabber ID(s) for which to retrieve the roster')], async (st) => {
    const list = jids(st, 'accountjids');
    const queries: Element[] = [];
    const notes: AdhocNote[] = [];
    for (const s of list) {
      const u = localUser(s);
      if (!(await m.storage.accounts.get(u))) {
        notes.push({ type: 'warn', text: `${u}@${host}: no such account` });
        continue;
      }
      const { items } = await m.storage.roster.get(u);
      queries.push(
        x(
          'query',
          { xmlns: 'jabber:iq:roster' },
          items.map((i) =>
            x(
              'item',
              { jid: i.jid, name: i.name, subscription: i.subscription, ask: i.ask ? 'subscribe' : undefined },
              i.groups.map((g) => x('group', null, g)),
            ),
          ),
        ),
      );
    }
    return result([{ var: 'accountjids', type: 'jid-multi', values: list.map((s) => `${localUser(s)}@${host}`) }], notes, queries);
  });

  command(
    'get-user-lastlogin',
    'Get User Last Login Time',
    [accountjids('The Jabber ID(s) for which to retrieve the last login time')],
    async (st) => {
      const list = jids(st, 'accountjids').map(localUser);
      // accountjids and lastlogin pair up value by value: only accounts that exist and have logged in
      const found: string[] = [];
      const values: string[] = [];
      const notes: AdhocNote[] = [];
      for (const u of list) {
        if (!(await m.storage.accounts.get(u))) {
          notes.push({ type: 'warn', text: `${u}@${host}: no such account` });
          continue;
        }
        const at = await m.admin.lastLogin(u);
        if (at === undefined) {
          notes.push({ type: 'info', text: `${u}@${host} has never logged in` });
          continue;
        }
        found.push(`${u}@${host}`);
        values.push(dateTime(at));
      }
      return result(
        [
          { var: 'accountjids', type: 'jid-multi', values: found },
          // text-single as registered for one account; several accounts give one time each, in order
          {
            var: 'lastlogin',
            type: values.length > 1 ? 'text-multi' : 'text-single',
            label: 'The last login time (per XEP-0082) of a user',
            values,
          },
        ],
        notes,
      );
    },
  );

  command(
    'user-stats',
    'Get User Statistics',
    [
      ask(() => [{ var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for statistics', required: true }], {
        title: 'Get User Statistics',
      }),
    ],
    async (st) => {
      const u = localUser(first(st, 'accountjid'));
      if (!(await m.storage.accounts.get(u))) throw new StanzaError('item-not-found', `no account ${u}@${host}`);
      const online = sessionsOf(`${u}@${host}`);
      const { items } = await m.storage.roster.get(u);
      return result([
        { var: 'ipaddresses', type: 'list-multi', label: 'IP Addresses', values: [...new Set(online.map((s) => s.remoteAddress))] },
        { var: 'rostersize', type: 'text-single', label: 'Roster size', value: items.length },
        { var: 'onlineresources', type: 'text-multi', label: 'Online resources', values: online.map((s) => s.jid.resource) },
      ]);
    },
  );
}
