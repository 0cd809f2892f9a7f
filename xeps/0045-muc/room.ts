// One chat room (XEP-0045): occupants, roles and affiliations, presence and
// message fan-out, history, subject, the admin/owner protocol and moderation.
// Everything here is synchronous and in memory; persistence is written behind
// (RoomHost.persist) in order, so a room never waits on the database.
import { createHmac } from 'node:crypto';
import {
  Element,
  Jid,
  NS_MAM,
  NS_STANZAS,
  StanzaError,
  SubmittedForm,
  dataForm,
  dateTime,
  enforceNickname,
  errorReply,
  mamForm,
  mamMetadata,
  parseMamQuery,
  replaceArchived,
  runMamQuery,
  tryJid,
  x,
  type ArchiveStore,
  type RoomAffiliation,
} from '../../src/api/index.js';
import { applyConfigForm, roomConfigForm, type Affiliation, type Role, type RoomConfig } from './config.js';
import { adminGet, adminSet, type Actor, type AdminRoom } from './affiliations.js';
import { AFF_RANK, ROLE_RANK, defaultRole, enforce, mayConfigure, mayEnter, mayRegister } from './permissions.js';
import { announcement, moderationRequest, tombstone, type ModerationRequest } from './moderation.js';
import { DiscussionHistory } from './history.js';
import {
  NS_ADMIN,
  NS_DELAY,
  NS_DISCO_INFO,
  NS_DISCO_ITEMS,
  NS_MODERATE,
  NS_MODERATE_0,
  NS_MUC,
  NS_OCCUPANT_ID,
  NS_OWNER,
  NS_PING,
  NS_REGISTER,
  NS_REGISTER_FORM,
  NS_REQUEST,
  NS_ROOMINFO,
  NS_SELF_PING,
  NS_SID,
  NS_STABLE_ID,
  NS_USER,
} from './ns.js';

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
  /** room archives (XEP-0313), when the service keeps them */
  readonly archiving: boolean;
  readonly archive: ArchiveStore;
}

export interface Occupant {
  nick: string;
  /** room@service/nick */
  jid: Jid;
  bare: string;
  /** the occupant's sessions (multi-session nicks), by full JID, in join order */
  sessions: Map<string, Jid>;
  /** the last presence children from the occupant (show, status, caps ...), from whichever session sent them last */
  presence: Element[];
  /** the last presence children of each session, so the one that stays speaks for the occupant */
  sessionPresence: Map<string, Element[]>;
  role: Role;
  occupantId: string;
  tokens: number;
  refill: number;
  ptokens: number;
  prefill: number;
}

interface PresenceOpts {
  type?: 'unavailable';
  codes?: number[];
  item?: { nick?: string; actor?: Actor; reason?: string; affiliation?: Affiliation; role?: Role };
  destroy?: Element;
  children?: Element[];
  /** name only this session in the item (a session leaving); default: an item per session */
  jid?: Jid;
  /** with an item per session, this one first (a session's own self-presence) */
  first?: Jid;
}

interface Subject {
  text: string;
  /** room/nick of whoever set it ('' for the room itself) */
  from: string;
}

const STATUS = {
  nonAnonymous: 100,
  self: 110,
  logging: 170,
  configChanged: 104,
  nowNonAnonymous: 172,
  nowSemiAnonymous: 173,
  created: 201,
  nickModified: 210,
  banned: 301,
  nickChanged: 303,
  kicked: 307,
  affiliationChanged: 321,
  membersOnly: 322,
  shutdown: 332,
  error: 333,
};

/**
 * §18.1.2: the errors that say a stanza the room sent could not reach an occupant, so the
 * occupant is gone (a ghost). For IQ answers item-not-found is left out: an occupant's client
 * answers a forwarded disco or pubsub query with it while being very much there.
 */
const DELIVERY_ERRORS = new Set([
  'gone',
  'item-not-found',
  'recipient-unavailable',
  'redirect',
  'remote-server-not-found',
  'remote-server-timeout',
]);

/** Does this error stanza say its sender could not be reached? */
export function isDeliveryError(stanza: Element): boolean {
  const cond = stanza
    .getChild('error')
    ?.getChildElements()
    .find((e) => e.attrs.xmlns === NS_STANZAS)?.name;
  return cond !== undefined && DELIVERY_ERRORS.has(cond) && !(stanza.name === 'iq' && cond === 'item-not-found');
}

/** Children a client may not inject into what the room sends on its behalf. */
function clientChildren(stanza: Element, room: string): Element[] {
  const out: Element[] = [];
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns;
    if (ns === NS_MUC || ns === NS_USER || ns === NS_OCCUPANT_ID || ns === NS_DELAY) continue;
    if (ns === NS_SID && c.name === 'stanza-id' && (c.attrs.by === room || tryJid(c.attrs.by)?.bare === room)) continue;
    out.push(c);
  }
  return out;
}

export class Room implements AdminRoom {
  readonly jid: Jid;
  config: RoomConfig;
  locked = false;
  readonly affiliations = new Map<string, { affiliation: Exclude<Affiliation, 'none'>; nick?: string; reason?: string }>();
  readonly occupants = new Map<string, Occupant>();
  /** occupant by real full JID */
  readonly bySession = new Map<string, Occupant>();
  private readonly history: DiscussionHistory;
  subject: Subject = { text: '', from: '' };
  /** every session of every occupant, for message fan-out (rebuilt after joins/leaves) */
  private allTargets: Jid[] | undefined;
  private readonly salt: Buffer;

