// XML elements are ltx's Element: small, fast to build and to serialise.
import { Element, createElement, escapeXML, escapeXMLText, parse } from 'ltx';
export { Element, escapeXML, escapeXMLText };

/** Parse one trusted XML document (e.g. read back from storage). */
export function parseXml(xml: string): Element {
  return parse(xml) as Element;
}

export type Attrs = Record<string, string | number | undefined>;
type Child = Element | string | undefined | null | false;

/** Build an element: x('iq', {type: 'result'}, x('query', {xmlns}), 'text'). */
export function x(name: string, attrs?: Attrs | null, ...children: (Child | Child[])[]): Element {
  const el = createElement(name, cleanAttrs(attrs));
  for (const c of children) {
    if (Array.isArray(c)) {
      for (const cc of c) if (cc || cc === '') el.cnode(cc as Element);
    } else if (c || c === '') {
      el.cnode(c as Element);
    }
  }
  return el;
}

function cleanAttrs(attrs?: Attrs | null): Record<string, string> | undefined {
  if (!attrs) return undefined;
  const out: Record<string, string> = {};
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) out[k] = String(v);
  }
  return out;
}

const SERIALIZED = Symbol('uzzap.serialized');
interface Memo {
  children: Element['children'];
  n: number;
  to: string | undefined;
  from: string | undefined;
  text: string;
}

/**
 * An element's XML, remembered on the element: a one-to-one message is serialised for
 * the recipient's archive, for delivery and for the sender's archive, and this makes it
 * once (each serialisation is ~3% of the event loop in the chat bench). The memo holds
 * while the element's children array, its number of children, `to` and `from` are those
 * it was made with: code that changes an element after it was serialised replaces or
 * extends its children (the stanza-id stamp, its removal on a bounce) or re-addresses it.
 * Code that edits a grandchild in place must call toString() itself.
 */
export function serialize(el: Element): string {
  const host = el as Element & { [SERIALIZED]?: Memo };
  const m = host[SERIALIZED];
  if (m && m.children === el.children && m.n === el.children.length && m.to === el.attrs.to && m.from === el.attrs.from) return m.text;
  const text = toXml(el);
  host[SERIALIZED] = { children: el.children, n: el.children.length, to: el.attrs.to, from: el.attrs.from, text };
  return text;
}

const ATTR_SPECIAL = /["&'<>]/;
const TEXT_SPECIAL = /[&<>]/;

/**
 * The same text as ltx's Element#toString(), built by concatenation: ltx calls a writer
 * closure per fragment and runs a replace() over every attribute value and text, which
 * was 3–4% of the event loop in the chat bench; here a value is escaped only if it holds
 * a character to escape. test/unit/xml-serialize.test.ts holds it to ltx's output.
 */
export function toXml(el: Element): string {
  let s = '<' + el.name;
  const attrs = el.attrs as Record<string, unknown>;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === null || v === undefined) continue;
    const str = typeof v === 'string' ? v : (v as number).toString(10);
    s += ' ' + k + '="' + (ATTR_SPECIAL.test(str) ? escapeXML(str) : str) + '"';
  }
  const children = el.children as unknown[];
  if (children.length === 0) return s + '/>';
  s += '>';
  for (const c of children) {
    if (c === null || c === undefined) continue;
    if (c instanceof Element) s += toXml(c);
    else if (typeof c === 'string') s += TEXT_SPECIAL.test(c) ? escapeXMLText(c) : c;
    else if (typeof (c as Element).write === 'function') s += (c as Element).toString();
    else s += escapeXMLText((c as number).toString(10));
  }
  return s + '</' + el.name + '>';
}

/** An XEP-0082 DateTime in UTC to the second (`2026-12-06T12:00:00Z`), for delay stamps and the like. */
export function dateTime(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
