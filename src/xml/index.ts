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

/** An XEP-0082 DateTime in UTC to the second (`2026-12-06T12:00:00Z`), for delay stamps and the like. */
export function dateTime(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
