// Session lifecycle, apart from any one stream: binding, stream management
// (XEP-0198) detach / resume / expiry, and the end of a session (its presence
// goes unavailable, modules are told, and whatever was never acknowledged goes
// to offline storage: never bounced, never dropped).
import type { Core } from '../core.js';
import { StanzaError, type StreamErrorCondition } from '../api/errors.js';
import { Jid, tryJid } from '../jid.js';
import { Element, parseXml } from '../xml/index.js';
import { randomToken } from '../random.js';
import { Session, type SessionEnv, type SessionOwner, type SmState } from './session.js';

/** ids of sessions that ended, kept to answer a late resume with the old 'h' */
const MAX_TOMBSTONES = 10_000;

export class SessionManager implements SessionEnv {
  private readonly resumable = new Map<string, Session>();
  private readonly expiry = new Map<Session, NodeJS.Timeout>();
  private readonly tombstones = new Map<string, { h: number; user: string }>();
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
  bind(jid: Jid, owner: SessionOwner): Session {
    const session = new Session(jid, owner, this);
    // RFC 6120 §7.7.2.2: the newer session wins; the older one is told why it goes.
    const old = this.core.sessions.add(session);
    if (old) old.close('conflict', 'replaced by a new connection for the same resource');
    // the table's size, not inc/dec: a replaced session leaves without a decrement
    this.core.metrics.sessions.set(this.core.sessions.size);
    this.core.registry.bind(jid.full, this.core.nodeId).catch((err: unknown) => this.core.log.error({ err }, 'registry bind failed'));
    const h = this.core.hooks.run('session/bound', session);
    if (h instanceof Promise) h.catch(() => undefined);
    return session;
  }

  /** XEP-0198 <enable/>: counting starts; with resume, the session may outlive its stream. */
  enable(session: Session, resume: boolean): SmState {
    const sm: SmState = {
      id: randomToken(18),
      resumable: resume && this.core.config.sm.resume_timeout > 0,
      inH: 0,
      acked: 0,
      queue: [],
      sinceRequest: 0,
      lastRequest: Date.now(),
    };
    session.sm = sm;
    if (sm.resumable) this.resumable.set(sm.id, session);
    return sm;
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
    this.core.log.debug({ jid: session.jid.full, reason }, 'session detached, waiting for resumption');
    // the phone is gone with messages it never acknowledged: wake it up (XEP-0357)
    const queue = session.sm?.queue ?? [];
    const unseen = queue.filter((q) => q.kind === 'message' && q.xml.includes('<body'));
    if (unseen.length) {
      session.unseen = unseen.length;
      this.away(session, 'detached', unseen.at(-1)!.xml);
    }
  }

  /** Find a session to resume for `username`; a failure carries the old 'h' when known. */
  lookup(previd: string, username: string): Session | { h?: number } {
    const s = this.resumable.get(previd);
    if (s && s.jid.local === username && this.core.sessions.get(s.jid.bare, s.jid.resource) === s) return s;
    const t = this.tombstones.get(previd);
    return t && t.user === username ? { h: t.h } : {};
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
        .unbind(session.jid.full, this.core.nodeId)
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
    // one at a time, so offline storage keeps them in order
    for (const { stanza, from } of stanzas)
      this.storing = this.storing.then(async () => {
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
