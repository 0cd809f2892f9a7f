// RFC 6121 §3 presence subscriptions: both the user's side (outbound) and the
// contact's side (inbound) run here, since both are local until s2s exists.
// State changes follow RFC 6121 Appendix A (tables A.2-A.5).
import { x, Jid, type Element, type ModuleContext, type RosterItem, type SessionApi } from '../api/index.js';
import { hasFrom, hasTo, type RosterService } from './roster-service.js';

export type SubType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
export const SUB_TYPES = new Set<string>(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

const blank = (jid: string): RosterItem => ({ jid, subscription: 'none', ask: false, approved: false, groups: [] });

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

  /** deliver a subscription stanza to the available resources of a local user */
  private deliver(user: string, type: string, from: string, original?: Element): void {
    const targets = this.m.sessionsOf(this.bare(user)).filter((s: SessionApi) => s.available);
    if (!targets.length) return;
    const p = x('presence', { type, from, to: this.bare(user) }, original ? original.getChildElements() : []);
    this.m.deliver(p, targets);
  }

  /** A user sent a subscription stanza to `contact` (a bare JID). */
  async outbound(user: string, contact: Jid, type: SubType, stanza: Element): Promise<void> {
    const from = this.bare(user);
    const item = await this.roster.item(user, contact.bare);
    switch (type) {
      case 'subscribe': {
        // A.2.1: none/from -> ask; to/both unchanged (and the request still goes out)
        if (!item || !hasTo(item.subscription)) {
          if (!item?.ask) await this.roster.put(user, { ...(item ?? blank(contact.bare)), ask: true });
        }
        break;
      }
      case 'subscribed': {
        const pending = (await this.m.storage.roster.pending(user)).some((p) => p.jid === contact.bare);
        if (pending) {
          await this.m.storage.roster.removePending(user, contact.bare);
          const cur = item ?? blank(contact.bare);
          await this.roster.put(user, {
            ...cur,
            subscription: cur.subscription === 'to' ? 'both' : cur.subscription === 'none' ? 'from' : cur.subscription,
            approved: false,
          });
        } else if (!item || !hasFrom(item.subscription)) {
          // RFC 6121 §3.4 pre-approval
          if (!item?.approved) await this.roster.put(user, { ...(item ?? blank(contact.bare)), approved: true });
          return; // nothing is sent for a pre-approval
        } else {
          return; // already subscribed: nothing to do (A.3.1)
        }
        break;
      }
      case 'unsubscribe': {
        if (item && (hasTo(item.subscription) || item.ask)) {
          await this.roster.put(user, {
            ...item,
            subscription: item.subscription === 'both' ? 'from' : item.subscription === 'to' ? 'none' : item.subscription,
            ask: false,
          });
        }
        break;
      }
      case 'unsubscribed': {
        const hadPending = await this.m.storage.roster.removePending(user, contact.bare);
        if (item && (hasFrom(item.subscription) || item.approved)) {
          await this.roster.put(user, {
            ...item,
            subscription: item.subscription === 'both' ? 'to' : item.subscription === 'from' ? 'none' : item.subscription,
            approved: false,
          });
        } else if (!hadPending) {
          return;
        }
        // the contact loses our presence: tell it we are gone (RFC 6121 §3.2.2)
        this.sendUnavailableOf(user, contact.bare);
        break;
      }
    }
    if (this.isLocalUser(contact)) await this.inbound(contact.local, Jid.parse(from), type, stanza);
    // an approved subscriber gets our current presence at once (RFC 6121 §3.1.5)
    if (type === 'subscribed') this.sendPresenceOf(user, contact.bare);
  }

  /** A subscription stanza from `from` (a bare JID) reached local user `user`. */
  async inbound(user: string, from: Jid, type: SubType, stanza: Element): Promise<void> {
    const item = await this.roster.item(user, from.bare);
    switch (type) {
      case 'subscribe': {
        if (item && hasFrom(item.subscription)) {
          // already subscribed: answer for the user (RFC 6121 §3.1.3)
          return this.reply(user, from, 'subscribed');
        }
        if (item?.approved) {
          await this.roster.put(user, { ...item, subscription: item.subscription === 'to' ? 'both' : 'from', approved: false });
          await this.reply(user, from, 'subscribed');
          this.sendPresenceOf(user, from.bare);
          return;
        }
        // keep the request until the user answers; deliver it now to online resources
        const p = x('presence', { type: 'subscribe', from: from.bare, to: this.bare(user) }, stanza.getChildElements());
        await this.m.storage.roster.addPending(user, from.bare, p.toString());
        this.deliver(user, 'subscribe', from.bare, stanza);
        return;
      }
      case 'subscribed': {
        if (!item || !item.ask) return; // A.3.2: not expected, ignore
        await this.roster.put(user, {
          ...item,
          subscription: item.subscription === 'from' ? 'both' : item.subscription === 'none' ? 'to' : item.subscription,
          ask: false,
        });
        this.deliver(user, 'subscribed', from.bare, stanza);
        return;
      }
      case 'unsubscribe': {
        const hadPending = await this.m.storage.roster.removePending(user, from.bare);
        if (item && hasFrom(item.subscription)) {
          await this.roster.put(user, { ...item, subscription: item.subscription === 'both' ? 'to' : 'none' });
          this.sendUnavailableOf(user, from.bare);
        } else if (!hadPending) return;
        this.deliver(user, 'unsubscribe', from.bare, stanza);
        return;
      }
      case 'unsubscribed': {
        if (!item || (!hasTo(item.subscription) && !item.ask)) return;
        await this.roster.put(user, {
          ...item,
          subscription: item.subscription === 'both' ? 'from' : item.subscription === 'to' ? 'none' : item.subscription,
          ask: false,
        });
        this.deliver(user, 'unsubscribed', from.bare, stanza);
        return;
      }
    }
  }

  /** The server answers for `user` (auto-reply): routed as if the user had sent it. */
  private async reply(user: string, to: Jid, type: 'subscribed' | 'unsubscribed'): Promise<void> {
    if (this.isLocalUser(to)) await this.inbound(to.local, Jid.parse(this.bare(user)), type, x('presence', { type }));
  }

  /** Roster removal (RFC 6121 §2.5.2): cancel both directions first. */
  async onRemove(user: string, item: RosterItem): Promise<void> {
    const contact = Jid.parse(item.jid);
    const hadPending = await this.m.storage.roster.removePending(user, item.jid);
    if (hasFrom(item.subscription) || hadPending) {
      this.sendUnavailableOf(user, item.jid);
      if (this.isLocalUser(contact))
        await this.inbound(contact.local, Jid.parse(this.bare(user)), 'unsubscribed', x('presence', { type: 'unsubscribed' }));
    }
    if (hasTo(item.subscription) || item.ask) {
      if (this.isLocalUser(contact))
        await this.inbound(contact.local, Jid.parse(this.bare(user)), 'unsubscribe', x('presence', { type: 'unsubscribe' }));
    }
  }
}
