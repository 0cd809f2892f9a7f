// Ghosts (XEP-0045 §18.1.2): an occupant whose session can no longer be reached
// is removed (status 333) when something the room sent it bounces with a
// delivery error, so it does not linger in the room for everyone else.
import { Element, Jid, NS_STANZAS } from '../../src/api/index.js';
import { STATUS, type Occupant } from './presence.js';
import { removeSession } from './occupants.js';
import type { Room } from './room.js';

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

/** §11.1: the service removes a session it cannot reach (status 333, to it and to the others). */
export function removeGhost(room: Room, o: Occupant, session: Jid): void {
  removeSession(room, o, session, { codes: [STATUS.error], statusText: 'removed after a delivery error' });
}

/**
 * An error message from a real JID to the room or an occupant: a message the room sent
 * bounced. §18.1.2: a delivery error means the session is gone; other errors change nothing,
 * and an error is never answered.
 */
export function bounced(room: Room, stanza: Element, from: Jid): void {
  const o = room.bySession.get(from.full);
  if (o && isDeliveryError(stanza)) removeGhost(room, o, from);
}
