// XEP-0133 §4.1–§4.4, §4.7: adding, deleting, disabling and re-enabling
// accounts, and changing a password.
import { StanzaError, AccountExistsError, AccountInputError } from '../../src/api/index.js';
import { ask, first, jids, type AdminCommands } from './commands.js';

export function accountCommands({ m, host, command, localUser, sessionsOf, accountjids, each }: AdminCommands): void {
  const endSessions = (bare: string, text: string): number => {
    const list = sessionsOf(bare);
    for (const s of list) m.sessions.close(s, 'policy-violation', text);
    return list.length;
  };

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
}
