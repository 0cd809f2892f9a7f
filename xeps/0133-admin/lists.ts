// XEP-0133 §4.13–§4.22: how many users are registered, disabled, online,
// active or idle, and who they are (a page at a time on a big server).
import { tryJid, StanzaError, type AdhocNote, type SessionRecord } from '../../src/api/index.js';
import { ask, first, result, type AdminCommands } from './commands.js';

const MAX_ITEMS_OPTIONS = ['25', '50', '75', '100', '150', '200', 'none'];

export function listCommands({ m, host, command }: AdminCommands): void {
  const online = (): Map<string, SessionRecord[]> => {
    const by = new Map<string, SessionRecord[]>();
    for (const s of m.sessions.all()) {
      if (s.jid.domain !== host) continue;
      const l = by.get(s.jid.bare);
      if (l) l.push(s);
      else by.set(s.jid.bare, [s]);
    }
    return by;
  };
  /** a user is active when one of their sessions sent something lately and is not inactive (XEP-0352) */
  const isActive = (list: SessionRecord[], now: number): boolean =>
    list.some((s) => !s.detached && !s.inactive && now - s.lastActive < m.config.idle_after * 1000);
  const activeUsers = (): string[] => {
    const now = Date.now();
    return [...online()].filter(([, l]) => isActive(l, now)).map(([b]) => b);
  };
  const idleUsers = (): string[] => {
    const now = Date.now();
    return [...online()].filter(([, l]) => !isActive(l, now)).map(([b]) => b);
  };

  const count = (name: string, label: string, v: string, fieldLabel: string, read: () => Promise<number> | number): void =>
    command(name, label, [], async () => result([{ var: v, type: 'text-single', label: fieldLabel, value: await read() }]));
  count('get-registered-users-num', 'Get Number of Registered Users', 'registeredusersnum', 'The number of registered users', () =>
    m.storage.accounts.count(),
  );
  count('get-disabled-users-num', 'Get Number of Disabled Users', 'disabledusersnum', 'The number of disabled users', () =>
    m.storage.accounts.count({ disabled: true }),
  );
  count('get-online-users-num', 'Get Number of Online Users', 'onlineusersnum', 'The number of online users', () => online().size);
  count('get-active-users-num', 'Get Number of Active Users', 'activeusersnum', 'The number of active users', () => activeUsers().length);
  count('get-idle-users-num', 'Get Number of Idle Users', 'idleusersnum', 'The number of idle users', () => idleUsers().length);

  /**
   * A user list: max_items as the XEP's options, plus a start-after field of
   * ours for paging through a big server (the result says where to go on).
   */
  const listCommand = (
    name: string,
    label: string,
    v: string,
    fieldLabel: string,
    read: (after: string, limit: number) => Promise<string[]> | string[],
  ): void =>
    command(
      name,
      label,
      [
        ask(
          () => [
            {
              var: 'max_items',
              type: 'list-single',
              label: 'Maximum number of items to show',
              options: MAX_ITEMS_OPTIONS.map((o) => ({ value: o, label: o === 'none' ? 'None' : o })),
            },
            { var: 'x-uzzap#start-after', type: 'text-single', label: 'Start after this JID (paging; empty: from the start)' },
          ],
          { title: label },
        ),
      ],
      async (st) => {
        const raw = first(st, 'max_items') || 'none';
        if (raw !== 'none' && !/^0*[1-9]\d*$/.test(raw))
          throw new StanzaError('bad-request', 'max_items must be a positive number or "none"');
        const limit = Math.min(raw === 'none' ? m.config.max_list : Number(raw), m.config.max_list);
        const after = first(st, 'x-uzzap#start-after').trim();
        const page = await read(after, limit + 1);
        const more = page.length > limit;
        const shown = page.slice(0, limit);
        const notes: AdhocNote[] = more
          ? [{ type: 'info', text: `showing ${shown.length}; more follow: run again starting after ${shown[shown.length - 1]}` }]
          : [];
        return result(
          [
            { var: v, type: 'jid-multi', label: fieldLabel, values: shown },
            ...(more
              ? [{ var: 'x-uzzap#next-after', type: 'text-single' as const, label: 'Continue after', value: shown[shown.length - 1] }]
              : []),
          ],
          notes,
        );
      },
    );
  const pageOf = (all: string[], after: string, limit: number): string[] =>
    all
      .filter((b) => b > after)
      .sort()
      .slice(0, limit);
  const afterUser = (after: string): string => (after ? (tryJid(after)?.local ?? after) : '');
  listCommand(
    'get-registered-users-list',
    'Get List of Registered Users',
    'registereduserjids',
    'The list of all users',
    async (after, limit) => (await m.storage.accounts.list({ after: afterUser(after), limit })).map((u) => `${u}@${host}`),
  );
  listCommand(
    'get-disabled-users-list',
    'Get List of Disabled Users',
    'disableduserjids',
    'The list of all disabled users',
    async (after, limit) => (await m.storage.accounts.list({ after: afterUser(after), limit, disabled: true })).map((u) => `${u}@${host}`),
  );
  listCommand('get-online-users-list', 'Get List of Online Users', 'onlineuserjids', 'The list of all online users', (after, limit) =>
    pageOf([...online().keys()], after, limit),
  );
  // XEP-0133 §4.21/§4.22 name these two without "-list"
  listCommand('get-active-users', 'Get List of Active Users', 'activeuserjids', 'The list of active users', (after, limit) =>
    pageOf(activeUsers(), after, limit),
  );
  // the XEP's own example names this list 'activeuserjids' (labelled "The list of idle users"); we follow it
  listCommand('get-idle-users', 'Get List of Idle Users', 'activeuserjids', 'The list of idle users', (after, limit) =>
    pageOf(idleUsers(), after, limit),
  );
}
