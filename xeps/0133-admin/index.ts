// XEP-0133 Service Administration: the admin#* ad-hoc commands (node names and
// form fields exactly as the XEP defines them), the message of the day shown
// at login, and Uzzap's own commands for operating a running server: server
// statistics, reload configuration, change a live setting. Commands run
// through the XEP-0050 module; room administration lives with MUC (xeps/0045-muc).
import {
  x,
  z,
  dataForm,
  tryJid,
  StanzaError,
  AccountExistsError,
  AccountInputError,
  type AdhocNote,
  type Element,
  type FormField,
  type ModuleContext,
  type SessionApi,
  type SubmittedFormApi,
  type XepModule,
} from '../../src/api/index.js';

export const NS_ADMIN = 'http://jabber.org/protocol/admin';
export const NODE = (name: string): string => `${NS_ADMIN}#${name}`;
/** Uzzap's own commands */
export const NS_UZZAP_ADMIN = 'urn:uzzap:admin';

const Config = z.strictObject({
  /** a client idle this long (no stanza sent, or inactive per XEP-0352) counts as idle, not active */
  idle_after: z.number().int().positive().default(600),
  /** most JIDs a user list returns at once (max_items "none" included); page with x-uzzap#start-after */
  max_list: z.number().int().positive().default(10000),
});
type Config = z.infer<typeof Config>;

const MAX_ITEMS_OPTIONS = ['25', '50', '75', '100', '150', '200', 'none'];
const MOTD_KEY = { user: '', kind: 'server', key: 'motd' };

type State = Record<string, unknown>;

/** one stage that asks for these fields and keeps the answers in state under their var */
function ask(fields: (state: State) => FormField[], opts: { title: string; instructions?: string; formType?: string }) {
  return {
    form: (state: State): Element => dataForm('form', opts.formType ?? NS_ADMIN, fields(state), opts),
    submit(form: SubmittedFormApi, state: State): void {
      for (const f of fields(state)) {
        if (!f.var) continue;
        const v = form.values(f.var);
        if (f.required && (!v || v.length === 0 || v.every((s) => s.trim() === '')))
          throw new StanzaError('bad-request', `"${f.label ?? f.var}" is required`);
        if (v !== undefined) state[f.var] = v;
      }
    },
  };
}

const result = (fields: FormField[], notes: AdhocNote[] = [], extra: Element[] = []): { form: Element; notes: AdhocNote[] } => {
  const form = dataForm('result', NS_ADMIN, fields);
  form.children.push(...extra);
  return { form, notes };
};

