// XEP-0060 Publish-Subscribe: the protocol of one kind of service. It reads the
// <pubsub/> requests (namespaces pubsub and pubsub#owner), checks them, changes the
// nodes (./nodes.ts) and answers; who a notification goes to, and what relation to the
// owner an access model asks for, is the service's policy (PEP: xeps/0163-pep).
import { x, Jid, StanzaError, SubmittedForm, parseXml, type Element, type StoredPubSubItem } from '../../src/api/index.js';
import { randomBytes } from 'node:crypto';
import {
  applyConfigForm,
  configForm,
  defaultConfig,
  keepItems,
  meets,
  parsePublishOptions,
  type NodeConfig,
} from './config.js';
import { pubsubError, unsupported } from './errors.js';
import { nodeAffiliations, nodeSubscriptions, setAffiliations, setSubscriptions } from './owner-lists.js';
import { type Affiliation, type NodeCache, type PubSubNode, type ServiceState } from './nodes.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';

export interface PubSubLimits {
  /** bytes of one item's payload, serialised */
  maxItemSize: number;
  /** items one node keeps at most (what 'max' means) */
  maxItems: number;
  /** nodes one service holds */
  maxNodes: number;
  /** explicit subscriptions one node holds */
  maxSubscriptions: number;
}

/** What an access model needs to know of a requester's relation to the service's owner. */
export interface Relation {
  /** subscribed to the owner's presence (roster subscription 'from' or 'both' on the owner's side) */
  presence: boolean;
  /** the roster groups the owner put the requester in */
  groups: string[];
}

export type EventKind = 'items' | 'retract' | 'delete' | 'purge' | 'config';

export interface PubSubPolicy {
  /** the service's owner (PEP: the account itself) */
  isOwner(service: string, who: Jid): boolean;
  relation(service: string, who: string): Promise<Relation>;
  /** the owner blocks `who`: treated as an outcast */
  blocked(service: string, who: Jid): Promise<boolean>;
  /** send an event (<event/> payload) of `node` to those who get it */
  notify(state: ServiceState, node: PubSubNode, event: Element, kind: EventKind): void;
  /** send the node's newest item to one new subscriber */
  sendLast(state: ServiceState, node: PubSubNode, to: Jid): void;
}

/** payload bytes in one items answer (a node may keep 1,000 items of 64 KiB) */
const MAX_REPLY_BYTES = 1 << 20;

/** explicit subscriptions one user (bare JID) may hold on one node: its bare JID and a few resources */
const MAX_SUBSCRIPTIONS_PER_USER = 10;

const itemId = (): string => randomBytes(12).toString('hex');
const truthy = (v: string | undefined): boolean => v === 'true' || v === '1';

export class PubSubService {
  constructor(
    readonly nodes: NodeCache,
    private readonly policy: PubSubPolicy,
    readonly limits: () => PubSubLimits,
  ) {}

  // ---- access (§4.5, §6.1.3, §6.5.9) ----

  private async affiliation(state: ServiceState, n: PubSubNode | undefined, who: Jid): Promise<Affiliation | 'none'> {
    if (this.policy.isOwner(state.service, who)) return 'owner';
    if (await this.policy.blocked(state.service, who)) return 'outcast';
    return n?.affiliations.get(who.bare) ?? 'none';
  }

  /** May `who` subscribe to / retrieve from `n`? Throws the access model's error if not. */
  private async checkAccess(state: ServiceState, n: PubSubNode, who: Jid): Promise<void> {
    const aff = await this.affiliation(state, n, who);
    if (aff === 'outcast') throw new StanzaError('forbidden');
    if (aff !== 'none' && aff !== 'publish-only') return;
    switch (n.config.access_model) {
      case 'open':
        return;
      case 'presence':
        if (!(await this.policy.relation(state.service, who.bare)).presence)
          throw pubsubError('not-authorized', 'presence-subscription-required');
        return;
      case 'roster': {
        const r = await this.policy.relation(state.service, who.bare);
        if (!r.presence || !r.groups.some((g) => n.config.roster_groups_allowed.includes(g)))
          throw pubsubError('not-authorized', 'not-in-roster-group');
        return;
      }
      case 'whitelist':
        throw pubsubError('not-allowed', 'closed-node');
    }
  }

