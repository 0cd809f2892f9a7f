// RFC 6121 §4 presence: broadcast to subscribers, probes answered on initial
// presence, directed presence remembered and cancelled on unavailable.
import { x, Jid, parseXml, type Element, type ModuleContext, type SessionRecord, type StanzaEvent } from '../api/index.js';
import { hasFrom, hasTo, type RosterService } from './roster-service.js';
import { SUB_TYPES, type Subscriptions, type SubType } from './subscriptions.js';

const INITIAL_SENT = 'presence/initial';
const DIRECTED = 'presence/directed';
/** directed-presence recipients remembered per session */
const MAX_DIRECTED = 1000;

/** A stored subscription request, or a bare one if it cannot be read (rows from before it was kept whole). */
function storedRequest(stanza: string, from: string, to: string): Element {
  let el: Element | undefined;
  try {
    el = stanza ? parseXml(stanza) : undefined;
  } catch {
    el = undefined;
  }
  const attrs: Record<string, string> = { type: 'subscribe', from, to };
  if (el?.attrs.id) attrs.id = el.attrs.id as string;
  return x('presence', attrs, el?.is('presence') ? el.getChildElements() : []);
}

export class PresenceService {
  subs!: Subscriptions;

  constructor(
    private readonly m: ModuleContext,
    private readonly roster: RosterService,
  ) {}

  private bare(user: string): string {
    return `${user}@${this.m.host}`;
  }

  private available(bare: string): SessionRecord[] {
    return this.m.sessions.of(bare).filter((s) => s.available);
  }

  /** Is presence between a and b (local usernames / bare JIDs) cut by blocking, either way? */
  private async cut(user: string, other: string): Promise<boolean> {
    const o = Jid.parse(other);
    if (await this.m.blocks(user, o)) return true;
    return o.domain === this.m.host && o.local !== '' && (await this.m.blocks(o.local, Jid.parse(this.bare(user))));
  }

  /** Send `stanza` (a presence from one resource) to the available resources of a bare JID. */
  private sendTo(stanza: Element, toBare: string): void {
    if (!toBare.endsWith('@' + this.m.host)) {
      // a contact at a component (a bridged network): routed to it
      this.m.send(x('presence', { ...stanza.attrs, to: toBare }, stanza.children as Element[]));
      return;
    }
    const targets = this.available(toBare);
    if (!targets.length) return;
    const copy = x('presence', { ...stanza.attrs, to: toBare }, stanza.children as Element[]);
    this.m.deliver(copy, targets);
  }

  sendPresenceOf(user: string, toBare: string): void {
    for (const s of this.available(this.bare(user)))
      if (s.presence) this.sendTo(x('presence', { ...s.presence.attrs, from: s.jid.full }, s.presence.children as Element[]), toBare);
  }

  sendUnavailableOf(user: string, toBare: string): void {
    for (const s of this.available(this.bare(user))) this.sendTo(x('presence', { type: 'unavailable', from: s.jid.full }), toBare);
  }

  /** 'presence/broadcast': presence without 'to' from a client (the router then sends it to the user's own resources). */
  async broadcast(ev: StanzaEvent): Promise<boolean> {
    const session = ev.origin;
    if (!session) return false;
    const type = ev.stanza.attrs.type;
    const user = ev.from.local;
    if (type === undefined) {
      const initial = !session.ext.get(INITIAL_SENT);
      session.ext.set(INITIAL_SENT, true);
      for (const c of await this.roster.contacts(user, hasFrom)) if (!(await this.cut(user, c))) this.sendTo(ev.stanza, c);
      if (initial) await this.onInitial(session, user);
    } else if (type === 'unavailable') {
      session.ext.delete(INITIAL_SENT);
      const subscribers = await this.roster.contacts(user, hasFrom);
      for (const c of subscribers) if (!(await this.cut(user, c))) this.sendTo(ev.stanza, c);
      const directed = session.ext.get(DIRECTED) as Set<string> | undefined;
      if (directed) {
        session.ext.delete(DIRECTED);
        for (const j of directed) if (!subscribers.includes(j)) this.directedTo(ev.stanza, j);
      }
    }
    return false;
  }

