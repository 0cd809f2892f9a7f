// How a room shows its occupants (XEP-0045 §7.2, §7.7): the occupant record,
// the status codes, the presence stanza built for each kind of viewer (with or
// without real JIDs, self-presence with 110), its broadcast, and the presence
// rate limit. Who enters and leaves is occupants.ts.
import { Element, Jid, tryJid, x } from '../../src/api/index.js';
import { type Affiliation, type Role } from './config.js';
import { type Actor } from './affiliations.js';
import type { Room } from './room.js';
import { NS_DELAY, NS_MUC, NS_OCCUPANT_ID, NS_SID, NS_USER } from './ns.js';

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

export interface PresenceOpts {
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

export const STATUS = {
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

/** Children a client may not inject into what the room sends on its behalf. */
export function clientChildren(stanza: Element, room: string): Element[] {
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

export function presenceOf(
  room: Room,
  o: Occupant,
  opts: PresenceOpts & {
    withJid: boolean;
    self?: boolean;
    /** name the actor's real JID (default: withJid for others, whether the occupant may see JIDs for itself) */
    actorJid?: boolean;
  },
): Element {
  const aff = opts.item?.affiliation ?? room.affiliation(o.bare);
  const role = opts.item?.role ?? (opts.type === 'unavailable' ? 'none' : o.role);
  // one item per session of a multi-session nick for those who may see real JIDs (as Prosody does)
  let sessions: (Jid | undefined)[] = [undefined];
  if (opts.withJid && opts.jid) sessions = [opts.jid];
  else if (opts.withJid && o.sessions.size) {
    const all = [...o.sessions.values()];
    sessions = opts.first && o.sessions.has(opts.first.full) ? [opts.first, ...all.filter((j) => j !== opts.first)] : all;
  }
  const actor = opts.item?.actor;
  const actorJid = (opts.actorJid ?? (opts.self ? room.canSeeJids(o) : opts.withJid)) ? actor?.jid : undefined;
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
export function broadcastPresence(
  room: Room,
  o: Occupant,
  opts: PresenceOpts & { selfCodes?: number[]; skipSelf?: boolean; skipSession?: string },
): void {
  const withJid: Jid[] = [];
  const without: Jid[] = [];
  for (const v of room.occupants.values()) {
    if (v === o || !room.seesPresenceOf(v, o)) continue;
    const list = room.canSeeJids(v) ? withJid : without;
    for (const j of v.sessions.values()) list.push(j);
  }
  if (withJid.length) room.host.fanout(presenceOf(room, o, { ...opts, withJid: true }), withJid);
  if (without.length) room.host.fanout(presenceOf(room, o, { ...opts, withJid: false }), without);
  if (!opts.skipSelf && o.sessions.size) {
    const selfOpts = { ...opts, withJid: true, self: true, codes: [...(opts.codes ?? []), ...(opts.selfCodes ?? [])] };
    const own = [...o.sessions.values()].filter((j) => j.full !== opts.skipSession);
    // several sessions: each sees its own item first (a client takes the first for its own)
    if (o.sessions.size === 1 || opts.jid) room.host.fanout(presenceOf(room, o, selfOpts), own);
    else for (const j of own) room.host.fanout(presenceOf(room, o, { ...selfOpts, first: j }), [j]);
  }
}

/** The presence a session sent last becomes the occupant's. */
export function setPresence(o: Occupant, session: Jid, children: Element[]): void {
  o.presence = children;
  o.sessionPresence.set(session.full, children);
}

export function takePresenceToken(room: Room, o: Occupant): boolean {
  const { presenceRate, presenceBurst } = room.host.limits();
  if (presenceRate <= 0) return true;
  const now = Date.now();
  o.ptokens = Math.min(presenceBurst, o.ptokens + ((now - o.prefill) / 1000) * presenceRate);
  o.prefill = now;
  if (o.ptokens < 1) return false;
  o.ptokens -= 1;
  return true;
}