  /** May `who` subscribe to / retrieve from `n` now (explicit subscriptions are checked again at each notification)? */
  async mayAccess(state: ServiceState, n: PubSubNode, who: Jid): Promise<boolean> {
    try {
      await this.checkAccess(state, n, who);
      return true;
    } catch {
      return false;
    }
  }

  /** Nodes of `service` that `who` may see (disco#items). */
  async visible(service: string, who: Jid): Promise<PubSubNode[]> {
    const state = await this.nodes.get(service);
    const out: PubSubNode[] = [];
    for (const n of state.nodes.values()) {
      try {
        await this.checkAccess(state, n, who);
        out.push(n);
      } catch {
        // not for them
      }
    }
    return out;
  }

  /** the node an element names (node attribute), or the XEP-0060 error */
  need(state: ServiceState, el: Element): PubSubNode {
    const name = el.attrs.node;
    if (!name) throw pubsubError('bad-request', 'nodeid-required');
    const n = state.nodes.get(name);
    if (!n) throw new StanzaError('item-not-found', `no node ${name}`);
    return n;
  }

  async needOwner(state: ServiceState, n: PubSubNode | undefined, who: Jid): Promise<void> {
    if ((await this.affiliation(state, n, who)) !== 'owner') throw new StanzaError('forbidden', 'only the owner may do this');
  }

  // ---- requests ----

  /** An IQ with a <pubsub/> (NS_PUBSUB) payload to `service`. */
  async request(service: string, who: Jid, type: 'get' | 'set', pubsub: Element): Promise<Element | void> {
    const first = pubsub.getChildElements()[0];
    if (!first) throw new StanzaError('bad-request', 'empty pubsub request');
    switch (`${type} ${first.name}`) {
      case 'get items':
        return this.items(service, who, first);
      case 'get subscriptions':
        return this.ownSubscriptions(service, who, first);
      case 'get affiliations':
        return this.ownAffiliations(service, who, first);
      case 'set publish':
        return this.publish(service, who, first, pubsub.getChild('publish-options'));
      case 'set create':
        return this.create(service, who, first, pubsub.getChild('configure'));
      case 'set retract':
        return this.retract(service, who, first);
      case 'set subscribe':
        return this.subscribe(service, who, first);
      case 'set unsubscribe':
        return this.unsubscribe(service, who, first);
      case 'get options':
      case 'set options':
        throw unsupported('subscription-options');
      case 'get default':
        throw unsupported('retrieve-default-sub');
      default:
        throw new StanzaError('feature-not-implemented', `${type} ${first.name} is not a pubsub request`);
    }
  }

  /** An IQ with a <pubsub xmlns='...#owner'/> payload to `service`. */
  async owner(service: string, who: Jid, type: 'get' | 'set', pubsub: Element): Promise<Element | void> {
    const first = pubsub.getChildElements()[0];
    if (!first) throw new StanzaError('bad-request', 'empty pubsub#owner request');
    switch (`${type} ${first.name}`) {
      case 'get configure':
        return this.getConfig(service, who, first);
      case 'set configure':
        return this.setConfig(service, who, first);
      case 'get default':
        return x('pubsub', { xmlns: NS_PUBSUB_OWNER }, x('default', null, configForm(defaultConfig(), 'form', this.formExtra())));
      case 'set delete':
        return this.deleteNode(service, who, first);
      case 'set purge':
        return this.purge(service, who, first);
      case 'get subscriptions':
        return nodeSubscriptions(this, service, who, first);
      case 'set subscriptions':
        return setSubscriptions(this, service, who, first);
      case 'get affiliations':
        return nodeAffiliations(this, service, who, first);
      case 'set affiliations':
        return setAffiliations(this, service, who, first);
      default:
        throw new StanzaError('feature-not-implemented', `${type} ${first.name} is not a pubsub#owner request`);
    }
  }

  private formExtra(): { maxPayloadSize: number } {
    return { maxPayloadSize: this.limits().maxItemSize };
  }

  // ---- create (§8.1) ----