  constructor(
    readonly name: string,
    private readonly host: RoomHost,
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

  private defaultRole(aff: Affiliation): Role {
    return defaultRole(aff, this.config.moderated);
  }

  private maxUsers(): number {
    const cap = this.host.limits().maxUsers;
    return this.config.maxUsers > 0 ? Math.min(this.config.maxUsers, cap) : cap;
  }

  private occupantId(bare: string): string {
    return createHmac('sha256', this.salt).update(bare).digest('base64url').slice(0, 22);
  }

  private targets(): Jid[] {
    if (this.allTargets) return this.allTargets;
    const t: Jid[] = [];
    for (const o of this.occupants.values()) for (const j of o.sessions.values()) t.push(j);
    return (this.allTargets = t);
  }

  private canSeeJids(o: Occupant): boolean {
    return this.config.whois === 'anyone' || o.role === 'moderator';
  }

  /** May `viewer` receive the presence of `subject`? (presencebroadcast, the big-room threshold) */
  private seesPresenceOf(viewer: Occupant, subject: Occupant): boolean {
    if (viewer === subject || viewer.role === 'moderator') return true;
    if (!this.config.presenceBroadcast.includes(subject.role === 'none' ? 'participant' : subject.role)) return false;
    const t = this.config.presenceThreshold;
    return t === 0 || this.occupants.size <= t || subject.role === 'moderator';
  }

  // ---- presence building ----

  private presenceOf(
    o: Occupant,
    opts: PresenceOpts & {
      withJid: boolean;
      self?: boolean;
      /** name the actor's real JID (default: withJid for others, whether the occupant may see JIDs for itself) */
      actorJid?: boolean;
    },
  ): Element {
    const aff = opts.item?.affiliation ?? this.affiliation(o.bare);
    const role = opts.item?.role ?? (opts.type === 'unavailable' ? 'none' : o.role);
    // one item per session of a multi-session nick for those who may see real JIDs (as Prosody does)
    let sessions: (Jid | undefined)[] = [undefined];
    if (opts.withJid && opts.jid) sessions = [opts.jid];
    else if (opts.withJid && o.sessions.size) {
      const all = [...o.sessions.values()];
      sessions = opts.first && o.sessions.has(opts.first.full) ? [opts.first, ...all.filter((j) => j !== opts.first)] : all;
    }
    const actor = opts.item?.actor;
    const actorJid = (opts.actorJid ?? (opts.self ? this.canSeeJids(o) : opts.withJid)) ? actor?.jid : undefined;
    const items = sessions.map((j) =>
      x(
        'item',
        { affiliation: aff, role, jid: j?.full, nick: opts.item?.nick },
        actor?.nick !== undefined || actorJid !== undefined ? x('actor', { nick: actor?.nick, jid: actorJid }) : undefined,
        opts.item?.reason ? x('reason', null, opts.item.reason) : undefined,
      ),
    );
    const codes = [...(opts.codes ?? [])];
    if (opts.self) codes.unshift(STATUS.self);
    return x(
      'presence',
      { from: o.jid.full, type: opts.type },
      opts.children ?? (opts.type === 'unavailable' ? o.presence.filter((c) => c.name === 'status') : o.presence),
      x(
        'x',
        { xmlns: NS_USER },
        items,
        opts.destroy,
        codes.map((c) => x('status', { code: c })),
      ),
      x('occupant-id', { xmlns: NS_OCCUPANT_ID, id: o.occupantId }),
    );
  }

  /**
   * Broadcast an occupant's presence: one stanza per variant (with/without the
   * real JID, self), each serialised once for all its recipients.
   */
  private broadcastPresence(o: Occupant, opts: PresenceOpts & { selfCodes?: number[]; skipSelf?: boolean; skipSession?: string }): void {
    const withJid: Jid[] = [];
    const without: Jid[] = [];
    for (const v of this.occupants.values()) {
      if (v === o || !this.seesPresenceOf(v, o)) continue;
      const list = this.canSeeJids(v) ? withJid : without;
      for (const j of v.sessions.values()) list.push(j);
    }
    if (withJid.length) this.host.fanout(this.presenceOf(o, { ...opts, withJid: true }), withJid);
    if (without.length) this.host.fanout(this.presenceOf(o, { ...opts, withJid: false }), without);
    if (!opts.skipSelf && o.sessions.size) {
      const selfOpts = { ...opts, withJid: true, self: true, codes: [...(opts.codes ?? []), ...(opts.selfCodes ?? [])] };
      const own = [...o.sessions.values()].filter((j) => j.full !== opts.skipSession);
      // several sessions: each sees its own item first (a client takes the first for its own)
      if (o.sessions.size === 1 || opts.jid) this.host.fanout(this.presenceOf(o, selfOpts), own);
      else for (const j of own) this.host.fanout(this.presenceOf(o, { ...selfOpts, first: j }), [j]);
    }
  }

  /** The presence a session sent last becomes the occupant's. */
  private setPresence(o: Occupant, session: Jid, children: Element[]): void {
    o.presence = children;
    o.sessionPresence.set(session.full, children);
  }

  // ---- entering and leaving (XEP-0045 §7.2, §7.14) ----

  /** Presence from a real JID to room/nick. */
  presence(stanza: Element, from: Jid, to: Jid, creating: boolean): void {
    const type = stanza.attrs.type;
    const current = this.bySession.get(from.full);
    if (type === 'error') {
      // §7.2: a client that answers the room with an error is removed (status 333)
      if (current) this.removeGhost(current, from);
      return;
    }
    if (type === 'unavailable') {
      if (current) this.removeSession(current, from, { children: stanza.getChildren('status') });
      return;
    }
    if (type === 'probe') return this.probe(stanza, from, to);
    if (type !== undefined) return; // subscriptions: rooms have none
    if (!current) return this.join(stanza, from, to, creating);
    if (current.nick !== to.resource) return this.changeNick(current, stanza, from, to);
    this.setPresence(current, from, clientChildren(stanza, this.jid.bare));
    const mucX = stanza.getChild('x', NS_MUC);
    if (mucX) {
      // §17.3: a join from a session already in the room is a full resynchronisation
      this.sendRoomState(current, from, [], mucX);
      return;
    }
    // a presence update (§7.7); beyond the rate it is kept (newcomers see it) but not broadcast,
    // since an error from the occupant's own JID would tell its client it had left
    if (!this.takePresenceToken(current)) return;
    this.broadcastPresence(current, {});
  }

  /**
   * §17.3 rule 4: a probe of an occupant JID, answered as Prosody does: to occupants only (others
   * get not-acceptable, as any stanza through the room), with the presence they would have been
   * broadcast; a reserved nickname nobody uses gets unavailable with its affiliation.
   */
  private probe(stanza: Element, from: Jid, to: Jid): void {
    const me = this.bySession.get(from.full);
    if (!me) return void this.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'you are not in this room')));
    const target = this.occupants.get(to.resource);
    if (target && this.seesPresenceOf(me, target)) {
      return this.host.fanout(this.presenceOf(target, { withJid: target === me || this.canSeeJids(me) }), [from]);
    }
    const member = target ? undefined : this.nickOwner(to.resource);
    if (!member) return void this.host.send(errorReply(stanza, new StanzaError('item-not-found', 'nobody with that nickname is here')));
    const info = { affiliation: this.affiliation(member), role: 'none', nick: to.resource, jid: this.canSeeJids(me) ? member : undefined };
    this.host.fanout(x('presence', { from: to.full, type: 'unavailable' }, x('x', { xmlns: NS_USER }, x('item', info))), [from]);
  }

  /** Unavailable or error presence to the bare room JID: from an occupant, as if sent to its nick. */
  presenceToRoom(stanza: Element, from: Jid): void {
    const o = this.bySession.get(from.full);
    if (o) this.presence(stanza, from, o.jid, false);
  }

  private join(stanza: Element, from: Jid, to: Jid, creating: boolean): void {
    const nick = to.resource;
    if (nick.trim() === '') return void this.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'a nickname cannot be blank')));
    const bare = from.bare;
    const aff = this.affiliation(bare);
    const mucX = stanza.getChild('x', NS_MUC);
    const deny = (cond: ConstructorParameters<typeof StanzaError>[0], text?: string): void => {
      const err = new StanzaError(cond, text);
      this.host.send(errorReply(stanza, err));
    };
    const serverAdmin = this.host.isServerAdmin(from);
    if (this.locked && aff !== 'owner') return deny('item-not-found', 'this room is locked until its owner configures it');
    const entry = mayEnter(aff, this.config.membersOnly);
    if (!entry.ok && !serverAdmin) return deny(entry.condition, entry.text);
    const existing = this.occupants.get(nick);
    if (existing && existing.bare !== bare) return deny('conflict', 'that nickname is in use');
    const reservedBy = this.nickOwner(nick);
    if (reservedBy && reservedBy !== bare) return deny('conflict', 'that nickname is reserved');
    if (this.config.password !== '' && AFF_RANK[aff] < AFF_RANK.owner) {
      const given = mucX?.getChildText('password');
      if (given !== this.config.password) {
        const err = new StanzaError('not-authorized', 'a password is required');
        err.echo = false;
        return void this.host.send(errorReply(stanza, err));
      }
    }
    if (!existing && this.occupants.size >= this.maxUsers() && AFF_RANK[aff] < AFF_RANK.admin && !serverAdmin)
      return void this.host.send(errorReply(stanza, new StanzaError('service-unavailable', 'the room is full', 'wait')));

    const children = clientChildren(stanza, this.jid.bare);
    let o = existing;
    if (o) {
      // another session of the same user under the same nick (multi-session nick)
      o.sessions.set(from.full, from);
      this.setPresence(o, from, children);
    } else {
      const now = Date.now();
      const limits = this.host.limits();
      o = {
        nick,
        jid: to,
        bare,
        sessions: new Map([[from.full, from]]),
        presence: children,
        sessionPresence: new Map([[from.full, children]]),
        role: this.defaultRole(serverAdmin && aff === 'none' ? 'admin' : aff),
        occupantId: this.occupantId(bare),
        tokens: limits.messageBurst,
        refill: now,
        ptokens: limits.presenceBurst,
        prefill: now,
      };
    }
    const newcomer: Occupant = o;
    if (!existing) this.occupants.set(nick, newcomer);
    this.bySession.set(from.full, newcomer);
    this.allTargets = undefined;
    this.host.track(this, from, true);
    // 2. the newcomer to everyone else (before its own list, which it gets in sendRoomState);
    // a further session of a nick: its other sessions too, as the item list grew
    this.broadcastPresence(newcomer, existing ? { skipSession: from.full } : { skipSelf: true });
    const selfCodes: number[] = [];
    if (creating) selfCodes.push(STATUS.created);
    this.sendRoomState(newcomer, from, selfCodes, mucX);
  }

  /**
   * What a session gets on entering (§7.2.3), or on re-sending its join: 1. the other
   * occupants, 3. its self-presence (110 and the room's codes), 4. history, 5. the subject.
   */
  private sendRoomState(o: Occupant, session: Jid, extraCodes: number[], mucX: Element | undefined): void {
    const seeJids = this.canSeeJids(o);
    for (const v of this.occupants.values()) {
      if (v === o || !this.seesPresenceOf(o, v)) continue;
      this.host.fanout(this.presenceOf(v, { withJid: seeJids }), [session]);
    }
    const codes = [...extraCodes];
    if (this.config.whois === 'anyone') codes.push(STATUS.nonAnonymous);
    this.host.fanout(this.presenceOf(o, { withJid: true, self: true, codes, first: session }), [session]);
    this.sendHistory(session, mucX?.getChild('history'));
    const subj = x(
      'message',
      { from: this.subject.from || this.jid.bare, type: 'groupchat', id: this.host.newId() },
      x('subject', null, this.subject.text),
    );
    this.host.fanout(subj, [session]);
  }

  private sendHistory(to: Jid, h: Element | undefined): void {
    for (const m of this.history.select(this.config.historyLength, h)) this.host.fanout(m, [to]);
  }

  private changeNick(o: Occupant, stanza: Element, from: Jid, to: Jid): void {
    const nick = to.resource;
    if (nick.trim() === '') return void this.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'a nickname cannot be blank')));
    const other = this.occupants.get(nick);
    const reservedBy = this.nickOwner(nick);
    if ((other && other !== o) || (reservedBy && reservedBy !== o.bare)) {
      return void this.host.send(errorReply(stanza, new StanzaError('conflict', 'that nickname is in use')));
    }
    if (!this.takePresenceToken(o)) {
      return void this.host.send(errorReply(stanza, new StanzaError('resource-constraint', 'presence changes too fast; slow down')));
    }
    // §7.6: unavailable with 303 and the new nick, then available under the new nick
    this.broadcastPresence(o, { type: 'unavailable', codes: [STATUS.nickChanged], item: { nick, role: o.role }, children: [] });
    this.occupants.delete(o.nick);
    o.nick = nick;
    o.jid = to;
    this.setPresence(o, from, clientChildren(stanza, this.jid.bare));
    this.occupants.set(nick, o);
    this.broadcastPresence(o, {});
  }

  /** One session of an occupant goes; the occupant leaves with its last session. */
  removeSession(o: Occupant, session: Jid, opts: { codes?: number[]; children?: Element[]; statusText?: string } = {}): void {
    if (!o.sessions.has(session.full)) return;
    if (this.locked && this.occupants.size === 1 && o.sessions.size === 1) {
      // §10.1.2: the owner left a room it never configured: the room is destroyed
      this.destroy(undefined, 'the room was never configured');
      return;
    }
    o.sessions.delete(session.full);
    this.bySession.delete(session.full);
    this.allTargets = undefined;
    this.host.track(this, session, false);
    const children = opts.children ?? (opts.statusText ? [x('status', null, opts.statusText)] : []);
    if (o.sessions.size > 0) {
      // the leaving session still hears that it left; the others see the sessions that stay, and
      // the presence of the latest of them
      this.host.fanout(this.presenceOf(o, { type: 'unavailable', withJid: true, self: true, codes: opts.codes, children, jid: session }), [
        session,
      ]);
      o.sessionPresence.delete(session.full);
      o.presence = o.sessionPresence.get([...o.sessions.keys()].at(-1)!) ?? o.presence;
      this.broadcastPresence(o, {});
      return;
    }
    const self = this.presenceOf(o, { type: 'unavailable', withJid: true, self: true, codes: opts.codes, children, jid: session });
    this.occupants.delete(o.nick);
    this.broadcastPresence(o, { type: 'unavailable', codes: opts.codes, children, skipSelf: true, jid: session });
    this.host.fanout(self, [session]);
    this.afterLeave();
  }

  /** §11.1: the service removes a session it cannot reach (status 333, to it and to the others). */
  removeGhost(o: Occupant, session: Jid): void {
    this.removeSession(o, session, { codes: [STATUS.error], statusText: 'removed after a delivery error' });
  }

  /**
   * An error message from a real JID to the room or an occupant: a message the room sent
   * bounced. §18.1.2: a delivery error means the session is gone; other errors change nothing,
   * and an error is never answered.
   */
  private bounced(stanza: Element, from: Jid): void {
    const o = this.bySession.get(from.full);
    if (o && isDeliveryError(stanza)) this.removeGhost(o, from);
  }

  /** Remove a whole occupant (kick, ban, membership loss) with the given codes and actor. */
  private evict(o: Occupant, codes: number[], item: { actor?: Actor; reason?: string; affiliation?: Affiliation }): void {
    const sessions = [...o.sessions.values()];
    const opts = { type: 'unavailable' as const, codes, item: { ...item, role: 'none' as Role }, children: [] };
    this.broadcastPresence(o, opts);
    for (const s of sessions) {
      this.bySession.delete(s.full);
      this.host.track(this, s, false);
    }
    o.sessions.clear();
    this.occupants.delete(o.nick);
    this.allTargets = undefined;
    this.afterLeave();
  }

  private afterLeave(): void {
    if (!this.empty) return;
    if (this.locked || !this.config.persistent) this.host.dispose(this);
  }

  // ---- messages (§7.4, §7.5, §7.8, §7.13, §8.1) ----

  private takeToken(o: Occupant): boolean {
    const { messageRate, messageBurst } = this.host.limits();
    if (messageRate <= 0) return true;
    const now = Date.now();
    o.tokens = Math.min(messageBurst, o.tokens + ((now - o.refill) / 1000) * messageRate);
    o.refill = now;
    if (o.tokens < 1) return false;
    o.tokens -= 1;
    return true;
  }

  private takePresenceToken(o: Occupant): boolean {
    const { presenceRate, presenceBurst } = this.host.limits();
    if (presenceRate <= 0) return true;
    const now = Date.now();
    o.ptokens = Math.min(presenceBurst, o.ptokens + ((now - o.prefill) / 1000) * presenceRate);
    o.prefill = now;
    if (o.ptokens < 1) return false;
    o.ptokens -= 1;
    return true;
  }

  /** A message from a real JID to the room's bare JID. */
  message(stanza: Element, from: Jid): void {
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'error') return this.bounced(stanza, from);
    const o = this.bySession.get(from.full);
    if (this.locked && !o) return void this.host.send(errorReply(stanza, new StanzaError('item-not-found', 'no such room')));
    if (type === 'groupchat') return this.groupchat(stanza, from, o);
    const ux = stanza.getChild('x', NS_USER);
    if (ux && (ux.getChild('invite') || ux.getChild('decline'))) return this.invitations(stanza, from, o, ux);
    const form = SubmittedForm.in(stanza);
    if (form?.formType === NS_REQUEST) return this.voiceRequest(stanza, from, o, form);
    if (!o) return void this.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'you are not in this room')));
    this.host.send(
      errorReply(stanza, new StanzaError('bad-request', 'send groupchat messages, invitations or voice requests to the room')),
    );
  }

  private groupchat(stanza: Element, from: Jid, o: Occupant | undefined): void {
    const err = (cond: ConstructorParameters<typeof StanzaError>[0], text: string): void =>
      this.host.send(errorReply(stanza, new StanzaError(cond, text)));
    if (!o) return err('not-acceptable', 'only occupants may send messages to the room');
    if (o.role === 'visitor') return err('forbidden', 'you have no voice in this room');
    const subject = stanza.getChild('subject');
    // §8.1: a subject with a body or a thread is a message, not a subject change
    const hasBody = stanza.getChild('body') !== undefined || stanza.getChild('thread') !== undefined;
    if (subject && !hasBody && !(o.role === 'moderator' || this.config.changeSubject))
      return err('forbidden', 'only moderators may change the subject of this room');
    if (!this.takeToken(o)) return err('resource-constraint', 'too many messages; slow down');
    const stanzaId = this.host.newId();
    const m = new Element('message', {
      from: o.jid.full,
      type: 'groupchat',
      id: stanza.attrs.id ?? stanzaId,
      'xml:lang': stanza.attrs['xml:lang'],
    });
    if (m.attrs['xml:lang'] === undefined) delete m.attrs['xml:lang'];
    m.children = clientChildren(stanza, this.jid.bare);
    m.children.push(
      x('stanza-id', { xmlns: NS_SID, id: stanzaId, by: this.jid.bare }),
      x('occupant-id', { xmlns: NS_OCCUPANT_ID, id: o.occupantId }),
    );
    if (subject && !hasBody) {
      this.subject = { text: subject.getText(), from: o.jid.full };
      if (this.config.persistent) this.host.persist(this, 'room');
    } else if (hasBody) this.remember(m, stanzaId);
    // the room's archive keeps messages and subject changes, once (XEP-0313 §7.2)
    if (hasBody || subject) this.archiveMessage(m, stanzaId, o.jid.full);
    this.host.fanout(m, this.targets());
  }

  private archiveMessage(m: Element, stanzaId: string, sender: string): void {
    if (!this.host.archiving) return;
    this.host.archive.add({ owner: this.jid.bare, id: stanzaId, ts: Date.now(), with: sender, withFull: sender, stanza: m.toString() });
  }

  private remember(m: Element, stanzaId: string): void {
    this.history.remember(m, stanzaId, Math.min(this.host.limits().maxHistory, this.config.historyLength));
  }

  /** A private message to room/nick (§7.5). */
  privateMessage(stanza: Element, from: Jid, to: Jid): void {
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'error') return this.bounced(stanza, from);
    const err = (cond: ConstructorParameters<typeof StanzaError>[0], text: string): void =>
      this.host.send(errorReply(stanza, new StanzaError(cond, text)));
    if (type === 'groupchat') return err('bad-request', 'groupchat messages go to the room, not to an occupant');
    const o = this.bySession.get(from.full);
    if (!o) return err('not-acceptable', 'only occupants may send private messages');
    const target = this.occupants.get(to.resource);
    if (!target) return err('item-not-found', 'no such occupant');
    const policy = this.config.allowPm;
    const allowed =
      o.role === 'moderator' || policy === 'anyone' || (policy === 'participants' && ROLE_RANK[o.role] >= ROLE_RANK.participant);
    if (!allowed || policy === 'none') return err('forbidden', 'private messages are not allowed here');
    if (!this.takeToken(o)) return err('resource-constraint', 'too many messages; slow down');
    const m = new Element('message', { ...stanza.attrs, from: o.jid.full });
    delete m.attrs.to;
    m.children = clientChildren(stanza, this.jid.bare);
    m.children.push(x('x', { xmlns: NS_USER }), x('occupant-id', { xmlns: NS_OCCUPANT_ID, id: o.occupantId }));
    this.host.fanout(m, [...target.sessions.values()]);
  }

  private invitations(stanza: Element, from: Jid, o: Occupant | undefined, ux: Element): void {
    const invites = ux.getChildren('invite');
    if (invites.length) {
      const aff = this.affiliation(from.bare);
      const mayInvite = o !== undefined && (!this.config.membersOnly || this.config.allowInvites || AFF_RANK[aff] >= AFF_RANK.admin);
      if (!o) return void this.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'only occupants may invite')));
      if (!mayInvite || (!this.config.allowInvites && AFF_RANK[aff] < AFF_RANK.admin && o.role !== 'moderator'))
        return void this.host.send(errorReply(stanza, new StanzaError('forbidden', 'you may not invite people to this room')));
      for (const inv of invites) {
        let to: Jid;
        try {
          to = Jid.parse(inv.attrs.to ?? '');
        } catch {
          return void this.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'bad invitee address')));
        }
        // §9.4: in a members-only room, an invitation from an admin (or allowed occupant) makes the invitee a member
        if (this.config.membersOnly && this.affiliation(to.bare) === 'none')
          this.setAffiliation(to.bare, 'member', { nick: o.nick, jid: from.bare }, undefined);
        const reason = inv.getChildText('reason');
        this.host.send(
          x(
            'message',
            { from: this.jid.bare, to: to.full, id: stanza.attrs.id ?? this.host.newId() },
            x(
              'x',
              { xmlns: NS_USER },
              x('invite', { from: from.bare }, reason ? x('reason', null, reason) : undefined, inv.getChild('continue')),
              this.config.password ? x('password', null, this.config.password) : undefined,
            ),
            x('body', null, `${from.bare} invites you to the room ${this.jid.bare}${reason ? ` (${reason})` : ''}`),
          ),
        );
      }
      return;
    }
    const decline = ux.getChild('decline')!;
    let to: Jid;
    try {
      to = Jid.parse(decline.attrs.to ?? '');
    } catch {
      return void this.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'bad address in decline')));
    }
    const reason = decline.getChildText('reason');
    this.host.send(
      x(
        'message',
        { from: this.jid.bare, to: to.full, id: stanza.attrs.id ?? this.host.newId() },
        x('x', { xmlns: NS_USER }, x('decline', { from: from.bare }, reason ? x('reason', null, reason) : undefined)),
      ),
    );
  }

  /** §7.13 voice requests from visitors, §8.6 approvals from moderators. */
  private voiceRequest(stanza: Element, from: Jid, o: Occupant | undefined, form: SubmittedForm): void {
    if (!o) return void this.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'you are not in this room')));
    if (form.type === 'submit' && o.role === 'moderator' && form.has('muc#request_allow')) {
      if (form.bool('muc#request_allow') !== true) return;
      const nick = form.text('muc#roomnick');
      const target = nick ? this.occupants.get(nick) : undefined;
      if (target && target.role === 'visitor') this.setRole(target, 'participant', { nick: o.nick, jid: from.bare }, undefined);
      return;
    }
    if (o.role !== 'visitor') return;
    const request = dataForm(
      'form',
      NS_REQUEST,
      [
        { var: 'muc#role', type: 'list-single', label: 'Requested role', value: 'participant', options: [{ value: 'participant' }] },
        { var: 'muc#jid', type: 'jid-single', label: 'User ID', value: from.bare },
        { var: 'muc#roomnick', type: 'text-single', label: 'Room nickname', value: o.nick },
        { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', value: false },
      ],
      { title: 'Voice request', instructions: 'To approve this request for voice, select "Grant voice" and submit.' },
    );
    const mods: Jid[] = [];
    for (const v of this.occupants.values()) if (v.role === 'moderator') for (const j of v.sessions.values()) mods.push(j);
    this.host.fanout(x('message', { from: this.jid.bare, id: this.host.newId() }, request), mods);
  }

  // ---- IQs to the room (§8, §9, §10, disco, XEP-0410, XEP-0425) ----

  /** Answer an IQ addressed to the room's bare JID; returns the result payload. */
  iq(stanza: Element, from: Jid): Element | undefined | Promise<Element | undefined> {
    const type = stanza.attrs.type;
    const payload = stanza.getChildElements()[0]!;
    const ns = payload.attrs.xmlns;
    if (ns === NS_DISCO_INFO && type === 'get') return this.discoInfo(payload.attrs.node, from);
    if (ns === NS_DISCO_ITEMS && type === 'get') {
      if (payload.attrs.node) throw new StanzaError('item-not-found');
      return x('query', { xmlns: NS_DISCO_ITEMS });
    }
    if (ns === NS_PING && type === 'get') return undefined;
    if (ns === NS_ADMIN && payload.name === 'query') return type === 'get' ? adminGet(this, payload, from) : adminSet(this, payload, from);
    if (ns === NS_OWNER && payload.name === 'query') return type === 'get' ? this.ownerGet(from) : this.ownerSet(payload, from);
    if (ns === NS_REGISTER && payload.name === 'query') return this.register(type === 'get', payload, from);
    const moderation = type === 'set' ? moderationRequest(payload) : undefined;
    if (moderation) return this.moderate(moderation, from);
    if (ns === NS_MAM && (payload.name === 'query' || payload.name === 'metadata') && this.host.archiving)
      return this.mamQuery(type === 'get', payload, from);
    throw new StanzaError('service-unavailable');
  }

  /** XEP-0313 on the room's JID: whoever may enter may read (§8.2 of XEP-0313: members-only rooms, members and up). */
  private async mamQuery(get: boolean, payload: Element, from: Jid): Promise<Element | undefined> {
    const aff = this.host.isServerAdmin(from) ? 'owner' : this.affiliation(from.bare);
    if (aff === 'outcast' || (this.config.membersOnly && AFF_RANK[aff] < AFF_RANK.member))
      throw new StanzaError('forbidden', 'only those who may enter the room may read its archive');
    // a password-protected room: those who got in with the password (occupants) and owners
    if (this.config.password !== '' && aff !== 'owner' && !this.bySession.has(from.full))
      throw new StanzaError('forbidden', 'enter the room (with its password) to read its archive');
    if (payload.name === 'metadata') return mamMetadata(this.host.archive, this.jid.bare);
    if (get) return mamForm();
    const q = parseMamQuery(this.jid.bare, payload, { defaultMax: 50, maxMax: 250 });
    // results and the IQ answer (service.ts) both go through fan-out, which keeps their order per session
    return runMamQuery(this.host.archive, q, payload.attrs.queryid, (msg) => {
      msg.attrs.from = this.jid.bare;
      this.host.fanout(msg, [from]);
    });
  }

  private discoInfo(node: string | undefined, from: Jid): Element {
    if (node === 'x-roomuser-item') {
      // §7.12: the user's reserved nickname
      const nick = this.affiliations.get(from.bare)?.nick;
      return x(
        'query',
        { xmlns: NS_DISCO_INFO, node },
        nick ? x('identity', { category: 'conference', type: 'text', name: nick }) : undefined,
      );
    }
    if (node) throw new StanzaError('item-not-found');
    const c = this.config;
    const features = [
      NS_MUC,
      NS_STABLE_ID,
      NS_SELF_PING,
      NS_OCCUPANT_ID,
      NS_SID,
      NS_MODERATE,
      NS_MODERATE_0,
      NS_REQUEST,
      NS_REGISTER,
      NS_DISCO_INFO,
      NS_PING,
      ...(this.host.archiving ? [NS_MAM, 'urn:xmpp:mam:2#extended'] : []),
      c.public ? 'muc_public' : 'muc_hidden',
      c.persistent ? 'muc_persistent' : 'muc_temporary',
      c.membersOnly ? 'muc_membersonly' : 'muc_open',
      c.moderated ? 'muc_moderated' : 'muc_unmoderated',
      c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
      c.password ? 'muc_passwordprotected' : 'muc_unsecured',
    ];
    const info = dataForm('result', NS_ROOMINFO, [
      { var: 'muc#roominfo_description', label: 'Description', value: c.description },
      { var: 'muc#roominfo_occupants', label: 'Number of occupants', value: this.occupants.size },
      { var: 'muc#roominfo_subject', label: 'Subject', value: this.subject.text },
      { var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'Occupants may change the subject', value: c.changeSubject },
      { var: 'muc#roomconfig_roomname', label: 'Name', value: c.name },
      { var: 'muc#roomconfig_changesubject', type: 'boolean', value: c.changeSubject },
      { var: 'muc#maxhistoryfetch', label: 'Maximum history', value: c.historyLength },
      ...(c.lang ? [{ var: 'muc#roominfo_lang', label: 'Language', value: c.lang }] : []),
    ]);
    return x(
      'query',
      { xmlns: NS_DISCO_INFO },
      x('identity', { category: 'conference', type: 'text', name: c.name || this.name }),
      features.sort().map((f) => x('feature', { var: f })),
      info,
    );
  }

  requester(from: Jid): { aff: Affiliation; occupant?: Occupant; actor: Actor } {
    const occupant = this.bySession.get(from.full);
    const aff = this.host.isServerAdmin(from) ? 'owner' : this.affiliation(from.bare);
    return { aff, occupant, actor: { nick: occupant?.nick, jid: from.bare } };
  }

  maxAffiliations(): number {
    return this.host.limits().maxAffiliations;
  }

  kick(o: Occupant, actor: Actor | undefined, reason: string | undefined): void {
    this.evict(o, [STATUS.kicked], { actor, reason });
  }

  setRole(o: Occupant, role: Role, actor: Actor | undefined, reason: string | undefined): void {
    if (o.role === role) return;
    o.role = role;
    this.broadcastPresence(o, { item: { actor, reason } });
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
      if (affiliation === 'outcast') this.evict(o, [STATUS.banned], { actor, reason, affiliation: 'outcast' });
      else if (this.config.membersOnly && AFF_RANK[affiliation] < AFF_RANK.member)
        this.evict(o, [STATUS.affiliationChanged], { actor, reason, affiliation });
      else {
        o.role = this.defaultRole(affiliation);
        this.allTargets = undefined;
        this.broadcastPresence(o, { item: { actor, reason } });
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

  private ownerGet(from: Jid): Element {
    enforce(mayConfigure(this.requester(from).aff));
    const list = (a: string): string[] => [...this.affiliations].filter(([, v]) => v.affiliation === a).map(([j]) => j);
    return x('query', { xmlns: NS_OWNER }, roomConfigForm(this.config, this.host.limits(), list('owner'), list('admin')));
  }

  private ownerSet(q: Element, from: Jid): undefined {
    const { aff, actor } = this.requester(from);
    enforce(mayConfigure(aff));
    const destroy = q.getChild('destroy');
    if (destroy) {
      this.destroy(destroy.attrs.jid, destroy.getChildText('reason') ?? undefined);
      return undefined;
    }
    const formEl = q.getChild('x', 'jabber:x:data');
    if (!formEl) throw new StanzaError('bad-request', 'send a data form or <destroy/>');
    const form = new SubmittedForm(formEl);
    if (form.type === 'cancel') {
      // §10.1.3: cancelling the configuration of a new room destroys it
      if (this.locked) this.destroy(undefined, undefined);
      return undefined;
    }
    if (form.type !== 'submit') throw new StanzaError('bad-request', 'the form must be of type submit or cancel');
    const limits = this.host.limits();
    const next = applyConfigForm(this.config, form, limits);
    const owners = form.values('muc#roomconfig_roomowners');
    const admins = form.values('muc#roomconfig_roomadmins');
    const parse = (list: string[] | undefined): string[] | undefined => {
      if (!list) return undefined;
      try {
        return list.filter((s) => s !== '').map((s) => Jid.parse(s).bare);
      } catch {
        throw new StanzaError('jid-malformed', 'bad JID in the owner or admin list');
      }
    };
    const ownerList = parse(owners);
    const adminList = parse(admins);
    if (ownerList && ownerList.length === 0) throw new StanzaError('not-acceptable', 'a room needs at least one owner');
    const prev = this.config;
    const wasPersistent = prev.persistent;
    this.config = next;
    const wasLocked = this.locked;
    this.locked = false;
    if (next.persistent) this.host.persist(this, 'room');
    if (next.persistent && (!wasPersistent || wasLocked)) {
      for (const [jid, a] of this.affiliations) this.host.persistAffiliation(this, { jid, ...a });
    }
    if (!next.persistent && wasPersistent) this.host.persist(this, 'remove');
    const applyList = (list: string[] | undefined, a: 'owner' | 'admin'): void => {
      if (!list) return;
      for (const [jid, v] of [...this.affiliations])
        if (v.affiliation === a && !list.includes(jid)) this.setAffiliation(jid, 'none', actor, undefined);
      for (const jid of list) if (this.affiliation(jid) !== a) this.setAffiliation(jid, a, actor, undefined);
    };
    applyList(ownerList, 'owner');
    applyList(adminList, 'admin');
    if (next.membersOnly && !prev.membersOnly) {
      // §9.x: non-members are removed when a room becomes members-only (status 322)
      for (const o of [...this.occupants.values()])
        if (AFF_RANK[this.affiliation(o.bare)] < AFF_RANK.member) this.evict(o, [STATUS.membersOnly], { actor });
    }
    if (this.empty) this.afterLeave();
    if (!wasLocked) {
      const codes = [STATUS.configChanged];
      if (next.whois !== prev.whois) codes.push(next.whois === 'anyone' ? STATUS.nowNonAnonymous : STATUS.nowSemiAnonymous);
      this.host.fanout(
        x(
          'message',
          { from: this.jid.bare, type: 'groupchat', id: this.host.newId() },
          x(
            'x',
            { xmlns: NS_USER },
            codes.map((c) => x('status', { code: c })),
          ),
        ),
        this.targets(),
      );
    }
    return undefined;
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
      const p = this.presenceOf(o, {
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

  /** §7.10 registration: a member with a reserved nickname. */
  private register(get: boolean, q: Element, from: Jid): Element | undefined {
    const a = this.affiliations.get(from.bare);
    if (get) {
      if (a?.nick) return x('query', { xmlns: NS_REGISTER }, x('registered'), x('username', null, a.nick));
      if (this.config.membersOnly && !a)
        throw new StanzaError('not-allowed', 'registration in this room is closed; ask an admin for membership');
      return x(
        'query',
        { xmlns: NS_REGISTER },
        x('instructions', null, 'Choose the nickname to reserve in this room.'),
        dataForm('form', NS_REGISTER_FORM, [{ var: 'muc#register_roomnick', type: 'text-single', label: 'Nickname', required: true }]),
      );
    }
    if (q.getChild('remove')) {
      if (!a) throw new StanzaError('item-not-found', 'you are not registered');
      if (a.affiliation === 'member') this.setAffiliation(from.bare, 'none', undefined, undefined);
      else {
        delete a.nick;
        if (this.config.persistent) this.host.persistAffiliation(this, { jid: from.bare, ...a });
      }
      return undefined;
    }
    const form = SubmittedForm.in(q);
    if (!form || form.type !== 'submit') throw new StanzaError('bad-request', 'submit the registration form');
    const raw = form.text('muc#register_roomnick') ?? '';
    let nick: string;
    try {
      nick = this.jid.withResource(raw).resource;
    } catch {
      throw new StanzaError('not-acceptable', 'that nickname is not valid');
    }
    // only the Nickname-profile form (RFC 8266) may enter (see the join), so only that is registered
    let prepared: string | undefined;
    try {
      prepared = nick ? enforceNickname(nick) : nick;
    } catch {
      prepared = undefined;
    }
    if (prepared !== nick)
      throw new StanzaError('not-acceptable', prepared ? `use the nickname "${prepared}"` : 'that nickname is not valid');
    if (!nick) throw new StanzaError('not-acceptable', 'a nickname is required');
    const owner = this.nickOwner(nick);
    const occ = this.occupants.get(nick);
    if ((owner && owner !== from.bare) || (occ && occ.bare !== from.bare)) throw new StanzaError('conflict', 'that nickname is taken');
    enforce(mayRegister(a?.affiliation ?? 'none', this.config.membersOnly));
    this.setAffiliation(from.bare, a?.affiliation ?? 'member', undefined, a?.reason, nick);
    return undefined;
  }

  nickOwner(nick: string): string | undefined {
    for (const [jid, a] of this.affiliations) if (a.nick === nick) return jid;
    return undefined;
  }

  /**
   * XEP-0425: a moderator retracts a message by its stanza-id, in either form of the request. The
   * message becomes a tombstone in the history and in the archive (which may hold it alone); the
   * announcement goes to the room and into its history and archive, so clients catching up learn of it.
   */
  private moderate(req: ModerationRequest, from: Jid): undefined | Promise<undefined> {
    const me = this.bySession.get(from.full);
    if (me?.role !== 'moderator') throw new StanzaError('forbidden', "only moderators may moderate other participants' messages");
    const by = { jid: me.jid.full, occupantId: me.occupantId };
    const at = dateTime();
    const inHistory = this.history.replace(req.id, (s) => tombstone(s, by, req.reason, at));
    const announce = (): undefined => {
      const stanzaId = this.host.newId();
      const m = announcement(req, by, this.jid.bare, stanzaId);
      this.remember(m, stanzaId);
      this.archiveMessage(m, stanzaId, this.jid.bare);
      this.host.fanout(m, this.targets());
      return undefined;
    };
    // without an archive the history is all the room knows: a message gone from it may still be on clients
    if (!this.host.archiving) return announce();
    return replaceArchived(this.host.archive, this.jid.bare, req.id, (s) => tombstone(s, by, req.reason, at)).then((found) => {
      if (!found && !inHistory) throw new StanzaError('item-not-found', 'this room has no message with that id');
      return announce();
    });
  }

  /** An IQ from a real JID to room/nick: self-ping (XEP-0410) or forwarded to that occupant. */
  occupantIq(stanza: Element, from: Jid, to: Jid): void {
    const type = stanza.attrs.type;
    if (type === 'result' || type === 'error') return; // answers to forwarded IQs are matched by the service
    const me = this.bySession.get(from.full);
    const payload = stanza.getChildElements()[0];
    const target = this.occupants.get(to.resource);
    if (!me) {
      // XEP-0410: a ping from a session that is not joined gets not-acceptable; other IQs bad-request (§6.6)
      const cond = payload?.attrs.xmlns === NS_PING ? 'not-acceptable' : 'bad-request';
      return void this.host.send(errorReply(stanza, new StanzaError(cond, 'you are not in this room')));
    }
    if (target === me && payload?.attrs.xmlns === NS_PING) {
      return void this.host.send(x('iq', { type: 'result', id: stanza.attrs.id, from: to.full, to: from.full }));
    }
    if (!target) return void this.host.send(errorReply(stanza, new StanzaError('item-not-found', 'no such occupant')));
    this.host.proxyIq(this, stanza, me, target);
  }

  // ---- persistence ----

  toStored(): { config: string; subject: string } {
    return { config: JSON.stringify(this.config), subject: this.subject.text ? JSON.stringify(this.subject) : '' };
  }

  /** The service is stopping: every occupant is told (status 332). */
  shutdownNotice(): void {
    // each occupant hears only about itself: everyone is leaving, so no N² broadcast
    for (const o of this.occupants.values()) {
      const p = this.presenceOf(o, { type: 'unavailable', withJid: true, self: true, codes: [STATUS.shutdown], children: [] });
      this.host.fanout(p, [...o.sessions.values()]);
      for (const s of o.sessions.values()) this.host.track(this, s, false);
    }
    this.occupants.clear();
    this.bySession.clear();
    this.allTargets = undefined;
  }
}

export { STATUS };
