// Who gets a PEP event (XEP-0163 §4): the owner's own available resources and the
// available resources of contacts subscribed to the owner's presence, each only if its
// client asked for the node (`NODE+notify`, learned by XEP-0115), the access model
// allows it, and the owner does not block the contact; plus explicit subscriptions.
// Contacts on other servers too: their resources whose caps the presence they sent here
// announced (xeps/0115-caps/remote.ts). Notifications come from the owner's bare JID
// (§4.3.1), one per resource, serialised once.
import { x, Jid, dateTime, type Element, type ModuleContext, type RemoteCapsResource, type SessionRecord } from '../../src/api/index.js';
import type { PubSubNode, ServiceState } from '../0060-pubsub/nodes.js';
import { parsePayload, type EventKind, type PubSubService } from '../0060-pubsub/service.js';
import { randomBytes } from 'node:crypto';

const NOTIFY = '+notify';

export class PepNotifier {
  /** notification ids: unique per server run (a random prefix, then a counter) */
  private readonly idPrefix = randomBytes(6).toString('base64url') + '-';
  private ids = 0;
  private newId(): string {
    return this.idPrefix + (++this.ids).toString(36);
  }

  constructor(
    private readonly m: ModuleContext,
    private readonly pubsub: () => PubSubService,
  ) {}

  private local(bare: string): string {
    return bare.slice(0, bare.indexOf('@'));
  }

  private isLocal(bare: string): boolean {
    return bare.endsWith('@' + this.m.host) && bare.indexOf('@') > 0;
  }

  /** May `contact` (a bare JID subscribed to the owner's presence, or the owner) see this node? */
  private allowed(owner: string, n: PubSubNode, contact: string): boolean | Promise<boolean> {
    if (contact === owner) return true;
    const aff = n.affiliations.get(contact);
    if (aff === 'outcast') return false;
    if (aff === 'member' || aff === 'publisher' || aff === 'owner') return true;
    switch (n.config.access_model) {
      case 'open':
      case 'presence':
        return true;
      case 'roster':
        return (async () => {
          const item = await this.m.use('roster')?.item(this.local(owner), contact);
          return !!item && item.groups.some((g) => n.config.roster_groups_allowed.includes(g));
        })();
      case 'whitelist':
        return false;
    }
  }

  /**
   * Send an event of `n` to everyone who gets it (XEP-0163 §4.3). The common case (contacts
   * on this node, presence access, no blocklists) runs without waiting on anything.
   */
  async send(state: ServiceState, n: PubSubNode, event: Element, _kind: EventKind): Promise<void> {
    const owner = state.service;
    const caps = this.m.use('caps');
    const interest = n.name + NOTIFY;
    const targets: Jid[] = [];
    const reached = new Set<string>();
    const consider = (sessions: readonly SessionRecord[]): void => {
      for (const s of sessions) {
        if (!s.available || !caps?.features(s)?.has(interest)) continue;
        targets.push(s.jid);
        reached.add(s.jid.bare);
      }
    };
    /** the available sessions of `bare`, with what other nodes learned of their caps */
    const sessionsOf = (bare: string): readonly SessionRecord[] | Promise<readonly SessionRecord[]> => {
      const ss = this.m.sessions.of(bare);
      const p = ss.length ? caps?.prefetch(ss) : undefined;
      return p ? p.then(() => ss) : ss;
    };
    const own = sessionsOf(owner);
    consider(own instanceof Promise ? await own : own);
    const ownerUser = this.local(owner);
    const roster = this.m.use('roster');
    if (roster) {
      const whitelist = n.config.access_model === 'whitelist';
      const contacts = whitelist ? [...n.affiliations.keys()] : await roster.subscribers(ownerUser);
      for (const c of contacts) {
        if (c === owner) continue;
        // a contact of another server: its resources that asked, as their presence here said
        const remote = this.isLocal(c) ? undefined : (caps?.remote(c).filter((r) => r.features.has(interest)) ?? []);
        if (remote?.length === 0) continue;
        if (whitelist && !(await roster.item(ownerUser, c))) continue;
        const ok = this.allowed(owner, n, c);
        if (!(ok instanceof Promise ? await ok : ok)) continue;
        const got = remote ? [] : sessionsOf(c);
        const ss = got instanceof Promise ? await got : got;
        if (!ss.length && !remote) continue;
        const blocked = this.m.blocks(ownerUser, Jid.parse(c));
        if (blocked instanceof Promise ? await blocked : blocked) continue;
        if (!remote) consider(ss);
        else {
          for (const r of remote) targets.push(r.jid);
          reached.add(c);
        }
      }
    }
    const message = x('message', { from: owner, type: n.config.notification_type, id: this.newId() }, event);
    // explicit subscriptions (XEP-0060 §6.1): a full JID gets its own copy; a bare JID one
    // copy through normal routing, unless its resources got theirs already
    for (const jid of n.subscriptions.keys()) {
      const j = Jid.parse(jid);
      if (reached.has(j.bare)) continue;
      // still allowed (access model, affiliation, not blocked)? A subscription does not outlive its right
      if (!(await this.pubsub().mayAccess(state, n, j))) continue;
      if (j.resource) {
        // a resource of another server cannot be checked from here: its server drops what it cannot deliver
        if (!this.isLocal(j.bare) || this.m.sessions.has(j)) targets.push(j);
      } else this.m.send(x('message', { ...message.attrs, to: j.bare }, event));
    }
    if (targets.length) this.m.fanout(message, targets);
    this.m.log.debug({ owner, node: n.name, resources: targets.length, subscriptions: n.subscriptions.size }, 'pep: notified');
  }

