// Registration with a room (XEP-0045 §7.10): a member reserves a nickname,
// or gives it up.
import { Element, Jid, StanzaError, SubmittedForm, dataForm, enforceNickname, x } from '../../src/api/index.js';
import { enforce, mayRegister } from './permissions.js';
import type { Room } from './room.js';
import { NS_REGISTER, NS_REGISTER_FORM } from './ns.js';

/** §7.10 registration: a member with a reserved nickname. */
export function register(room: Room, get: boolean, q: Element, from: Jid): Element | undefined {
  const a = room.affiliations.get(from.bare);
  if (get) {
    if (a?.nick) return x('query', { xmlns: NS_REGISTER }, x('registered'), x('username', null, a.nick));
    if (room.config.membersOnly && !a)
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
    if (a.affiliation === 'member') room.setAffiliation(from.bare, 'none', undefined, undefined);
    else {
      delete a.nick;
      if (room.config.persistent) room.host.persistAffiliation(room, { jid: from.bare, ...a });
    }
    return undefined;
  }
  const form = SubmittedForm.in(q);
  if (!form || form.type !== 'submit') throw new StanzaError('bad-request', 'submit the registration form');
  const raw = form.text('muc#register_roomnick') ?? '';
  let nick: string;
  try {
    nick = room.jid.withResource(raw).resource;
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
  const owner = room.nickOwner(nick);
  const occ = room.occupants.get(nick);
  if ((owner && owner !== from.bare) || (occ && occ.bare !== from.bare)) throw new StanzaError('conflict', 'that nickname is taken');
  enforce(mayRegister(a?.affiliation ?? 'none', room.config.membersOnly));
  room.setAffiliation(from.bare, a?.affiliation ?? 'member', undefined, a?.reason, nick);
  return undefined;
}