const admin: XepModule<Config> = {
  name: 'admin',
  xeps: [
    {
      n: 133,
      version: '1.3.0',
      status: 'partial',
      note: 'user management, lists and counts, sessions, announce, MOTD, admin list, shutdown; no restart (needs a supervisor), no blacklist/whitelist (no s2s), no welcome message',
    },
  ],
  depends: ['adhoc'],
  config: Config as z.ZodType<Config>,
  setup(m: ModuleContext<Config>) {
    const host = m.host;

    /** a local account's username from a JID string, or a bad-request naming it */
    const localUser = (s: string): string => {
      const j = tryJid(s.trim());
      if (!j || j.resource || !j.local) throw new StanzaError('bad-request', `"${s}" is not a bare JID`);
      if (j.domain !== host) throw new StanzaError('bad-request', `${j.bare} is not an account of ${host}`);
      return j.local;
    };
    const jids = (state: State, v: string): string[] =>
      ((state[v] as string[] | undefined) ?? [])
        .flatMap((s) => s.split(/[\s,]+/))
        .map((s) => s.trim())
        .filter(Boolean);
    const first = (state: State, v: string): string => ((state[v] as string[] | undefined) ?? [])[0] ?? '';
    const text = (state: State, v: string): string => ((state[v] as string[] | undefined) ?? []).join('\n');

    const command = (
      name: string,
      label: string,
      stages: ReturnType<typeof ask>[],
      finish: (state: State) => Promise<ReturnType<typeof result> | { notes: AdhocNote[] } | void>,
    ): void => m.command<State>({ node: NODE(name), name: label, stages, finish });

    const sessionsOf = (bare: string): SessionApi[] => m.admin.sessions().filter((s) => s.jid.bare === bare);
    const endSessions = (bare: string, text: string): number => {
      const list = sessionsOf(bare);
      for (const s of list) s.close('policy-violation', text);
      return list.length;
    };
    const accountjids = (label: string): ReturnType<typeof ask> =>
      ask(() => [{ var: 'accountjids', type: 'jid-multi', label, required: true }], { title: label });

    /** run per JID, collecting a note each; unknown accounts are warnings, not failures */
    const each = async (
      list: string[],
      fn: (username: string, bare: string) => Promise<string | undefined>,
    ): Promise<{ notes: AdhocNote[] }> => {
      const notes: AdhocNote[] = [];
      // every JID is checked before anything changes: a bad one fails the whole command, untouched
      const users = list.map(localUser);
      if (!users.length) throw new StanzaError('bad-request', 'give at least one JID');
      for (const username of users) {
        const bare = `${username}@${host}`;
        const r = await fn(username, bare);
        notes.push(r === undefined ? { type: 'warn', text: `${bare}: no such account` } : { type: 'info', text: `${bare}: ${r}` });
      }
      return { notes };
    };

    // ---- accounts ----

    command(
      'add-user',
      'Add User',
      [
        ask(
          () => [
            { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for the account to be added', required: true },
            { var: 'password', type: 'text-private', label: 'The password for this account', required: true },
            { var: 'password-verify', type: 'text-private', label: 'Retype password', required: true },
            { var: 'email', type: 'text-single', label: 'Email address' },
            { var: 'given_name', type: 'text-single', label: 'Given name' },
            { var: 'surname', type: 'text-single', label: 'Family name' },
          ],
          { title: 'Adding a User', instructions: 'Fill out this form to add a user.' },
        ),
      ],
      async (st) => {
        const username = localUser(first(st, 'accountjid'));
        const password = first(st, 'password');
        if (password !== first(st, 'password-verify')) throw new StanzaError('bad-request', 'the passwords do not match');
        try {
          await m.accounts.create(username, password);
        } catch (e) {
          if (e instanceof AccountExistsError) throw new StanzaError('conflict', `${username}@${host} already exists`);
          if (e instanceof AccountInputError) throw new StanzaError('bad-request', e.message);
          throw e;
        }
        return { notes: [{ type: 'info', text: `created ${username}@${host}` }] };
      },
    );

    command('delete-user', 'Delete User', [accountjids('The Jabber ID(s) to delete')], (st) =>
      each(jids(st, 'accountjids'), async (u) => ((await m.accounts.delete(u)) ? 'deleted' : undefined)),
    );

    command('disable-user', 'Disable User', [accountjids('The Jabber ID(s) to disable')], (st) =>
      each(jids(st, 'accountjids'), async (u, bare) => {
        if (!(await m.storage.accounts.setDisabled(u, true))) return undefined;
        const n = endSessions(bare, 'account disabled by an administrator');
        return `disabled${n ? `, ${n} session(s) ended` : ''}`;
      }),
    );

    command('reenable-user', 'Re-Enable User', [accountjids('The Jabber ID(s) to re-enable')], (st) =>
      each(jids(st, 'accountjids'), async (u) => ((await m.storage.accounts.setDisabled(u, false)) ? 're-enabled' : undefined)),
    );

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
        for (const x of list) x.close('policy-violation', 'session ended by an administrator');
        notes.push({
          type: list.length ? 'info' : 'warn',
          text: `${j.full}: ${list.length ? `${list.length} session(s) ended` : 'not online'}`,
        });
      }
      return { notes };
    });

    command(
      'change-user-password',
      'Change User Password',
      [
        ask(
          () => [
            { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for this account', required: true },
            { var: 'password', type: 'text-private', label: 'The password for this account', required: true },
          ],
          { title: 'Changing a User Password', instructions: 'Fill out this form to change a user\u2019s password.' },
        ),
      ],
      async (st) => {
        const username = localUser(first(st, 'accountjid'));
        let ok: boolean;
        try {
          ok = await m.accounts.setPassword(username, first(st, 'password'));
        } catch (e) {
          if (e instanceof AccountInputError) throw new StanzaError('bad-request', e.message);
          throw e;
        }
        if (!ok) throw new StanzaError('item-not-found', `no account ${username}@${host}`);
        return { notes: [{ type: 'info', text: `password changed for ${username}@${host}` }] };
      },
    );

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
          values.push(xep82(at));
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

    // ---- counts and lists ----

    const online = (): Map<string, SessionApi[]> => {
      const by = new Map<string, SessionApi[]>();
      for (const s of m.admin.sessions()) {
        if (s.jid.domain !== host) continue;
        const l = by.get(s.jid.bare);
        if (l) l.push(s);
        else by.set(s.jid.bare, [s]);
      }
      return by;
    };
    /** a user is active when one of their sessions sent something lately and is not inactive (XEP-0352) */
    const isActive = (list: SessionApi[], now: number): boolean =>
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
      async (after, limit) =>
        (await m.storage.accounts.list({ after: afterUser(after), limit, disabled: true })).map((u) => `${u}@${host}`),
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

    // ---- announcements and the message of the day ----

    command(
      'announce',
      'Send Announcement to Online Users',
      [
        ask(() => [{ var: 'announcement', type: 'text-multi', label: 'Announcement', required: true }], {
          title: 'Making an Announcement',
          instructions: 'Fill out this form to make an announcement to all active users of this service.',
        }),
      ],
      async (st) => {
        const body = text(st, 'announcement');
        let n = 0;
        for (const s of m.admin.sessions()) {
          if (s.jid.domain !== host) continue;
          s.send(x('message', { from: host, to: s.jid.full, type: 'headline' }, x('body', null, body)));
          n++;
        }
        return { notes: [{ type: 'info', text: `announcement sent to ${n} session(s)` }] };
      },
    );

    let motd: string | undefined;
    let motdLoaded = false;
    const loaded = m.storage.userData.get(MOTD_KEY.user, MOTD_KEY.kind, MOTD_KEY.key).then(
      (v) => {
        motd = v;
        motdLoaded = true;
      },
      (err: unknown) => {
        m.log.error({ err }, 'reading the message of the day failed');
        motdLoaded = true;
      },
    );
    const motdStage = (title: string): ReturnType<typeof ask> =>
      ask(() => [{ var: 'motd', type: 'text-multi', label: 'Message of the Day', required: true, values: motd ? motd.split('\n') : [] }], {
        title,
        instructions: 'Fill out this form to set the message of the day.',
      });
    const motdMessage = (to: string, body: string): Element =>
      x('message', { from: host, to, type: 'normal' }, x('subject', null, 'Message of the Day'), x('body', null, body));
    const setMotd = async (st: State): Promise<{ notes: AdhocNote[] }> => {
      const v = text(st, 'motd');
      await m.storage.userData.set(MOTD_KEY.user, MOTD_KEY.kind, MOTD_KEY.key, v);
      motd = v;
      // XEP-0133 §4.24: sent at once to users online now, and to the others when they log in
      let n = 0;
      for (const s of m.admin.sessions()) {
        if (s.jid.domain !== host || !s.available) continue;
        s.ext.set('admin/motd', true);
        s.send(motdMessage(s.jid.full, v));
        n++;
      }
      return {
        notes: [{ type: 'info', text: `message of the day set; sent to ${n} online session(s), the others see it when they log in` }],
      };
    };
    command('set-motd', 'Set Message of the Day', [motdStage('Set Message of the Day')], setMotd);
    command('edit-motd', 'Edit Message of the Day', [motdStage('Edit Message of the Day')], setMotd);
    command('delete-motd', 'Delete Message of the Day', [], async () => {
      await m.storage.userData.remove(MOTD_KEY.user, MOTD_KEY.kind, MOTD_KEY.key);
      motd = undefined;
      return { notes: [{ type: 'info', text: 'message of the day deleted' }] };
    });
    // shown once per session, on its initial presence (a resumed session keeps its mark)
    // synchronous once the MOTD is loaded: every broadcast presence passes here
    m.hook('presence/broadcast', (ev) => {
      const s = ev.origin;
      if (!s || ev.stanza.attrs.type !== undefined || s.ext.has('admin/motd')) return false;
      s.ext.set('admin/motd', true);
      const show = (): false => {
        if (motd) s.send(motdMessage(s.jid.full, motd));
        return false;
      };
      return motdLoaded ? show() : loaded.then(show);
    });

    // ---- shutting down ----

    let shutdownTimer: NodeJS.Timeout | undefined;
    m.onClose(() => clearTimeout(shutdownTimer));
    command(
      'shutdown',
      'Shut Down Service',
      [
        ask(
          () => [
            {
              var: 'delay',
              type: 'list-single',
              label: 'Time delay before shutting down',
              options: [
                ['30', '30 seconds'],
                ['60', '60 seconds'],
                ['90', '90 seconds'],
                ['120', '2 minutes'],
                ['180', '3 minutes'],
                ['240', '4 minutes'],
                ['300', '5 minutes'],
              ].map(([value, label]) => ({ value: value!, label })),
            },
            { var: 'announcement', type: 'text-multi', label: 'Announcement' },
          ],
          { title: 'Shutting Down the Service', instructions: 'Fill out this form to shut down the service.' },
        ),
      ],
      async (st) => {
        const raw = first(st, 'delay') || '30';
        // the XEP's options, or any other number of seconds up to a day
        if (!/^\d{1,5}$/.test(raw) || Number(raw) > 86_400)
          throw new StanzaError('bad-request', 'delay must be a number of seconds (at most 86400)');
        const delay = Number(raw);
        const body = text(st, 'announcement');
        let n = 0;
        if (body) {
          for (const s of m.admin.sessions()) {
            if (s.jid.domain !== host) continue;
            s.send(x('message', { from: host, to: s.jid.full, type: 'headline' }, x('body', null, body)));
            n++;
          }
        }
        clearTimeout(shutdownTimer);
        shutdownTimer = setTimeout(() => m.admin.shutdown(), delay * 1000);
        m.log.warn({ delay }, 'shutdown requested by an administrator');
        return {
          notes: [{ type: 'info', text: `shutting down in ${delay} s${body ? `; announcement sent to ${n} session(s)` : ''}` }],
        };
      },
    );

    // ---- the admin list ----

    command(
      'edit-admin',
      'Edit Admin List',
      [
        ask(() => [{ var: 'adminjids', type: 'jid-multi', label: 'The admin list', values: m.admin.admins() }], {
          title: 'Editing the Admin List',
          instructions: 'Fill out this form to edit the list of entities who have administrative privileges.',
        }),
      ],
      async (st) => {
        // an empty list is a choice; a missing field is a mistake, not "remove everyone"
        if (st.adminjids === undefined) throw new StanzaError('bad-request', 'the adminjids field is missing');
        const wanted = new Set(
          jids(st, 'adminjids').map((s) => {
            const j = tryJid(s);
            if (!j || !j.local || j.resource) throw new StanzaError('bad-request', `"${s}" is not a bare JID`);
            return j.bare;
          }),
        );
        const notes: AdhocNote[] = [];
        const before = new Set(m.admin.admins());
        for (const b of wanted) {
          if (before.has(b)) continue;
          if (!(await m.admin.setAdmin(b, true))) notes.push({ type: 'warn', text: `${b}: not an account of ${host}; not added` });
          else notes.push({ type: 'info', text: `${b} is now an admin` });
        }
        for (const b of before) {
          if (wanted.has(b)) continue;
          await m.admin.setAdmin(b, false);
          // admins from the configuration (UZZAP_ADMINS) stay until the configuration changes
          if (m.admin.admins().includes(b))
            notes.push({ type: 'warn', text: `${b} is an admin by configuration (admins / UZZAP_ADMINS); not removed` });
          else notes.push({ type: 'info', text: `${b} is no longer an admin` });
        }
        if (!notes.length) notes.push({ type: 'info', text: 'no change' });
        return { notes };
      },
    );

    // ---- Uzzap: statistics, reload, live settings ----

    m.command<State>({
      node: `${NS_UZZAP_ADMIN}#server-stats`,
      name: 'Server Statistics',
      stages: [],
      async finish() {
        const s = await m.admin.stats();
        const f = (v: string, label: string, value: string | number): FormField => ({ var: v, type: 'text-single', label, value });
        return {
          form: dataForm('result', `${NS_UZZAP_ADMIN}#server-stats`, [
            f('version', 'Version', s.version),
            f('node', 'Node', s.node),
            f('uptime', 'Uptime (seconds)', s.uptimeSeconds),
            f('sessions', 'Sessions', s.sessions),
            f('detached', 'Sessions waiting for resumption', s.detachedSessions),
            f('connections', 'Connections', s.connections),
            { var: 'components', type: 'jid-multi', label: 'Components connected', values: s.components },
            f('stanzas-in', 'Stanzas in per second (last 10 s)', s.stanzasInPerSecond),
            f('stanzas-out', 'Stanzas out per second (last 10 s)', s.stanzasOutPerSecond),
            f('rss', 'Memory (RSS, MB)', (s.rssBytes / 1048576).toFixed(1)),
            f('heap', 'Heap used (MB)', (s.heapUsedBytes / 1048576).toFixed(1)),
            f('lag-mean', 'Event-loop lag, mean (ms)', s.eventLoopLagMs.mean),
            f('lag-p99', 'Event-loop lag, p99 (ms)', s.eventLoopLagMs.p99),
            f('storage', `Storage (${s.storage.kind}) round-trip (ms)`, s.storage.latencyMs ?? 'not responding'),
            f('registry', `Registry (${s.registry.kind}) round-trip (ms)`, s.registry.latencyMs ?? 'not responding'),
            ...Object.entries(s.extra).map(([k, v]) => f(k, k, v)),
          ]),
        };
      },
    });

    const reportNotes = (r: Awaited<ReturnType<typeof m.admin.reload>>): AdhocNote[] => {
      const notes: AdhocNote[] = [];
      if (r.applied.length) notes.push({ type: 'info', text: `applied: ${r.applied.join(', ')}` });
      if (r.modulesLoaded.length) notes.push({ type: 'info', text: `modules enabled: ${r.modulesLoaded.join(', ')}` });
      if (r.modulesUnloaded.length) notes.push({ type: 'info', text: `modules disabled: ${r.modulesUnloaded.join(', ')}` });
      if (r.modulesReloaded.length) notes.push({ type: 'info', text: `modules re-configured: ${r.modulesReloaded.join(', ')}` });
      if (r.needsRestart.length) notes.push({ type: 'warn', text: `need a restart to take effect: ${r.needsRestart.join(', ')}` });
      for (const e of r.errors) notes.push({ type: 'error', text: e });
      if (!notes.length) notes.push({ type: 'info', text: 'nothing changed' });
      return notes;
    };

    m.command<State>({
      node: `${NS_UZZAP_ADMIN}#reload`,
      name: 'Reload Configuration',
      stages: [],
      async finish() {
        try {
          return { notes: reportNotes(await m.admin.reload()) };
        } catch (e) {
          throw new StanzaError('not-acceptable', `the configuration was not reloaded: ${(e as Error).message}`);
        }
      },
    });

    // secrets and tokens are never shown, only whether they are set
    const secret = (path: string): boolean => /secret|token|password/.test(path);
    const valueText = (path: string, v: unknown): string => {
      if (secret(path)) return v === '' || (typeof v === 'object' && v !== null && Object.keys(v).length === 0) ? '(not set)' : '(set)';
      return Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    };
    const SETTING_FORM = `${NS_UZZAP_ADMIN}#set-setting`;
    m.command<State>({
      node: `${NS_UZZAP_ADMIN}#set-setting`,
      name: 'Change a Live Setting',
      stages: [
        ask(
          () => [
            {
              var: 'setting',
              type: 'list-single',
              label: 'Setting',
              required: true,
              options: m.admin.liveSettings().map((s) => ({ value: s.path, label: `${s.path} (now: ${valueText(s.path, s.value)})` })),
            },
          ],
          {
            title: 'Change a Live Setting',
            instructions: 'Choose the setting to change. The change lasts until the next reload or restart.',
            formType: SETTING_FORM,
          },
        ),
        ask(
          (st) => {
            const path = first(st, 'setting');
            const cur = m.admin.liveSettings().find((s) => s.path === path);
            return [
              { var: 'setting', type: 'fixed', value: path },
              secret(path)
                ? {
                    var: 'value',
                    type: 'text-private',
                    label: `New value of ${path} (now ${cur ? valueText(path, cur.value) : 'unknown'})`,
                    required: true,
                  }
                : {
                    var: 'value',
                    type: 'text-single',
                    label: `New value of ${path}`,
                    required: true,
                    value: cur ? valueText(path, cur.value) : '',
                  },
            ];
          },
          { title: 'Change a Live Setting', formType: SETTING_FORM },
        ),
      ],
      async finish(st) {
        const path = first(st, 'setting');
        if (!m.admin.liveSettings().some((s) => s.path === path))
          throw new StanzaError('bad-request', `${path} cannot change while running`);
        try {
          return { notes: reportNotes(await m.admin.setLive(path, first(st, 'value'))) };
        } catch (e) {
          throw new StanzaError('bad-request', (e as Error).message);
        }
      },
    });
  },
};

/** XEP-0082 DateTime, UTC, seconds precision */
function xep82(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export default admin;
