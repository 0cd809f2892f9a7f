// The ad-hoc command contract (XEP-0050): what a module declares to offer a command at
// the server's JID; the adhoc module runs the sessions. Part of the module contract
// (re-exported by module.ts), kept apart so that file stays readable.
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';

export interface AdhocNote {
  type: 'info' | 'warn' | 'error';
  text: string;
}

export interface CommandRequest {
  /** who runs the command (full JID) */
  from: Jid;
  /** xml:lang of the request */
  lang: string;
}

/** One page of a multi-stage command: a form to fill in, and what to do with the answer. */
export interface CommandStage<S> {
  form(state: S, req: CommandRequest): Element | Promise<Element>;
  /** Read the submitted form into state; throw StanzaError('bad-request', ...) for bad input. */
  submit(form: SubmittedFormApi, state: S, req: CommandRequest): void | Promise<void>;
}

export interface CommandResult {
  /** a data form of type 'result' to show */
  form?: Element;
  notes?: AdhocNote[];
}

/**
 * An ad-hoc command at the server's JID. The XEP-0050 module runs the
 * sessions (next/prev/complete/cancel, timeouts); a command only describes its
 * stages and what completing it does.
 */
export interface AdhocCommand<S extends object = Record<string, unknown>> {
  node: string;
  name: string;
  /** who may see and run it: server admins (default) or every local user */
  access?: 'admin' | 'user';
  stages: CommandStage<S>[];
  /** after the last stage was submitted (at once for a command without stages) */
  finish(state: S, req: CommandRequest): CommandResult | void | Promise<CommandResult | void>;
}

/** The read side of a submitted data form (src/api/forms.ts SubmittedForm). */
export interface SubmittedFormApi {
  readonly type: string;
  readonly formType: string | undefined;
  has(v: string): boolean;
  values(v: string): string[] | undefined;
  text(v: string): string | undefined;
  bool(v: string): boolean | undefined;
}

export interface Commands {
  list(): AdhocCommand<object>[];
  get(node: string): AdhocCommand<object> | undefined;
}
