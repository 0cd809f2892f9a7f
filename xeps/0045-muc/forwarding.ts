// IQs between occupants (XEP-0045 §7.5 with IQs, vCards per XEP-0054): the room
// forwards an IQ from one occupant to another under an id of its own, and routes
// the answer back under the asker's id, from the answering occupant's room JID.
// Unanswered ones get remote-server-timeout after a minute; the table is bounded
// (max_pending_iqs) by the same PendingIqs tracker components use.
import { Element, Jid, PendingIqs, StanzaError, errorReply, x } from '../../src/api/index.js';
import { isDeliveryError, removeGhost } from './ghosts.js';
import type { Occupant } from './presence.js';
import type { Room } from './room.js';
import { NS_VCARD } from './ns.js';

interface ForwardedIq {
  room: Room;
  asker: Jid;
  askerOccupant: string;
  target: string;
  targetOccupant: string;
  id: string;
}

const IQ_TIMEOUT_MS = 60_000;

export class IqForwarding {
  private readonly pending: PendingIqs<ForwardedIq>;

  constructor(
    maxPending: () => number,
    private readonly send: (stanza: Element) => void,
    private readonly newId: () => string,
  ) {
    this.pending = new PendingIqs({ max: maxPending, timeoutMs: () => IQ_TIMEOUT_MS }, (p) =>
      this.send(
        x(
          'iq',
          { type: 'error', id: p.id, from: p.targetOccupant, to: p.asker.full },
          new StanzaError('remote-server-timeout').toElement(),
        ),
      ),
    );
  }

  /** Forward an IQ from occupant `from` to occupant `to`. */
  forward(room: Room, stanza: Element, from: Occupant, to: Occupant): void {
    const payload = stanza.getChildElements()[0];
    // vCards belong to the account: ask the occupant's server, not a client (XEP-0054 with MUC)
    const target = payload?.attrs.xmlns === NS_VCARD ? Jid.parse(to.bare) : [...to.sessions.values()].at(-1)!;
    const id = this.newId();
    const waiting: ForwardedIq = {
      room,
      asker: Jid.parse(stanza.attrs.from!),
      askerOccupant: from.jid.full,
      target: target.full,
      targetOccupant: to.jid.full,
      id: stanza.attrs.id!,
    };
    if (!this.pending.add(id, waiting))
      return this.send(errorReply(stanza, new StanzaError('resource-constraint', 'too many requests in flight')));
    const fwd = new Element('iq', { ...stanza.attrs, id, from: from.jid.full, to: target.full });
    fwd.children = stanza.children;
    this.send(fwd);
  }

  /** An answer (result or error) from a real JID to an occupant JID: back to the asker, if it answers what we forwarded. */
  answer(stanza: Element, from: Jid, to: Jid): void {
    const p = this.pending.take(stanza.attrs.id ?? '', (p) => p.target === from.full && p.askerOccupant === to.full);
    if (!p) return;
    const back = new Element('iq', { ...stanza.attrs, id: p.id, from: p.targetOccupant, to: p.asker.full });
    back.children = stanza.children;
    this.send(back);
    // §18.1.2: the session the IQ went to cannot be reached (a vCard answered by the account's server says nothing of it)
    if (stanza.attrs.type === 'error' && Jid.parse(p.target).resource && isDeliveryError(stanza)) {
      const o = p.room.bySession.get(p.target);
      if (o) removeGhost(p.room, o, from);
    }
  }

  /** Unanswered IQs past their time get remote-server-timeout. */
  sweep(now: number): void {
    this.pending.sweep(now);
  }
}
