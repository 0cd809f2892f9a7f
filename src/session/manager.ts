// Session lifecycle, apart from any one stream: binding, stream management
// (XEP-0198) detach / resume / expiry, and the end of a session (its presence
// goes unavailable, modules are told, and whatever was never acknowledged goes
// to offline storage: never bounced, never dropped).
import type { Core } from '../core.js';
import { StanzaError, type StreamErrorCondition } from '../api/errors.js';
import { Jid, tryJid } from '../jid.js';
import { Element, parseXml } from '../xml/index.js';
import { randomToken } from '../random.js';
import { Session, type SessionEnv, type SessionOwner, type SmState, type Unacked } from './session.js';
import type { RegistryEntry } from '../registry/types.js';

/** ids of sessions that ended (or moved to another node), kept to answer a late resume */
const MAX_TOMBSTONES = 10_000;

/**
 * What a resumable session takes to another node of the cluster when its client
 * resumes there (XEP-0198 across nodes): its JID, acknowledgement state and the
 * stanzas the client has not acknowledged, presence and flags. Module state of the
 * old node (`ext`: directed presence, rooms joined elsewhere) does not move.
 */
export interface MovedSession {
  full: string;
  smId: string;
  inH: number;
  acked: number;
  queue: { xml: string; kind: 'message' | 'presence' | 'iq'; at: number; copy?: true; peers?: string[] }[];
  priority: number;
  presence?: string;
  available: boolean;
  flags: Session['flags'];
  unseen: number;
  /** the Bind 2 client (XEP-0386) */
  client?: string;
  /**
   * Module state of the session that is plain data (a value, or a set of strings: the
   * directed-presence recipients, the status for XEP-0012): it moves with the session,
   * so what the old node would have done at its end (unavailable to those recipients)
   * the new node does.
   */
  ext?: [key: string, kind: 'set' | 'val', value: unknown][];
  /** the node it leaves (a drain): the new one holds it until that node has sent on what it routed there before */
  from?: string;
}

/** A session's plain-data module state, for another node (MovedSession.ext). */
function portableExt(ext: Map<string, unknown>): MovedSession['ext'] {
  const out: NonNullable<MovedSession['ext']> = [];
  for (const [k, v] of ext) {
    if (v instanceof Set && [...v].every((x) => typeof x === 'string')) out.push([k, 'set', [...(v as Set<string>)]]);
    else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out.push([k, 'val', v]);
  }
  return out.length ? out : undefined;
}

/** An SM id names the node that made it (after the last '.'), so a resume elsewhere knows whom to ask. */
function nodeOfSmId(id: string): string | undefined {
  const dot = id.lastIndexOf('.');
  if (dot === -1) return undefined;
  try {
    return Buffer.from(id.slice(dot + 1), 'base64url').toString('utf8');
  } catch {
    return undefined;
  }
}

export class SessionManager implements SessionEnv {
  private readonly resumable = new Map<string, Session>();
  private readonly expiry = new Map<Session, NodeJS.Timeout>();
  private readonly tombstones = new Map<string, { h: number; user: string; movedTo?: string }>();
  /** unacknowledged messages being moved to offline storage, in order */
  private storing: Promise<void> = Promise.resolve();
  /** what ended sessions still do (registry, unavailable broadcast, 'session/closed' hooks): a stop waits for it */
  private readonly ending = new Set<Promise<unknown>>();

  constructor(private readonly core: Core) {}

  sm(): { max_queue: number; ack_every: number } {
    return this.core.config.sm;
  }
  csiMaxHeld(): number {
    return this.core.config.csi.max_held;
  }

  /** A stream bound a resource: the session is registered, an older one with the same JID goes. */
  /** `client`: the Bind 2 client it is bound for (XEP-0386), known to every node */
  bind(jid: Jid, owner: SessionOwner, client?: string): Session {
    const session = new Session(jid, owner, this);
    session.client = client;
    // RFC 6120 §7.7.2.2: the newer session wins; the older one is told why it goes.
    const old = this.core.sessions.add(session);
    if (old) old.close('conflict', 'replaced by a new connection for the same resource');
    // the table's size, not inc/dec: a replaced session leaves without a decrement
    this.core.metrics.sessions.set(this.core.sessions.size);
    // in a cluster the same JID may be bound on another node: the older session goes there too
    this.core.registry.bind(this.entry(session)).then(
      (prev) => {
        if (prev && prev.node !== this.core.nodeId) this.core.cluster?.closeEntry(prev, 'conflict', 'replaced by a new connection for the same resource');
      },
      (err: unknown) => this.core.log.error({ err }, 'registry bind failed'),
    );
    const h = this.core.hooks.run('session/bound', session);
    if (h instanceof Promise) h.catch(() => undefined);
    return session;
  }

