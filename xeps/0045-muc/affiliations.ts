// The muc#admin protocol of a room (XEP-0045 §8, §9, §10.3–§10.8): role and
// affiliation lists, and requests to change them, each checked in full before
// any change is applied. Applying a change (presence, eviction, notices) is the
// room's own business (room.ts).
import { Jid, JidError, PrecisError, StanzaError, enforceNickname, x, type Element } from '../../src/api/index.js';
import type { Affiliation, Role, RoomConfig } from './config.js';
import { NS_ADMIN } from './ns.js';
import {
  AFF_RANK,
  ROLE_RANK,
  enforce,
  mayChangeAffiliation,
  mayChangeRole,
  mayGetAffiliationList,
  mayGetRoleList,
  ownersAfter,
} from './permissions.js';
import type { Occupant } from './presence.js';

/** Who did something: their nick if they are in the room, their bare JID always (shown only to who may see it). */
export interface Actor {
  nick?: string;
  jid?: string;
}

/** What the admin protocol needs of a room. */
export interface AdminRoom {
  readonly jid: Jid;
  readonly config: RoomConfig;
  readonly affiliations: ReadonlyMap<string, { affiliation: Exclude<Affiliation, 'none'>; nick?: string; reason?: string }>;
  readonly occupants: ReadonlyMap<string, Occupant>;
  affiliation(bare: string): Affiliation;
  requester(from: Jid): { aff: Affiliation; occupant?: Occupant; actor: Actor };
  nickOwner(nick: string): string | undefined;
  maxAffiliations(): number;
  kick(o: Occupant, actor: Actor | undefined, reason: string | undefined): void;
  setRole(o: Occupant, role: Role, actor: Actor | undefined, reason: string | undefined): void;
  /** nick: undefined keeps the reserved nickname, null drops it */
  setAffiliation(jid: string, affiliation: Affiliation, actor: Actor | undefined, reason: string | undefined, nick?: string | null): void;
}

/**
 * The reserved nickname an affiliation <item/> carries (§9.3, §9.5): undefined when it has
 * none, null for '' (unreserve). A nickname the room could never let anyone enter with is
 * jid-malformed, as Prosody answers.
 */
function reservedNick(room: AdminRoom, raw: string | undefined): string | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === '') return null;
  try {
    // a nick is entered only in its Nickname-profile form (RFC 8266), so that is the form reserved
    return room.jid.withResource(enforceNickname(raw)).resource;
  } catch (e) {
    if (e instanceof PrecisError || e instanceof JidError) throw new StanzaError('jid-malformed', 'that nickname is not valid');
    throw e;
  }
}

/** §8.5, §9.2, §9.5, §10.5, §10.8: a role or affiliation list. */
export function adminGet(room: AdminRoom, q: Element, from: Jid): Element {
  const item = q.getChild('item');
  if (!item) throw new StanzaError('bad-request', 'ask for a list with an <item/> naming a role or an affiliation');
  const { aff, occupant } = room.requester(from);
  if (item.attrs.role) {
    const role = item.attrs.role;
    if (role !== 'moderator' && role !== 'participant' && role !== 'visitor') throw new StanzaError('bad-request', 'no such role');
    enforce(mayGetRoleList({ aff, role: occupant?.role ?? 'none' }));
    const items = [...room.occupants.values()]
      .filter((o) => o.role === role)
      .map((o) =>
        x('item', { affiliation: room.affiliation(o.bare), role: o.role, nick: o.nick, jid: [...o.sessions.values()].at(-1)?.full }),
      );
    return x('query', { xmlns: NS_ADMIN }, items);
  }
  const wanted = item.attrs.affiliation;
  if (wanted !== 'owner' && wanted !== 'admin' && wanted !== 'member' && wanted !== 'outcast')
    throw new StanzaError('bad-request', 'no such affiliation');
  enforce(mayGetAffiliationList(aff, wanted, room.config.whois));
  const items: Element[] = [];
  for (const [jid, a] of room.affiliations) {
    if (a.affiliation !== wanted) continue;
    items.push(x('item', { affiliation: a.affiliation, jid, nick: a.nick }, a.reason ? x('reason', null, a.reason) : undefined));
  }
  return x('query', { xmlns: NS_ADMIN }, items);
}

