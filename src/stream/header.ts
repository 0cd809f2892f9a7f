// The checks every stream header gets, client or component (RFC 6120 §4.8):
// the root is <stream> in the streams namespace, the content namespace is the
// one this port speaks, and 'to' is compared without case or a trailing dot.
// Also what a client stream writes to open, end, or fail (TCP or WebSocket framing).
import { streamError, type StreamErrorCondition } from '../api/errors.js';
import { escapeXML } from '../xml/index.js';
import { NS_CLIENT, NS_FRAMING, NS_STREAM } from './ns.js';

export interface HeaderProblem {
  condition: StreamErrorCondition;
  text: string;
}

/** What is wrong with a stream header's names and namespaces, or undefined when it is right. */
export function checkHeader(
  name: string,
  attrs: Record<string, string>,
  contentNs: string,
  contentText: string,
): HeaderProblem | undefined {
  const colon = name.indexOf(':');
  const prefix = colon === -1 ? '' : name.slice(0, colon);
  const local = colon === -1 ? name : name.slice(colon + 1);
  if (local !== 'stream' || (prefix ? attrs[`xmlns:${prefix}`] : attrs.xmlns) !== NS_STREAM)
    return { condition: 'invalid-namespace', text: 'expected a stream in the streams namespace' };
  if (attrs.xmlns !== contentNs) return { condition: 'invalid-namespace', text: contentText };
  return undefined;
}

/** The header's 'to', as a domain to compare (lower case, no trailing dot). */
export function headerTo(attrs: Record<string, string>): string | undefined {
  return attrs.to?.toLowerCase().replace(/\.$/, '');
}

/** The server's client-stream header (RFC 6120 §4.7), or the WebSocket <open/> (RFC 7395 §3.3.2). */
export function clientHeader(framed: boolean, id: string, domain: string, clientFrom?: string): string {
  const to = clientFrom ? ` to='${escapeXML(clientFrom)}'` : '';
  return framed
    ? `<open xmlns='${NS_FRAMING}' id='${id}' from='${domain}'${to} version='1.0' xml:lang='en'/>`
    : `<?xml version='1.0'?><stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' id='${id}' from='${domain}'${to} version='1.0' xml:lang='en'>`;
}

/** The end of a client stream: </stream:stream>, or the WebSocket <close/>. */
export const clientStreamEnd = (framed: boolean): string => (framed ? `<close xmlns='${NS_FRAMING}'/>` : '</stream:stream>');

/** A stream error; in a WebSocket frame, a document of its own, it declares its prefix (RFC 7395 §3.3.3). */
export function streamErrorXml(framed: boolean, condition: StreamErrorCondition, text?: string, appCondition?: string): string {
  let err = streamError(condition, text);
  if (appCondition) err = `${err.slice(0, -'</stream:error>'.length)}${appCondition}</stream:error>`;
  return framed ? err.replace('<stream:error>', `<stream:error xmlns:stream='${NS_STREAM}'>`) : err;
}
