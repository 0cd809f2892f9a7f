// A bound client session: the JID, presence state and the outbound side.
// The stream (src/stream/c2s.ts) owns the transport while it is connected; with
// acknowledgements enabled (the sm module, XEP-0198) a session outlives its
// stream: while detached it keeps its unacknowledged queue and collects what
// arrives, until a new stream resumes it or the resume window ends
// (src/session/manager.ts). The hold of an inactive client (the csi module,
// XEP-0352) is here too. The protocols are the modules'; these are the mechanisms.
import { parseXml, type Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import type { StreamErrorCondition } from '../api/errors.js';
import type { AckState, StreamSession } from '../api/module.js';
import type { LocalSession } from './types.js';

export type Kind = 'message' | 'presence' | 'iq';

export interface SessionOwner {
  readonly id: string;
  readonly secure: boolean;
  readonly remoteAddress: string;
  writeStanza(xml: string, kind: Kind): void;
  /** stream-level elements (SM requests) */
  writeRaw(s: string): void;
  close(condition?: StreamErrorCondition, text?: string): void;
}

/** What a session needs from the server around it. */
export interface SessionEnv {
  sm(): { max_queue: number; ack_every: number };
  csiMaxHeld(): number;
  /** the unacknowledged queue passed its bound */
  queueOverflow(s: Session): void;
  /** a message with a body reached a session that cannot show it now (detached or inactive) */
  away(s: Session, reason: 'detached' | 'inactive', message: string): void;
  /** the session was asked to close while detached */
  closeDetached(s: Session, condition?: StreamErrorCondition, text?: string): void;
}

export const NS_SM = 'urn:xmpp:sm:3';

export interface SmState extends AckState {
  queue: Unacked[];
}

/** A stanza sent and not yet acknowledged; `peers` got the same delivery (see `LocalSession`). */
export interface Unacked {
  xml: string;
  kind: Kind;
  at: number;
  peers?: readonly LocalSession[];
}

export class Session implements LocalSession, StreamSession {
  /** when the client last sent a stanza (set by its stream) */
  lastActive = Date.now();
  available = false;
  priority = 0;
  presence: Element | undefined = undefined;
  sm: SmState | undefined;
  /** XEP-0352: the client said it is inactive */
  inactive = false;
  /** messages with a body since the client could last see them (push notifications count these) */
  unseen = 0;
  /** held while inactive: the latest presence / chat state per sender, in order of arrival */
  private held: Map<string, { xml: string; kind: Kind }> | undefined;
  private extMap: Map<string, unknown> | undefined;

  constructor(
    readonly jid: Jid,
    public owner: SessionOwner | undefined,
    private readonly env: SessionEnv,
  ) {}

  get id(): string {
    return this.owner?.id ?? this.sm?.id ?? '';
  }
  get secure(): boolean {
    return this.owner?.secure ?? true;
  }
  get remoteAddress(): string {
    return this.owner?.remoteAddress ?? '';
  }
  get detached(): boolean {
    return this.owner === undefined;
  }
  /** outlives a lost connection (resumption enabled) */
  get resumable(): boolean {
    return this.sm?.resumable === true;
  }
  /** allocated on first use: most sessions never need module state */
  get ext(): Map<string, unknown> {
    return (this.extMap ??= new Map());
  }

  send(stanza: Element): void {
    this.sendSerialized(stanza.toString(), stanza.name as Kind);
  }

  sendSerialized(xml: string, kind: Kind, peers?: readonly LocalSession[]): void {
    if (this.inactive) {
      const key = holdKey(xml, kind);
      if (key !== undefined) {
        const held = (this.held ??= new Map());
        held.delete(key); // the newer one replaces it, at the end of the order
        held.set(key, { xml, kind });
        if (held.size > this.env.csiMaxHeld()) this.flushHeld();
        return;
      }
      // something that matters: what was held goes first, so order is kept
      if (this.held?.size) this.flushHeld();
      if (kind === 'message' && hasBody(xml) && this.owner) {
        this.unseen++;
        this.env.away(this, 'inactive', xml);
      }
    }
    this.transmit(xml, kind, peers);
  }

  private transmit(xml: string, kind: Kind, peers?: readonly LocalSession[]): void {
    const sm = this.sm;
    if (sm) {
      sm.queue.push(peers ? { xml, kind, at: Date.now(), peers } : { xml, kind, at: Date.now() });
      if (sm.queue.length > this.env.sm().max_queue) return this.env.queueOverflow(this);
    }
    const owner = this.owner;
    if (!owner) {
      if (kind === 'message' && hasBody(xml)) {
        this.unseen++;
        this.env.away(this, 'detached', xml);
      }
      return;
    }
    owner.writeStanza(xml, kind);
    if (sm && ++sm.sinceRequest >= this.env.sm().ack_every) this.requestAck();
  }

  /** A stanza from the client was handled (counted for acknowledgements). */
  countHandled(): void {
    const sm = this.sm;
    if (sm) sm.inH = (sm.inH + 1) >>> 0;
  }

  requestAck(): boolean {
    const sm = this.sm;
    if (!sm || !this.owner) return false;
    sm.sinceRequest = 0;
    sm.lastRequest = Date.now();
    this.owner.writeRaw(`<r xmlns='${NS_SM}'/>`);
    return true;
  }

  /** Ask for an acknowledgement when something waits for one longer than `intervalMs`. */
  requestAckIfDue(now: number, intervalMs: number): void {
    const sm = this.sm;
    if (sm && sm.queue.length && now - sm.lastRequest > intervalMs) this.requestAck();
  }

  setInactive(inactive: boolean): void {
    this.inactive = inactive;
    if (!inactive) {
      this.unseen = 0;
      this.flushHeld();
    }
  }

  private flushHeld(): void {
    const held = this.held;
    if (!held?.size) return;
    this.held = undefined;
    for (const { xml, kind } of held.values()) this.transmit(xml, kind);
  }

  /** Everything not yet acknowledged nor sent (detach, end): the unacked queue, then held. */
  takeUnsent(): Omit<Unacked, 'at'>[] {
    const out = [...(this.sm?.queue ?? []), ...(this.held?.values() ?? [])];
    if (this.sm) this.sm.queue = [];
    this.held = undefined;
    return out;
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.owner) this.owner.close(condition, text);
    else this.env.closeDetached(this, condition, text);
  }
}