/** §8.2–§8.5 roles and §9.1–§10.7 affiliations; every item checked before any is applied. */
export function adminSet(room: AdminRoom, q: Element, from: Jid): undefined {
  const items = q.getChildren('item');
  if (items.length === 0) throw new StanzaError('bad-request', 'no <item/> to apply');
  const { aff: myAff, occupant: me, actor } = room.requester(from);
  const changes: (() => void)[] = [];
  const finalAff = new Map<string, Affiliation>();
  for (const item of items) {
    const reason = item.getChildText('reason') ?? undefined;
    if (item.attrs.role !== undefined && item.attrs.affiliation !== undefined)
      throw new StanzaError('bad-request', 'an <item/> changes a role or an affiliation, not both');
    if (item.attrs.role !== undefined) {
      const role = item.attrs.role as Role;
      if (!(role in ROLE_RANK)) throw new StanzaError('bad-request', 'no such role');
      const target = item.attrs.nick !== undefined ? room.occupants.get(item.attrs.nick) : undefined;
      if (!target) throw new StanzaError('item-not-found', 'no occupant with that nickname');
      const targetStanding = { aff: room.affiliation(target.bare), role: target.role };
      enforce(mayChangeRole({ aff: myAff, role: me?.role ?? 'none' }, targetStanding, role, target === me));
      changes.push(() => (role === 'none' ? room.kick(target, actor, reason) : room.setRole(target, role, actor, reason)));
      continue;
    }
    const affiliation = item.attrs.affiliation as Affiliation | undefined;
    if (affiliation === undefined || !(affiliation in AFF_RANK))
      throw new StanzaError('bad-request', 'an <item/> needs a role or an affiliation');
    let jid: string;
    if (item.attrs.jid !== undefined) {
      try {
        jid = Jid.parse(item.attrs.jid).bare;
      } catch {
        throw new StanzaError('jid-malformed', 'bad JID in <item/>');
      }
    } else {
      const o = item.attrs.nick !== undefined ? room.occupants.get(item.attrs.nick) : undefined;
      if (!o) throw new StanzaError('item-not-found', 'no occupant with that nickname');
      jid = o.bare;
    }
    enforce(mayChangeAffiliation(myAff, room.affiliation(jid), affiliation, jid === from.bare));
    finalAff.set(jid, affiliation);
    if (affiliation !== 'none' && room.affiliations.size >= room.maxAffiliations() && !room.affiliations.has(jid))
      throw new StanzaError('resource-constraint', 'this room has too many affiliations');
    // §9.3, §9.5: with a JID, 'nick' is the nickname reserved for it (outcasts and 'none' keep none)
    const keepsNick = item.attrs.jid !== undefined && affiliation !== 'outcast' && affiliation !== 'none';
    const nick = keepsNick ? reservedNick(room, item.attrs.nick) : undefined;
    // whoever else uses that nickname now is kicked, as Prosody does, unless they rank above the requester
    const squatter = nick ? room.occupants.get(nick) : undefined;
    if (nick) {
      const holder = room.nickOwner(nick);
      if (holder !== undefined && holder !== jid) throw new StanzaError('conflict', 'that nickname is reserved by someone else');
      if (squatter && squatter.bare !== jid) {
        if (squatter === me) throw new StanzaError('conflict', 'you are using that nickname yourself');
        if (AFF_RANK[room.affiliation(squatter.bare)] > AFF_RANK[myAff])
          throw new StanzaError('not-allowed', 'someone above you uses that nickname');
      }
    }
    changes.push(() => {
      if (squatter && squatter.bare !== jid && room.occupants.get(squatter.nick) === squatter)
        room.kick(squatter, actor, 'this nickname is now reserved for a member');
      room.setAffiliation(jid, affiliation, actor, reason, nick);
    });
  }
  // the last-owner rule is checked on the result of the whole request
  if (finalAff.size && ownersAfter(room.affiliations, finalAff) === 0) throw new StanzaError('conflict', 'a room needs at least one owner');
  for (const c of changes) c();
  return undefined;
}
