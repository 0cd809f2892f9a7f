// Clients that announce XEP-0115 capabilities (and answer the server's disco#info about
// them), and PEP requests as XMPP clients send them.
import { createHash } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { connect, expectStanza, iq, xml, type XmppClient } from './clients.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const NS_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_INFO = 'http://jabber.org/protocol/disco#info';
const CAPS_NODE = 'https://uzzap.test/client';

/** The XEP-0115 §5.1 string of a client with one identity (client/pc) and these features, hashed with SHA-1. */
export function capsVer(features: string[]): string {
  const s = 'client/pc//uzzap test<' + [...features].sort().map((f) => f + '<').join('');
  return createHash('sha1').update(s).digest('base64');
}

export interface CapsOptions {
  resource?: string;
  /** announce this ver instead of the right one (a hash that does not verify) */
  ver?: string;
  /** counts the server's disco#info questions */
  asked?: { n: number };
  /** the account's domain (default localhost) */
  domain?: string;
}

/**
 * A client whose presence carries caps for `features` (disco#info and caps are added) and
 * which answers the server's disco#info about them. Its initial presence is sent.
 */
export async function capsClient(server: Server, user: string, features: string[], opts: CapsOptions = {}): Promise<XmppClient> {
  const all = [...new Set([NS_INFO, NS_CAPS, ...features])];
  const ver = opts.ver ?? capsVer(all);
  const c = await connect(server, user, { resource: opts.resource, presence: false, domain: opts.domain });
  c.on('stanza', (s: Element) => {
    if (!s.is('iq') || s.attrs.type !== 'get') return;
    const q = s.getChild('query', NS_INFO);
    if (!q) return;
    if (opts.asked) opts.asked.n++;
    void c.send(
      xml(
        'iq',
        { type: 'result', id: s.attrs.id, to: s.attrs.from },
        xml(
          'query',
          { xmlns: NS_INFO, node: q.attrs.node },
          xml('identity', { category: 'client', type: 'pc', name: 'uzzap test' }),
          ...all.map((f) => xml('feature', { var: f })),
        ),
      ),
    );
  });
  const self = c.jid!.toString();
  const echoed = expectStanza(c, (s) => s.is('presence') && s.attrs.from === self && !s.attrs.type, 5000, 'own presence');
  await c.send(xml('presence', {}, xml('c', { xmlns: NS_CAPS, hash: 'sha-1', node: CAPS_NODE, ver })));
  await echoed;
  return c;
}

export const notify = (node: string): string => node + '+notify';

export function publishOptions(fields: Record<string, string>): Element {
  return xml(
    'publish-options',
    {},
    xml(
      'x',
      { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
      ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
    ),
  );
}

export function publish(c: XmppClient, node: string, id: string | undefined, payload: Element, options?: Record<string, string>): Promise<Element> {
  return iq(
    c,
    xml(
      'iq',
      { type: 'set' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node }, xml('item', id ? { id } : {}, payload)), ...(options ? [publishOptions(options)] : [])),
    ),
  );
}

export function items(c: XmppClient, owner: string, node: string, attrs: Record<string, string> = {}, ids: string[] = []): Promise<Element> {
  return iq(
    c,
    xml('iq', { type: 'get', to: owner }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node, ...attrs }, ...ids.map((id) => xml('item', { id }))))),
  );
}

/** A PEP notification of `node` from `owner` (items, retract, delete or purge). */
export const isEvent =
  (owner: string, node: string) =>
  (s: Element): boolean =>
    s.is('message') &&
    s.attrs.from === owner &&
    !!s.getChild('event', NS_EVENT)?.getChildElements().some((e) => e.attrs.node === node);

/** The error condition and pubsub#errors element of an IQ error, as 'condition/app'. */
export function errorOf(r: Element): string {
  const err = r.getChild('error');
  if (r.attrs.type !== 'error' || !err) return 'no error: ' + r.toString();
  const cond = err.getChildElements().find((e) => e.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && e.name !== 'text');
  const app = err.getChildElements().find((e) => e.attrs.xmlns === NS_ERRORS);
  return `${cond?.name}${app ? '/' + app.name : ''}`;
}
