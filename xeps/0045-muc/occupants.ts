// Who is in a room (XEP-0045 §7.2, §7.6, §7.14, §17.3): entering (with every
// check of §7.2), the room state a newcomer gets, presence updates, nick
// changes, several sessions under one nick, probes, leaving, and eviction
// (kick, ban, membership lost). An empty temporary room goes away.
import { Element, Jid, StanzaError, errorReply, x } from '../../src/api/index.js';
import { type Affiliation, type Role } from './config.js';
import { type Actor } from './affiliations.js';
import { AFF_RANK, mayEnter } from './permissions.js';
import { STATUS, clientChildren, presenceOf, broadcastPresence, setPresence, takePresenceToken, type Occupant } from './presence.js';
import { removeGhost } from './ghosts.js';
import type { Room } from './room.js';
import { NS_MUC, NS_USER } from './ns.js';

/** Presence from a real JID to room/nick. */
export function presence(room: Room, stanza: Element, from: Jid, to: Jid, creating: boolean): void {
  const type = stanza.attrs.type;
  const current = room.bySession.get(from.full);
  if (type === 'error') {
    // §7.2: a client that answers the room with an error is removed (status 333)
    if (current) removeGhost(room, current, from);
    return;
  }
  if (type === 'unavailable') {
    if (current) removeSession(room, current, from, { children: stanza.getChildren('status') });
    return;
  }
  if (type === 'probe') return probe(room, stanza, from, to);
  if (type !== undefined) return; // subscriptions: rooms have none
  if (!current) return join(room, stanza, from, to, creating);
  if (current.nick !== to.resource) return changeNick(room, current, stanza, from, to);
  setPresence(current, from, clientChildren(stanza, room.jid.bare));
  const mucX = stanza.getChild('x', NS_MUC);
  if (mucX) {
    // §17.3: a join from a session already in the room is a full resynchronisation
    sendRoomState(room, current, from, [], mucX);
    return;
  }
  // a presence update (§7.7); beyond the rate it is kept (newcomers see it) but not broadcast,
  // since an error from the occupant's own JID would tell its client it had left
  if (!takePresenceToken(room, current)) return;
  broadcastPresence(room, current, {});
}

/**
 * §17.3 rule 4: a probe of an occupant JID, answered as Prosody does: to occupants only (others
 * get not-acceptable, as any stanza through the room), with the presence they would have been
 * broadcast; a reserved nickname nobody uses gets unavailable with its affiliation.
 */
function probe(room: Room, stanza: Element, from: Jid, to: Jid): void {
  const me = room.bySession.get(from.full);
  if (!me) return void room.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'you are not in this room')));
  const target = room.occupants.get(to.resource);
  if (target && room.seesPresenceOf(me, target)) {
    return room.host.fanout(presenceOf(room, target, { withJid: target === me || room.canSeeJids(me) }), [from]);
  }
  const member = target ? undefined : room.nickOwner(to.resource);
  if (!member) return void room.host.send(errorReply(stanza, new StanzaError('item-not-found', 'nobody with that nickname is here')));
  const info = { affiliation: room.affiliation(member), role: 'none', nick: to.resource, jid: room.canSeeJids(me) ? member : undefined };
  room.host.fanout(x('presence', { from: to.full, type: 'unavailable' }, x('x', { xmlns: NS_USER }, x('item', info))), [from]);
}

function join(room: Room, stanza: Element, from: Jid, to: Jid, creating: boolean): void {
  const nick = to.resource;
  if (nick.trim() === '') return void room.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'a nickname cannot be blank')));
  const bare = from.bare;
  const aff = room.affiliation(bare);
  const mucX = stanza.getChild('x', NS_MUC);
  const deny = (cond: ConstructorParameters<typeof StanzaError>[0], text?: string): void => {
    const err = new StanzaError(cond, text);
    room.host.send(errorReply(stanza, err));
  };
  const serverAdmin = room.host.isServerAdmin(from);
  if (room.locked && aff !== 'owner') return deny('item-not-found', 'this room is locked until its owner configures it');
  const entry = mayEnter(aff, room.config.membersOnly);
  if (!entry.ok && !serverAdmin) return deny(entry.condition, entry.text);
  const existing = room.occupants.get(nick);
  if (existing && existing.bare !== bare) return deny('conflict', 'that nickname is in use');
  const reservedBy = room.nickOwner(nick);
  if (reservedBy && reservedBy !== bare) return deny('conflict', 'that nickname is reserved');
  if (room.config.password !== '' && AFF_RANK[aff] < AFF_RANK.owner) {
    const given = mucX?.getChildText('password');
    if (given !== room.config.password) {
      const err = new StanzaError('not-authorized', 'a password is required');
      err.echo = false;
      return void room.host.send(errorReply(stanza, err));
    }
  }
  if (!existing && room.occupants.size >= room.maxUsers() && AFF_RANK[aff] < AFF_RANK.admin && !serverAdmin)
    return void room.host.send(errorReply(stanza, new StanzaError('service-unavailable', 'the room is full', 'wait')));

  const children = clientChildren(stanza, room.jid.bare);
  let o = existing;
  if (o) {
    // another session of the same user under the same nick (multi-session nick)
    o.sessions.set(from.full, from);
    setPresence(o, from, children);
  } else {
    const now = Date.now();
    const limits = room.host.limits();
    o = {
      nick,
      jid: to,
      bare,
      sessions: new Map([[from.full, from]]),
      presence: children,
      sessionPresence: new Map([[from.full, children]]),
      role: room.defaultRole(serverAdmin && aff === 'none' ? 'admin' : aff),
      occupantId: room.occupantId(bare),
      tokens: limits.messageBurst,
      refill: now,
      ptokens: limits.presenceBurst,
      prefill: now,
    };
  }
  const newcomer: Occupant = o;
  if (!existing) room.occupants.set(nick, newcomer);
  room.bySession.set(from.full, newcomer);
  room.targetsChanged();
  room.host.track(room, from, true);
  // 2. the newcomer to everyone else (before its own list, which it gets in sendRoomState);
  // a further session of a nick: its other sessions too, as the item list grew
  broadcastPresence(room, newcomer, existing ? { skipSession: from.full } : { skipSelf: true });
  const selfCodes: number[] = [];
  if (creating) selfCodes.push(STATUS.created);
  sendRoomState(room, newcomer, from, selfCodes, mucX);
}

