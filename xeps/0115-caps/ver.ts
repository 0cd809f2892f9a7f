// XEP-0115 §5.1: the verification string of a disco#info answer, and the checks of §5.4
// that make an answer ill-formed. Hand-written: no maintained npm library computes it
// over @xmpp/xml elements (the few that exist are tied to their own client stacks).
import { createHash } from 'node:crypto';
import type { Element } from '../../src/api/index.js';

/** IANA hash names (XEP-0115 §4, `hash`) that node:crypto knows. */
const ALGORITHMS: Record<string, string> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

export const knownHash = (hash: string): boolean => hash in ALGORITHMS;

/** i;octet ordering: compare the UTF-8 bytes, not UTF-16 code units. */
const octets = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

const NS_DATA = 'jabber:x:data';

/**
 * The features and the verification string of a disco#info <query/>, or undefined when
 * the answer is ill-formed (§5.4 step 3: a repeated identity, feature or FORM_TYPE).
 */
export function verify(query: Element, hash: string): { features: string[]; ver: string } | undefined {
  const algo = ALGORITHMS[hash];
  if (!algo) return undefined;
  const identities: string[] = [];
  const features: string[] = [];
  const forms: { type: string; fields: string[] }[] = [];
  for (const c of query.getChildElements()) {
    if (c.name === 'identity') {
      const a = c.attrs;
      identities.push(`${a.category ?? ''}/${a.type ?? ''}/${a['xml:lang'] ?? ''}/${a.name ?? ''}`);
    } else if (c.name === 'feature') {
      features.push(String(c.attrs.var ?? ''));
    } else if (c.name === 'x' && c.attrs.xmlns === NS_DATA) {
      const form = formString(c);
      if (form === null) return undefined;
      if (form) forms.push(form);
    }
  }
  if (new Set(identities).size !== identities.length || new Set(features).size !== features.length) return undefined;
  if (new Set(forms.map((f) => f.type)).size !== forms.length) return undefined;
  let s = '';
  for (const i of identities.sort(octets)) s += i + '<';
  for (const f of [...features].sort(octets)) s += f + '<';
  for (const f of forms.sort((a, b) => octets(a.type, b.type))) {
    s += f.type + '<';
    for (const field of f.fields) s += field;
  }
  return { features, ver: createHash(algo).update(s, 'utf8').digest('base64') };
}

/**
 * A form's part of the string (FORM_TYPE first, then each field sorted by var with its
 * values sorted); undefined for a form that does not count (no hidden FORM_TYPE), null for
 * an ill-formed one (a FORM_TYPE with several values).
 */
function formString(x: Element): { type: string; fields: string[] } | null | undefined {
  let type: string | undefined;
  const fields: { v: string; s: string }[] = [];
  for (const f of x.getChildren('field')) {
    const v = String(f.attrs.var ?? '');
    const values = f.getChildren('value').map((e) => e.text());
    if (v === 'FORM_TYPE') {
      if (f.attrs.type !== 'hidden') return undefined;
      if (values.length !== 1) return null;
      type = values[0];
      continue;
    }
    fields.push({ v, s: v + '<' + values.sort(octets).map((val) => val + '<').join('') });
  }
  if (type === undefined) return undefined;
  return { type, fields: fields.sort((a, b) => octets(a.v, b.v)).map((f) => f.s) };
}