  /** What the registry (and the other nodes of a cluster) know of a session. */
  entry(s: Session): RegistryEntry {
    const e: RegistryEntry = {
      full: s.jid.full,
      node: this.core.nodeId,
      inc: this.core.cluster?.inc ?? '',
      sid: s.key,
      priority: s.priority,
      flags: { ...s.flags },
      secure: s.secure,
      addr: s.remoteAddress,
    };
    if (s.available && s.presence) e.presence = s.presence.toString();
    if (s.detached) e.detached = true;
    if (s.client) e.client = s.client;
    return e;
  }

  /** Presence, priority, flags or the connection changed: the registry follows. */
  changed(s: Session): void {
    if (this.core.registry.kind === 'memory' || this.core.sessions.getLocal(s.jid.bare, s.jid.resource) !== s) return;
    this.core.registry.update(this.entry(s)).catch((err: unknown) => this.core.log.error({ err }, 'registry update failed'));
  }

  /** XEP-0198 <enable/>: counting starts; with resume, the session may outlive its stream. */
  enable(session: Session, resume: boolean): SmState {
    const cluster = this.core.cluster;
    const sm: SmState = {
      id: cluster ? `${randomToken(18)}.${Buffer.from(this.core.nodeId).toString('base64url')}` : randomToken(18),
      resumable: resume && this.core.config.sm.resume_timeout > 0,
      inH: 0,
      acked: 0,
      queue: [],
      sinceRequest: 0,
      lastRequest: Date.now(),
    };
    session.sm = sm;
    if (sm.resumable) {
      this.resumable.set(sm.id, session);
      // in a cluster a copy in Redis lets the client resume elsewhere even if this node dies
      cluster?.sm?.started(session, this.record(session));
    }
    return sm;
  }

  /** A session's copy in Redis (src/cluster/sm-mirror.ts): what a resume elsewhere needs besides the queue. */
  private record(s: Session): Omit<MovedSession, 'queue' | 'inH' | 'acked'> {
    const r: Omit<MovedSession, 'queue' | 'inH' | 'acked'> = {
      full: s.jid.full,
      smId: s.sm!.id,
      priority: s.priority,
      available: s.available,
      flags: { ...s.flags },
      unseen: s.unseen,
    };
    if (s.client) r.client = s.client;
    if (s.presence) r.presence = s.presence.toString();
    return r;
  }

  /** SessionEnv: a resumable session's acknowledgement state changed (its Redis copy follows). */
  smChanged(s: Session, sent?: Unacked): void {
    this.core.cluster?.sm?.changed(s, sent);
  }

  /** The stream was lost without a clean close: keep the session for the resume window. */
  detach(session: Session, reason: string): void {
    session.owner = undefined;
    const ms = this.core.config.sm.resume_timeout * 1000;
    const t = setTimeout(() => this.end(session, `not resumed within ${this.core.config.sm.resume_timeout} s (${reason})`), ms);
    t.unref();
    this.expiry.set(session, t);
    this.core.metrics.smDetached.inc();
    this.core.metrics.smDetachedNow.set(this.expiry.size);
    this.changed(session);
    this.core.log.debug({ jid: session.jid.full, reason }, 'session detached, waiting for resumption');
    // the phone is gone with messages it never acknowledged: wake it up (XEP-0357)
    const queue = session.sm?.queue ?? [];
    const unseen = queue.filter((q) => q.kind === 'message' && q.xml.includes('<body'));
    if (unseen.length) {
      session.unseen = unseen.length;
      this.away(session, 'detached', unseen.at(-1)!.xml);
    }
  }

  /**
   * Find a session to resume for `username`; a failure carries the old 'h' when known.
   * In a cluster a session of another node is asked for and moves here (later).
   */
  lookup(previd: string, username: string): Session | { h?: number } | Promise<Session | { h?: number }> {
    const s = this.resumable.get(previd);
    if (s && s.jid.local === username && this.core.sessions.getLocal(s.jid.bare, s.jid.resource) === s) return s;
    const t = this.tombstones.get(previd);
    const cluster = this.core.cluster;
    const elsewhere = t?.movedTo ?? (t ? undefined : nodeOfSmId(previd));
    if (cluster && elsewhere && elsewhere !== this.core.nodeId) return this.fetch(elsewhere, previd, username, 0);
    return t && t.user === username ? { h: t.h } : {};
  }

