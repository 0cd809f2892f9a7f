// RFC 6121 §2 roster management: get (with XEP-0237 versioning), set, remove.
import { x, Jid, JidError, StanzaError, type IqRequest, type ModuleContext, type RosterItem } from '../api/index.js';
import { NS_ROSTER, itemElement, type RosterService } from './roster-service.js';
import type { Subscriptions } from './subscriptions.js';

/** longest item name or group name (characters), and most groups per item */
const MAX_TEXT = 1024;
const MAX_GROUPS = 64;

export interface RosterLimits {
  max_items: number;
}

export function rosterHandlers(m: ModuleContext, roster: RosterService, subs: Subscriptions, limits: () => RosterLimits): void {
  m.iq({ type: 'get', ns: NS_ROSTER, name: 'query', to: ['bare'] }, async (req) => {
    if (!req.self) throw new StanzaError('forbidden', 'you can only read your own roster');
    if (req.origin) m.sessions.setFlag(req.origin, 'roster', true);
    const { version, items } = await roster.load(req.from.local);
    const ver = String(version);
    // XEP-0237 §4: the client's version is current, nothing to send
    if (req.payload.attrs.ver !== undefined && req.payload.attrs.ver === ver) return;
    return x(
      'query',
      { xmlns: NS_ROSTER, ver },
      [...items.values()].sort((a, b) => (a.jid < b.jid ? -1 : 1)).map((i) => itemElement(i)),
    );
  });

  m.iq({ type: 'set', ns: NS_ROSTER, name: 'query', to: ['bare'] }, async (req: IqRequest) => {
    if (!req.self) throw new StanzaError('forbidden', 'you can only change your own roster');
    const items = req.payload.getChildren('item');
    if (items.length !== 1 || req.payload.getChildElements().length !== 1)
      throw new StanzaError('bad-request', 'a roster set carries exactly one item');
    const el = items[0]!;
    let contact: Jid;
    try {
      contact = Jid.parse(el.attrs.jid ?? '');
    } catch (e) {
      if (e instanceof JidError) throw new StanzaError('jid-malformed', e.message);
      throw e;
    }
    if (!contact.isBare()) throw new StanzaError('bad-request', 'roster items are bare JIDs');
    const user = req.from.local;
    if (el.attrs.subscription === 'remove') {
      const existing = await roster.item(user, contact.bare);
      if (!existing) throw new StanzaError('item-not-found');
      await subs.onRemove(user, existing);
      await roster.remove(user, contact.bare);
      return;
    }
    const groups = el.getChildren('group').map((g) => g.getText());
    if (groups.some((g) => g === '')) throw new StanzaError('not-acceptable', 'empty group name');
    if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'duplicate group');
    const name = el.attrs.name;
    if ((name?.length ?? 0) > MAX_TEXT || groups.some((g) => g.length > MAX_TEXT) || groups.length > MAX_GROUPS) {
      throw new StanzaError('not-acceptable', `names and groups are limited to ${MAX_TEXT} characters, ${MAX_GROUPS} groups`);
    }
    const size = (await roster.load(user)).items.size;
    await roster.update(user, contact.bare, (existing) => {
      if (!existing && size >= limits().max_items)
        throw new StanzaError('not-allowed', `rosters are limited to ${limits().max_items} items`);
      // the client sets name and groups; subscription state is the server's (RFC 6121 §2.1.2.5)
      return {
        jid: contact.bare,
        ...(name ? { name } : {}),
        subscription: existing?.subscription ?? 'none',
        ask: existing?.ask ?? false,
        approved: existing?.approved ?? false,
        groups,
      } satisfies RosterItem;
    });
  });
}
