// The MUC service at conference.<domain>: owns the rooms, routes each stanza
// addressed to the service, a room or an occupant, answers service discovery
// (with XEP-0059 paging), forwards IQs between occupants, writes persistent
// rooms behind, and removes occupants whose sessions went away.
import { randomBytes } from 'node:crypto';
import {
  Element,
  Jid,
  PrecisError,
  parseXml,
  StanzaError,
  enforceNickname,
  errorReply,
  x,
  type ArchiveStore,
  type ModuleContext,
  type RoomAffiliation,
} from '../../src/api/index.js';
import type { RoomConfig } from './config.js';
import { Room, type RoomHost, type RoomLimits } from './room.js';
import type { Occupant } from './presence.js';
import { IqForwarding } from './forwarding.js';
import { directory, type Listed } from './directory.js';
import { NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_PING, NS_RSM, NS_STABLE_ID, NS_UNIQUE } from './ns.js';
import { removeGhost } from './ghosts.js';
import { readSnapshot, restore, snapshot } from './failover.js';

export interface MucSettings {
  domain: string;
  name: string;
  creation: 'anyone' | 'admins';
  max_rooms: number;
  max_occupants: number;
  history: number;
  max_history: number;
  max_affiliations: number;
  message_rate: number;
  message_burst: number;
  presence_rate: number;
  presence_burst: number;
  presence_threshold: number;
  persistent: boolean;
  public: boolean;
  max_pending_iqs: number;
  directory_page: number;
  archive: boolean;
  lock_new_rooms: boolean;
}

export class MucService implements RoomHost {
  readonly rooms = new Map<string, Room>();
  /** rooms each session (real full JID) is in */
  private readonly sessionRooms = new Map<string, Set<Room>>();
  private readonly forwarding = new IqForwarding(
    () => this.m.config.max_pending_iqs,
    (stanza) => this.send(stanza),
    () => this.newId(),
  );
  private writes: Promise<void> = Promise.resolve();
  private readonly idBase = Date.now().toString(36) + randomBytes(3).toString('hex');
  private idCounter = 0;
  /** rooms whose state changed since the cluster last asked (changed()); kept only in a cluster */
  private dirty: Set<string> | undefined;
  /** in a cluster: every node's room listings (Placements) */
  private cluster: { listings(): Promise<Map<string, string>> } | undefined;

  constructor(
    readonly domain: string,
    private readonly m: ModuleContext<MucSettings>,
  ) {}

  get settings(): MucSettings {
    return this.m.config;
  }

  limits(): RoomLimits {
    const s = this.m.config;
    return {
      maxUsers: s.max_occupants,
      maxHistory: s.max_history,
      maxAffiliations: s.max_affiliations,
      messageRate: s.message_rate,
      messageBurst: s.message_burst,
      presenceRate: s.presence_rate,
      presenceBurst: s.presence_burst,
    };
  }

  newId(): string {
    return `${this.idBase}-${(++this.idCounter).toString(36)}`;
  }

  archiveId(room: Room): string {
    return this.archiving ? this.archive.newId(room.jid.bare) : this.newId();
  }

  send(stanza: Element): void {
    this.m.send(stanza);
  }

  fanout(stanza: Element, targets: readonly Jid[]): void {
    this.m.fanout(stanza, targets);
  }

  isServerAdmin(jid: Jid): boolean {
    return this.m.server.isAdmin(jid);
  }

  get archiving(): boolean {
    return this.m.config.archive;
  }
  get archive(): ArchiveStore {
    return this.m.storage.archive;
  }

  defaultConfig(): RoomConfig {
    const s = this.m.config;
    return {
      name: '',
      description: '',
      lang: '',
      public: s.public,
      persistent: s.persistent,
      membersOnly: false,
      moderated: false,
      password: '',
      maxUsers: 0,
      whois: 'moderators',
      historyLength: Math.min(s.history, s.max_history),
      allowPm: 'anyone',
      changeSubject: false,
      allowInvites: true,
      presenceBroadcast: ['moderator', 'participant', 'visitor'],
      presenceThreshold: s.presence_threshold,
      occupantSalt: randomBytes(16).toString('base64url'),
    };
  }

  // ---- persistence (written behind, in order) ----

  private write(what: string, fn: () => Promise<unknown>): void {
    this.writes = this.writes.then(fn).then(
      () => undefined,
      (err: unknown) => this.m.log.error({ err, what }, 'storing a room failed'),
    );
  }