  private async newNode(state: ServiceState, name: string, config: NodeConfig): Promise<PubSubNode> {
    if (state.nodes.size >= this.limits().maxNodes)
      throw pubsubError('policy-violation', 'max-nodes-exceeded', `at most ${this.limits().maxNodes} nodes`, 'cancel');
    const n: PubSubNode = { name, config, affiliations: new Map(), subscriptions: new Map(), createdAt: Date.now(), last: undefined };
    await this.nodes.save(state.service, n);
    state.nodes.set(name, n);
    return n;
  }

  private async create(service: string, who: Jid, create: Element, configure: Element | undefined): Promise<Element | void> {
    if (!this.policy.isOwner(service, who)) throw new StanzaError('forbidden', 'only the owner creates nodes here');
    if (configure?.attrs.node !== undefined) throw new StanzaError('bad-request', '<configure/> at creation names no node');
    const limit = this.limits().maxItems;
    let config = defaultConfig();
    const form = configure ? SubmittedForm.in(configure) : undefined;
    if (form && form.type !== 'cancel') config = applyConfigForm(config, form, limit);
    const requested = create.attrs.node;
    const name = requested || itemId();
    return this.nodes.exclusive(service, async (state) => {
      if (state.nodes.has(name)) throw new StanzaError('conflict', `node ${name} exists`);
      await this.newNode(state, name, config);
      // an instant node's generated name is returned (§8.1.2)
      return requested ? undefined : x('pubsub', { xmlns: NS_PUBSUB }, x('create', { node: name }));
    });
  }

  // ---- publish (§7.1) ----

  private async publish(service: string, who: Jid, publish: Element, options: Element | undefined): Promise<Element> {
    const name = publish.attrs.node;
    if (!name) throw pubsubError('bad-request', 'nodeid-required');
    const items = publish.getChildren('item');
    if (items.length > 1) throw pubsubError('bad-request', 'invalid-payload', 'publish one item at a time');
    const item = items[0];
    if (!item) throw pubsubError('bad-request', 'item-required');
    const payloads = item.getChildElements();
    if (payloads.length === 0) throw pubsubError('bad-request', 'payload-required');
    if (payloads.length > 1) throw pubsubError('bad-request', 'invalid-payload', 'an item holds one payload element');
    const payload = payloads[0]!;
    payload.parent = null;
    const limits = this.limits();
    const xml = payload.toString();
    if (Buffer.byteLength(xml) > limits.maxItemSize)
      throw pubsubError('not-acceptable', 'payload-too-big', `an item's payload may have at most ${limits.maxItemSize} bytes`);
    const wanted = options ? parsePublishOptions(options, limits.maxItems) : {};
    const id = item.attrs.id || itemId();

    return this.nodes.exclusive(service, async (state) => {
      let n = state.nodes.get(name);
      if (!n) {
        // auto-create (XEP-0163 §3), with the publish-options as its configuration (§7.1.5)
        if (!this.policy.isOwner(service, who)) throw new StanzaError('item-not-found', `no node ${name}`);
        n = await this.newNode(state, name, { ...defaultConfig(), ...wanted });
      } else {
        // permission first: a stranger learns nothing of the node's configuration
        const aff = await this.affiliation(state, n, who);
        const may =
          aff === 'owner' ||
          aff === 'publisher' ||
          aff === 'publish-only' ||
          (n.config.publish_model === 'open' && aff !== 'outcast') ||
          (n.config.publish_model === 'subscribers' && n.subscriptions.has(who.bare));
        if (!may) throw new StanzaError('forbidden', 'you may not publish to this node');
        const unmet = meets(n.config, wanted, limits.maxItems);
        if (unmet) throw pubsubError('conflict', 'precondition-not-met', `the node's ${unmet} differs from the publish-options`);
      }
      if (n.config.type && payload.attrs.xmlns !== n.config.type)
        throw pubsubError('bad-request', 'invalid-payload', `this node takes ${n.config.type} payloads`);
      const stored = { node: name, id, publisher: who.bare, payload: xml, publishedAt: Date.now() };
      await this.nodes.publish(service, n, stored, keepItems(n.config, limits.maxItems));
      if (n.config.deliver_notifications)
        this.policy.notify(state, n, this.itemsEvent(n, [{ id, payload: n.config.deliver_payloads ? payload : undefined }]), 'items');
      return x('pubsub', { xmlns: NS_PUBSUB }, x('publish', { node: name }, x('item', { id })));
    });
  }

