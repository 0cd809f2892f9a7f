// XEP-0050 Ad-Hoc Commands: discovery (disco#items on the commands node),
// sessions through multi-stage data forms (execute, next, prev, complete,
// cancel), session timeouts, notes, and access control. Commands themselves
// come from other modules through ModuleContext.command(): XEP-0133 service
// administration (xeps/0133-admin), room administration (xeps/0045-muc).
import {
  x,
  z,
  Element,
  StanzaError,
  SubmittedForm,
  type AdhocCommand,
  type CommandRequest,
  type CommandResult,
  type Jid,
  type ModuleContext,
  type XepModule,
} from '../../src/api/index.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';

const Config = z.strictObject({
  /** seconds a command session may wait for the next stage */
  timeout: z.number().int().positive().default(600),
  /** open command sessions per user */
  max_sessions_per_user: z.number().int().positive().default(10),
  /** open command sessions on the server */
  max_sessions: z.number().int().positive().default(1000),
});
type Config = z.infer<typeof Config>;

const ACTIONS = new Set(['execute', 'next', 'prev', 'complete', 'cancel']);
/** ids of sessions that ended, to tell "expired" from "never existed"; bounded */
const ENDED_KEPT = 1000;

interface CommandSession {
  id: string;
  cmd: AdhocCommand<object>;
  owner: string;
  stage: number;
  state: object;
  expires: number;
}

const cmdError = (condition: 'bad-request' | 'not-allowed', specific: string, text?: string): StanzaError =>
  new StanzaError(condition, text, undefined, x(specific, { xmlns: NS_COMMANDS }));

