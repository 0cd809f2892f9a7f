// IQs to a room's bare JID (disco, ping, the admin and owner protocols,
// registration, XEP-0313 queries on the room archive, XEP-0425 moderation)
// and to an occupant's JID (XEP-0410 self-ping, or forwarded to the occupant).
import {
  Element,
  Jid,
  NS_MAM,
  StanzaError,
  dataForm,
  dateTime,
  errorReply,
  mamForm,
  mamMetadata,
  parseMamQuery,
  replaceArchived,
  runMamQuery,
  x,
} from '../../src/api/index.js';
import { vcardGet, vcardSet, NS_VCARD } from './avatar.js';
import { adminGet, adminSet } from './affiliations.js';
import { AFF_RANK } from './permissions.js';
import { announcement, moderationRequest, tombstone, type ModerationRequest } from './moderation.js';
import { archiveMessage, remember } from './messages.js';
import { ownerGet, ownerSet } from './owner.js';
import { register } from './registration.js';
import type { Room } from './room.js';
import {
  NS_ADMIN,
  NS_DISCO_INFO,
  NS_DISCO_ITEMS,
  NS_MODERATE,
  NS_MODERATE_0,
  NS_MUC,
  NS_OCCUPANT_ID,
  NS_OWNER,
  NS_PING,
  NS_REGISTER,
  NS_REQUEST,
  NS_ROOMINFO,
  NS_SELF_PING,
  NS_SID,
  NS_STABLE_ID,
} from './ns.js';

/** Answer an IQ addressed to the room's bare JID; returns the result payload. */
export function iq(room: Room, stanza: Element, from: Jid): Element | undefined | Promise<Element | undefined> {
  const type = stanza.attrs.type;
  const payload = stanza.getChildElements()[0]!;
  const ns = payload.attrs.xmlns;
  if (ns === NS_DISCO_INFO && type === 'get') return discoInfo(room, payload.attrs.node, from);
  if (ns === NS_DISCO_ITEMS && type === 'get') {
    if (payload.attrs.node) throw new StanzaError('item-not-found');
    return x('query', { xmlns: NS_DISCO_ITEMS });
  }
  if (ns === NS_PING && type === 'get') return undefined;
  if (ns === NS_ADMIN && payload.name === 'query') return type === 'get' ? adminGet(room, payload, from) : adminSet(room, payload, from);
  if (ns === NS_OWNER && payload.name === 'query') return type === 'get' ? ownerGet(room, from) : ownerSet(room, payload, from);
  if (ns === NS_REGISTER && payload.name === 'query') return register(room, type === 'get', payload, from);
  if (ns === NS_VCARD && payload.name === 'vCard') return type === 'get' ? vcardGet(room) : vcardSet(room, payload, from);
  const moderation = type === 'set' ? moderationRequest(payload) : undefined;
  if (moderation) return moderate(room, moderation, from);
  if (ns === NS_MAM && (payload.name === 'query' || payload.name === 'metadata') && room.host.archiving)
    return mamQuery(room, type === 'get', payload, from);
  throw new StanzaError('service-unavailable');
}

/** XEP-0313 on the room's JID: whoever may enter may read (§8.2 of XEP-0313: members-only rooms, members and up). */
async function mamQuery(room: Room, get: boolean, payload: Element, from: Jid): Promise<Element | undefined> {
  const aff = room.host.isServerAdmin(from) ? 'owner' : room.affiliation(from.bare);
  if (aff === 'outcast' || (room.config.membersOnly && AFF_RANK[aff] < AFF_RANK.member))
    throw new StanzaError('forbidden', 'only those who may enter the room may read its archive');
  // a password-protected room: those who got in with the password (occupants) and owners
  if (room.config.password !== '' && aff !== 'owner' && !room.bySession.has(from.full))
    throw new StanzaError('forbidden', 'enter the room (with its password) to read its archive');
  if (payload.name === 'metadata') return mamMetadata(room.host.archive, room.jid.bare);
  if (get) return mamForm();
  const q = parseMamQuery(room.jid.bare, payload, { defaultMax: 50, maxMax: 250 });
  // results and the IQ answer (service.ts) both go through fan-out, which keeps their order per session
  return runMamQuery(room.host.archive, q, payload.attrs.queryid, (msg) => {
    msg.attrs.from = room.jid.bare;
    room.host.fanout(msg, [from]);
  });
}

