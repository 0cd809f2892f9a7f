// One chat room (XEP-0045). `Room` is the one object the service talks to: it
// holds the room's state (configuration, affiliations, occupants by nick and by
// session, subject, history) and the changes every part makes to it (roles,
// affiliations, destruction). What a room does with each kind of stanza lives
// in a file of its own, as functions taking the room; the methods below that
// the service calls only hand over to them:
//   presence.ts      the occupant record, status codes, building and broadcasting presence
//   occupants.ts     entering, nick changes, multi-session nicks, probes, leaving, eviction
//   ghosts.ts        occupants removed after delivery errors (§18.1.2)
//   messages.ts      groupchat, subject, private messages, invitations, voice requests
//   room-iq.ts       IQs to the room (disco, ping, MAM, moderation) and to occupants
//   owner.ts         the owner protocol (configuration form, destroy); registration.ts (§7.10)
//   affiliations.ts  the admin protocol; permissions.ts who may do what
// Everything here is synchronous and in memory; persistence is written behind
// (RoomHost.persist) in order, so a room never waits on the database.
import { createHmac } from 'node:crypto';
import { Jid, x, type ArchiveStore, type Element, type RoomAffiliation } from '../../src/api/index.js';
import type { Affiliation, Role, RoomConfig } from './config.js';
import type { Actor, AdminRoom } from './affiliations.js';
import { AFF_RANK, defaultRole } from './permissions.js';
import { DiscussionHistory } from './history.js';
import { STATUS, broadcastPresence, presenceOf, type Occupant } from './presence.js';
import * as occupants from './occupants.js';
import * as messages from './messages.js';
import * as roomIq from './room-iq.js';
import { NS_USER } from './ns.js';

export interface RoomLimits {
  maxUsers: number;
  maxHistory: number;
  maxAffiliations: number;
  messageRate: number;
  messageBurst: number;
  presenceRate: number;
  presenceBurst: number;
}

/** What a room needs from its service. */
export interface RoomHost {
  readonly domain: string;
  limits(): RoomLimits;
  send(stanza: Element): void;
  fanout(stanza: Element, targets: readonly Jid[]): void;
  newId(): string;
  /** a stanza-id for a message of this room: an archive id when the room archives (its key, no lookup index) */
  archiveId(room: Room): string;
  /** write the room's config/subject (or remove it when not persistent) */
  persist(room: Room, what: 'room' | 'remove'): void;
  persistAffiliation(room: Room, a: RoomAffiliation | { jid: string; affiliation: 'none' }): void;
  /** a session entered or left this room (the service's per-session index) */
  track(room: Room, session: Jid, joined: boolean): void;
  /** the room is gone (destroyed or empty and temporary) */
  dispose(room: Room): void;
  /** forward an IQ to an occupant and route its answer back */
  proxyIq(room: Room, stanza: Element, from: Occupant, to: Occupant): void;
  isServerAdmin(jid: Jid): boolean;
  /** XEP-0486: the room's vCard, if set */
  vcard(room: Room): Promise<Element | undefined>;
  setVcard(room: Room, card: Element | undefined): Promise<void>;
  /** room archives (XEP-0313), when the service keeps them */
  readonly archiving: boolean;
  readonly archive: ArchiveStore;
}

interface Subject {
  text: string;
  /** room/nick of whoever set it ('' for the room itself) */
  from: string;
}

export class Room implements AdminRoom {
  readonly jid: Jid;
  config: RoomConfig;
  locked = false;
  readonly affiliations = new Map<string, { affiliation: Exclude<Affiliation, 'none'>; nick?: string; reason?: string }>();
  readonly occupants = new Map<string, Occupant>();
  /** occupant by real full JID */
  readonly bySession = new Map<string, Occupant>();
  readonly history: DiscussionHistory;
  subject: Subject = { text: '', from: '' };
  /** every session of every occupant, for message fan-out (rebuilt after joins/leaves) */
  private allTargets: Jid[] | undefined;
  private readonly salt: Buffer;

  constructor(
    readonly name: string,
    readonly host: RoomHost,
    config: RoomConfig,
  ) {
    this.jid = Jid.of(name, host.domain);
    this.history = new DiscussionHistory(this.jid.bare);
    this.config = config;
    this.salt = Buffer.from(config.occupantSalt, 'base64url');
  }

