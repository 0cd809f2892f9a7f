// XEP-0163 Personal Eventing Protocol: every account is a publish-subscribe service at
// its bare JID (the protocol: xeps/0060-pubsub). Nodes are created on first publish
// (with the publish-options as their configuration), default to the presence access
// model, and notify the owner's resources and the contacts subscribed to the owner's
// presence whose clients asked for the node (XEP-0115 `+notify`, xeps/0115-caps). A
// resource gets the newest item of each node it asked for when its first presence is
// known, and a contact when it is allowed to see the owner's presence.
//
// What rides on it needs nothing more from the server than this: OMEMO (XEP-0384: open
// device lists and bundles, max_items=max), avatars (XEP-0084), vCard4 (XEP-0292),
// private storage (XEP-0223: whitelist, persist_items), bookmarks (XEP-0402), displayed
// markers (XEP-0490). The bridges to older protocols are xeps/0402-bookmarks and
// xeps/0398-avatar-conversion.
import { z, Jid, parseXml, dataForm, dateTime, type Element, type XepModule } from '../../src/api/index.js';
import type { NodeConfig } from '../0060-pubsub/config.js';
import { NodeCache } from '../0060-pubsub/nodes.js';
import { NS_PUBSUB, NS_PUBSUB_OWNER, PubSubService } from '../0060-pubsub/service.js';
import { PepNotifier } from './notify.js';

const FEATURES = [
  NS_PUBSUB,
  'access-presence',
  'auto-create',
  'auto-subscribe',
  'config-node',
  'config-node-max',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'filtered-notifications',
  'instant-nodes',
  'item-ids',
  'last-published',
  'manage-subscriptions',
  'member-affiliation',
  'modify-affiliations',
  'multi-items',
  'outcast-affiliation',
  'persistent-items',
  'presence-subscribe',
  'publish',
  'publish-only-affiliation',
  'publish-options',
  'publisher-affiliation',
  'purge-nodes',
  'retract-items',
  'retrieve-affiliations',
  'retrieve-default',
  'retrieve-items',
  'retrieve-subscriptions',
  'subscribe',
].map((f) => (f.startsWith('http') ? f : `${NS_PUBSUB}#${f}`));

const Config = z.object({
  /** bytes of one item's payload (UZZAP_PEP_MAX_ITEM_SIZE); more gets not-acceptable + payload-too-big */
  max_item_size: z.number().int().positive().default(65536),
  /** items one node keeps at most: what pubsub#max_items=max means */
  max_items: z.number().int().positive().default(1000),
  /** nodes one account holds; one more gets policy-violation + max-nodes-exceeded */
  max_nodes: z.number().int().positive().default(256),
  /** explicit subscriptions one node holds; one more gets policy-violation + too-many-subscriptions */
  max_subscriptions: z.number().int().positive().default(1000),
  /** accounts whose nodes are kept in memory (least recently used dropped, read again when needed) */
  cache_users: z.number().int().positive().default(100_000),
});

