// Framed transports (WebSocket, BOSH) carry each top-level element on its own,
// outside any stream element: stanzas must name their namespace themselves.
const STANZA = /^<(message|presence|iq)[\s>/]/;
/** the start tag's real attributes, so a value containing "xmlns=" cannot fool the check */
const HAS_XMLNS = /^<[a-z]+(?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*?\s+xmlns\s*=/;

export function qualify(s: string): string {
  const m = STANZA.exec(s);
  if (!m) return s;
  if (HAS_XMLNS.test(s)) return s;
  return `<${m[1]} xmlns='jabber:client'${s.slice(m[1]!.length + 1)}`;
}