  private async fetch(node: string, previd: string, username: string, hops: number): Promise<Session | { h?: number }> {
    const cluster = this.core.cluster!;
    let r: { state?: MovedSession; h?: number; moved?: string } | null;
    // a node known dead (or stopped) is not asked: the session may have moved on from it
    // (a drain, or an earlier resume elsewhere), else its copy in Redis is taken
    if (!cluster.isLive(node)) {
      const holder = await cluster.holderOf(previd).catch(() => undefined);
      if (holder === this.core.nodeId) {
        const s = this.resumable.get(previd);
        return s && s.jid.local === username ? s : {};
      }
      if (holder && holder !== node && cluster.isLive(holder) && hops < 3) return this.fetch(holder, previd, username, hops + 1);
      return this.fromCopy(previd, username, holder ?? node);
    }
    try {
      r = (await cluster.requestLive(node, 'takeover', { previd, username, node: this.core.nodeId })) as typeof r;
    } catch (err) {
      this.core.log.warn({ err, node }, 'resumption: the node that had the session did not answer; trying its copy');
      return this.fromCopy(previd, username, node);
    }
    if (!r) return {};
    if (r.moved && hops < 3 && r.moved !== this.core.nodeId) return this.fetch(r.moved, previd, username, hops + 1);
    if (r.state) return this.settle(this.adopt(r.state), node);
    return r.h === undefined ? {} : { h: r.h };
  }

  /**
   * A session just taken over from `from`: what this node routed there before (its users'
   * messages, posted while the session was still there) comes back, sent on by `from`'s
   * stand-in, after what reaches it here directly. So the session waits, detached (its
   * stream takes it after this), until `from` has handled everything this node posted to
   * it (one fence, a Redis round trip each way): what it sent on is in this node's inbox
   * ahead of the answer, and goes into the queue before what arrived here meanwhile.
   * The other nodes keep their senders' order by a fence of their own (cluster.ts `applyEntry`).
   */
  private async settle(s: Session, from: string): Promise<Session> {
    const cluster = this.core.cluster!;
    const start = s.sm!.queue.length;
    s.settleAt = start;
    await cluster.fence(from);
    const forwarded = (s.settleAt ?? start) - start;
    s.settleAt = undefined;
    // the Redis copy has the queue in arrival order: written again in the order it has now
    if (forwarded && s.sm?.resumable) cluster.sm?.started(s, this.record(s));
    return s;
  }

  /**
   * The node that had the session died (XEP-0198 across a crash): the session is rebuilt
   * here from its copy in Redis, then, once its stream has taken it, its presence is
   * broadcast again (the dead node's sweeper announced it unavailable meanwhile).
   */
  private async fromCopy(previd: string, username: string, node: string): Promise<Session | { h?: number }> {
    const mirror = this.core.cluster?.sm;
    const m = await mirror?.read(previd).catch(() => undefined);
    if (!m || Jid.parse(m.full).local !== username) return {};
    await mirror!.take(previd, node).catch(() => undefined);
    const presence = m.presence;
    const session = this.adopt({ ...m, available: false, presence: undefined });
    this.core.log.info({ jid: m.full, from: node }, 'resumption: the session came back from its copy (its node died)');
    if (presence)
      setImmediate(() => {
        if (this.core.sessions.getLocal(session.jid.bare, session.jid.resource) !== session) return;
        const el = parseXml(presence);
        el.attrs.from = session.jid.full;
        delete el.attrs.to;
        session.available = true;
        session.priority = Number(el.getChildText('priority') ?? 0) || 0;
        session.presence = el;
        this.changed(session);
        const r = this.core.router.fromClient(el, session.jid, session);
        if (r) this.track(r.catch((err: unknown) => this.core.log.error({ err }, 'presence after a resume from a copy failed')));
      });
    return session;
  }

