// Messages through a room (XEP-0045 §7.4, §7.5, §7.8, §7.13, §8.1): groupchat
// (stamped with stanza-id and occupant-id, kept in history and the room
// archive), subject changes, private messages between occupants, mediated
// invitations and declines, and voice requests.
import { Element, Jid, StanzaError, SubmittedForm, dataForm, errorReply, x } from '../../src/api/index.js';
import { AFF_RANK, ROLE_RANK } from './permissions.js';
import { clientChildren, type Occupant } from './presence.js';
import { bounced } from './ghosts.js';
import type { Room } from './room.js';
import { NS_OCCUPANT_ID, NS_REQUEST, NS_SID, NS_USER } from './ns.js';

function takeToken(room: Room, o: Occupant): boolean {
  const { messageRate, messageBurst } = room.host.limits();
  if (messageRate <= 0) return true;
  const now = Date.now();
  o.tokens = Math.min(messageBurst, o.tokens + ((now - o.refill) / 1000) * messageRate);
  o.refill = now;
  if (o.tokens < 1) return false;
  o.tokens -= 1;
  return true;
}

/** A message from a real JID to the room's bare JID. */
export function message(room: Room, stanza: Element, from: Jid): void {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') return bounced(room, stanza, from);
  const o = room.bySession.get(from.full);
  if (room.locked && !o) return void room.host.send(errorReply(stanza, new StanzaError('item-not-found', 'no such room')));
  if (type === 'groupchat') return groupchat(room, stanza, from, o);
  const ux = stanza.getChild('x', NS_USER);
  if (ux && (ux.getChild('invite') || ux.getChild('decline'))) return invitations(room, stanza, from, o, ux);
  const form = SubmittedForm.in(stanza);
  if (form?.formType === NS_REQUEST) return voiceRequest(room, stanza, from, o, form);
  if (!o) return void room.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'you are not in this room')));
  room.host.send(errorReply(stanza, new StanzaError('bad-request', 'send groupchat messages, invitations or voice requests to the room')));
}

function groupchat(room: Room, stanza: Element, from: Jid, o: Occupant | undefined): void {
  const err = (cond: ConstructorParameters<typeof StanzaError>[0], text: string): void =>
    room.host.send(errorReply(stanza, new StanzaError(cond, text)));
  if (!o) return err('not-acceptable', 'only occupants may send messages to the room');
  if (o.role === 'visitor') return err('forbidden', 'you have no voice in this room');
  const subject = stanza.getChild('subject');
  // §8.1: a subject with a body or a thread is a message, not a subject change
  const hasBody = stanza.getChild('body') !== undefined || stanza.getChild('thread') !== undefined;
  if (subject && !hasBody && !(o.role === 'moderator' || room.config.changeSubject))
    return err('forbidden', 'only moderators may change the subject of this room');
  // a message the room already took (same sender, id and body, among the history): a
  // client's XEP-0198 resend, or a dead node's inbox replayed after a failover. It is not
  // sent to everyone again; its sender gets the room's copy, with its stanza-id, again
  const id = stanza.attrs.id;
  if (id !== undefined && hasBody && !subject) {
    const seen = room.history.find(o.jid.full, id, stanza.getChildText('body'));
    if (seen) {
      const again = new Element('message', { ...seen.attrs, to: from.full });
      again.children = seen.children;
      return void room.host.send(again);
    }
  }
  if (!takeToken(room, o)) return err('resource-constraint', 'too many messages; slow down');
  const stanzaId = room.host.archiveId(room);
  const m = new Element('message', {
    from: o.jid.full,
    type: 'groupchat',
    id: stanza.attrs.id ?? stanzaId,
    'xml:lang': stanza.attrs['xml:lang'],
  });
  if (m.attrs['xml:lang'] === undefined) delete m.attrs['xml:lang'];
  m.children = clientChildren(stanza, room.jid.bare);
  m.children.push(
    x('stanza-id', { xmlns: NS_SID, id: stanzaId, by: room.jid.bare }),
    x('occupant-id', { xmlns: NS_OCCUPANT_ID, id: o.occupantId }),
  );
  if (subject && !hasBody) {
    room.subject = { text: subject.getText(), from: o.jid.full };
    if (room.config.persistent) room.host.persist(room, 'room');
  } else if (hasBody) remember(room, m, stanzaId);
  // the room's archive keeps messages and subject changes, once (XEP-0313 §7.2)
  if (hasBody || subject) archiveMessage(room, m, stanzaId, o.jid.full, from.full);
  room.host.fanout(m, room.targets());
}

export function archiveMessage(room: Room, m: Element, stanzaId: string, sender: string, source?: string): void {
  if (!room.host.archiving) return;
  room.host.archive.add({ owner: room.jid.bare, id: stanzaId, ts: Date.now(), with: sender, withFull: sender, stanza: m.toString(), source });
}

export function remember(room: Room, m: Element, stanzaId: string): void {
  room.history.remember(m, stanzaId, Math.min(room.host.limits().maxHistory, room.config.historyLength));
}

