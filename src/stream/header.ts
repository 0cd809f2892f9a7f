// The checks every stream header gets, client or component (RFC 6120 §4.8):
// the root is <stream> in the streams namespace, the content namespace is the
// one this port speaks, and 'to' is compared without case or a trailing dot.
import type { StreamErrorCondition } from '../api/errors.js';
import { NS_STREAM } from './ns.js';

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