  /**
   * Another node's client resumes one of this node's sessions: the session leaves this
   * node without ending (no unavailable, nothing to offline storage) and its state goes
   * there; a later resume asking here is sent on.
   */
  handOver(previd: string, username: string, to: string): { state?: MovedSession; h?: number; moved?: string } {
    const s = this.resumable.get(previd);
    if (!s || s.jid.local !== username || this.core.sessions.getLocal(s.jid.bare, s.jid.resource) !== s || !s.sm) {
      const t = this.tombstones.get(previd);
      if (t?.movedTo && t.user === username) return { moved: t.movedTo };
      return t && t.user === username ? { h: t.h } : {};
    }
    const previous = s.owner;
    const state = this.moveOut(s, to);
    if (previous) previous.close('conflict', 'the session was resumed on another connection');
    this.core.log.info({ jid: s.jid.full, to }, 'resumption: the session moved to another node');
    return { state };
  }

  /**
   * The session leaves this node without ending (no unavailable, nothing to offline
   * storage): its state, for node `to`; a later resume asking here is sent there.
   * The stream that had it, if any, is the caller's to close.
   */
  private moveOut(s: Session, to: string): MovedSession {
    const sm = s.sm!;
    const t = this.expiry.get(s);
    if (t) {
      clearTimeout(t);
      this.expiry.delete(s);
      this.core.metrics.smDetachedNow.set(this.expiry.size);
    }
    this.resumable.delete(sm.id);
    this.core.cluster?.sm?.ended(sm.id);
    this.core.sessions.remove(s);
    // until `to`'s own entry arrives, what is routed here to the JID goes there
    this.core.cluster?.standIn({ ...this.entry(s), node: to });
    this.core.metrics.sessions.set(this.core.sessions.size);
    this.tombstones.set(sm.id, { h: sm.inH, user: s.jid.local, movedTo: to });
    if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
    s.owner = undefined;
    const state: MovedSession = {
      full: s.jid.full,
      smId: sm.id,
      inH: sm.inH,
      acked: sm.acked,
      queue: s.takeUnsent().map((q) => ({
        xml: q.xml,
        kind: q.kind,
        at: (q as { at?: number }).at ?? Date.now(),
        ...(q.copy ? { copy: true as const } : {}),
        ...(q.peers ? { peers: q.peers.map((p) => p.jid.full) } : {}),
      })),
      priority: s.priority,
      available: s.available,
      flags: { ...s.flags },
      unseen: s.unseen,
    };
    if (s.client) state.client = s.client;
    if (s.presence) state.presence = s.presence.toString();
    const ext = portableExt(s.ext);
    if (ext) state.ext = ext;
    return state;
  }

  /**
   * Graceful drain in a cluster (issue 16, guarantee 6): every resumable session of this
   * node moves, detached, to one of `targets` (round-robin), with its unacknowledged
   * stanzas and its 'h'. Its stream is closed with <system-shutdown/> as it leaves; the
   * client's resume, on whatever node it reconnects to, finds the session there (this
   * node's tombstone, then `smto:<id>` in Redis, point there; the adoption takes one Redis
   * round trip, a reconnect several). Its contacts see no presence change. A session
   * whose target does not answer ends, as without a cluster (unavailable, its
   * unacknowledged messages to offline storage).
   * Returns how many moved.
   */
  async drain(targets: readonly string[]): Promise<number> {
    const cluster = this.core.cluster;
    if (!cluster || !targets.length) return 0;
    const byNode = new Map<string, Session[]>();
    let i = 0;
    for (const s of this.resumable.values()) {
      if (!s.sm || this.core.sessions.getLocal(s.jid.bare, s.jid.resource) !== s) continue;
      const node = targets[i++ % targets.length]!;
      let list = byNode.get(node);
      if (!list) byNode.set(node, (list = []));
      list.push(s);
    }
    let moved = 0;
    await Promise.all(
      [...byNode].map(async ([node, list]) => {
        // the stream closes first: nothing more is read from it (its 'h' is final) and
        // nothing more is queued to the session here (it left the routing table)
        const states = list.map((s) => {
          const owner = s.owner;
          const st: MovedSession = { ...this.moveOut(s, node), from: this.core.nodeId };
          owner?.close('system-shutdown', 'this node is stopping: resume on another node of the cluster');
          return st;
        });
        try {
          const r = (await cluster.request(node, 'adopt', states)) as number | null;
          if (r !== states.length) throw new Error(`took ${String(r)} of ${states.length}`);
        } catch (err) {
          // as without a cluster: the session ends here (unavailable to its contacts,
          // its unacknowledged messages to offline storage)
          this.core.log.warn({ err, node, sessions: states.length }, 'drain: a node did not take its sessions; they end here');
          for (const st of states) {
            this.tombstones.delete(st.smId);
            this.end(this.adopt(st), 'its node stopped and no other node took it');
          }
          return;
        }
        moved += states.length;
        await cluster.pointSessions(states.map((st) => st.smId), node, this.core.config.sm.resume_timeout).catch((err: unknown) =>
          this.core.log.warn({ err }, 'drain: recording where sessions went failed (their copies still say)'),
        );
      }),
    );
    if (moved) this.core.log.info({ sessions: moved, to: [...byNode.keys()] }, 'drain: resumable sessions handed over');
    return moved;
  }