function discoInfo(room: Room, node: string | undefined, from: Jid): Element {
  if (node === 'x-roomuser-item') {
    // §7.12: the user's reserved nickname
    const nick = room.affiliations.get(from.bare)?.nick;
    return x(
      'query',
      { xmlns: NS_DISCO_INFO, node },
      nick ? x('identity', { category: 'conference', type: 'text', name: nick }) : undefined,
    );
  }
  if (node) throw new StanzaError('item-not-found');
  const c = room.config;
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
    NS_VCARD,
    ...(room.host.archiving ? [NS_MAM, 'urn:xmpp:mam:2#extended'] : []),
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    c.password ? 'muc_passwordprotected' : 'muc_unsecured',
  ];
  const info = dataForm('result', NS_ROOMINFO, [
    { var: 'muc#roominfo_description', label: 'Description', value: c.description },
    { var: 'muc#roominfo_occupants', label: 'Number of occupants', value: room.occupants.size },
    { var: 'muc#roominfo_subject', label: 'Subject', value: room.subject.text },
    { var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'Occupants may change the subject', value: c.changeSubject },
    { var: 'muc#roomconfig_roomname', label: 'Name', value: c.name },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', value: c.changeSubject },
    { var: 'muc#maxhistoryfetch', label: 'Maximum history', value: c.historyLength },
    ...(c.lang ? [{ var: 'muc#roominfo_lang', label: 'Language', value: c.lang }] : []),
    ...(c.avatarHash ? [{ var: 'muc#roominfo_avatarhash', type: 'text-multi' as const, label: 'Avatar hash', value: c.avatarHash }] : []),
  ]);
  return x(
    'query',
    { xmlns: NS_DISCO_INFO },
    x('identity', { category: 'conference', type: 'text', name: c.name || room.name }),
    features.sort().map((f) => x('feature', { var: f })),
    info,
  );
}

/**
 * XEP-0425: a moderator retracts a message by its stanza-id, in either form of the request. The
 * message becomes a tombstone in the history and in the archive (which may hold it alone); the
 * announcement goes to the room and into its history and archive, so clients catching up learn of it.
 */
function moderate(room: Room, req: ModerationRequest, from: Jid): undefined | Promise<undefined> {
  const me = room.bySession.get(from.full);
  if (me?.role !== 'moderator') throw new StanzaError('forbidden', "only moderators may moderate other participants' messages");
  const by = { jid: me.jid.full, occupantId: me.occupantId };
  const at = dateTime();
  const inHistory = room.history.replace(req.id, (s) => tombstone(s, by, req.reason, at));
  const announce = (): undefined => {
    const stanzaId = room.host.archiveId(room);
    const m = announcement(req, by, room.jid.bare, stanzaId);
    remember(room, m, stanzaId);
    archiveMessage(room, m, stanzaId, room.jid.bare);
    room.host.fanout(m, room.targets());
    return undefined;
  };
  // without an archive the history is all the room knows: a message gone from it may still be on clients
  if (!room.host.archiving) return announce();
  return replaceArchived(room.host.archive, room.jid.bare, req.id, (s) => tombstone(s, by, req.reason, at)).then((found) => {
    if (!found && !inHistory) throw new StanzaError('item-not-found', 'this room has no message with that id');
    return announce();
  });
}

/** An IQ from a real JID to room/nick: self-ping (XEP-0410) or forwarded to that occupant. */
export function occupantIq(room: Room, stanza: Element, from: Jid, to: Jid): void {
  const type = stanza.attrs.type;
  if (type === 'result' || type === 'error') return; // answers to forwarded IQs are matched by the service
  const me = room.bySession.get(from.full);
  const payload = stanza.getChildElements()[0];
  const target = room.occupants.get(to.resource);
  if (!me) {
    // XEP-0410: a ping from a session that is not joined gets not-acceptable; other IQs bad-request (§6.6)
    const cond = payload?.attrs.xmlns === NS_PING ? 'not-acceptable' : 'bad-request';
    return void room.host.send(errorReply(stanza, new StanzaError(cond, 'you are not in this room')));
  }
  if (target === me && payload?.attrs.xmlns === NS_PING) {
    return void room.host.send(x('iq', { type: 'result', id: stanza.attrs.id, from: to.full, to: from.full }));
  }
  if (!target) return void room.host.send(errorReply(stanza, new StanzaError('item-not-found', 'no such occupant')));
  room.host.proxyIq(room, stanza, me, target);
}
