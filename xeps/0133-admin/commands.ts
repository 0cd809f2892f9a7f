// What every admin command is built from: form stages that keep the answers in
// the command's state, result forms, and reading accounts out of those answers.
// The command groups (accounts.ts, sessions.ts, lists.ts, announce.ts,
// operator.ts) get an AdminCommands and register their commands through it.
import {
  x,
  dataForm,
  tryJid,
  StanzaError,
  type AdhocNote,
  type Element,
  type FormField,
  type ModuleContext,
  type SessionRecord,
  type SubmittedFormApi,
} from '../../src/api/index.js';
import type { AdminConfig } from './index.js';

export const NS_ADMIN = 'http://jabber.org/protocol/admin';
export const NODE = (name: string): string => `${NS_ADMIN}#${name}`;
/** Uzzap's own commands */
export const NS_UZZAP_ADMIN = 'urn:uzzap:admin';

export type State = Record<string, unknown>;

/** one stage that asks for these fields and keeps the answers in state under their var */
export function ask(fields: (state: State) => FormField[], opts: { title: string; instructions?: string; formType?: string }) {
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
export type Stage = ReturnType<typeof ask>;

export const result = (fields: FormField[], notes: AdhocNote[] = [], extra: Element[] = []): { form: Element; notes: AdhocNote[] } => {
  const form = dataForm('result', NS_ADMIN, fields);
  form.children.push(...extra);
  return { form, notes };
};

/** the JIDs of a jid-multi answer, however the client split them */
export const jids = (state: State, v: string): string[] =>
  ((state[v] as string[] | undefined) ?? [])
    .flatMap((s) => s.split(/[\s,]+/))
    .map((s) => s.trim())
    .filter(Boolean);
export const first = (state: State, v: string): string => ((state[v] as string[] | undefined) ?? [])[0] ?? '';
export const text = (state: State, v: string): string => ((state[v] as string[] | undefined) ?? []).join('\n');

export interface AdminCommands {
  readonly m: ModuleContext<AdminConfig>;
  readonly host: string;
  /** an admin#<name> command */
  command(
    name: string,
    label: string,
    stages: Stage[],
    finish: (state: State) => Promise<ReturnType<typeof result> | { notes: AdhocNote[] } | void>,
  ): void;
  /** a local account's username from a JID string, or a bad-request naming it */
  localUser(s: string): string;
  sessionsOf(bare: string): SessionRecord[];
  /** the one stage of the commands that act on a list of accounts */
  accountjids(label: string): Stage;
  /** run per JID, collecting a note each; unknown accounts are warnings, not failures */
  each(list: string[], fn: (username: string, bare: string) => Promise<string | undefined>): Promise<{ notes: AdhocNote[] }>;
  /** a headline from the server to every session here; how many got it */
  announce(body: string): number;
}

export function adminCommands(m: ModuleContext<AdminConfig>): AdminCommands {
  const host = m.host;
  const localUser = (s: string): string => {
    const j = tryJid(s.trim());
    if (!j || j.resource || !j.local) throw new StanzaError('bad-request', `"${s}" is not a bare JID`);
    if (j.domain !== host) throw new StanzaError('bad-request', `${j.bare} is not an account of ${host}`);
    return j.local;
  };
  return {
    m,
    host,
    command: (name, label, stages, finish) => m.command<State>({ node: NODE(name), name: label, stages, finish }),
    localUser,
    sessionsOf: (bare) => m.sessions.of(bare),
    accountjids: (label) => ask(() => [{ var: 'accountjids', type: 'jid-multi', label, required: true }], { title: label }),
    async each(list, fn) {
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
    },
    announce(body) {
      let n = 0;
      for (const s of m.sessions.all()) {
        if (s.jid.domain !== host) continue;
        m.deliver(x('message', { from: host, to: s.jid.full, type: 'headline' }, x('body', null, body)), [s]);
        n++;
      }
      return n;
    },
  };
}
