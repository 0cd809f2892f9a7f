// XEP-0220 Server Dialback keys (XEP-0185): HMAC-SHA256 keyed by the hex of
// SHA-256(secret), over "receiving originating stream-id", in hex. Checked against
// the XEP's vectors in test/unit/s2s.test.ts.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const NS_SERVER = 'jabber:server';
export const NS_DIALBACK = 'jabber:server:dialback';
export const NS_DIALBACK_FEATURE = 'urn:xmpp:features:dialback';

export function dialbackKey(secret: string, receiving: string, originating: string, streamId: string): string {
  const k = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', k).update(`${receiving} ${originating} ${streamId}`).digest('hex');
}

export function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A dialback element: <db:result/>/<db:verify/> under any prefix the header declared, or with its namespace. */
export function dialbackName(el: { name: string; attrs: Record<string, string> }, prefixes: Set<string>): 'result' | 'verify' | undefined {
  const colon = el.name.indexOf(':');
  const local = colon === -1 ? el.name : el.name.slice(colon + 1);
  if (local !== 'result' && local !== 'verify') return undefined;
  if (colon === -1) return el.attrs.xmlns === NS_DIALBACK ? local : undefined;
  return prefixes.has(el.name.slice(0, colon)) ? local : undefined;
}

/** The prefixes a stream header binds to the dialback namespace. */
export function dialbackPrefixes(attrs: Record<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(attrs)) if (k.startsWith('xmlns:') && v === NS_DIALBACK) out.add(k.slice(6));
  return out;
}

/** XEP-0288 bidirectional streams: the receiving server's feature, the initiating server's request */
export const NS_BIDI_FEATURE = 'urn:xmpp:features:bidi';
export const NS_BIDI = 'urn:xmpp:bidi';