/**
 * What a session gets on entering (§7.2.3), or on re-sending its join: 1. the other
 * occupants, 3. its self-presence (110 and the room's codes), 4. history, 5. the subject.
 */
function sendRoomState(room: Room, o: Occupant, session: Jid, extraCodes: number[], mucX: Element | undefined): void {
  const seeJids = room.canSeeJids(o);
  for (const v of room.occupants.values()) {
    if (v === o || !room.seesPresenceOf(o, v)) continue;
    room.host.fanout(presenceOf(room, v, { withJid: seeJids }), [session]);
  }
  const codes = [...extraCodes];
  if (room.config.whois === 'anyone') codes.push(STATUS.nonAnonymous);
  room.host.fanout(presenceOf(room, o, { withJid: true, self: true, codes, first: session }), [session]);
  sendHistory(room, session, mucX?.getChild('history'));
  const subj = x(
    'message',
    { from: room.subject.from || room.jid.bare, type: 'groupchat', id: room.host.newId() },
    x('subject', null, room.subject.text),
  );
  room.host.fanout(subj, [session]);
}

function sendHistory(room: Room, to: Jid, h: Element | undefined): void {
  for (const m of room.history.select(room.config.historyLength, h)) room.host.fanout(m, [to]);
}

function changeNick(room: Room, o: Occupant, stanza: Element, from: Jid, to: Jid): void {
  const nick = to.resource;
  if (nick.trim() === '') return void room.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'a nickname cannot be blank')));
  const other = room.occupants.get(nick);
  const reservedBy = room.nickOwner(nick);
  if ((other && other !== o) || (reservedBy && reservedBy !== o.bare)) {
    return void room.host.send(errorReply(stanza, new StanzaError('conflict', 'that nickname is in use')));
  }
  if (!takePresenceToken(room, o)) {
    return void room.host.send(errorReply(stanza, new StanzaError('resource-constraint', 'presence changes too fast; slow down')));
  }
  // §7.6: unavailable with 303 and the new nick, then available under the new nick
  broadcastPresence(room, o, { type: 'unavailable', codes: [STATUS.nickChanged], item: { nick, role: o.role }, children: [] });
  room.occupants.delete(o.nick);
  o.nick = nick;
  o.jid = to;
  setPresence(o, from, clientChildren(stanza, room.jid.bare));
  room.occupants.set(nick, o);
  broadcastPresence(room, o, {});
}

/** One session of an occupant goes; the occupant leaves with its last session. */
export function removeSession(
  room: Room,
  o: Occupant,
  session: Jid,
  opts: { codes?: number[]; children?: Element[]; statusText?: string } = {},
): void {
  if (!o.sessions.has(session.full)) return;
  if (room.locked && room.occupants.size === 1 && o.sessions.size === 1) {
    // §10.1.2: the owner left a room it never configured: the room is destroyed
    room.destroy(undefined, 'the room was never configured');
    return;
  }
  o.sessions.delete(session.full);
  room.bySession.delete(session.full);
  room.targetsChanged();
  room.host.track(room, session, false);
  const children = opts.children ?? (opts.statusText ? [x('status', null, opts.statusText)] : []);
  if (o.sessions.size > 0) {
    // the leaving session still hears that it left; the others see the sessions that stay, and
    // the presence of the latest of them
    room.host.fanout(presenceOf(room, o, { type: 'unavailable', withJid: true, self: true, codes: opts.codes, children, jid: session }), [
      session,
    ]);
    o.sessionPresence.delete(session.full);
    o.presence = o.sessionPresence.get([...o.sessions.keys()].at(-1)!) ?? o.presence;
    broadcastPresence(room, o, {});
    return;
  }
  const self = presenceOf(room, o, { type: 'unavailable', withJid: true, self: true, codes: opts.codes, children, jid: session });
  room.occupants.delete(o.nick);
  broadcastPresence(room, o, { type: 'unavailable', codes: opts.codes, children, skipSelf: true, jid: session });
  room.host.fanout(self, [session]);
  afterLeave(room);
}

/** Remove a whole occupant (kick, ban, membership loss) with the given codes and actor. */
export function evict(room: Room, o: Occupant, codes: number[], item: { actor?: Actor; reason?: string; affiliation?: Affiliation }): void {
  const sessions = [...o.sessions.values()];
  const opts = { type: 'unavailable' as const, codes, item: { ...item, role: 'none' as Role }, children: [] };
  broadcastPresence(room, o, opts);
  for (const s of sessions) {
    room.bySession.delete(s.full);
    room.host.track(room, s, false);
  }
  o.sessions.clear();
  room.occupants.delete(o.nick);
  room.targetsChanged();
  afterLeave(room);
}

export function afterLeave(room: Room): void {
  if (!room.empty) return;
  if (room.locked || !room.config.persistent) room.host.dispose(room);
}
