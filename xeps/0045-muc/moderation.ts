// XEP-0425 message moderation in a room, in both forms clients speak: 0.3
// (urn:xmpp:message-moderate:1, an IQ <moderate/> naming the stanza-id) and 0.2
// (urn:xmpp:message-moderate:0 inside an XEP-0422 <apply-to/>, still sent by
// slixmpp and other deployed clients). Each request is announced in its own form;
// the tombstone that replaces the message in the history and the archive carries
// both forms, as clients of either kind read the same archive.
import { Element, StanzaError, x } from '../../src/api/index.js';
import { NS_FALLBACK, NS_FASTEN, NS_MODERATE, NS_MODERATE_0, NS_OCCUPANT_ID, NS_RETRACT, NS_RETRACT_0, NS_SID } from './ns.js';

export interface ModerationRequest {
  version: 0 | 1;
  /** the stanza-id the room gave the message */
  id: string;
  reason?: string;
}

/** The moderator as the room shows it: occupant JID and occupant id (XEP-0421). */
export interface Moderator {
  jid: string;
  occupantId: string;
}

/** The moderation an IQ payload asks for; undefined when it is not one (another kind of fastening). */
export function moderationRequest(payload: Element): ModerationRequest | undefined {
  let moderate: Element | undefined;
  let version: 0 | 1;
  if (payload.name === 'moderate' && payload.attrs.xmlns === NS_MODERATE) {
    moderate = payload;
    version = 1;
  } else if (payload.name === 'apply-to' && payload.attrs.xmlns === NS_FASTEN) {
    moderate = payload.getChild('moderate', NS_MODERATE_0);
    if (!moderate) return undefined;
    version = 0;
  } else return undefined;
  const id = payload.attrs.id;
  if (!id || !moderate.getChild('retract', version === 1 ? NS_RETRACT : NS_RETRACT_0))
    throw new StanzaError('bad-request', 'a moderation names the stanza-id of the message and holds <retract/>');
  return { version, id, reason: moderate.getChildText('reason') || undefined };
}

const reasonOf = (reason: string | undefined): Element | undefined => (reason ? x('reason', null, reason) : undefined);
const occupantId = (id: string): Element => x('occupant-id', { xmlns: NS_OCCUPANT_ID, id });

/**
 * What a moderated message becomes (XEP-0425 §4): its author, id, stanza-id and occupant-id
 * stay, its content goes, and a <retracted/> (0.3) and a <moderated/> (0.2) say who removed it.
 */
export function tombstone(original: Element, by: Moderator, reason: string | undefined, stamp: string): Element {
  const t = new Element('message', { ...original.attrs });
  t.children = [
    ...original.getChildElements().filter((c) => c.attrs.xmlns === NS_SID || c.attrs.xmlns === NS_OCCUPANT_ID),
    x(
      'retracted',
      { xmlns: NS_RETRACT, stamp },
      x('moderated', { xmlns: NS_MODERATE, by: by.jid }, occupantId(by.occupantId)),
      reasonOf(reason),
    ),
    x(
      'moderated',
      { xmlns: NS_MODERATE_0, by: by.jid },
      occupantId(by.occupantId),
      x('retracted', { xmlns: NS_RETRACT_0, stamp }),
      reasonOf(reason),
    ),
  ];
  return t;
}

/** The message that tells the room (XEP-0425 §3.1), in the form of the request, with a body for clients that know neither. */
export function announcement(req: ModerationRequest, by: Moderator, room: string, stanzaId: string): Element {
  const action =
    req.version === 1
      ? x(
          'retract',
          { xmlns: NS_RETRACT, id: req.id },
          x('moderated', { xmlns: NS_MODERATE, by: by.jid }, occupantId(by.occupantId)),
          reasonOf(req.reason),
        )
      : x(
          'apply-to',
          { xmlns: NS_FASTEN, id: req.id },
          x(
            'moderated',
            { xmlns: NS_MODERATE_0, by: by.jid },
            occupantId(by.occupantId),
            x('retract', { xmlns: NS_RETRACT_0 }),
            reasonOf(req.reason),
          ),
        );
  return x(
    'message',
    { from: room, type: 'groupchat', id: stanzaId },
    action,
    x('fallback', { xmlns: NS_FALLBACK, for: req.version === 1 ? NS_RETRACT : NS_RETRACT_0 }),
    x('body', null, `A message was retracted by a moderator${req.reason ? `: ${req.reason}` : ''}.`),
    x('stanza-id', { xmlns: NS_SID, id: stanzaId, by: room }),
  );
}