  /** Sessions a draining node handed over (drain there): bound here, detached, waiting for their clients. */
  receive(states: MovedSession[]): number {
    for (const m of states) {
      const s = this.adopt(m);
      this.detach(s, 'its node stopped (drain)');
      // as after a takeover (settle), without waiting: the client resumes later, and a
      // stream that takes the session meanwhile gets the rest in arrival order
      if (m.from && this.core.cluster) void this.settle(s, m.from);
    }
    return states.length;
  }

  /** A session of another node arrives (handOver there): bound here, detached until its stream takes it. */
  private adopt(m: MovedSession): Session {
    const session = new Session(Jid.parse(m.full), undefined, this);
    session.priority = m.priority;
    session.available = m.available;
    session.presence = m.presence ? parseXml(m.presence) : undefined;
    Object.assign(session.flags, m.flags);
    session.unseen = m.unseen;
    session.client = m.client;
    for (const [k, kind, v] of m.ext ?? []) session.ext.set(k, kind === 'set' ? new Set(v as string[]) : v);
    const table = this.core.sessions;
    session.sm = {
      id: m.smId,
      resumable: true,
      inH: m.inH,
      acked: m.acked,
      queue: m.queue.map((q) => {
        const peers = q.peers?.flatMap((f) => {
          const j = tryJid(f);
          const p = j && table.get(j.bare, j.resource);
          return p ? [p] : [];
        });
        return { xml: q.xml, kind: q.kind, at: q.at, ...(q.copy ? { copy: true as const } : {}), ...(peers ? { peers } : {}) };
      }),
      sinceRequest: 0,
      lastRequest: Date.now(),
    };
    const old = table.add(session);
    if (old) old.close('conflict', 'replaced by a new connection for the same resource');
    // this node's mirror of the session where it was is this same session: it goes, so
    // that the death or stop of that node does not take it for lost (rooms: 333)
    table.dropRemote(session.jid.bare, session.jid.resource);
    this.core.metrics.sessions.set(table.size);
    this.resumable.set(m.smId, session);
    this.core.registry.bind(this.entry(session)).catch((err: unknown) => this.core.log.error({ err }, 'registry bind failed'));
    this.core.cluster?.sm?.started(session, this.record(session));
    return session;
  }

  /**
   * A new stream takes the session over (resumption); the stream that had it,
   * if still open, is closed without ending the session (XEP-0198 §5).
   */
  resume(session: Session, owner: SessionOwner): void {
    const previous = session.owner;
    this.attach(session, owner);
    if (previous && previous !== owner) previous.close('conflict', 'the session was resumed on another connection');
  }

  private attach(session: Session, owner: SessionOwner): void {
    const t = this.expiry.get(session);
    if (t) {
      clearTimeout(t);
      this.expiry.delete(session);
      this.core.metrics.smResumed.inc();
      this.core.metrics.smDetachedNow.set(this.expiry.size);
    }
    session.owner = owner;
    session.unseen = 0;
    this.changed(session);
  }

  queueOverflow(s: Session): void {
    // the stanzas go to offline storage first, then the stream is closed (not resumable)
    this.core.log.info({ jid: s.jid.full, max: this.core.config.sm.max_queue }, 'unacknowledged queue overflow');
    this.offline(s);
    if (s.sm) this.resumable.delete(s.sm.id);
    s.close('policy-violation', 'too many unacknowledged stanzas');
  }

  away(s: Session, reason: 'detached' | 'inactive', message: string): void {
    if (!this.core.hooks.has('push/needed')) return;
    const h = this.core.hooks.run('push/needed', s, reason, message, s.unseen);
    if (h instanceof Promise) h.catch((err: unknown) => this.core.log.error({ err }, 'push hook failed'));
  }

  closeDetached(s: Session, condition?: StreamErrorCondition, text?: string): void {
    this.end(s, text ?? condition ?? 'closed');
  }