const pep: XepModule<z.infer<typeof Config>> = {
  name: 'pep',
  config: Config,
  depends: ['caps'],
  xeps: [
    { n: 60, version: '1.30.0', status: 'partial', note: 'the parts PEP uses: no pubsub service of its own, no collections, subscription options or authorize access' },
    { n: 163, version: '1.2.2', status: 'complete' },
    { n: 223, version: '1.1.1', status: 'complete' },
    { n: 84, version: '1.1.4', status: 'complete', note: 'stored and delivered as PEP' },
    { n: 292, version: '0.12.0', status: 'complete', note: 'stored and delivered as PEP' },
    { n: 384, version: '0.9.1', status: 'complete', note: 'device lists and bundles (both namespaces) as PEP' },
  ],
  setup(m) {
    for (const scope of ['bare', 'host'] as const) {
      // XEP-0223 §5: clients look for PEP on the server's JID too
      m.identity('pubsub', 'pep', undefined, scope);
      for (const f of FEATURES) m.feature(f, scope);
    }
    m.feature(`${NS_PUBSUB}#pubsub-on-a-jid`, 'bare');

    const nodes = new NodeCache(
      m.storage.pubsub,
      () => m.config.cache_users,
      (service) => m.invalidate('nodes', service),
    );
    m.onInvalidate('nodes', (service) => nodes.forget(service));
    const notifier = new PepNotifier(m, () => pubsub);
    /** per account, the last notification on its way (entries go when it has left) */
    const sending = new Map<string, Promise<void>>();
    const pubsub: PubSubService = new PubSubService(
      nodes,
      {
        isOwner: (service, who) => who.bare === service,
        relation: async (service, who) => {
          const item = await m.use('roster')?.item(Jid.parse(service).local, who);
          return { presence: !!item && (item.subscription === 'from' || item.subscription === 'both'), groups: item?.groups ?? [] };
        },
        blocked: async (service, who) => !!(await m.blocks(Jid.parse(service).local, who)),
        // one account's notifications leave in the order of its changes (a send may wait on a roster read)
        notify: (state, n, event, kind) => {
          const prev = sending.get(state.service) ?? Promise.resolve();
          const next = prev
            .then(() => notifier.send(state, n, event, kind))
            .catch((err: unknown) => m.log.warn({ err, node: n.name }, 'pep: notifying failed'));
          sending.set(state.service, next);
          void next.finally(() => {
            if (sending.get(state.service) === next) sending.delete(state.service);
          });
        },
        sendLast: (state, n, to) => notifier.sendLast(state, n, to),
      },
      () => ({
        maxItemSize: m.config.max_item_size,
        maxItems: m.config.max_items,
        maxNodes: m.config.max_nodes,
        maxSubscriptions: m.config.max_subscriptions,
      }),
    );
    m.metrics.gauge('pep_cached_accounts', 'accounts whose PEP nodes are in memory', () => nodes.size);

    // requests to an account (or without 'to': one's own); only local users' accounts exist here
    const service = (to: Jid): string => to.bare;
    /** what a request did, at debug level (refusals with their condition) */
    const logged = async <T>(req: { from: Jid; to: Jid; payload: Element }, type: string, run: () => Promise<T>): Promise<T> => {
      if (!m.log.isLevelEnabled('debug')) return run();
      const op = req.payload.getChildElements()[0];
      const what = { from: req.from.full, to: req.to.bare, op: `${type} ${op?.name}`, node: op?.attrs.node };
      try {
        const r = await run();
        m.log.debug(what, 'pep: done');
        return r;
      } catch (err) {
        m.log.debug({ ...what, refused: err instanceof Error ? err.message : String(err) }, 'pep: refused');
        throw err;
      }
    };
    for (const type of ['get', 'set'] as const) {
      m.iq({ type, ns: NS_PUBSUB, name: 'pubsub', to: ['bare'] }, (req) =>
        logged(req, type, async () => {
          const r = await pubsub.request(service(req.to), req.from, type, req.payload);
          if (type === 'set') await changed(req.to, req.payload);
          return r;
        }),
      );
      m.iq({ type, ns: NS_PUBSUB_OWNER, name: 'pubsub', to: ['bare'] }, (req) =>
        logged(req, `${type} owner`, () => pubsub.owner(service(req.to), req.from, type, req.payload)),
      );
    }

    /** A client changed its own PEP node: the bridges (XEP-0402, XEP-0398) keep older protocols in step. */
    const changed = async (to: Jid, payload: Element): Promise<void> => {
      const op = payload.getChildElements()[0];
      if (!op || (op.name !== 'publish' && op.name !== 'retract') || !op.attrs.node) return;
      const item = op.getChild('item');
      await m.run('pep/changed', to.local, op.attrs.node, item?.attrs.id ?? '', op.name === 'publish' ? item?.getChildElements()[0] : undefined);
    };

    const visible = async (owner: string, from: Jid) => {
      const bare = `${owner}@${m.host}`;
      return from.bare === bare ? [...(await nodes.get(bare)).nodes.values()] : await pubsub.visible(bare, from);
    };
    m.discoAccountItems(
      async (owner, from) => (await visible(owner, from)).map((n) => ({ jid: `${owner}@${m.host}`, node: n.name })),
      // XEP-0060 §5.3: a node's identity and meta-data, for those who may see it
      async (owner, node, from) => {
        const n = (await visible(owner, from)).find((v) => v.name === node);
        if (!n) return undefined;
        const meta = dataForm('result', 'http://jabber.org/protocol/pubsub#meta-data', [
          { var: 'pubsub#type', value: n.config.type },
          { var: 'pubsub#title', value: n.config.title },
          { var: 'pubsub#description', value: n.config.description },
          { var: 'pubsub#owner', type: 'jid-multi', value: `${owner}@${m.host}` },
          { var: 'pubsub#access_model', value: n.config.access_model },
          { var: 'pubsub#publish_model', value: n.config.publish_model },
          { var: 'pubsub#max_items', value: n.config.max_items },
          { var: 'pubsub#creation_date', value: dateTime(n.createdAt) },
        ]);
        return { identities: [{ category: 'pubsub', type: 'leaf' }], features: [NS_PUBSUB], forms: [meta] };
      },
    );

    m.hook('caps/known', (s, features) => notifier.onInterests(s, features, (owner) => nodes.get(owner)));
    m.hook('caps/remote', (jid, features, to) => notifier.onRemoteInterests({ jid, features }, to, (owner) => nodes.get(owner)));
    m.hook('roster/subscriber', async (user, contact, subscribed) => {
      const owner = `${user}@${m.host}`;
      if (subscribed) {
        await notifier.onSubscriber(await nodes.get(owner), contact);
        return;
      }
      // XEP-0163 §7.1: a contact that may no longer see the owner's presence loses its
      // explicit subscriptions to nodes that needed it
      await nodes.exclusive(owner, async (state) => {
        for (const n of state.nodes.values()) {
          if (n.config.access_model !== 'presence' && n.config.access_model !== 'roster') continue;
          let drop = false;
          for (const jid of [...n.subscriptions.keys()])
            if (Jid.parse(jid).bare === contact) drop = n.subscriptions.delete(jid) || drop;
          if (drop) await nodes.save(owner, n);
        }
      });
    });
    m.hook('user/deleted', (user) => nodes.removeAll(`${user}@${m.host}`));

    m.provide('pep', {
      publish: (owner, node, id, payload, config) => pubsub.publishAs(`${owner}@${m.host}`, node, id, payload, (config ?? {}) as Partial<NodeConfig>),
      retract: (owner, node, id) => pubsub.retractAs(`${owner}@${m.host}`, node, id),
      items: async (owner, node) => {
        const rows = await m.storage.pubsub.items(`${owner}@${m.host}`, node);
        return rows.map((r) => ({ id: r.id, payload: parseXml(r.payload) }));
      },
      readable: async (owner, node, requester) => {
        const rows = await pubsub.itemsFor(`${owner}@${m.host}`, node, requester);
        return rows?.map((r) => ({ id: r.id, payload: parseXml(r.payload) }));
      },
    });
  },
};

export default pep;