  get empty(): boolean {
    return this.occupants.size === 0;
  }

  affiliation(bare: string): Affiliation {
    return this.affiliations.get(bare)?.affiliation ?? this.affiliations.get(Jid.parse(bare).domain)?.affiliation ?? 'none';
  }

  defaultRole(aff: Affiliation): Role {
    return defaultRole(aff, this.config.moderated);
  }

  maxUsers(): number {
    const cap = this.host.limits().maxUsers;
    return this.config.maxUsers > 0 ? Math.min(this.config.maxUsers, cap) : cap;
  }

  occupantId(bare: string): string {
    return createHmac('sha256', this.salt).update(bare).digest('base64url').slice(0, 22);
  }

  targets(): Jid[] {
    if (this.allTargets) return this.allTargets;
    const t: Jid[] = [];
    for (const o of this.occupants.values()) for (const j of o.sessions.values()) t.push(j);
    return (this.allTargets = t);
  }

  canSeeJids(o: Occupant): boolean {
    return this.config.whois === 'anyone' || o.role === 'moderator';
  }

  /** May `viewer` receive the presence of `subject`? (presencebroadcast, the big-room threshold) */
  seesPresenceOf(viewer: Occupant, subject: Occupant): boolean {
    if (viewer === subject || viewer.role === 'moderator') return true;
    if (!this.config.presenceBroadcast.includes(subject.role === 'none' ? 'participant' : subject.role)) return false;
    const t = this.config.presenceThreshold;
    return t === 0 || this.occupants.size <= t || subject.role === 'moderator';
  }

  /** Occupants or their sessions changed: the fan-out list is rebuilt when next needed. */
  targetsChanged(): void {
    this.allTargets = undefined;
  }

  // ---- stanzas from the service (handled in occupants.ts, messages.ts, room-iq.ts) ----

  /** Presence from a real JID to room/nick. */
  presence(stanza: Element, from: Jid, to: Jid, creating: boolean): void {
    occupants.presence(this, stanza, from, to, creating);
  }

  /** Unavailable or error presence to the bare room JID: from an occupant, as if sent to its nick. */
  presenceToRoom(stanza: Element, from: Jid): void {
    const o = this.bySession.get(from.full);
    if (o) occupants.presence(this, stanza, from, o.jid, false);
  }

  /** One session of an occupant goes (it went offline); the occupant leaves with its last session. */
  removeSession(o: Occupant, session: Jid, opts: { children?: Element[] } = {}): void {
    occupants.removeSession(this, o, session, opts);
  }

  /** A message from a real JID to the room's bare JID. */
  message(stanza: Element, from: Jid): void {
    messages.message(this, stanza, from);
  }

  /** A private message to room/nick (§7.5). */
  privateMessage(stanza: Element, from: Jid, to: Jid): void {
    messages.privateMessage(this, stanza, from, to);
  }

  /** An IQ to the room's bare JID; returns the result payload. */
  iq(stanza: Element, from: Jid): Element | undefined | Promise<Element | undefined> {
    return roomIq.iq(this, stanza, from);
  }

  /** An IQ from a real JID to room/nick. */
  occupantIq(stanza: Element, from: Jid, to: Jid): void {
    roomIq.occupantIq(this, stanza, from, to);
  }

  // ---- changes of roles and affiliations (the admin protocol's AdminRoom, owner.ts, messages.ts) ----

  requester(from: Jid): { aff: Affiliation; occupant?: Occupant; actor: Actor } {
    const occupant = this.bySession.get(from.full);
    const aff = this.host.isServerAdmin(from) ? 'owner' : this.affiliation(from.bare);
    return { aff, occupant, actor: { nick: occupant?.nick, jid: from.bare } };
  }

  maxAffiliations(): number {
    return this.host.limits().maxAffiliations;
  }

  kick(o: Occupant, actor: Actor | undefined, reason: string | undefined): void {
    occupants.evict(this, o, [STATUS.kicked], { actor, reason });
  }

  setRole(o: Occupant, role: Role, actor: Actor | undefined, reason: string | undefined): void {
    if (o.role === role) return;
    o.role = role;
    broadcastPresence(this, o, { item: { actor, reason } });
  }

