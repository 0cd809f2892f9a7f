// Test doubles for unit tests of the core, in the spirit of xmpp.js's @xmpp/test:
// a fake session you read what was sent to, and a ModuleContext that holds only
// what a test gives it (anything else throws when used, so a test shows exactly
// what the code under test needs). No sockets, no server.
import pino, { type Logger } from 'pino';
import { parseXml, type Element } from '../../src/xml/index.js';
import { Jid } from '../../src/jid.js';
import { SessionTable } from '../../src/session/table.js';
import { sessionDirectory } from '../../src/session/directory.js';
import type { LocalSession } from '../../src/session/types.js';
import type { ModuleContext, SessionRecord } from '../../src/api/module.js';
import type { StreamErrorCondition } from '../../src/api/errors.js';

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger that keeps what it logs (parsed JSON lines) for assertions. */
export function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

export interface FakeSessionOptions {
  priority?: number;
  /** sent initial presence (default true) */
  available?: boolean;
  /** requested the roster, so it gets roster pushes and subscription approvals */
  interested?: boolean;
}

let nextId = 0;

/** A bound client session that records every stanza written to it. */
export class FakeSession implements LocalSession {
  readonly id = `fake${++nextId}`;
  readonly key = this.id;
  readonly jid: Jid;
  readonly secure = true;
  readonly remoteAddress = '127.0.0.1';
  readonly ext = new Map<string, unknown>();
  readonly lastActive = 0;
  readonly inactive = false;
  readonly detached = false;
  readonly flags = { carbons: false, roster: false, blocklist: false };
  priority: number;
  available: boolean;
  presence: Element | undefined = undefined;
  /** what reached this client, in order (copies: later changes to the original do not show) */
  readonly sent: Element[] = [];
  /** for each stanza written serialised: its kind and the peers that got the same delivery */
  readonly writes: { kind: string; peers: readonly LocalSession[] | undefined }[] = [];
  closed: { condition?: StreamErrorCondition; text?: string } | undefined;

  constructor(jid: string, opts: FakeSessionOptions = {}) {
    this.jid = Jid.parse(jid);
    this.priority = opts.priority ?? 0;
    this.available = opts.available ?? true;
    this.flags.roster = opts.interested ?? false;
  }

  send(stanza: Element): void {
    this.sent.push(parseXml(stanza.toString()));
  }

  sendSerialized(xml: string, kind: 'message' | 'presence' | 'iq', peers?: readonly LocalSession[]): void {
    this.sent.push(parseXml(xml));
    this.writes.push({ kind, peers });
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    this.closed = { condition, text };
  }

  /** stanzas received with this name (and type, when given: 'normal' matches no type) */
  received(name: string, type?: string): Element[] {
    return this.sent.filter((s) => s.name === name && (type === undefined || (s.attrs.type ?? 'normal') === type));
  }
}

/** The stanza-error condition of an error stanza, with its type ('cancel', 'wait', ...). */
export function errorOf(stanza: Element | undefined): { condition: string; type: string } | undefined {
  const e = stanza?.getChild('error');
  const cond = e?.getChildElements().find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text');
  return e && cond ? { condition: cond.name, type: e.attrs.type as string } : undefined;
}

export interface MockContext {
  ctx: ModuleContext;
  /** the node's sessions: add FakeSessions here and ctx.sessions finds them */
  sessions: SessionTable<FakeSession>;
  /** what the module routed with ctx.send */
  routed: Element[];
}

/**
 * A ModuleContext with host, sessions, deliver and send backed by `sessions`,
 * plus whatever `parts` gives (storage, blocks, ...). Using anything else throws.
 */
export function mockContext(host: string, parts: Partial<ModuleContext> = {}): MockContext {
  const sessions = new SessionTable<FakeSession>();
  const routed: Element[] = [];
  const impl: Partial<ModuleContext> = {
    host,
    log: silentLogger(),
    sessions: sessionDirectory(sessions as SessionTable<LocalSession>, () => undefined),
    invalidate: () => undefined,
    onInvalidate: () => undefined,
    // hooks a module runs for others (none listen in these tests)
    run: () => false,
    deliver: (stanza: Element, targets: readonly SessionRecord[]) => {
      const xml = stanza.toString();
      for (const t of targets) (t as FakeSession).sendSerialized(xml, stanza.name as 'message' | 'presence' | 'iq');
    },
    send: (stanza: Element) => void routed.push(parseXml(stanza.toString())),
    ...parts,
  };
  const ctx = new Proxy(impl, {
    get(target, prop) {
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      if (!(prop in target)) throw new Error(`mock context: ${prop} is not provided by this test`);
      return target[prop as keyof ModuleContext];
    },
  }) as ModuleContext;
  return { ctx, sessions, routed };
}

/** A promise with its resolve/reject exposed, for handlers a test finishes by hand. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