  private itemsEvent(n: PubSubNode, items: { id: string; payload?: Element }[]): Element {
    return x('event', { xmlns: NS_PUBSUB_EVENT }, x('items', { node: n.name }, items.map((i) => x('item', { id: i.id }, i.payload))));
  }

  /** The event carrying an item as stored (its payload parsed again), for the newest-item sends. */
  storedEvent(n: PubSubNode, id: string, payload: Element | undefined): Element {
    return this.itemsEvent(n, [{ id, payload: n.config.deliver_payloads ? payload : undefined }]);
  }

  // ---- retract (§7.2) ----

  private async retract(service: string, who: Jid, retract: Element): Promise<void> {
    const item = retract.getChild('item');
    const id = item?.attrs.id;
    if (!id) throw pubsubError('bad-request', 'item-required');
    await this.nodes.exclusive(service, async (state) => {
      const n = this.need(state, retract);
      const aff = await this.affiliation(state, n, who);
      if (aff !== 'owner' && aff !== 'publisher') {
        // a publish-only entity may retract what it published itself
        const own = aff === 'publish-only' && (await this.stored(state, n, [id]))[0]?.publisher === who.bare;
        if (!own) throw new StanzaError('forbidden', 'you may not retract items of this node');
      }
      if (!(await this.nodes.retract(state, n, id))) throw new StanzaError('item-not-found', `no item ${id}`);
      if (truthy(retract.attrs.notify) || n.config.notify_retract)
        this.policy.notify(state, n, x('event', { xmlns: NS_PUBSUB_EVENT }, x('items', { node: n.name }, x('retract', { id }))), 'retract');
    });
  }

  private stored(state: ServiceState, n: PubSubNode, ids: string[]) {
    return this.nodes.store.items(state.service, n.name, { ids });
  }

  // ---- items (§6.5) ----

  private async items(service: string, who: Jid, items: Element): Promise<Element> {
    const state = await this.nodes.get(service);
    const n = this.need(state, items);
    await this.checkAccess(state, n, who);
    const ids = items
      .getChildren('item')
      .map((i) => i.attrs.id)
      .filter((id): id is string => !!id);
    const maxAttr = items.attrs.max_items;
    let max: number | undefined;
    if (maxAttr !== undefined) {
      if (!/^\d+$/.test(maxAttr) || Number(maxAttr) < 1) throw new StanzaError('bad-request', 'max_items must be a positive integer');
      max = Number(maxAttr);
    }
    const all = await this.nodes.store.items(service, n.name, ids.length ? { ids } : { max });
    // one answer holds at most MAX_REPLY_BYTES of payloads, the newest first (§6.5.4 lets a
    // service truncate; ask by id or with max_items for the rest)
    const rows: typeof all = [];
    let bytes = 0;
    for (const r of all) {
      bytes += r.payload.length;
      if (rows.length && bytes > MAX_REPLY_BYTES) break;
      rows.push(r);
    }
    // oldest first, as XEP-0060's examples list them
    rows.reverse();
    return x(
      'pubsub',
      { xmlns: NS_PUBSUB },
      x(
        'items',
        { node: n.name },
        rows.map((r) => x('item', { id: r.id }, r.payload ? parsePayload(r.payload) : undefined)),
      ),
    );
  }

  // ---- subscriptions (§6.1, §6.2, §5.6) ----