  persist(room: Room, what: 'room' | 'remove'): void {
    if (what === 'remove')
      return this.write(`remove ${room.name}`, async () => {
        await this.m.storage.rooms.remove(this.domain, room.name);
        await this.m.storage.userData.deleteAll(room.jid.bare);
      });
    const { config, subject } = room.toStored();
    this.write(`save ${room.name}`, () => this.m.storage.rooms.save(this.domain, room.name, config, subject));
  }

  async vcard(room: Room): Promise<Element | undefined> {
    const stored = await this.m.storage.userData.get(room.jid.bare, 'muc-vcard', '');
    return stored ? parseXml(stored) : undefined;
  }

  async setVcard(room: Room, card: Element | undefined): Promise<void> {
    if (card) await this.m.storage.userData.set(room.jid.bare, 'muc-vcard', '', card.toString());
    else await this.m.storage.userData.remove(room.jid.bare, 'muc-vcard', '');
  }

  persistAffiliation(room: Room, a: RoomAffiliation | { jid: string; affiliation: 'none' }): void {
    this.write(`affiliation ${room.name}`, () => this.m.storage.rooms.setAffiliation(this.domain, room.name, a));
  }

  /** Wait for every queued write (shutdown, tests). */
  flush(): Promise<void> {
    return this.writes;
  }

  /**
   * The service stops (server stop, module unload): temporary rooms end here and do not
   * come back, so their archives go too, as when they empty (dispose); then the queued writes.
   */
  async close(): Promise<void> {
    if (this.archiving) {
      const temporary = [...this.rooms.values()].filter((r) => !r.config.persistent);
      const results = await Promise.allSettled(temporary.map((r) => this.m.storage.archive.deleteAll(r.jid.bare)));
      for (const r of results) if (r.status === 'rejected') this.m.log.error({ err: r.reason }, 'deleting a room archive failed');
    }
    await this.flush();
  }

  async load(): Promise<void> {
    const stored = await this.loadRooms();
    if (stored) this.m.log.info({ rooms: stored, service: this.domain }, 'persistent rooms loaded');
  }

  /**
   * In a cluster this node now serves `name` (src/cluster/cluster.ts place()): the room
   * may have changed on the node that served it before, so its stored state is read
   * again (a room with occupants here is current already).
   */
  async acquired(name: string, state?: string): Promise<void> {
    const here = this.rooms.get(name);
    if (here && here.occupants.size) return;
    if (here) this.rooms.delete(name);
    const snap = state === undefined ? undefined : readSnapshot(state);
    if (!snap) await this.loadRooms(name);
    else {
      // the node that served it last left its live state (failover.ts): occupants on
      // live sessions stay; those whose sessions died with that node leave (333)
      const room = new Room(name, this, { ...this.defaultConfig(), ...snap.config });
      this.rooms.set(name, room);
      const dead = restore(room, snap, (j) => this.m.sessions.has(j), Date.now());
      for (const { o, session } of dead) if (room.bySession.get(session.full) === o) removeGhost(room, o, session);
      this.dirty?.add(name);
      this.m.log.info({ room: room.jid.bare, occupants: room.occupants.size, lost: dead.length }, 'MUC: serving a room moved from another node');
    }
    const room = this.rooms.get(name);
    if (room && this.archiving) await this.historyFromArchive(room);
  }

  /** A moved room's discussion history: its last messages, from its archive. */
  private async historyFromArchive(room: Room): Promise<void> {
    const max = Math.min(this.limits().maxHistory, room.config.historyLength);
    if (max <= 0) return;
    // the archive also keeps subject changes: the history is the last messages with a body
    const { items } = await this.archive.query({ owner: room.jid.bare, max: max * 2, fromEnd: true });
    const kept = items.filter((it) => it.stanza.includes('<body')).slice(-max);
    for (const it of kept) {
      try {
        room.history.remember(parseXml(it.stanza), it.id, max, it.ts);
      } catch {
        // an unreadable row is not worth the room
      }
    }
    this.m.log.debug({ room: room.jid.bare, history: kept.length }, 'MUC: history of a moved room read from its archive');
  }

  /** (cluster) Rooms changed since the last call, with their snapshots (undefined: gone). */
  changed(): [string, string | undefined][] {
    if (!this.dirty) {
      this.dirty = new Set(this.rooms.keys());
    }
    const out: [string, string | undefined][] = [];
    for (const name of this.dirty) {
      const room = this.rooms.get(name);
      out.push([name, room ? snapshot(room) : undefined]);
    }
    this.dirty.clear();
    return out;
  }