  /** First available presence of a session: probe contacts, replay pending requests. */
  private async onInitial(session: SessionRecord, user: string): Promise<void> {
    // a user is implicitly subscribed to their own presence (RFC 6121 §4.2.2)
    for (const t of this.available(session.jid.bare)) {
      if (t !== session && t.presence)
        this.m.deliver(x('presence', { ...t.presence.attrs, from: t.jid.full, to: session.jid.full }, t.presence.children as Element[]), [session]);
    }
    for (const c of await this.roster.contacts(user, hasTo)) {
      if (await this.cut(user, c)) continue;
      if (!c.endsWith('@' + this.m.host)) {
        // a contact elsewhere (a component) is asked for its presence (RFC 6121 §4.3)
        this.m.send(x('presence', { type: 'probe', from: session.jid.bare, to: c }));
        continue;
      }
      for (const t of this.available(c)) {
        if (t.presence)
          this.m.deliver(x('presence', { ...t.presence.attrs, from: t.jid.full, to: session.jid.full }, t.presence.children as Element[]), [session]);
      }
    }
    // pending requests are replayed as they were received, children included (RFC 6121 §3.1.3)
    for (const p of await this.m.storage.roster.pending(user)) {
      const from = Jid.parse(p.jid);
      if (await this.m.blocks(user, from)) continue;
      this.m.deliver(storedRequest(p.stanza, p.jid, session.jid.bare), [session]);
    }
  }

  private directedTo(stanza: Element, jid: string): void {
    const j = Jid.parse(jid);
    if (j.domain !== this.m.host || !j.local) {
      this.m.send(x('presence', { ...stanza.attrs, to: jid }));
      return;
    }
    const targets = j.resource ? this.m.sessions.of(j.bare).filter((s) => s.jid.full === j.full) : this.available(j.bare);
    if (targets.length) this.m.deliver(x('presence', { ...stanza.attrs, to: jid }), targets);
  }

  /** Remember (or forget) directed presence from a session (RFC 6121 §4.6). */
  private async trackDirected(ev: StanzaEvent): Promise<void> {
    const s = ev.origin;
    if (!s) return;
    const type = ev.stanza.attrs.type;
    const target = ev.to.full;
    if (type === undefined) {
      const item = await this.roster.item(ev.from.local, ev.to.bare);
      if (item && hasFrom(item.subscription)) return; // broadcasts reach them anyway
      let set = s.ext.get(DIRECTED) as Set<string> | undefined;
      if (!set) s.ext.set(DIRECTED, (set = new Set()));
      set.add(target);
      // bounded: the oldest entries are forgotten (they then get no unavailable on logout)
      if (set.size > MAX_DIRECTED) set.delete(set.values().next().value!);
    } else if (type === 'unavailable') {
      (s.ext.get(DIRECTED) as Set<string> | undefined)?.delete(target);
    }
  }

  /** 'presence/bare': presence to a local user's bare JID. */
  async toBare(ev: StanzaEvent): Promise<boolean> {
    const type = ev.stanza.attrs.type ?? 'available';
    const contact = ev.to;
    if (SUB_TYPES.has(type)) {
      // subscription stanzas carry bare JIDs (RFC 6121 §3.1.2)
      if (ev.origin) await this.subs.outbound(ev.from.local, contact, type as SubType, ev.stanza);
      else await this.subs.inbound(contact.local, ev.from.toBare(), type as SubType, ev.stanza);
      return true;
    }
    if (type === 'probe') {
      await this.probe(ev);
      return true;
    }
    if (type === 'available' || type === 'unavailable') await this.trackDirected(ev);
    return false;
  }

  /** 'presence/full': directed presence to one resource; subscription stanzas go to the bare JID. */
  async toFull(ev: StanzaEvent): Promise<boolean> {
    const type = ev.stanza.attrs.type ?? 'available';
    if (SUB_TYPES.has(type) || type === 'probe') return this.toBare({ ...ev, to: ev.to.toBare() });
    if (type === 'available' || type === 'unavailable') await this.trackDirected(ev);
    return false;
  }

  /** A probe from a local user or one of another server: answered if the prober is subscribed to the contact (RFC 6121 §4.3). */
  private async probe(ev: StanzaEvent): Promise<void> {
    const contact = ev.to.local;
    const prober = ev.from;
    const item = await this.roster.item(contact, prober.bare);
    if (prober.bare !== ev.to.bare && (!item || !hasFrom(item.subscription))) return;
    if (await this.cut(contact, prober.bare)) return;
    if (prober.domain !== this.m.host) {
      // a contact elsewhere (another server, a component): the answer is routed to the JID that probed (RFC 6121 §4.3.2)
      for (const t of this.available(ev.to.bare))
        if (t.presence) this.m.send(x('presence', { ...t.presence.attrs, from: t.jid.full, to: prober.full }, t.presence.children as Element[]));
      return;
    }
    const replyTo = this.m.sessions.of(prober.bare).filter((s) => s.jid.full === prober.full || prober.isBare());
    for (const t of this.available(ev.to.bare)) {
      if (!t.presence) continue;
      for (const r of replyTo)
        this.m.deliver(x('presence', { ...t.presence.attrs, from: t.jid.full, to: r.jid.full }, t.presence.children as Element[]), [r]);
    }
  }
}
