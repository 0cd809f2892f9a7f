// Multi-User Chat (XEP-0045) test vocabulary shared by the room suites: the
// namespaces, readers for status codes, items and errors, and the steps of
// entering, creating and administering a room with a real client.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import { expectStanza, iq, xml, type XmppClient } from './clients.js';

export const MUC = 'http://jabber.org/protocol/muc';
export const USER = 'http://jabber.org/protocol/muc#user';
export const ADMIN = 'http://jabber.org/protocol/muc#admin';
export const OWNER = 'http://jabber.org/protocol/muc#owner';
export const DATA = 'jabber:x:data';
export const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const SERVICE = 'conference.localhost';

/** the muc#user status codes of a presence or message, sorted */
export const codes = (p: Element): number[] =>
  (p.getChild('x', USER)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code)).sort((a, b) => a - b);
export const items = (p: Element): Record<string, string>[] =>
  (p.getChild('x', USER)?.getChildren('item') ?? []).map((i) => i.attrs as Record<string, string>);
export const item = (p: Element): Record<string, string> => items(p)[0] ?? {};
/** the defined condition of an error stanza */
export const errorOf = (s: Element): string | undefined =>
  s
    .getChild('error')
    ?.getChildElements()
    .find((e) => e.attrs.xmlns === STANZAS)?.name;
export const isSelf = (room: string) => (s: Element) =>
  s.is('presence') && s.attrs.from?.startsWith(`${room}@${SERVICE}/`) && codes(s).includes(110) && s.attrs.type !== 'unavailable';
export const presenceFrom = (full: string, type?: string) => (s: Element) =>
  s.is('presence') && s.attrs.from === full && s.attrs.type === type;

export function field(vars: Record<string, string | string[]>): Element[] {
  return Object.entries(vars).map(([v, val]) =>
    xml('field', { var: v }, ...(Array.isArray(val) ? val : [val]).map((t) => xml('value', {}, t))),
  );
}

/** Submit a room configuration (an instant room when `vars` is empty). */
export async function configure(c: XmppClient, room: string, vars: Record<string, string | string[]> = {}): Promise<Element> {
  const form = xml('x', { xmlns: DATA, type: 'submit' }, ...field({ FORM_TYPE: 'http://jabber.org/protocol/muc#roomconfig', ...vars }));
  return iq(c, xml('iq', { type: 'set', to: `${room}@${SERVICE}` }, xml('query', { xmlns: OWNER }, form)));
}

export interface Joined {
  self: Element;
  subject: Element;
}

/** Enter a room; resolves with the self-presence (or the error) and the subject. */
export async function join(
  c: XmppClient,
  room: string,
  nick: string,
  x: Element[] = [],
  history?: Record<string, string>,
): Promise<Joined> {
  await c.send(
    xml('presence', { to: `${room}@${SERVICE}/${nick}` }, xml('x', { xmlns: MUC }, ...x, ...(history ? [xml('history', history)] : []))),
  );
  const self = await expectStanza(
    c,
    (s) => isSelf(room)(s) || (s.is('presence') && s.attrs.type === 'error'),
    3000,
    `self-presence in ${room}`,
  );
  if (self.attrs.type === 'error') return { self, subject: self };
  const subject = await expectStanza(
    c,
    (s) => s.is('message') && s.attrs.type === 'groupchat' && !!s.getChild('subject') && !s.getChild('body'),
    3000,
    `subject of ${room}`,
  );
  return { self, subject };
}

/** Create an unlocked room owned by c (an instant room unless `vars` are given). */
export async function createRoom(c: XmppClient, room: string, nick: string, vars: Record<string, string | string[]> = {}): Promise<void> {
  const j = await join(c, room, nick);
  assert.ok(codes(j.self).includes(201), `a new room answers with status 201: ${j.self.toString()}`);
  const r = await configure(c, room, vars);
  assert.equal(r.attrs.type, 'result', r.toString());
}

export function adminSet(c: XmppClient, room: string, ...list: Element[]): Promise<Element> {
  return iq(c, xml('iq', { type: 'set', to: `${room}@${SERVICE}` }, xml('query', { xmlns: ADMIN }, ...list)));
}