  private async subscribe(service: string, who: Jid, sub: Element): Promise<Element> {
    const jidAttr = sub.attrs.jid;
    if (!jidAttr) throw pubsubError('bad-request', 'jid-required');
    let jid: Jid;
    try {
      jid = Jid.parse(jidAttr);
    } catch {
      throw pubsubError('bad-request', 'invalid-jid');
    }
    if (jid.bare !== who.bare) throw pubsubError('bad-request', 'invalid-jid', 'subscribe your own JID');
    return this.nodes.exclusive(service, async (state) => {
      const n = this.need(state, sub);
      await this.checkAccess(state, n, who);
      if (!n.subscriptions.has(jid.full)) {
        // one user cannot take the node's whole allowance with made-up resources
        const mine = [...n.subscriptions.keys()].filter((j) => tryParse(j)?.bare === jid.bare).length;
        if (n.subscriptions.size >= this.limits().maxSubscriptions || mine >= MAX_SUBSCRIPTIONS_PER_USER)
          throw pubsubError('policy-violation', 'too-many-subscriptions', undefined, 'wait');
        n.subscriptions.set(jid.full, 'subscribed');
        await this.nodes.save(service, n);
      }
      if (n.config.send_last_published_item !== 'never' && n.last) this.policy.sendLast(state, n, jid);
      return x('pubsub', { xmlns: NS_PUBSUB }, x('subscription', { node: n.name, jid: jid.full, subscription: 'subscribed' }));
    });
  }

  private async unsubscribe(service: string, who: Jid, unsub: Element): Promise<void> {
    const jidAttr = unsub.attrs.jid;
    if (!jidAttr) throw pubsubError('bad-request', 'jid-required');
    const jid = tryParse(jidAttr);
    if (!jid) throw pubsubError('bad-request', 'invalid-jid');
    if (jid.bare !== who.bare) throw new StanzaError('forbidden', 'unsubscribe your own JID');
    await this.nodes.exclusive(service, async (state) => {
      const n = this.need(state, unsub);
      if (!n.subscriptions.delete(jid.full)) throw pubsubError('unexpected-request', 'not-subscribed', undefined, 'cancel');
      await this.nodes.save(service, n);
    });
  }

  private async ownSubscriptions(service: string, who: Jid, el: Element): Promise<Element> {
    const state = await this.nodes.get(service);
    const only = el.attrs.node;
    const out: Element[] = [];
    for (const n of state.nodes.values()) {
      if (only && n.name !== only) continue;
      for (const [jid, s] of n.subscriptions) if (Jid.parse(jid).bare === who.bare) out.push(x('subscription', { node: n.name, jid, subscription: s }));
    }
    return x('pubsub', { xmlns: NS_PUBSUB }, x('subscriptions', { node: only }, out));
  }

  private async ownAffiliations(service: string, who: Jid, el: Element): Promise<Element> {
    const state = await this.nodes.get(service);
    const only = el.attrs.node;
    const out: Element[] = [];
    for (const n of state.nodes.values()) {
      if (only && n.name !== only) continue;
      const aff = this.policy.isOwner(service, who) ? 'owner' : n.affiliations.get(who.bare);
      if (aff) out.push(x('affiliation', { node: n.name, affiliation: aff }));
    }
    return x('pubsub', { xmlns: NS_PUBSUB }, x('affiliations', { node: only }, out));
  }

  // ---- owner: configure, delete, purge (§8.2, §8.4, §8.5) ----

  private async getConfig(service: string, who: Jid, el: Element): Promise<Element> {
    const state = await this.nodes.get(service);
    const n = this.need(state, el);
    await this.needOwner(state, n, who);
    return x('pubsub', { xmlns: NS_PUBSUB_OWNER }, x('configure', { node: n.name }, configForm(n.config, 'form', this.formExtra())));
  }

  private async setConfig(service: string, who: Jid, el: Element): Promise<void> {
    const form = SubmittedForm.in(el);
    if (!form) throw new StanzaError('bad-request', 'submit the configuration form');
    await this.nodes.exclusive(service, async (state) => {
      const n = this.need(state, el);
      await this.needOwner(state, n, who);
      if (form.type === 'cancel') return;
      if (form.type !== 'submit') throw new StanzaError('bad-request', 'the form must be submitted');
      n.config = applyConfigForm(n.config, form, this.limits().maxItems);
      await this.dropLostSubscriptions(state, n);
      await this.nodes.save(service, n);
      if (n.config.notify_config)
        this.policy.notify(
          state,
          n,
          x('event', { xmlns: NS_PUBSUB_EVENT }, x('configuration', { node: n.name }, configForm(n.config, 'result', this.formExtra()))),
          'config',
        );
    });
  }

