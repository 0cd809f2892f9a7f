// MUC fan-out: one stanza to many full JIDs. The stanza is serialised once
// without 'to'; each copy is that string with its own 'to' spliced in, so a room
// of thousands costs one serialisation, not one per occupant. Copies that wait on
// an asynchronous blocklist check are held per session, in order.
import type { Logger } from 'pino';
import { Element, escapeXML } from '../xml/index.js';
import { tryJid, type Jid } from '../jid.js';
import type { HookBus } from './hooks.js';
import type { SessionTable } from '../session/table.js';
import type { LocalSession } from '../session/types.js';
import type { Router } from './router.js';

/**
 * Copies for sessions of other nodes of a cluster, handed over once per node (one
 * envelope with the shared text and the list of recipients) instead of once per occupant.
 */
export interface RemoteFanout {
  /** the node of a session of another node, undefined for a local one */
  nodeOf(s: LocalSession): string | undefined;
  send(node: string, head: string, rest: string, targets: LocalSession[], kind: 'message' | 'presence' | 'iq'): void;
}

export class Fanout {
  /** set by the cluster (src/cluster/cluster.ts) */
  remote: RemoteFanout | undefined;

  constructor(
    private readonly host: string,
    private readonly sessions: SessionTable<LocalSession>,
    private readonly hooks: HookBus,
    private readonly log: Logger,
    private readonly router: Pick<Router, 'route' | 'deliver'>,
  ) {}

  /**
   * One stanza to many full JIDs (MUC fan-out). The stanza is serialised once
   * without 'to'; each copy is that string with its own 'to' spliced in, so a
   * room of thousands costs one serialisation, not one per occupant.
   */
  send(stanza: Element, targets: readonly Jid[]): void {
    if (targets.length === 0) return;
    const kind = stanza.name as 'message' | 'presence' | 'iq';
    const from = tryJid(stanza.attrs.from);
    if (!from) return void this.log.warn({ from: stanza.attrs.from }, 'fan-out without a valid "from"');
    const perTarget = this.hooks.has('stanza/out');
    const filter = this.hooks.has('route/user');
    delete stanza.attrs.to;
    const xml = perTarget ? '' : stanza.toString();
    const head = `<${stanza.name} to="`;
    const rest = xml.slice(stanza.name.length + 1);
    const remote = this.remote;
    let byNode: Map<string, LocalSession[]> | undefined;
    for (const to of targets) {
      const s = to.domain === this.host ? this.sessions.get(to.bare, to.resource) : undefined;
      if (!s) {
        // not a local session: route a copy (a component, or a session that just left)
        const copy = addressed(stanza, to);
        void this.router.route(copy, from, to);
        continue;
      }
      const held = this.held.get(s);
      if (filter || held) {
        let h: boolean | Promise<boolean>;
        try {
          h = filter ? this.hooks.run('route/user', { stanza, from, to }) : false;
        } catch {
          continue; // could not check: this copy is not delivered (fail closed; logged by the hook bus)
        }
        if (h === true) continue;
        if (h instanceof Promise || held) {
          // a blocklist not yet cached: this copy, and every later one to the same session, waits for it
          this.hold(s, h instanceof Promise ? h : Promise.resolve(h), addressed(stanza, to));
          continue;
        }
      }
      if (perTarget) {
        const copy = addressed(stanza, to);
        this.router.deliver(copy, [s]);
        continue;
      }
      const node = remote?.nodeOf(s);
      if (node === undefined) s.sendSerialized(head + escapeXML(to.full) + '"' + rest, kind);
      else {
        byNode ??= new Map();
        let list = byNode.get(node);
        if (!list) byNode.set(node, (list = []));
        list.push(s);
      }
    }
    if (byNode) for (const [node, list] of byNode) remote!.send(node, head, rest, list, kind);
  }

  /** Stanzas to a session that wait on an asynchronous check, kept in order. */
  private readonly held = new Map<LocalSession, Promise<void>>();

  private hold(s: LocalSession, check: Promise<boolean | void>, stanza: Element): void {
    const prev = this.held.get(s);
    const next = (prev ? prev.then(() => check) : check).then(
      (drop) => {
        if (drop !== true) this.router.deliver(stanza, [s]);
      },
      (err: unknown) => this.log.error({ err }, 'delivery check failed'),
    );
    this.held.set(s, next);
    void next.then(() => {
      if (this.held.get(s) === next) this.held.delete(s);
    });
  }
}

/** A shallow copy with its own 'to' (children shared: stanzas are not mutated after routing). */
function addressed(stanza: Element, to: Jid): Element {
  const copy = new Element(stanza.name, { ...stanza.attrs, to: to.full });
  copy.children = stanza.children;
  return copy;
}
