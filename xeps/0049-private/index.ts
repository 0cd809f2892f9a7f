// XEP-0049 Private XML Storage: each user keeps XML fragments keyed by namespace.
import { Element, x, z, parseXml, StanzaError, type XepModule } from '../../src/api/index.js';

const NS = 'jabber:iq:private';
/** the key of XEP-0048 bookmarks, which xeps/0402-bookmarks keeps as PEP items when loaded */
const BOOKMARKS = 'storage storage:bookmarks';

const Config = z.object({
  /** namespaces one user may store (each bounded by the stanza size) */
  max_items: z.number().int().positive().default(100),
});

const privateStorage: XepModule<z.infer<typeof Config>> = {
  name: 'private',
  config: Config,
  xeps: [{ n: 49, version: '1.2', status: 'complete' }],
  setup(m) {
    // the server's JID too, where clients look for it (Poezio: "No remote bookmark storage available")
    m.feature(NS);
    m.feature(NS, 'bare');

    const check = (payload: Element, self: boolean): Element[] => {
      if (!self) throw new StanzaError('forbidden', 'private storage is only for your own account');
      const children = payload.getChildElements();
      if (children.length === 0) throw new StanzaError('bad-request', 'name a namespace to store or fetch');
      for (const c of children) {
        const ns = c.attrs.xmlns;
        if (!ns) throw new StanzaError('bad-request', 'stored elements need a namespace');
        if (ns.startsWith('jabber:')) throw new StanzaError('not-acceptable', 'jabber:* namespaces are reserved');
      }
      return children;
    };
    const key = (el: Element): string => `${el.name} ${el.attrs.xmlns}`;

    m.iq({ type: 'get', ns: NS, name: 'query', to: ['bare'] }, async (req) => {
      const [wanted] = check(req.payload, req.self);
      if (req.payload.getChildElements().length !== 1) throw new StanzaError('bad-request', 'fetch one namespace at a time');
      // XEP-0402 §5.3: bookmarks are PEP items, seen here in the XEP-0048 format
      const bookmarks = key(wanted!) === BOOKMARKS ? m.use('bookmarks') : undefined;
      if (bookmarks) return x('query', { xmlns: NS }, await bookmarks.get(req.from.local));
      const stored = await m.storage.userData.get(req.from.local, 'private', key(wanted!));
      return x('query', { xmlns: NS }, stored !== undefined ? parseXml(stored) : x(wanted!.name, { xmlns: wanted!.attrs.xmlns }));
    });

    m.iq({ type: 'set', ns: NS, name: 'query', to: ['bare'] }, async (req) => {
      const els = check(req.payload, req.self);
      const have = new Set((await m.storage.userData.list(req.from.local, 'private')).map((r) => r.key));
      const adding = new Set(els.map(key).filter((k) => !have.has(k)));
      if (have.size + adding.size > m.config.max_items)
        throw new StanzaError('resource-constraint', `at most ${m.config.max_items} namespaces`);
      for (const el of els) {
        el.parent = null;
        const bookmarks = key(el) === BOOKMARKS ? m.use('bookmarks') : undefined;
        if (bookmarks) await bookmarks.set(req.from.local, el);
        else await m.storage.userData.set(req.from.local, 'private', key(el), el.toString());
      }
    });
  },
};

export default privateStorage;
