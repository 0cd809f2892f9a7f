// XEP-0386 Bind 2: a resource bound inside SASL2's <authenticate/> (no bind IQ,
// no stream restart), with what modules enable on the new session in the same
// request (XEP-0198 <enable/>, XEP-0280 <enable/>, XEP-0352 <active/>/<inactive/>:
// `ctx.inline`). The stream (c2s.ts) binds; this file names the resource and
// gathers the modules' answers for <bound/>.
import { createHash } from 'node:crypto';
import type { Element } from '../xml/index.js';
import { JidError, prepResource } from '../jid.js';
import { randomToken } from '../random.js';
import type { Core } from '../core.js';
import type { NonzaStream } from '../api/stream.js';
import { NS_BIND2, NS_SASL2 } from './ns.js';

/** the longest client tag kept in a resource */
const MAX_TAG = 64;

/**
 * The resource (§3): the client's <tag/>, as a client library's user who asked for a
 * resource expects, unless a session of another client (another <user-agent id/>, or
 * an RFC 6120 login) of the account has it, on this node or another: then "tag/part", the part stable for one client of one
 * account, so a reconnect replaces the session it left behind (§3 SHOULD). The part
 * is a hash: the client's id is not exposed. Without a tag, the part alone.
 */
export function bind2Resource(core: Core, bind: Element, request: Element, username: string): { resource: string; client: string | undefined } {
  let tag = '';
  const raw = bind.getChildText('tag')?.trim() ?? '';
  if (raw) {
    try {
      tag = prepResource([...raw].slice(0, MAX_TAG).join('')).replace(/\//g, '-');
    } catch (e) {
      if (!(e instanceof JidError)) throw e; // a tag that is no resource is left out
    }
  }
  const uaId = request.getChild('user-agent', NS_SASL2)?.attrs.id;
  const client = uaId ? createHash('sha256').update(`${username}\0${uaId}`).digest('base64url').slice(0, 10) : undefined;
  const part = client ?? randomToken(8);
  if (!tag) return { resource: part, client };
  const holder = core.sessions.get(`${username}@${core.config.domain}`, tag);
  return { resource: holder && (client === undefined || holder.client !== client) ? `${tag}/${part}` : tag, client };
}

/** Run the modules' parts of a Bind 2 request on the bound session: what goes into <bound/>. */
export function bind2Inline(core: Core, bind: Element, side: NonzaStream): string {
  let out = '';
  for (const child of bind.getChildElements()) {
    const ns = child.attrs.xmlns;
    if (!ns || ns === NS_BIND2) continue;
    // an inline feature the server does not offer is ignored, as the XEP has it
    const r = core.inline(ns)?.bind?.(child, side);
    if (r) out += r;
  }
  return out;
}