  /** (cluster) Give the service every node's listings. */
  attach(cluster: { listings(): Promise<Map<string, string>> }): void {
    this.cluster = cluster;
  }

  /** (cluster) What the directory lists of a room served here (undefined: not listed). */
  listing(name: string): string | undefined {
    const room = this.rooms.get(name);
    return room && listed(room) ? JSON.stringify({ title: room.config.name || room.name }) : undefined;
  }

  /** The listed rooms: here, and (in a cluster) those other nodes serve. */
  private async listedRooms(): Promise<Listed[]> {
    const out = new Map<string, Listed>();
    if (this.cluster) {
      const elsewhere = await this.cluster.listings().catch((err: unknown) => {
        this.m.log.warn({ err }, 'MUC: reading the cluster’s room listings failed; listing this node’s rooms');
        return new Map<string, string>();
      });
      for (const [name, json] of elsewhere) {
        try {
          const { title } = JSON.parse(json) as { title: string };
          out.set(name, { name, bare: `${name}@${this.domain}`, title });
        } catch {
          // a listing this version cannot read is left out
        }
      }
    }
    // the rooms served here are current: they win, listed or not
    for (const room of this.rooms.values()) {
      if (listed(room)) out.set(room.name, { name: room.name, bare: room.jid.bare, title: room.config.name || room.name });
      else out.delete(room.name);
    }
    return [...out.values()];
  }

  /** (cluster drain) The room's snapshot; it is forgotten here, silently (its occupants stay, served elsewhere). */
  release(name: string): string | undefined {
    const room = this.rooms.get(name);
    if (!room) return undefined;
    const snap = snapshot(room);
    this.forget(room);
    return snap;
  }

  /** (cluster) Another node serves the room now: forget it here, silently. */
  dropped(name: string): void {
    const room = this.rooms.get(name);
    if (room) this.forget(room);
  }

  private forget(room: Room): void {
    this.rooms.delete(room.name);
    this.dirty?.delete(room.name);
    for (const full of room.bySession.keys()) {
      const set = this.sessionRooms.get(full);
      set?.delete(room);
      if (set && !set.size) this.sessionRooms.delete(full);
    }
  }

  /** (cluster) A stanza changed a room's state (anything but a plain groupchat message): its snapshot is due. */
  private touch(stanza: Element, to: Jid): void {
    if (!this.dirty || to.local === '') return;
    if (stanza.name === 'message' && stanza.attrs.type !== 'error' && !stanza.getChild('subject')) return;
    if (stanza.name === 'iq' && stanza.attrs.type === 'get') return;
    this.dirty.add(to.local);
  }

  /** Stored rooms (or just `only`) into memory; returns how many. */
  private async loadRooms(only?: string): Promise<number> {
    let stored = await this.m.storage.rooms.all(this.domain);
    if (only !== undefined) stored = stored.filter((r) => r.name === only);
    for (const r of stored) {
      let config: RoomConfig;
      try {
        config = { ...this.defaultConfig(), ...(JSON.parse(r.config) as Partial<RoomConfig>), persistent: true };
      } catch (err) {
        this.m.log.error({ err, room: r.name }, 'skipping a stored room with an unreadable configuration');
        continue;
      }
      const room = new Room(r.name, this, config);
      if (r.subject) {
        try {
          room.subject = JSON.parse(r.subject) as Room['subject'];
        } catch {
          // a bad subject is not worth losing the room over
        }
      }
      for (const a of r.affiliations) room.affiliations.set(a.jid, { affiliation: a.affiliation, nick: a.nick, reason: a.reason });
      this.rooms.set(r.name, room);
    }
    return stored.length;
  }

  // ---- the room index ----

  track(room: Room, session: Jid, joined: boolean): void {
    let set = this.sessionRooms.get(session.full);
    if (joined) {
      if (!set) this.sessionRooms.set(session.full, (set = new Set()));
      set.add(room);
    } else if (set) {
      set.delete(room);
      if (set.size === 0) this.sessionRooms.delete(session.full);
    }
  }

  dispose(room: Room): void {
    if (this.rooms.get(room.name) !== room) return;
    this.rooms.delete(room.name);
    this.dirty?.add(room.name);
    // a room that is gone takes its archive with it
    if (this.archiving)
      this.m.storage.archive.deleteAll(room.jid.bare).catch((err: unknown) => this.m.log.error({ err }, 'deleting a room archive failed'));
  }

  /** A session was lost with its node (cluster): removed from its rooms as a ghost (status 333). */
  lost(session: Jid): void {
    const set = this.sessionRooms.get(session.full);
    if (!set) return;
    for (const room of [...set]) {
      const o = room.bySession.get(session.full);
      if (o) removeGhost(room, o, session);
      this.dirty?.add(room.name);
    }
    this.sessionRooms.delete(session.full);
  }

