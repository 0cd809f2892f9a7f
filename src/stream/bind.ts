// What a client stream answers before it is bound, apart from SASL: resource
// binding (RFC 6120 §7) and the IQs allowed before authentication (XEP-0077).
import type { Logger } from 'pino';
import { Element, escapeXML, x } from '../xml/index.js';
import { Jid, JidError, prepResource } from '../jid.js';
import { StanzaError } from '../api/errors.js';
import { randomToken } from '../random.js';
import type { Core } from '../core.js';
import { NS_BIND, NS_CLIENT } from './ns.js';

export type PreAuthIqHandler = NonNullable<ReturnType<Core['preAuthIq']>>;

/**
 * A bind request: the JID to bind and the result to send, or the error reply;
 * undefined when the element is no bind request (the stream refuses it).
 */
export function bindRequest(el: Element, username: string, core: Core): { jid: Jid; result: string } | { error: string } | undefined {
  if (el.name !== 'iq' || (el.attrs.xmlns !== undefined && el.attrs.xmlns !== NS_CLIENT)) return undefined;
  const bind = el.getChild('bind', NS_BIND);
  if (!bind || el.attrs.type !== 'set') return undefined;
  const error = (e: StanzaError): { error: string } => ({
    error: new Element('iq', { type: 'error', id: el.attrs.id }).cnode(e.toElement()).up().toString(),
  });
  let resource = bind.getChildText('resource')?.trim() ?? '';
  if (resource) {
    try {
      resource = prepResource(resource);
    } catch (e) {
      if (!(e instanceof JidError)) throw e;
      return error(new StanzaError('bad-request', e.message));
    }
  } else {
    resource = `uzzap-${randomToken(6)}`;
  }
  const jid = Jid.of(username, core.config.domain, resource);
  const existing = core.sessions.get(jid.bare, resource);
  if (!existing && core.sessions.countOf(jid.bare) >= core.config.limits.max_resources) {
    return error(new StanzaError('resource-constraint', 'too many resources bound for this account'));
  }
  return {
    jid,
    result: `<iq type='result' id='${escapeXML(el.attrs.id ?? '')}'><bind xmlns='${NS_BIND}'><jid>${escapeXML(jid.full)}</jid></bind></iq>`,
  };
}

/** The reply to an IQ allowed before authentication (XEP-0077), serialised. */
export async function answerPreAuthIq(
  el: Element,
  payload: Element,
  handle: PreAuthIqHandler,
  from: { id: string; remoteAddress: string; secure: boolean; log: Logger },
): Promise<string> {
  try {
    const r = await handle({
      stanza: el,
      type: el.attrs.type as 'get' | 'set',
      payload,
      remoteAddress: from.remoteAddress,
      secure: from.secure,
      stream: from.id,
    });
    return x('iq', { type: 'result', id: el.attrs.id }, r ?? undefined).toString();
  } catch (e) {
    if (!(e instanceof StanzaError)) from.log.error({ err: e }, 'pre-auth IQ handler failed');
    const err = e instanceof StanzaError ? e : new StanzaError('internal-server-error');
    return x('iq', { type: 'error', id: el.attrs.id }, err.echo ? payload : undefined, err.toElement()).toString();
  }
}