  private async deleteNode(service: string, who: Jid, el: Element): Promise<void> {
    await this.nodes.exclusive(service, async (state) => {
      const n = this.need(state, el);
      await this.needOwner(state, n, who);
      await this.nodes.remove(state, n.name);
      if (n.config.notify_delete) {
        const redirect = el.getChild('redirect');
        this.policy.notify(
          state,
          n,
          x('event', { xmlns: NS_PUBSUB_EVENT }, x('delete', { node: n.name }, redirect ? x('redirect', { uri: redirect.attrs.uri }) : undefined)),
          'delete',
        );
      }
    });
  }

  private async purge(service: string, who: Jid, el: Element): Promise<void> {
    await this.nodes.exclusive(service, async (state) => {
      const n = this.need(state, el);
      await this.needOwner(state, n, who);
      await this.nodes.purge(state, n);
      if (n.config.notify_retract || n.config.notify_delete)
        this.policy.notify(state, n, x('event', { xmlns: NS_PUBSUB_EVENT }, x('purge', { node: n.name })), 'purge');
    });
  }

  /** XEP-0163 §7.1: subscriptions of those who lost access (a stricter model, an affiliation taken away) are cancelled. */
  async dropLostSubscriptions(state: ServiceState, n: PubSubNode): Promise<void> {
    for (const jid of [...n.subscriptions.keys()]) {
      const j = tryParse(jid);
      if (!j || !(await this.mayAccess(state, n, j))) n.subscriptions.delete(jid);
    }
  }

  // ---- for the service's own use (PEP bridges) ----

  /** A node's items, newest first, if `who` may retrieve them (undefined otherwise, or when there is no such node). */
  async itemsFor(service: string, name: string, who: Jid): Promise<StoredPubSubItem[] | undefined> {
    const state = await this.nodes.get(service);
    const n = state.nodes.get(name);
    if (!n) return undefined;
    try {
      await this.checkAccess(state, n, who);
    } catch {
      return undefined;
    }
    return this.nodes.store.items(service, name);
  }

  /** Publish as the owner, from the server (XEP-0402/XEP-0398 bridges): created with `config` if missing. */
  async publishAs(service: string, name: string, id: string, payload: Element, config: Partial<NodeConfig>): Promise<void> {
    await this.nodes.exclusive(service, async (state) => {
      let n = state.nodes.get(name);
      if (!n) n = await this.newNode(state, name, { ...defaultConfig(), ...config });
      else if (meets(n.config, config, this.limits().maxItems)) {
        // a node a client made with other settings (a private node left readable, one item
        // kept): the bridge's settings win, as its own publishes would have required
        n.config = { ...n.config, ...config };
        await this.dropLostSubscriptions(state, n);
        await this.nodes.save(service, n);
      }
      const xml = payload.toString();
      if (Buffer.byteLength(xml) > this.limits().maxItemSize)
        throw pubsubError('not-acceptable', 'payload-too-big', `an item's payload may have at most ${this.limits().maxItemSize} bytes`);
      const stored = { node: name, id, publisher: service, payload: xml, publishedAt: Date.now() };
      await this.nodes.publish(service, n, stored, keepItems(n.config, this.limits().maxItems));
      if (n.config.deliver_notifications)
        this.policy.notify(state, n, this.itemsEvent(n, [{ id, payload: n.config.deliver_payloads ? payload : undefined }]), 'items');
    });
  }

  async retractAs(service: string, name: string, id: string): Promise<boolean> {
    return this.nodes.exclusive(service, async (state) => {
      const n = state.nodes.get(name);
      if (!n || !(await this.nodes.retract(state, n, id))) return false;
      if (n.config.notify_retract)
        this.policy.notify(state, n, x('event', { xmlns: NS_PUBSUB_EVENT }, x('items', { node: n.name }, x('retract', { id }))), 'retract');
      return true;
    });
  }
}

export function tryParse(s: string): Jid | undefined {
  try {
    return Jid.parse(s);
  } catch {
    return undefined;
  }
}

/** A stored payload back as an element (stored payloads were parsed once: they parse again). */
export const parsePayload = (xml: string): Element => parseXml(xml);