  /** A session went away (or sent unavailable): it leaves every room it was in. */
  leaveAll(session: Jid, children?: Element[]): void {
    const set = this.sessionRooms.get(session.full);
    if (!set) return;
    for (const room of [...set]) {
      const o = room.bySession.get(session.full);
      if (o) room.removeSession(o, session, { children });
      this.dirty?.add(room.name);
    }
    this.sessionRooms.delete(session.full);
  }

  // ---- IQs between occupants ----

  proxyIq(room: Room, stanza: Element, from: Occupant, to: Occupant): void {
    this.forwarding.forward(room, stanza, from, to);
  }

  /** Forwarded IQs nobody answered get remote-server-timeout (every 10 s, index.ts). */
  sweep(now: number): void {
    this.forwarding.sweep(now);
  }

  // ---- dispatch ----

  handle(stanza: Element, from: Jid, to: Jid): void | Promise<void> {
    try {
      this.dispatch(stanza, from, to);
      this.touch(stanza, to);
      // a room message may have queued archive rows: its sender waits while the archive is behind
      if (stanza.name === 'message' && this.archiving) return this.archive.pressure(from.full);
    } catch (e) {
      // a bug in a room must not close the sender's stream
      this.m.log.error({ err: e, stanza: stanza.toString().slice(0, 2000) }, 'MUC stanza failed');
      const err = e instanceof StanzaError ? e : new StanzaError('internal-server-error');
      if (stanza.attrs.type !== 'error' && !(stanza.name === 'iq' && stanza.attrs.type === 'result')) this.send(errorReply(stanza, err));
    }
  }

  private dispatch(stanza: Element, from: Jid, to: Jid): void {
    if (to.domain !== this.domain) return this.send(errorReply(stanza, new StanzaError('item-not-found', 'no such service')));
    if (to.local === '') return this.toService(stanza, from, to);
    const room = this.rooms.get(to.local);
    switch (stanza.name) {
      case 'presence':
        return this.presence(stanza, from, to, room);
      case 'message':
        if (!room) {
          if (stanza.attrs.type !== 'error') this.send(errorReply(stanza, new StanzaError('item-not-found', 'no such room')));
          return;
        }
        return to.resource ? room.privateMessage(stanza, from, to) : room.message(stanza, from);
      case 'iq':
        return this.iq(stanza, from, to, room);
    }
  }

  private presence(stanza: Element, from: Jid, to: Jid, room: Room | undefined): void {
    const type = stanza.attrs.type;
    if (!to.resource) {
      // §7.14 has occupants leave through their occupant JID; like Prosody and ejabberd we also take
      // unavailable (or error) presence to the bare room JID from an occupant as leaving, or no ghost stays
      if (room && (type === 'unavailable' || type === 'error')) return room.presenceToRoom(stanza, from);
      // §7.2.1: entering needs a nickname
      if (type === undefined) this.send(errorReply(stanza, new StanzaError('jid-malformed', 'a nickname is required to enter a room')));
      return;
    }
    if (type === undefined) {
      // XEP-0045 §17.1: a nick is a valid resourcepart (the router answers jid-malformed to one that is
      // not: invisible code points, RFC 7622 §3.4) and never empty or invisible: jid-malformed, as §7.2.1
      // answers a missing one. A service may restrict nicks further: nicks are taken only in the form
      // the Nickname profile (RFC 8266 §2.3) enforces, so "Ｒｏｍｅｏ" or "Romeo " cannot pass for "Romeo";
      // otherwise not-acceptable, the condition §7.6 and §7.10 use for a nick the service refuses.
      let nick: string;
      try {
        nick = enforceNickname(to.resource);
      } catch (e) {
        if (!(e instanceof PrecisError)) throw e;
        return this.send(errorReply(stanza, new StanzaError(e.reason === 'empty' ? 'jid-malformed' : 'not-acceptable', e.message)));
      }
      if (nick !== to.resource) return this.send(errorReply(stanza, new StanzaError('not-acceptable', `use the nickname "${nick}"`)));
    }
    if (room) return room.presence(stanza, from, to, false);
    if (type !== undefined) return;
    // a new room (§10.1)
    const s = this.m.config;
    if (s.creation === 'admins' && !this.isServerAdmin(from))
      return this.send(errorReply(stanza, new StanzaError('not-allowed', 'only administrators may create rooms')));
    if (this.rooms.size >= s.max_rooms)
      return this.send(errorReply(stanza, new StanzaError('resource-constraint', 'this service has too many rooms')));
    const created = new Room(to.local, this, this.defaultConfig());
    created.affiliations.set(from.bare, { affiliation: 'owner' });
    // §10.1.1: a client that does not speak MUC (no <x/>) gets an instant room, unlocked; so does
    // everyone when the operator turned locking off (clients that never send the form, e.g. Profanity)
    created.locked = s.lock_new_rooms && stanza.getChild('x', NS_MUC) !== undefined;
    this.rooms.set(to.local, created);
    if (!created.locked && created.config.persistent) {
      this.persist(created, 'room');
      this.persistAffiliation(created, { jid: from.bare, affiliation: 'owner' });
    }
    created.presence(stanza, from, to, true);
  }

