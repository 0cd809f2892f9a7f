// XEP-0030 Service Discovery: answers disco#info and disco#items from what
// every module registered through its context (feature/identity/discoItem).
import { x, StanzaError, type XepModule } from '../../src/api/index.js';

export const NS_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_ITEMS = 'http://jabber.org/protocol/disco#items';

const disco: XepModule = {
  name: 'disco',
  xeps: [{ n: 30, version: '2.5.0', status: 'complete', note: 'info and items for the server and accounts' }],
  setup(m) {
    m.feature(NS_INFO);
    m.feature(NS_ITEMS);
    m.identity('server', 'im', 'Uzzap');
    m.feature(NS_INFO, 'bare');
    m.feature(NS_ITEMS, 'bare');
    m.identity('account', 'registered', undefined, 'bare');

    m.iq({ type: 'get', ns: NS_INFO, name: 'query', to: ['host', 'bare'] }, async (req) => {
      const scope = req.to.local ? 'bare' : 'host';
      const node = req.payload.attrs.node;
      if (node !== undefined) {
        const found = scope === 'host' ? await m.disco.node(node, req.from) : await m.disco.accountNode(req.to.local, node, req.from);
        if (!found) throw new StanzaError('item-not-found');
        return x(
          'query',
          { xmlns: NS_INFO, node },
          (found.identities ?? []).map((i) => x('identity', { category: i.category, type: i.type, name: i.name })),
          (found.features ?? []).map((f) => x('feature', { var: f })),
          found.forms ?? [],
        );
      }
      if (scope === 'bare' && !req.self) {
        // another user's account: only reveal that it exists (RFC 6121 §8.5.1)
        if (!(await m.storage.accounts.get(req.to.local))) throw new StanzaError('service-unavailable');
      }
      return x(
        'query',
        { xmlns: NS_INFO },
        m.disco.identities(scope).map((i) => x('identity', { category: i.category, type: i.type, name: i.name })),
        m.disco.features(scope).map((f) => x('feature', { var: f })),
        m.disco.forms(scope),
      );
    });

    m.iq({ type: 'get', ns: NS_ITEMS, name: 'query', to: ['host', 'bare'] }, async (req) => {
      const node = req.payload.attrs.node;
      if (node !== undefined) {
        const found = req.to.local ? undefined : await m.disco.node(node, req.from);
        if (!found) throw new StanzaError('item-not-found');
        return x(
          'query',
          { xmlns: NS_ITEMS, node },
          (found.items ?? []).map((i) => x('item', { jid: i.jid, node: i.node, name: i.name })),
        );
      }
      if (req.to.local) {
        if (!req.self && !(await m.storage.accounts.get(req.to.local))) throw new StanzaError('service-unavailable');
        const items = await m.disco.accountItems(req.to.local, req.from);
        return x(
          'query',
          { xmlns: NS_ITEMS },
          items.map((i) => x('item', { jid: i.jid, node: i.node, name: i.name })),
        );
      }
      return x(
        'query',
        { xmlns: NS_ITEMS },
        m.disco.items().map((i) => x('item', { jid: i.jid, name: i.name })),
      );
    });
  },
};

export default disco;