  /** Change an affiliation (nick: undefined keeps the reserved nickname, null drops it) and its effects (§9, §10). */
  setAffiliation(jid: string, affiliation: Affiliation, actor: Actor | undefined, reason: string | undefined, nick?: string | null): void {
    const prev = this.affiliations.get(jid);
    if (affiliation === 'none') {
      if (!prev) return;
      this.affiliations.delete(jid);
      if (this.config.persistent) this.host.persistAffiliation(this, { jid, affiliation: 'none' });
    } else {
      // §9.1: a ban also drops the reserved nickname
      const entry = { affiliation, nick: affiliation === 'outcast' || nick === null ? undefined : (nick ?? prev?.nick), reason };
      if (!entry.nick) delete entry.nick;
      if (!entry.reason) delete entry.reason;
      this.affiliations.set(jid, entry);
      if (this.config.persistent) this.host.persistAffiliation(this, { jid, ...entry });
    }
    let present = false;
    for (const o of [...this.occupants.values()]) {
      if (o.bare !== jid) continue;
      present = true;
      if (affiliation === 'outcast') occupants.evict(this, o, [STATUS.banned], { actor, reason, affiliation: 'outcast' });
      else if (this.config.membersOnly && AFF_RANK[affiliation] < AFF_RANK.member)
        occupants.evict(this, o, [STATUS.affiliationChanged], { actor, reason, affiliation });
      else {
        o.role = this.defaultRole(affiliation);
        this.allTargets = undefined;
        broadcastPresence(this, o, { item: { actor, reason } });
      }
    }
    if (!present && affiliation !== (prev?.affiliation ?? 'none')) this.affiliationNotice(jid, affiliation, actor, reason);
  }

  /**
   * §9.1, §9.3, §10.3, §10.6, §10.7: a change for someone not in the room is told in a message
   * from the room; it names a real JID, so it goes to those who may see real JIDs (as Prosody).
   */
  private affiliationNotice(jid: string, affiliation: Affiliation, actor: Actor | undefined, reason: string | undefined): void {
    const to: Jid[] = [];
    for (const v of this.occupants.values()) if (this.canSeeJids(v)) for (const j of v.sessions.values()) to.push(j);
    if (to.length === 0) return;
    const item = x(
      'item',
      { affiliation, jid, role: 'none' },
      actor?.nick !== undefined || actor?.jid !== undefined ? x('actor', { nick: actor.nick, jid: actor.jid }) : undefined,
      reason ? x('reason', null, reason) : undefined,
    );
    this.host.fanout(x('message', { from: this.jid.bare, id: this.host.newId() }, x('x', { xmlns: NS_USER }, item)), to);
  }

  /** §10.9: every occupant is told, the room and its stored state go. */
  destroy(alternate: string | undefined, reason: string | undefined, password?: string): void {
    const d = x(
      'destroy',
      { jid: alternate },
      reason ? x('reason', null, reason) : undefined,
      password ? x('password', null, password) : undefined,
    );
    for (const o of [...this.occupants.values()]) {
      const p = presenceOf(this, o, {
        type: 'unavailable',
        withJid: false,
        item: { affiliation: 'none', role: 'none' },
        destroy: d,
        children: [],
      });
      const sessions = [...o.sessions.values()];
      this.host.fanout(p, sessions);
      for (const s of sessions) {
        this.bySession.delete(s.full);
        this.host.track(this, s, false);
      }
    }
    this.occupants.clear();
    this.allTargets = undefined;
    this.host.persist(this, 'remove');
    this.host.dispose(this);
  }

  nickOwner(nick: string): string | undefined {
    for (const [jid, a] of this.affiliations) if (a.nick === nick) return jid;
    return undefined;
  }

  // ---- persistence ----

  toStored(): { config: string; subject: string } {
    return { config: JSON.stringify(this.config), subject: this.subject.text ? JSON.stringify(this.subject) : '' };
  }

  /** The service is stopping: every occupant is told (status 332). */
  shutdownNotice(): void {
    // each occupant hears only about itself: everyone is leaving, so no N² broadcast
    for (const o of this.occupants.values()) {
      const p = presenceOf(this, o, { type: 'unavailable', withJid: true, self: true, codes: [STATUS.shutdown], children: [] });
      this.host.fanout(p, [...o.sessions.values()]);
      for (const s of o.sessions.values()) this.host.track(this, s, false);
    }
    this.occupants.clear();
    this.bySession.clear();
    this.allTargets = undefined;
  }
}
