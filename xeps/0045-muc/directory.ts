// The service's room directory (XEP-0045 §6.3, disco#items on the service):
// public, unlocked rooms sorted by name, paged with XEP-0059 (max, after,
// before, index), at most directory_page items a page. In a cluster the list is
// every node's (the listings kept in Redis beside the rooms' snapshots).
import { StanzaError, tryJid, x, type Element } from '../../src/api/index.js';
import { NS_DISCO_ITEMS, NS_RSM } from './ns.js';

/** A room as a directory lists it. */
export interface Listed {
  /** the room's local part */
  name: string;
  /** room@service */
  bare: string;
  /** its title (the room name, or the local part) */
  title: string;
}

/** disco#items of the service: the listed (public, unlocked) rooms, sorted, paged with XEP-0059. */
export function directory(rooms: Iterable<Listed>, q: Element, page: number): Element {
  const all = [...rooms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const set = q.getChild('set', NS_RSM);
  let start = 0;
  let end = all.length;
  if (set) {
    const maxText = set.getChildText('max');
    const max = maxText === null ? page : Number(maxText);
    if (!Number.isInteger(max) || max < 0) throw new StanzaError('bad-request', 'bad <max/>');
    const lim = Math.min(max, page);
    const after = set.getChild('after');
    const before = set.getChild('before');
    const index = set.getChildText('index');
    const local = (s: string): string => {
      const j = tryJid(s);
      if (!j) throw new StanzaError('bad-request', 'RSM <after/> and <before/> take a room JID');
      return j.local;
    };
    if (after) {
      const key = local(after.getText());
      start = all.findIndex((r) => r.name > key);
      if (start === -1) start = all.length;
      end = Math.min(all.length, start + lim);
    } else if (before) {
      const t = before.getText();
      const key = t === '' ? '' : local(t);
      end = t === '' ? all.length : all.findIndex((r) => r.name >= key);
      if (end === -1) end = all.length;
      start = Math.max(0, end - lim);
    } else {
      start = index !== null && /^\d+$/.test(index) ? Math.min(Number(index), all.length) : 0;
      end = Math.min(all.length, start + lim);
    }
    if (max === 0) end = start;
  } else end = Math.min(all.length, page);
  const items = all.slice(start, end);
  const rsm =
    set || all.length > page
      ? x(
          'set',
          { xmlns: NS_RSM },
          items.length ? x('first', { index: start }, items[0]!.bare) : undefined,
          items.length ? x('last', null, items.at(-1)!.bare) : undefined,
          x('count', null, String(all.length)),
        )
      : undefined;
  return x(
    'query',
    { xmlns: NS_DISCO_ITEMS },
    items.map((r) => x('item', { jid: r.bare, name: r.title })),
    rsm,
  );
}
