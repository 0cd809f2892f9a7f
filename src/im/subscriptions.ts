// RFC 6121 §3 presence subscriptions: both the user's side (outbound) and the
// contact's side (inbound) run here; a contact elsewhere (another server, a component)
// is sent the stanzas its side handles.
// State changes follow RFC 6121 Appendix A (tables A.2-A.5); each one is a
// read-modify-write of one roster item under that user's roster lock.
import { x, Jid, type Element, type ModuleContext, type RosterItem, type SessionRecord, type Subscription } from '../api/index.js';
import { hasFrom, hasTo, type RosterService } from './roster-service.js';

export type SubType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
export const SUB_TYPES = new Set<string>(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

const blank = (jid: string): RosterItem => ({ jid, subscription: 'none', ask: false, approved: false, groups: [] });
const addTo = (s: Subscription): Subscription => (s === 'from' ? 'both' : s === 'none' ? 'to' : s);
const addFrom = (s: Subscription): Subscription => (s === 'to' ? 'both' : s === 'none' ? 'from' : s);
const dropTo = (s: Subscription): Subscription => (s === 'both' ? 'from' : s === 'to' ? 'none' : s);
const dropFrom = (s: Subscription): Subscription => (s === 'both' ? 'to' : s === 'from' ? 'none' : s);

export class Subscriptions {
  constructor(
    private readonly m: ModuleContext,
    private readonly roster: RosterService,
    /** send the current presence of every available resource of `user` to `to` (bare) */
    private readonly sendPresenceOf: (user: string, to: string) => void,
    /** send unavailable from every available resource of `user` to `to` (bare) */
    private readonly sendUnavailableOf: (user: string, to: string) => void,
  ) {}

  private bare(user: string): string {
    return `${user}@${this.m.host}`;
  }

  private isLocalUser(j: Jid): boolean {
    return j.domain === this.m.host && j.local !== '';
  }

  /**
   * Deliver a subscription stanza to a local user, keeping the original's
   * children and id (a XEP-0172 nick, a XEP-0379 preauth token): a request goes
   * to the available resources (RFC 6121 §3.1.3), an approval or a cancellation
   * to the interested ones, which requested the roster (§3.1.6, §3.2.3, §3.3.3).
   */
  private deliver(user: string, stanza: Element, to: 'available' | 'interested'): void {
    const sessions = this.m.sessions.of(this.bare(user));
    const targets = sessions.filter((s: SessionRecord) => (to === 'available' ? s.available : s.flags.roster));
    if (targets.length) this.m.deliver(stanza, targets);
  }

  /** The stanza as the user receives it: from the contact's bare JID, with the original's id and children. */
  private inboundStanza(user: string, from: Jid, type: SubType, original: Element): Element {
    const attrs: Record<string, string> = { type, from: from.bare, to: this.bare(user) };
    if (original.attrs.id) attrs.id = original.attrs.id as string;
    return x('presence', attrs, original.getChildElements());
  }

  private hasPending(user: string, jid: string): Promise<boolean> {
    return this.m.storage.roster.pending(user).then((p) => p.some((r) => r.jid === jid));
  }

  /** A user sent a subscription stanza to `contact` (a bare JID). */
  async outbound(user: string, contact: Jid, type: SubType, stanza: Element): Promise<void> {
    const from = this.bare(user);
    let route = true;
    switch (type) {
      case 'subscribe':
        // A.2.1: none/from -> ask; to/both unchanged (the request still goes out)
        await this.roster.update(user, contact.bare, (cur) =>
          cur && (hasTo(cur.subscription) || cur.ask) ? undefined : { ...(cur ?? blank(contact.bare)), ask: true },
        );
        break;
      case 'subscribed': {
        const pending = await this.hasPending(user, contact.bare);
        if (pending) await this.m.storage.roster.removePending(user, contact.bare);
        await this.roster.update(user, contact.bare, (cur) => {
          if (pending) return { ...(cur ?? blank(contact.bare)), subscription: addFrom(cur?.subscription ?? 'none'), approved: false };
          if (cur && hasFrom(cur.subscription)) return undefined; // already subscribed (A.3.1)
          return cur?.approved ? undefined : { ...(cur ?? blank(contact.bare)), approved: true }; // pre-approval (§3.4)
        });
        route = pending; // nothing is sent for a pre-approval
        break;
      }
      case 'unsubscribe':
        await this.roster.update(user, contact.bare, (cur) =>
          cur && (hasTo(cur.subscription) || cur.ask) ? { ...cur, subscription: dropTo(cur.subscription), ask: false } : undefined,
        );
        break;
      case 'unsubscribed': {
        const hadPending = await this.m.storage.roster.removePending(user, contact.bare);
        const before = await this.roster.update(user, contact.bare, (cur) =>
          cur && (hasFrom(cur.subscription) || cur.approved)
            ? { ...cur, subscription: dropFrom(cur.subscription), approved: false }
            : undefined,
        );
        route = hadPending || !!(before && (hasFrom(before.subscription) || before.approved));
        // the contact loses our presence: tell it we are gone (RFC 6121 §3.2.2)
        if (route) this.sendUnavailableOf(user, contact.bare);
        break;
      }
    }
    if (!route) return;
    if (this.isLocalUser(contact)) await this.inbound(contact.local, Jid.parse(from), type, stanza);
    // a contact elsewhere (a component): the stanza goes out stamped with the bare JID (§3.1.2)
    else if (contact.domain !== this.m.host)
      this.m.send(x('presence', { ...stanza.attrs, from, to: contact.bare }, stanza.children as Element[]));
    // an approved subscriber gets our current presence at once (RFC 6121 §3.1.5)
    if (type === 'subscribed') this.sendPresenceOf(user, contact.bare);
  }

  /** A subscription stanza from `from` (a bare JID) reached local user `user`. */
  async inbound(user: string, from: Jid, type: SubType, stanza: Element): Promise<void> {
    if (!(await this.m.storage.accounts.get(user))) {
      // no such account (RFC 6121 §8.5.1): a request is declined, the rest ignored
      if (type === 'subscribe') await this.reply(user, from, 'unsubscribed');
      return;
    }
    switch (type) {
      case 'subscribe': {
        let answer: 'subscribed' | 'approved' | 'pending' = 'pending';
        await this.roster.update(user, from.bare, (cur) => {
          if (cur && hasFrom(cur.subscription)) {
            answer = 'subscribed'; // already subscribed: answer for the user (§3.1.3)
            return undefined;
          }
          if (cur?.approved) {
            answer = 'approved';
            return { ...cur, subscription: addFrom(cur.subscription), approved: false };
          }
          return undefined;
        });
        if (answer !== 'pending') {
          await this.reply(user, from, 'subscribed');
          if (answer === 'approved') this.sendPresenceOf(user, from.bare);
          return;
        }
        // a request already pending is not delivered again (Appendix A.3.1: None + Pending In,
        // None + Pending Out/In, To + Pending In); the first one is kept and replayed at login
        if (await this.hasPending(user, from.bare)) return;
        // keep the complete stanza until the user answers (§3.1.3); deliver it now to online resources
        const p = this.inboundStanza(user, from, 'subscribe', stanza);
        await this.m.storage.roster.addPending(user, from.bare, p.toString());
        this.deliver(user, p, 'available');
        return;
      }
      case 'subscribed': {
        // A.3.2: unexpected approvals are ignored
        await this.roster.update(
          user,
          from.bare,
          (cur) => (cur?.ask ? { ...cur, subscription: addTo(cur.subscription), ask: false } : undefined),
          () => this.deliver(user, this.inboundStanza(user, from, type, stanza), 'interested'),
        );
        return;
      }
      case 'unsubscribe': {
        const hadPending = await this.m.storage.roster.removePending(user, from.bare);
        let delivered = false;
        const announce = (): void => {
          delivered = true;
          this.deliver(user, this.inboundStanza(user, from, type, stanza), 'interested');
        };
        const before = await this.roster.update(
          user,
          from.bare,
          (cur) => (cur && hasFrom(cur.subscription) ? { ...cur, subscription: dropFrom(cur.subscription) } : undefined),
          announce,
        );
        // a withdrawn pending request changes no roster item but is still told (§3.3.3)
        if (!delivered && hadPending) announce();
        if (before && hasFrom(before.subscription)) this.sendUnavailableOf(user, from.bare);
        return;
      }
      case 'unsubscribed': {
        await this.roster.update(
          user,
          from.bare,
          (cur) =>
            cur && (hasTo(cur.subscription) || cur.ask) ? { ...cur, subscription: dropTo(cur.subscription), ask: false } : undefined,
          () => this.deliver(user, this.inboundStanza(user, from, type, stanza), 'interested'),
        );
        return;
      }
    }
  }

  /** The server answers for `user` (auto-reply): routed as if the user had sent it, locally or to a component. */
  private async reply(user: string, to: Jid, type: 'subscribed' | 'unsubscribed'): Promise<void> {
    if (this.isLocalUser(to)) await this.inbound(to.local, Jid.parse(this.bare(user)), type, x('presence', { type }));
    else if (to.domain !== this.m.host) this.m.send(x('presence', { type, from: this.bare(user), to: to.bare }));
  }

  /** Roster removal (RFC 6121 §2.5.2): cancel both directions first. */
  async onRemove(user: string, item: RosterItem): Promise<void> {
    const contact = Jid.parse(item.jid);
    const me = Jid.parse(this.bare(user));
    const hadPending = await this.m.storage.roster.removePending(user, item.jid);
    if (hasFrom(item.subscription) || hadPending) {
      this.sendUnavailableOf(user, item.jid);
      await this.tell(contact, me, 'unsubscribed');
    }
    if (hasTo(item.subscription) || item.ask) await this.tell(contact, me, 'unsubscribe');
  }

  /** A cancellation from `me` to `contact`: handled here for a local user, sent on to a contact elsewhere. */
  private async tell(contact: Jid, me: Jid, type: 'unsubscribe' | 'unsubscribed'): Promise<void> {
    if (this.isLocalUser(contact)) await this.inbound(contact.local, me, type, x('presence', { type }));
    else if (contact.domain !== this.m.host) this.m.send(x('presence', { type, from: me.bare, to: contact.bare }));
  }
}