  /** The session is over: unregistered, unacknowledged messages stored, presence unavailable, modules told. */
  end(session: Session, reason: string): void {
    const t = this.expiry.get(session);
    if (t) {
      clearTimeout(t);
      this.expiry.delete(session);
      this.core.metrics.smDetachedNow.set(this.expiry.size);
    }
    if (session.sm) {
      this.resumable.delete(session.sm.id);
      if (session.sm.resumable) this.core.cluster?.sm?.ended(session.sm.id);
      this.tombstones.set(session.sm.id, { h: session.sm.inH, user: session.jid.local });
      if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
    }
    if (!this.core.sessions.remove(session)) {
      // replaced by a newer session for the same JID: still hand over what it never got
      this.offline(session);
      return;
    }
    this.core.metrics.sessions.set(this.core.sessions.size);
    this.track(
      this.core.registry
        .unbind(session.jid.full, this.core.nodeId, session.key)
        .catch((err: unknown) => this.core.log.error({ err }, 'registry unbind failed')),
    );
    this.offline(session);
    if (session.available || session.ext.has('presence/directed')) {
      // Broadcast unavailable as if the client had sent it (RFC 6121 §4.5.2, §4.6.3).
      session.available = false;
      const unavailable = new Element('presence', { type: 'unavailable', from: session.jid.full });
      const r = this.core.router.fromClient(unavailable, session.jid, session);
      if (r) this.track(r.catch((err: unknown) => this.core.log.error({ err }, 'unavailable broadcast failed')));
    }
    const h = this.core.hooks.run('session/closed', session, reason);
    if (h instanceof Promise) this.track(h.catch(() => undefined));
    this.core.log.debug({ jid: session.jid.full, reason }, 'session closed');
  }

  /**
   * What the client never acknowledged (or never got) is treated as sent to an
   * unavailable resource (XEP-0198 §4): messages to offline storage (to the bare
   * JID, unless another resource of the user got them too), an error to the
   * sender when storage refuses; IQ requests get service-unavailable; carbon
   * copies, presence and groupchat are dropped (they were copies or are state).
   */
  private offline(session: Session): void {
    const bare = session.jid.toBare();
    const stanzas: { stanza: Element; from: Jid }[] = [];
    for (const { xml, kind, peers, copy } of session.takeUnsent()) {
      if (kind === 'presence' || copy) continue;
      let stanza: Element;
      try {
        stanza = parseXml(xml);
      } catch {
        continue;
      }
      const type = stanza.attrs.type ?? 'normal';
      if (kind === 'iq') {
        if (type === 'get' || type === 'set') this.core.router.bounce(stanza, new StanzaError('service-unavailable'));
        continue;
      }
      if (type === 'groupchat' || type === 'error' || type === 'headline') continue;
      const from = tryJid(stanza.attrs.from);
      if (!from) continue;
      const to = tryJid(stanza.attrs.to);
      // addressed to the bare JID and delivered to other resources too: one of them still
      // bound has it (and hands it on in turn if it ends without acknowledging it);
      // a resource that did not get it (a lower priority, not yet available) is no reason to drop it
      if (to && to.resource === '' && peers?.some((p) => p !== session && this.core.sessions.get(p.jid.bare, p.jid.resource) === p))
        continue;
      stanza.attrs.to = bare.full;
      stanzas.push({ stanza, from });
    }
    // one at a time, so offline storage keeps them in order, and each in a turn of the
    // event loop of its own: SQLite storage answers synchronously, and a queue of 1,000
    // stored in one run of microtasks held every other stream up for ~0.6 s (bench
    // slowreader, `max`)
    for (const { stanza, from } of stanzas)
      this.storing = this.storing.then(async () => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!(await this.core.router.undeliverable(stanza, from, bare)))
          this.core.router.bounce(stanza, new StanzaError('service-unavailable', 'the recipient was gone and could not keep it'));
      });
  }

  private track(p: Promise<unknown>): void {
    this.ending.add(p);
    const done = (): void => void this.ending.delete(p);
    p.then(done, done);
  }

  /**
   * Server stop: detached sessions end now (their queues go to offline storage), and
   * everything ended sessions started (hooks' writes included) settles before storage closes.
   */
  async endAll(): Promise<void> {
    for (const s of [...this.expiry.keys()]) this.end(s, 'server shutting down');
    let storing: Promise<void> | undefined;
    while (this.ending.size || storing !== this.storing) {
      storing = this.storing;
      await Promise.all([storing, ...this.ending]);
    }
  }
}
