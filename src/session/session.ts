// A bound client session: the JID, presence state and the outbound side.
// The stream (src/stream/c2s.ts) owns the transport while it is connected; with
// acknowledgements enabled (the sm module, XEP-0198) a session outlives its
// stream: while detached it keeps its unacknowledged queue and collects what
// arrives, until a new stream resumes it or the resume window ends
// (src/session/manager.ts). The hold of an inactive client is here too; what may
// wait is the csi module's policy (XEP-0352). The protocols are the modules';
// these are the mechanisms.
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import type { StreamErrorCondition } from '../api/errors.js';
import type { AckState, DeliveryMeta, HoldPolicy, SessionFlags, StreamSession } from '../api/module.js';
import type { LocalSession } from './types.js';
import { randomToken } from '../random.js';

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
  /** in a cluster: the acknowledgement state of a resumable session changed (its copy in Redis follows) */
  smChanged?(s: Session, sent?: Unacked): void;
}

export const NS_SM = 'urn:xmpp:sm:3';

export interface SmState extends AckState {
  queue: Unacked[];
}

/**
 * A stanza sent and not yet acknowledged; `peers` got the same delivery (see
 * `LocalSession`); `copy`: a carbon copy (DeliveryMeta), which no one misses if it is lost.
 */
export interface Unacked {
  xml: string;
  kind: Kind;
  at: number;
  peers?: readonly LocalSession[];
  copy?: true;
}

export class Session implements LocalSession, StreamSession {
  readonly key = randomToken(12);
  client: string | undefined;
  /** when the client last sent a stanza (set by its stream) */
  lastActive = Date.now();
  available = false;
  priority = 0;
  presence: Element | undefined = undefined;
  sm: SmState | undefined;
  /** XEP-0352: the client said it is inactive */
  inactive = false;
  readonly flags: SessionFlags = { carbons: false, roster: false, blocklist: false };
  /** messages with a body since the client could last see them (push notifications count these) */
  unseen = 0;
  /**
   * Just moved here from another node (a resume there, in a cluster) and not settled:
   * stanzas routed before the move and sent on here go into the queue at this index,
   * before what arrived here directly since (src/session/manager.ts, `fetch`).
   */
  settleAt: number | undefined;
  /** held while inactive: the latest per key of the hold policy (csi module), in order of arrival */
  private held: Map<string, { xml: string; kind: Kind }> | undefined;
  private hold: HoldPolicy | undefined;
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

  sendSerialized(xml: string, kind: Kind, peers?: readonly LocalSession[], meta?: DeliveryMeta): void {
    if (this.inactive) {
      const key = this.hold?.(xml, kind);
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
    this.transmit(xml, kind, peers, meta?.copy);
  }

  /**
   * A stanza routed to this session before it moved here, sent on by another node: while
   * the session settles it goes before what reached it here directly (order per sender).
   * The Redis copy of the queue is written again when it settles.
   */
  sendForwarded(xml: string, kind: Kind, peers?: readonly LocalSession[], meta?: DeliveryMeta): void {
    if (this.settleAt === undefined || !this.sm || this.owner) return this.sendSerialized(xml, kind, peers, meta);
    this.transmit(xml, kind, peers, meta?.copy, this.settleAt++);
  }

  /** queued (at `at`, else at the end) and, with a stream, written */
  private transmit(xml: string, kind: Kind, peers?: readonly LocalSession[], copy?: boolean, at?: number): void {
    const sm = this.sm;
    if (sm) {
      const entry: Unacked = { xml, kind, at: Date.now() };
      if (peers) entry.peers = peers;
      if (copy) entry.copy = true;
      if (at === undefined) sm.queue.push(entry);
      else sm.queue.splice(at, 0, entry);
      if (sm.queue.length > this.env.sm().max_queue) return this.env.queueOverflow(this);
      if (sm.resumable) this.env.smChanged?.(this, entry);
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
    if (sm) {
      sm.inH = (sm.inH + 1) >>> 0;
      if (sm.resumable) this.env.smChanged?.(this);
    }
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

  setInactive(inactive: boolean, hold?: HoldPolicy): void {
    this.inactive = inactive;
    this.hold = inactive ? hold : undefined;
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