/** A private message to room/nick (§7.5). */
export function privateMessage(room: Room, stanza: Element, from: Jid, to: Jid): void {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') return bounced(room, stanza, from);
  const err = (cond: ConstructorParameters<typeof StanzaError>[0], text: string): void =>
    room.host.send(errorReply(stanza, new StanzaError(cond, text)));
  if (type === 'groupchat') return err('bad-request', 'groupchat messages go to the room, not to an occupant');
  const o = room.bySession.get(from.full);
  if (!o) return err('not-acceptable', 'only occupants may send private messages');
  const target = room.occupants.get(to.resource);
  if (!target) return err('item-not-found', 'no such occupant');
  const policy = room.config.allowPm;
  const allowed =
    o.role === 'moderator' || policy === 'anyone' || (policy === 'participants' && ROLE_RANK[o.role] >= ROLE_RANK.participant);
  if (!allowed || policy === 'none') return err('forbidden', 'private messages are not allowed here');
  if (!takeToken(room, o)) return err('resource-constraint', 'too many messages; slow down');
  const m = new Element('message', { ...stanza.attrs, from: o.jid.full });
  delete m.attrs.to;
  m.children = clientChildren(stanza, room.jid.bare);
  m.children.push(x('x', { xmlns: NS_USER }), x('occupant-id', { xmlns: NS_OCCUPANT_ID, id: o.occupantId }));
  room.host.fanout(m, [...target.sessions.values()]);
}

function invitations(room: Room, stanza: Element, from: Jid, o: Occupant | undefined, ux: Element): void {
  const invites = ux.getChildren('invite');
  if (invites.length) {
    const aff = room.affiliation(from.bare);
    const mayInvite = o !== undefined && (!room.config.membersOnly || room.config.allowInvites || AFF_RANK[aff] >= AFF_RANK.admin);
    if (!o) return void room.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'only occupants may invite')));
    if (!mayInvite || (!room.config.allowInvites && AFF_RANK[aff] < AFF_RANK.admin && o.role !== 'moderator'))
      return void room.host.send(errorReply(stanza, new StanzaError('forbidden', 'you may not invite people to this room')));
    for (const inv of invites) {
      let to: Jid;
      try {
        to = Jid.parse(inv.attrs.to ?? '');
      } catch {
        return void room.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'bad invitee address')));
      }
      // §9.4: in a members-only room, an invitation from an admin (or allowed occupant) makes the invitee a member
      if (room.config.membersOnly && room.affiliation(to.bare) === 'none')
        room.setAffiliation(to.bare, 'member', { nick: o.nick, jid: from.bare }, undefined);
      const reason = inv.getChildText('reason');
      room.host.send(
        x(
          'message',
          { from: room.jid.bare, to: to.full, id: stanza.attrs.id ?? room.host.newId() },
          x(
            'x',
            { xmlns: NS_USER },
            x('invite', { from: from.bare }, reason ? x('reason', null, reason) : undefined, inv.getChild('continue')),
            room.config.password ? x('password', null, room.config.password) : undefined,
          ),
          x('body', null, `${from.bare} invites you to the room ${room.jid.bare}${reason ? ` (${reason})` : ''}`),
        ),
      );
    }
    return;
  }
  const decline = ux.getChild('decline')!;
  let to: Jid;
  try {
    to = Jid.parse(decline.attrs.to ?? '');
  } catch {
    return void room.host.send(errorReply(stanza, new StanzaError('jid-malformed', 'bad address in decline')));
  }
  const reason = decline.getChildText('reason');
  room.host.send(
    x(
      'message',
      { from: room.jid.bare, to: to.full, id: stanza.attrs.id ?? room.host.newId() },
      x('x', { xmlns: NS_USER }, x('decline', { from: from.bare }, reason ? x('reason', null, reason) : undefined)),
    ),
  );
}

/** §7.13 voice requests from visitors, §8.6 approvals from moderators. */
function voiceRequest(room: Room, stanza: Element, from: Jid, o: Occupant | undefined, form: SubmittedForm): void {
  if (!o) return void room.host.send(errorReply(stanza, new StanzaError('not-acceptable', 'you are not in this room')));
  if (form.type === 'submit' && o.role === 'moderator' && form.has('muc#request_allow')) {
    if (form.bool('muc#request_allow') !== true) return;
    const nick = form.text('muc#roomnick');
    const target = nick ? room.occupants.get(nick) : undefined;
    if (target && target.role === 'visitor') room.setRole(target, 'participant', { nick: o.nick, jid: from.bare }, undefined);
    return;
  }
  if (o.role !== 'visitor') return;
  const request = dataForm(
    'form',
    NS_REQUEST,
    [
      { var: 'muc#role', type: 'list-single', label: 'Requested role', value: 'participant', options: [{ value: 'participant' }] },
      { var: 'muc#jid', type: 'jid-single', label: 'User ID', value: from.bare },
      { var: 'muc#roomnick', type: 'text-single', label: 'Room nickname', value: o.nick },
      { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', value: false },
    ],
    { title: 'Voice request', instructions: 'To approve this request for voice, select "Grant voice" and submit.' },
  );
  const mods: Jid[] = [];
  for (const v of room.occupants.values()) if (v.role === 'moderator') for (const j of v.sessions.values()) mods.push(j);
  room.host.fanout(x('message', { from: room.jid.bare, id: room.host.newId() }, request), mods);
}