function hasBody(xml: string): boolean {
  return xml.includes('<body');
}

const HOLDABLE_NS = new Set(['http://jabber.org/protocol/chatstates', 'urn:xmpp:hints']);

/**
 * XEP-0352: what may wait while the client is inactive: availability presence
 * (not subscriptions or errors) and messages that carry nothing but chat states
 * (not receipts, markers or anything else). Only the latest per sender is kept.
 */
function holdKey(xml: string, kind: Kind): string | undefined {
  if (kind === 'iq') return undefined;
  if (kind === 'message') {
    if (hasBody(xml) || !xml.includes('http://jabber.org/protocol/chatstates')) return undefined;
    // only inactive clients get here: parsing what might be held is affordable
    let el: Element;
    try {
      el = parseXml(xml);
    } catch {
      return undefined;
    }
    if (el.attrs.type === 'error') return undefined;
    if (!el.getChildElements().every((c) => HOLDABLE_NS.has(c.attrs.xmlns ?? '') || c.name === 'thread')) return undefined;
  } else {
    const type = attr(xml, 'type');
    if (type !== '' && type !== 'unavailable') return undefined;
  }
  const from = attr(xml, 'from');
  return `${kind[0]}:${from}`;
}

/** One attribute of the outermost element of a serialised stanza (its start tag only). */
function attr(xml: string, name: string): string {
  const end = xml.indexOf('>');
  const head = end === -1 ? xml : xml.slice(0, end);
  const m = new RegExp(`\\s${name}=(["'])(.*?)\\1`).exec(head);
  return m ? m[2]! : '';
}
