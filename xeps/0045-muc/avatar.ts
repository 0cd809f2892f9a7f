// XEP-0486 MUC Avatars: a room's avatar is the PHOTO of its vCard (vcard-temp on the room's
// JID). Owners set it; anyone gets it; its hash is in the room's disco#info
// (muc#roominfo_avatarhash) and a change is announced to the occupants with status 104.
// The vCard is stored beside the room (per-user data keyed by the room's JID); its hash
// is part of the room's configuration, so that disco#info needs no read.
import { createHash } from 'node:crypto';
import { x, StanzaError, type Element, type Jid } from '../../src/api/index.js';
import type { Room } from './room.js';
import { NS_USER } from './ns.js';
import { STATUS } from './presence.js';

export const NS_VCARD = 'vcard-temp';

export async function vcardGet(room: Room): Promise<Element> {
  return (await room.host.vcard(room)) ?? x('vCard', { xmlns: NS_VCARD });
}

export async function vcardSet(room: Room, payload: Element, from: Jid): Promise<undefined> {
  if (room.affiliation(from.bare) !== 'owner' && !room.host.isServerAdmin(from))
    throw new StanzaError('forbidden', 'only owners set the room avatar');
  const bin = payload.getChild('PHOTO')?.getChildText('BINVAL')?.replace(/\s+/g, '');
  const hash = bin ? createHash('sha1').update(Buffer.from(bin, 'base64')).digest('hex') : '';
  const card = x('vCard', { xmlns: NS_VCARD });
  for (const c of payload.children) card.children.push(c);
  // an empty vCard removes the avatar (§4.2)
  await room.host.setVcard(room, card.getChildElements().length ? card : undefined);
  if (hash === (room.config.avatarHash ?? '')) return undefined;
  room.config = { ...room.config, avatarHash: hash };
  if (room.config.persistent) room.host.persist(room, 'room');
  room.host.fanout(
    x('message', { from: room.jid.bare, type: 'groupchat', id: room.host.newId() }, x('x', { xmlns: NS_USER }, x('status', { code: STATUS.configChanged }))),
    room.targets(),
  );
  return undefined;
}
