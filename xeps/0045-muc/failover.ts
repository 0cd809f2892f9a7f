// A room moving between the nodes of a cluster (issue 16, guarantee 5): what a room
// is in memory (configuration, lock, subject, affiliations, occupants with their
// roles and last presence) as one JSON snapshot, kept in Redis by the node that serves
// the room, and the room rebuilt from it by the node that serves it next.
//   - A drain (SIGTERM) writes the snapshot at once, then hands the room over.
//   - While serving, a room whose state changed (anything but a plain groupchat
//     message) is written at most every 250 ms (STATE_MS in src/cluster/cluster.ts),
//     so a crash loses at most that much of its occupancy changes.
//   - History comes back from the room's archive (when the service archives), not from
//     the snapshot: messages are never written twice.
// The next node drops the occupants whose sessions died with the old node (status 333
// to the others, XEP-0045 §11.1 as for any lost session).
import { Jid, parseXml, type Element } from '../../src/api/index.js';
import type { RoomConfig, Role, Affiliation } from './config.js';
import type { Room } from './room.js';
import type { Occupant } from './presence.js';

interface OccupantSnapshot {
  nick: string;
  bare: string;
  role: Role;
  occupantId: string;
  presence: string[];
  /** session full JID -> its last presence children */
  sessions: [string, string[]][];
}

export interface RoomSnapshot {
  v: 1;
  config: RoomConfig;
  locked: boolean;
  subject: Room['subject'];
  affiliations: [string, { affiliation: Exclude<Affiliation, 'none'>; nick?: string; reason?: string }][];
  occupants: OccupantSnapshot[];
}

const str = (els: Element[]): string[] => els.map((e) => e.toString());
const els = (xs: string[]): Element[] => xs.map((s) => parseXml(s));

export function snapshot(room: Room): string {
  const s: RoomSnapshot = {
    v: 1,
    config: room.config,
    locked: room.locked,
    subject: room.subject,
    affiliations: [...room.affiliations],
    occupants: [...room.occupants.values()].map((o) => ({
      nick: o.nick,
      bare: o.bare,
      role: o.role,
      occupantId: o.occupantId,
      presence: str(o.presence),
      sessions: [...o.sessions.keys()].map((full) => [full, str(o.sessionPresence.get(full) ?? [])]),
    })),
  };
  return JSON.stringify(s);
}

/** Parse a snapshot; undefined when it is not one this version wrote. */
export function readSnapshot(json: string): RoomSnapshot | undefined {
  try {
    const s = JSON.parse(json) as RoomSnapshot;
    return s && s.v === 1 && Array.isArray(s.occupants) ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fill a new room (made with the snapshot's configuration) with the snapshot's state.
 * Occupant sessions for which `live` is false are left out and returned (with their
 * occupant), for the caller to announce as lost once the room is served.
 */
export function restore(room: Room, s: RoomSnapshot, live: (full: Jid) => boolean, now: number): { o: Occupant; session: Jid }[] {
  room.locked = s.locked;
  room.subject = s.subject;
  room.affiliations.clear();
  for (const [jid, a] of s.affiliations) room.affiliations.set(jid, a);
  const limits = room.host.limits();
  const dead: { o: Occupant; session: Jid }[] = [];
  for (const os of s.occupants) {
    const o: Occupant = {
      nick: os.nick,
      jid: Jid.of(room.jid.local, room.jid.domain, os.nick),
      bare: os.bare,
      sessions: new Map(),
      presence: els(os.presence),
      sessionPresence: new Map(),
      role: os.role,
      occupantId: os.occupantId,
      tokens: limits.messageBurst,
      refill: now,
      ptokens: limits.presenceBurst,
      prefill: now,
    };
    room.occupants.set(o.nick, o);
    for (const [full, pres] of os.sessions) {
      const j = Jid.parse(full);
      o.sessions.set(full, j);
      o.sessionPresence.set(full, els(pres));
      room.bySession.set(full, o);
      room.host.track(room, j, true);
      if (!live(j)) dead.push({ o, session: j });
    }
  }
  room.targetsChanged();
  return dead;
}
