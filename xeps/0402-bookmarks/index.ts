// XEP-0402 PEP Native Bookmarks, with both compatibility bridges: a user's bookmarks are
// the items of the PEP node urn:xmpp:bookmarks:1 (one per room, id = the room's JID), and
// a client that still speaks XEP-0048 sees and changes the same list, through private XML
// storage (XEP-0049: `urn:xmpp:bookmarks:1#compat`) or the PEP node storage:bookmarks
// (XEP-0411: `urn:xmpp:bookmarks:1#compat-pep`, `urn:xmpp:bookmarks-conversion:0`).
//
// The XEP-0402 items are the truth. A legacy write is compared with them: new or changed
// rooms are published, missing ones retracted (notifications only for what changed,
// XEP-0402 §5.3). A XEP-0402 change rewrites the storage:bookmarks node. What XEP-0048
// has and XEP-0402 does not (<url/> bookmarks) is kept beside, in private storage, and
// given back with the conferences; XEP-0402 <extensions/> survive a legacy write.
import { x, parseXml, type Element, type ModuleContext, type XepModule } from '../../src/api/index.js';

export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
const NS_LEGACY = 'storage:bookmarks';
/** private storage key of what XEP-0048 lists besides rooms (<url/>) */
const EXTRAS = 'storage storage:bookmarks';
/** XEP-0402 §3.3: how clients publish bookmarks (private, every room kept) */
const OPTIONS = { persist_items: true, access_model: 'whitelist', max_items: 'max', send_last_published_item: 'never' };
const LEGACY_OPTIONS = { persist_items: true, access_model: 'whitelist', send_last_published_item: 'never' };

/** A XEP-0048 <conference jid=...> as a XEP-0402 item payload (keeping `extensions` of the item it replaces). */
function toNative(c: Element, extensions: Element | undefined): Element {
  const nick = c.getChildText('nick');
  const password = c.getChildText('password');
  return x(
    'conference',
    { xmlns: NS_BOOKMARKS, name: c.attrs.name || undefined, autojoin: c.attrs.autojoin === 'true' || c.attrs.autojoin === '1' ? 'true' : undefined },
    nick ? x('nick', null, nick) : undefined,
    password ? x('password', null, password) : undefined,
    extensions,
  );
}

/** A XEP-0402 item as a XEP-0048 <conference/>. */
function toLegacy(jid: string, c: Element): Element {
  const nick = c.getChildText('nick');
  const password = c.getChildText('password');
  return x(
    'conference',
    { jid, name: c.attrs.name, autojoin: c.attrs.autojoin === 'true' || c.attrs.autojoin === '1' ? 'true' : 'false' },
    nick ? x('nick', null, nick) : undefined,
    password ? x('password', null, password) : undefined,
  );
}

/** An element as comparable text: attributes sorted, unset ones and whitespace between elements left out. */
function canonical(e: Element): string {
  const attrs = Object.entries(e.attrs)
    .filter(([, v]) => v !== undefined && v !== null)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(String(v))}`);
  const kids = e.children.map((c) => (typeof c === 'string' ? (c.trim() ? JSON.stringify(c) : '') : canonical(c))).join('');
  return `<${e.name} ${attrs.join(' ')}>${kids}</>`;
}
const same = (a: Element, b: Element): boolean => canonical(a) === canonical(b);

class Bridge {
  constructor(private readonly m: ModuleContext) {}

  private pep() {
    const pep = this.m.use('pep');
    if (!pep) throw new Error('PEP is not loaded');
    return pep;
  }

  /** The bookmarks in the XEP-0048 format: the XEP-0402 items, then the kept <url/>s. */
  async get(user: string): Promise<Element> {
    const items = await this.pep().items(user, NS_BOOKMARKS);
    const storage = x('storage', { xmlns: NS_LEGACY });
    // oldest first: the order the rooms were added in
    for (const i of items.reverse()) if (i.payload.is('conference')) storage.children.push(toLegacy(i.id, i.payload));
    const extras = await this.m.storage.userData.get(user, 'private', EXTRAS);
    if (extras) for (const u of parseXml(extras).getChildren('url')) storage.children.push(u);
    return storage;
  }

  /** A XEP-0048 list written (private storage or the storage:bookmarks node): the XEP-0402 items follow. */
  async set(user: string, storage: Element, fromPep = false): Promise<void> {
    const pep = this.pep();
    const current = new Map((await pep.items(user, NS_BOOKMARKS)).map((i) => [i.id, i.payload]));
    const wanted = new Map<string, Element>();
    for (const c of storage.getChildren('conference')) {
      const jid = c.attrs.jid;
      if (!jid) continue;
      wanted.set(jid, toNative(c, current.get(jid)?.getChild('extensions')));
    }
    for (const [jid, payload] of wanted) {
      const had = current.get(jid);
      // compared as XEP-0048 can say it (autojoin='false' and no autojoin are the same room)
      if (!had || !same(toNative(toLegacy(jid, had), had.getChild('extensions')), payload))
        await pep.publish(user, NS_BOOKMARKS, jid, payload, OPTIONS);
    }
    for (const jid of current.keys()) if (!wanted.has(jid)) await pep.retract(user, NS_BOOKMARKS, jid);
    const urls = storage.getChildren('url');
    await this.m.storage.userData.set(user, 'private', EXTRAS, x('storage', { xmlns: NS_LEGACY }, urls).toString());
    if (!fromPep) await this.mirror(user);
  }

  /** Rewrite the XEP-0411 storage:bookmarks node from the XEP-0402 items. */
  async mirror(user: string): Promise<void> {
    await this.pep().publish(user, NS_LEGACY, 'current', await this.get(user), LEGACY_OPTIONS);
  }
}

const bookmarks: XepModule = {
  name: 'bookmarks',
  depends: ['pep', 'private'],
  xeps: [
    { n: 402, version: '1.2.0', status: 'complete', note: 'with #compat (XEP-0049) and #compat-pep (XEP-0048 on PEP)' },
    { n: 411, version: '1.1.0', status: 'complete', note: 'storage:bookmarks on PEP and private storage kept equal' },
    { n: 48, version: '1.2', status: 'complete', note: 'in private storage and on PEP, kept as XEP-0402 items' },
  ],
  setup(m) {
    m.feature(`${NS_BOOKMARKS}#compat`, 'bare');
    m.feature(`${NS_BOOKMARKS}#compat-pep`, 'bare');
    m.feature('urn:xmpp:bookmarks-conversion:0', 'bare');
    const bridge = new Bridge(m);
    m.provide('bookmarks', { get: (user) => bridge.get(user), set: (user, storage) => bridge.set(user, storage) });
    m.hook('pep/changed', async (user, node, _id, payload) => {
      if (node === NS_BOOKMARKS) await bridge.mirror(user);
      else if (node === NS_LEGACY && payload?.is('storage', NS_LEGACY)) await bridge.set(user, payload, true);
    });
  },
};

export default bookmarks;
