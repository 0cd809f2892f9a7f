// The owner protocol of a room (XEP-0045 §10): the configuration form, applied
// with its effects (persistence, owner and admin lists, members-only eviction,
// status 104/172/173 to the occupants), and destruction on request.
import { Element, Jid, StanzaError, SubmittedForm, x } from '../../src/api/index.js';
import { applyConfigForm, roomConfigForm } from './config.js';
import { AFF_RANK, enforce, mayConfigure } from './permissions.js';
import { STATUS } from './presence.js';
import { evict, afterLeave } from './occupants.js';
import type { Room } from './room.js';
import { NS_OWNER, NS_USER } from './ns.js';

export function ownerGet(room: Room, from: Jid): Element {
  enforce(mayConfigure(room.requester(from).aff));
  const list = (a: string): string[] => [...room.affiliations].filter(([, v]) => v.affiliation === a).map(([j]) => j);
  return x('query', { xmlns: NS_OWNER }, roomConfigForm(room.config, room.host.limits(), list('owner'), list('admin')));
}

export function ownerSet(room: Room, q: Element, from: Jid): undefined {
  const { aff, actor } = room.requester(from);
  enforce(mayConfigure(aff));
  const destroy = q.getChild('destroy');
  if (destroy) {
    room.destroy(destroy.attrs.jid, destroy.getChildText('reason') ?? undefined);
    return undefined;
  }
  const formEl = q.getChild('x', 'jabber:x:data');
  if (!formEl) throw new StanzaError('bad-request', 'send a data form or <destroy/>');
  const form = new SubmittedForm(formEl);
  if (form.type === 'cancel') {
    // §10.1.3: cancelling the configuration of a new room destroys it
    if (room.locked) room.destroy(undefined, undefined);
    return undefined;
  }
  if (form.type !== 'submit') throw new StanzaError('bad-request', 'the form must be of type submit or cancel');
  const limits = room.host.limits();
  const next = applyConfigForm(room.config, form, limits);
  const owners = form.values('muc#roomconfig_roomowners');
  const admins = form.values('muc#roomconfig_roomadmins');
  const parse = (list: string[] | undefined): string[] | undefined => {
    if (!list) return undefined;
    try {
      return list.filter((s) => s !== '').map((s) => Jid.parse(s).bare);
    } catch {
      throw new StanzaError('jid-malformed', 'bad JID in the owner or admin list');
    }
  };
  const ownerList = parse(owners);
  const adminList = parse(admins);
  if (ownerList && ownerList.length === 0) throw new StanzaError('not-acceptable', 'a room needs at least one owner');
  const prev = room.config;
  const wasPersistent = prev.persistent;
  room.config = next;
  const wasLocked = room.locked;
  room.locked = false;
  if (next.persistent) room.host.persist(room, 'room');
  if (next.persistent && (!wasPersistent || wasLocked)) {
    for (const [jid, a] of room.affiliations) room.host.persistAffiliation(room, { jid, ...a });
  }
  if (!next.persistent && wasPersistent) room.host.persist(room, 'remove');
  const applyList = (list: string[] | undefined, a: 'owner' | 'admin'): void => {
    if (!list) return;
    for (const [jid, v] of [...room.affiliations])
      if (v.affiliation === a && !list.includes(jid)) room.setAffiliation(jid, 'none', actor, undefined);
    for (const jid of list) if (room.affiliation(jid) !== a) room.setAffiliation(jid, a, actor, undefined);
  };
  applyList(ownerList, 'owner');
  applyList(adminList, 'admin');
  if (next.membersOnly && !prev.membersOnly) {
    // §9.x: non-members are removed when a room becomes members-only (status 322)
    for (const o of [...room.occupants.values()])
      if (AFF_RANK[room.affiliation(o.bare)] < AFF_RANK.member) evict(room, o, [STATUS.membersOnly], { actor });
  }
  if (room.empty) afterLeave(room);
  if (!wasLocked) {
    const codes = [STATUS.configChanged];
    if (next.whois !== prev.whois) codes.push(next.whois === 'anyone' ? STATUS.nowNonAnonymous : STATUS.nowSemiAnonymous);
    room.host.fanout(
      x(
        'message',
        { from: room.jid.bare, type: 'groupchat', id: room.host.newId() },
        x(
          'x',
          { xmlns: NS_USER },
          codes.map((c) => x('status', { code: c })),
        ),
      ),
      room.targets(),
    );
  }
  return undefined;
}