  /** The newest item of `n`, as a notification stamped with when it was published (§4.3.4). */
  private lastItem(n: PubSubNode, from: string, to: string): Element | undefined {
    const last = n.last;
    if (!last) return undefined;
    const event = this.pubsub().storedEvent(n, last.id, last.payload ? parsePayload(last.payload) : undefined);
    return x(
      'message',
      { from, to, type: n.config.notification_type, id: this.newId() },
      event,
      x('delay', { xmlns: 'urn:xmpp:delay', from, stamp: dateTime(last.publishedAt) }),
    );
  }

  /** A new explicit subscriber gets the newest item (§6.1.7). */
  sendLast(state: ServiceState, n: PubSubNode, to: Jid): void {
    const msg = this.lastItem(n, state.service, to.full);
    if (msg) this.m.send(msg);
  }

  /**
   * A resource's interests became known (its first presence, XEP-0115): the newest item of
   * each node it asked for, of its own account and of every contact whose presence it gets.
   */
  async onInterests(s: SessionRecord, features: ReadonlySet<string>, nodes: (owner: string) => Promise<ServiceState>): Promise<void> {
    const wanted: string[] = [];
    for (const f of features) if (f.endsWith(NOTIFY)) wanted.push(f.slice(0, -NOTIFY.length));
    if (!wanted.length) return;
    const me = s.jid.bare;
    const owners = [me, ...((await this.m.use('roster')?.subscriptions(s.jid.local)) ?? []).filter((c) => this.isLocal(c) && c !== me)];
    for (const owner of owners) {
      const state = await nodes(owner);
      if (!state.nodes.size) continue;
      if (owner !== me && (await this.m.blocks(this.local(owner), s.jid))) continue;
      for (const name of wanted) {
        const n = state.nodes.get(name);
        if (!n?.last || n.config.send_last_published_item !== 'on_sub_and_presence') continue;
        if (!(await this.allowed(owner, n, me))) continue;
        const msg = this.lastItem(n, owner, s.jid.full);
        if (msg) this.m.deliver(msg, [s]);
      }
    }
  }

  /**
   * A resource of `to`'s contact on another server: its interests became known (XEP-0115,
   * from its presence), or it sent its presence to `to` once they were. The newest item of
   * each of `to`'s nodes it asked for, if the contact may see `to`'s presence (XEP-0163 §4.3.4).
   */
  async onRemoteInterests(r: RemoteCapsResource, to: string, nodes: (owner: string) => Promise<ServiceState>): Promise<void> {
    if (!this.isLocal(to) || this.isLocal(r.jid.bare)) return;
    const wanted: string[] = [];
    for (const f of r.features) if (f.endsWith(NOTIFY)) wanted.push(f.slice(0, -NOTIFY.length));
    if (!wanted.length) return;
    const item = await this.m.use('roster')?.item(this.local(to), r.jid.bare);
    if (!item || (item.subscription !== 'from' && item.subscription !== 'both')) return;
    const state = await nodes(to);
    if (!state.nodes.size || (await this.m.blocks(this.local(to), r.jid))) return;
    for (const name of wanted) {
      const n = state.nodes.get(name);
      if (!n?.last || n.config.send_last_published_item !== 'on_sub_and_presence') continue;
      if (!(await this.allowed(to, n, r.jid.bare))) continue;
      const msg = this.lastItem(n, to, r.jid.full);
      if (msg) this.m.send(msg);
    }
  }

  /** `contact` was just allowed to see `owner`'s presence: the newest items it asked for (XEP-0060 §12.2). */
  async onSubscriber(state: ServiceState, contact: string): Promise<void> {
    if (!state.nodes.size) return;
    if (!this.isLocal(contact)) return this.remoteSubscriber(state, contact);
    const caps = this.m.use('caps');
    const sessions = this.m.sessions.of(contact).filter((s) => s.available);
    if (caps) await caps.prefetch(sessions);
    for (const n of state.nodes.values()) {
      if (!n.last || n.config.send_last_published_item === 'never' || !(await this.allowed(state.service, n, contact))) continue;
      for (const s of sessions) {
        if (!caps?.features(s)?.has(n.name + NOTIFY)) continue;
        const msg = this.lastItem(n, state.service, s.jid.full);
        if (msg) this.m.deliver(msg, [s]);
      }
    }
  }

  /** onSubscriber for a contact of another server: its resources whose caps are known here. */
  private async remoteSubscriber(state: ServiceState, contact: string): Promise<void> {
    const resources = this.m.use('caps')?.remote(contact) ?? [];
    if (!resources.length) return;
    for (const n of state.nodes.values()) {
      if (!n.last || n.config.send_last_published_item === 'never' || !(await this.allowed(state.service, n, contact))) continue;
      for (const r of resources) {
        if (!r.features.has(n.name + NOTIFY)) continue;
        const msg = this.lastItem(n, state.service, r.jid.full);
        if (msg) this.m.send(msg);
      }
    }
  }
}