const adhoc: XepModule<Config> = {
  name: 'adhoc',
  xeps: [
    { n: 50, version: '1.3.0', status: 'complete', note: 'multi-stage sessions with data forms, prev/next/complete/cancel, timeouts' },
  ],
  depends: ['disco'],
  config: Config as z.ZodType<Config>,
  setup(m: ModuleContext<Config>) {
    const sessions = new Map<string, CommandSession>();
    const ended = new Set<string>();
    const endSession = (id: string): void => {
      sessions.delete(id);
      ended.add(id);
      if (ended.size > ENDED_KEPT) ended.delete(ended.values().next().value!);
    };
    const sweep = (): void => {
      const now = Date.now();
      for (const s of sessions.values()) if (s.expires <= now) endSession(s.id);
    };
    const timer = setInterval(sweep, 30_000);
    timer.unref();
    m.onClose(() => clearInterval(timer));
    // a client that went away leaves no command sessions behind
    m.hook('session/closed', (gone) => {
      if (sessions.size === 0) return;
      for (const s of sessions.values()) if (s.owner === gone.jid.full) endSession(s.id);
    });

    const mayRun = (cmd: AdhocCommand<object>, from: Jid): boolean =>
      from.domain === m.host && !!from.local && ((cmd.access ?? 'admin') === 'user' || m.server.isAdmin(from));
    const visible = (from: Jid): AdhocCommand<object>[] =>
      m.commands
        .list()
        .filter((c) => mayRun(c, from))
        .sort((a, b) => a.name.localeCompare(b.name));

    m.feature(NS_COMMANDS);
    m.discoNode((node, from) => {
      if (node === NS_COMMANDS)
        return {
          identities: [{ category: 'automation', type: 'command-list' }],
          items: visible(from).map((c) => ({ jid: m.host, node: c.node, name: c.name })),
        };
      const cmd = m.commands.get(node);
      if (!cmd) return undefined;
      // §2.3: a command the requester may not run is forbidden, not hidden
      if (!mayRun(cmd, from)) throw new StanzaError('forbidden', 'this command is for server administrators', 'cancel');
      return { identities: [{ category: 'automation', type: 'command-node', name: cmd.name }], features: [NS_COMMANDS, 'jabber:x:data'] };
    });

    // §4.5: the session's language is said on every answer; commands speak English only
    const respond = (s: CommandSession, status: 'executing' | 'completed' | 'canceled', body: (Element | undefined)[]): Element =>
      x('command', { xmlns: NS_COMMANDS, node: s.cmd.node, sessionid: s.id, status, 'xml:lang': 'en' }, ...body);

    const notes = (r: CommandResult | void): Element[] => (r?.notes ?? []).map((n) => x('note', { type: n.type }, n.text));

    /** the form of the current stage, with the actions that make sense there */
    const showStage = async (s: CommandSession, req: CommandRequest, extra: Element[] = []): Promise<Element> => {
      const last = s.stage === s.cmd.stages.length - 1;
      const form = await s.cmd.stages[s.stage]!.form(s.state, req);
      const actions = x(
        'actions',
        { execute: last ? 'complete' : 'next' },
        s.stage > 0 ? x('prev') : undefined,
        last ? undefined : x('next'),
        last ? x('complete') : undefined,
      );
      return respond(s, 'executing', [actions, ...extra, form]);
    };

    const finish = async (s: CommandSession, req: CommandRequest): Promise<Element> => {
      let r: CommandResult | void;
      try {
        r = await s.cmd.finish(s.state, req);
      } catch (e) {
        // bad input (a value out of range, passwords that differ): the last stage may be submitted again
        if (!(e instanceof StanzaError && e.condition === 'bad-request' && s.cmd.stages.length)) endSession(s.id);
        if (e instanceof StanzaError && e.condition === 'bad-request' && !e.appCondition)
          throw cmdError('bad-request', 'bad-payload', e.text);
        throw e;
      }
      endSession(s.id);
      return respond(s, 'completed', [...notes(r), r?.form]);
    };

    m.iq({ type: 'set', ns: NS_COMMANDS, name: 'command', to: ['host'] }, async (req) => {
      try {
        return await execute(req.payload, req.from, req.stanza);
      } catch (e) {
        // forms may carry passwords: an error never echoes the request
        if (e instanceof StanzaError) e.echo = false;
        throw e;
      }
    });

    const execute = async (p: Element, from: Jid, stanza: Element): Promise<Element> => {
      const req = { from, stanza };
      const node = p.attrs.node ?? '';
      const action = p.attrs.action ?? 'execute';
      const sid = p.attrs.sessionid;
      const cmd = m.commands.get(node);
      if (!cmd) throw new StanzaError('item-not-found', `no command ${node}`);
      if (!mayRun(cmd, req.from)) throw new StanzaError('forbidden', 'this command is for server administrators', 'cancel');
      if (!ACTIONS.has(action)) throw cmdError('bad-request', 'malformed-action', `unknown action "${action}"`);
      const creq: CommandRequest = { from: req.from, lang: req.stanza.attrs['xml:lang'] ?? p.attrs['xml:lang'] ?? 'en' };
      const now = Date.now();

      if (sid === undefined) {
        if (action !== 'execute') throw cmdError('bad-request', 'bad-sessionid', 'start the command with action "execute"');
        sweep();
        let mine = 0;
        for (const s of sessions.values()) if (s.owner === req.from.full) mine++;
        if (mine >= m.config.max_sessions_per_user || sessions.size >= m.config.max_sessions)
          throw new StanzaError('resource-constraint', 'too many command sessions open; complete or cancel some', 'wait');
        const s: CommandSession = {
          id: `${node.slice(node.lastIndexOf('#') + 1)}:${now.toString(36)}:${Math.random().toString(36).slice(2, 10)}`,
          cmd,
          owner: req.from.full,
          stage: 0,
          state: {},
          expires: now + m.config.timeout * 1000,
        };
        sessions.set(s.id, s);
        if (cmd.stages.length === 0) return finish(s, creq);
        return showStage(s, creq);
      }

      const s = sessions.get(sid);
      if (!s) {
        if (ended.has(sid))
          throw cmdError('not-allowed', 'session-expired', 'this command session is over (completed, canceled or timed out)');
        throw cmdError('bad-request', 'bad-sessionid', 'no such command session');
      }
      if (s.owner !== req.from.full || s.cmd.node !== node) throw cmdError('bad-request', 'bad-sessionid', 'not your command session');
      if (s.expires <= now) {
        endSession(s.id);
        throw cmdError('not-allowed', 'session-expired', 'the command session timed out');
      }
      s.expires = now + m.config.timeout * 1000;
      if (action === 'cancel') {
        endSession(s.id);
        return respond(s, 'canceled', []);
      }
      if (action === 'prev') {
        if (s.stage === 0) throw cmdError('bad-request', 'bad-action', 'this is the first stage');
        s.stage--;
        return showStage(s, creq);
      }
      const last = s.stage === s.cmd.stages.length - 1;
      if ((action === 'next' && last) || (action === 'complete' && !last))
        throw cmdError(
          'bad-request',
          'bad-action',
          action === 'next' ? 'this is the last stage: complete it' : 'there are more stages: use next',
        );
      const form = SubmittedForm.in(p);
      // §4.4.1: a form of type 'cancel' counts as a submission
      if (!form || (form.type !== 'submit' && form.type !== 'cancel'))
        throw cmdError('bad-request', 'bad-payload', 'submit the data form of this stage');
      try {
        await s.cmd.stages[s.stage]!.submit(form, s.state, creq);
      } catch (e) {
        // a bad answer to a stage: the session stays open so the client can correct it
        if (e instanceof StanzaError && e.condition === 'bad-request' && !e.appCondition)
          throw cmdError('bad-request', 'bad-payload', e.text);
        throw e;
      }
      if (last) return finish(s, creq);
      s.stage++;
      return showStage(s, creq);
    };
  },
};

export default adhoc;
