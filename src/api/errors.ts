// XMPP error conditions as data (RFC 6120 §8.3.3 stanza errors, §4.9.3 stream errors).
import { Element, x } from '../xml/index.js';

export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

export type ErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** Stanza error conditions with the error type RFC 6120 §8.3.3 gives each. */
export const STANZA_ERRORS = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
} as const satisfies Record<string, ErrorType>;

export type StanzaErrorCondition = keyof typeof STANZA_ERRORS;

export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

/** Throw from a handler to answer with a stanza error. */
export class StanzaError extends Error {
  readonly type: ErrorType;
  /** include the original payload in the error reply (false for payloads holding secrets, e.g. passwords) */
  echo = true;
  /** an IQ error's payload in place of the request's (XEP-0060 §8.8/§8.9: the entries that failed, as they are) */
  payload: Element | undefined;
  constructor(
    readonly condition: StanzaErrorCondition,
    readonly text?: string,
    type?: ErrorType,
    /** extra application-specific condition element */
    readonly appCondition?: Element,
  ) {
    super(text ?? condition);
    this.name = 'StanzaError';
    this.type = type ?? STANZA_ERRORS[condition];
  }

  toElement(by?: string): Element {
    return x(
      'error',
      { type: this.type, by },
      x(this.condition, { xmlns: NS_STANZAS }),
      this.text ? x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, this.text) : undefined,
      this.appCondition,
    );
  }
}

/**
 * The error reply to a stanza (RFC 6120 §8.2): same name and id, addresses
 * swapped, original payload kept so the sender can tell which stanza failed.
 */
export function errorReply(stanza: Element, err: StanzaError): Element {
  const reply = new Element(stanza.name, {
    ...stanza.attrs,
    type: 'error',
    from: stanza.attrs.to,
    to: stanza.attrs.from,
  });
  if (err.payload && stanza.name === 'iq') reply.children.push(err.payload);
  else if (!err.echo) {
    // nothing of the original payload goes back
  } else if (stanza.name !== 'iq') for (const c of stanza.children) reply.children.push(c);
  else {
    const payload = stanza.getChildElements()[0];
    if (payload) reply.children.push(payload);
  }
  reply.children.push(err.toElement());
  return reply;
}

export function streamError(condition: StreamErrorCondition, text?: string): string {
  return (
    `<stream:error><${condition} xmlns='${NS_STREAMS}'/>` +
    (text ? `<text xmlns='${NS_STREAMS}' xml:lang='en'>${escapeText(text)}</text>` : '') +
    '</stream:error>'
  );
}

const escapeText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