  private iq(stanza: Element, from: Jid, to: Jid, room: Room | undefined): void {
    const type = stanza.attrs.type;
    if (type === 'result' || type === 'error') {
      if (to.resource) this.forwarding.answer(stanza, from, to);
      return;
    }
    if (type !== 'get' && type !== 'set') return this.send(errorReply(stanza, new StanzaError('bad-request', 'bad IQ type')));
    if (stanza.getChildElements().length !== 1)
      return this.send(errorReply(stanza, new StanzaError('bad-request', 'an IQ needs exactly one child')));
    if (!room) return this.send(errorReply(stanza, new StanzaError('item-not-found', 'no such room')));
    if (to.resource) return room.occupantIq(stanza, from, to);
    const failed = (e: unknown): void => {
      if (e instanceof StanzaError) return this.send(errorReply(stanza, e));
      this.m.log.error({ err: e, stanza: stanza.toString().slice(0, 2000) }, 'room IQ failed');
      this.send(errorReply(stanza, new StanzaError('internal-server-error')));
    };
    // through fan-out like the messages a query sends first, so the answer cannot overtake them
    const done = (payload: Element | undefined): void =>
      this.fanout(x('iq', { type: 'result', id: stanza.attrs.id, from: to.full }, payload), [from]);
    let r: ReturnType<Room['iq']>;
    try {
      r = room.iq(stanza, from);
    } catch (e) {
      return failed(e);
    }
    if (r instanceof Promise) r.then(done, failed);
    else done(r);
  }

  private toService(stanza: Element, from: Jid, to: Jid): void {
    const type = stanza.attrs.type;
    if (stanza.name === 'presence') return;
    if (stanza.name === 'message') {
      if (type !== 'error' && type !== 'groupchat') this.send(errorReply(stanza, new StanzaError('service-unavailable')));
      return;
    }
    if (type !== 'get' && type !== 'set') return;
    const payload = stanza.getChildElements()[0];
    const reply = (p?: Element): void => this.send(x('iq', { type: 'result', id: stanza.attrs.id, from: to.full, to: from.full }, p));
    const ns = payload?.attrs.xmlns;
    if (type === 'get' && ns === NS_DISCO_INFO && !payload!.attrs.node)
      return reply(
        x(
          'query',
          { xmlns: NS_DISCO_INFO },
          x('identity', { category: 'conference', type: 'text', name: this.m.config.name }),
          [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_UNIQUE, NS_PING, NS_RSM, NS_STABLE_ID, 'vcard-temp'].sort().map((f) => x('feature', { var: f })),
        ),
      );
    if (type === 'get' && ns === NS_DISCO_ITEMS && !payload!.attrs.node) {
      void this.listedRooms()
        .then((rooms) => reply(directory(rooms, payload!, this.m.config.directory_page)))
        .catch((e: unknown) => {
          if (!(e instanceof StanzaError)) this.m.log.error({ err: e }, 'MUC: the room directory failed');
          this.send(errorReply(stanza, e instanceof StanzaError ? e : new StanzaError('internal-server-error')));
        });
      return;
    }
    if (type === 'get' && ns === NS_UNIQUE && payload!.name === 'unique') {
      let name: string;
      do name = randomBytes(8).toString('hex');
      while (this.rooms.has(name));
      return reply(x('unique', { xmlns: NS_UNIQUE }, name));
    }
    if (type === 'get' && ns === NS_PING) return reply();
    this.send(errorReply(stanza, new StanzaError(ns === NS_DISCO_INFO ? 'item-not-found' : 'service-unavailable')));
  }
}

/** Does the service's directory list this room? (public and unlocked) */
function listed(room: Room): boolean {
  return room.config.public && !room.locked;
}
