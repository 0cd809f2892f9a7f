// Framed transports (WebSocket, BOSH) carry each top-level element on its own,
// outside any stream element: stanzas must name their namespace themselves.
const STANZA = /^<(message|presence|iq)[\s>/]/;

export function qualify(s: string): string {
  const m = STANZA.exec(s);
  if (!m) return s;
  const end = s.indexOf('>');
  if (/\sxmlns=/.test(s.slice(0, end))) return s;
  return `<${m[1]} xmlns='jabber:client'${s.slice(m[1]!.length + 1)}`;
}
