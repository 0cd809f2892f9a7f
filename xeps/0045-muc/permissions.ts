// Who may do what in a room (XEP-0045 §5, and the errors §8–§10 give refusals),
// as pure functions of roles and affiliations: no room, no stanza, no state.
// The room (room.ts) and the admin protocol (affiliations.ts) find the people
// involved; these decide. test/unit/muc-permissions.test.ts checks them against
// the XEP's tables row by row.
import { StanzaError, type StanzaErrorCondition } from '../../src/api/index.js';
import type { Affiliation, Role, RoomConfig } from './config.js';

export const AFF_RANK: Record<Affiliation, number> = { owner: 4, admin: 3, member: 2, none: 1, outcast: 0 };
export const ROLE_RANK: Record<Role, number> = { moderator: 3, participant: 2, visitor: 1, none: 0 };

/** Allowed, or the error a refusal is answered with. */
export type Verdict = { ok: true } | { ok: false; condition: StanzaErrorCondition; text: string };

const OK: Verdict = { ok: true };
const no = (condition: StanzaErrorCondition, text: string): Verdict => ({ ok: false, condition, text });

/** Throw the refusal as the stanza error it is answered with. */
export function enforce(v: Verdict): void {
  if (!v.ok) throw new StanzaError(v.condition, v.text);
}

/** Where someone stands in a room: their affiliation, and their role ('none' when not in it). */
export interface Standing {
  aff: Affiliation;
  role: Role;
}

const atLeastAdmin = (a: Affiliation): boolean => AFF_RANK[a] >= AFF_RANK.admin;

/** §5.1.2: the role someone enters with (outcasts do not enter). */
export function defaultRole(aff: Affiliation, moderated: boolean): Role {
  if (aff === 'owner' || aff === 'admin') return 'moderator';
  if (aff === 'outcast') return 'none';
  if (aff === 'member') return 'participant';
  return moderated ? 'visitor' : 'participant';
}

/** §5.2.1 (enter open / members-only room), §7.2.6, §7.2.7. Server admins pass anyway (the caller's business). */
export function mayEnter(aff: Affiliation, membersOnly: boolean): Verdict {
  if (aff === 'outcast') return no('forbidden', 'you are banned from this room');
  if (membersOnly && AFF_RANK[aff] < AFF_RANK.member) return no('registration-required', 'this room is for members only');
  return OK;
}

/** §5.2.1 (register with an open room), §7.10: registering makes the unaffiliated a member. */
export function mayRegister(aff: Affiliation, membersOnly: boolean): Verdict {
  if (aff === 'outcast') return no('forbidden', 'you are banned from this room');
  if (membersOnly && aff === 'none') return no('not-allowed', 'registration in this room is closed; ask an admin for membership');
  return OK;
}

/** §5.2.1 (change configuration, destroy), §10.2, §10.9. */
export function mayConfigure(aff: Affiliation): Verdict {
  return aff === 'owner' ? OK : no('forbidden', 'only owners may configure or destroy the room');
}

/** §8.5, §9.8: the list of occupants with a role. */
export function mayGetRoleList(actor: Standing): Verdict {
  if (actor.role !== 'moderator' && !atLeastAdmin(actor.aff)) return no('forbidden', 'only moderators may see role lists');
  return OK;
}

/** §5.2.1 (retrieve member list), §9.2, §9.5, §10.5, §10.8: the list of those with an affiliation. */
export function mayGetAffiliationList(aff: Affiliation, list: Exclude<Affiliation, 'none'>, whois: RoomConfig['whois']): Verdict {
  // §5.2.1, §9.5: members may read the member list, unless the room hides JIDs (semi-anonymous)
  if (list === 'member' && aff === 'member' && whois === 'anyone') return OK;
  if (!atLeastAdmin(aff)) return no('forbidden', 'only admins and owners may see affiliation lists');
  // §10.5, §10.8: owner and admin lists are for owners (anyone may read them in a non-anonymous room)
  if ((list === 'owner' || list === 'admin') && aff !== 'owner' && whois !== 'anyone')
    return no('forbidden', 'only owners may see the owner and admin lists');
  return OK;
}

/**
 * §5.1.3, §8.2–§8.4, §9.6, §9.7: may the actor give the target this role? 'none' is a kick;
 * self: the actor and the target are the same occupant.
 */
export function mayChangeRole(actor: Standing, target: Standing, role: Role, self = false): Verdict {
  if (actor.role !== 'moderator' && !atLeastAdmin(actor.aff)) return no('forbidden', 'only moderators may change roles');
  if (role === 'moderator' || (target.role === 'moderator' && role !== 'none')) {
    // granting or revoking moderator status takes an admin (§9.6, §9.7)
    if (!atLeastAdmin(actor.aff)) return no('not-allowed', 'only admins may grant or revoke moderator status');
    if (role !== 'moderator' && atLeastAdmin(target.aff)) return no('not-allowed', 'admins and owners are always moderators');
  }
  // §5.1.1, §5.1.3: moderators kick participants and visitors; a moderator is kicked by an admin or owner
  if (role === 'none' && target.role === 'moderator' && !self && !atLeastAdmin(actor.aff))
    return no('not-allowed', 'only admins and owners may kick a moderator');
  // §8.2: no kicking someone of a higher affiliation; §8.4: no silencing someone at or above your own
  if (role === 'none' && AFF_RANK[target.aff] > AFF_RANK[actor.aff]) return no('not-allowed', 'you cannot kick someone above you');
  if (role === 'visitor' && !self && AFF_RANK[target.aff] >= AFF_RANK[actor.aff] && actor.aff !== 'owner')
    return no('not-allowed', 'you cannot revoke voice from someone at or above your affiliation');
  if (role === 'visitor' && atLeastAdmin(target.aff)) return no('not-allowed', 'admins and owners always have voice');
  if (role === 'none' && self) return no('conflict', 'you cannot kick yourself');
  return OK;
}

/**
 * §5.2.2, §9.1–§9.5, §10.3–§10.8: may the actor move the target from one affiliation to
 * another? self: the target is the actor's own bare JID. The last-owner rule is about the
 * whole request: ownersAfter.
 */
export function mayChangeAffiliation(actor: Affiliation, target: Affiliation, affiliation: Affiliation, self = false): Verdict {
  if (!atLeastAdmin(actor)) return no('forbidden', 'only admins and owners may change affiliations');
  // §9.1: nobody bans themselves
  if (affiliation === 'outcast' && self) return no('conflict', 'you cannot ban yourself');
  // §10.3–§10.6: granting or revoking owner/admin is for owners
  if ((affiliation === 'owner' || affiliation === 'admin') && actor !== 'owner')
    return no('forbidden', 'only owners may grant owner or admin status');
  if ((target === 'owner' || target === 'admin') && actor !== 'owner')
    return no(affiliation === 'outcast' ? 'not-allowed' : 'forbidden', 'only owners may change an owner or admin');
  return OK;
}

/**
 * §10.4, §10.5: how many owners a room keeps after these changes (by bare JID); a request
 * that leaves none is a conflict.
 */
export function ownersAfter(current: ReadonlyMap<string, { affiliation: Affiliation }>, changes: ReadonlyMap<string, Affiliation>): number {
  let owners = 0;
  for (const [jid, a] of current) if (a.affiliation === 'owner' && (changes.get(jid) ?? 'owner') === 'owner') owners++;
  for (const [jid, a] of changes) if (a === 'owner' && current.get(jid)?.affiliation !== 'owner') owners++;
  return owners;
}
