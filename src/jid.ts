// XMPP addresses per RFC 7622. Parts are prepared once at parse time and the
// bare/full strings cached, because routing compares JIDs on every stanza.
//
// The localpart is the PRECIS UsernameCaseMapped profile and the resourcepart the
// OpaqueString profile (RFC 8265, src/precis.ts), behind ASCII fast paths; the
// domainpart goes through UTS #46 (`tr46`), as RFC 7622 §3.2 allows.
import tr46 from 'tr46';
import { enforceOpaqueString, enforceUsernameCaseMapped, PrecisError } from './precis.js';

export class JidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JidError';
  }
}

const MAX_PART = 1023;
const enc = new TextEncoder();
const byteLen = (s: string): number => (s.length * 3 <= MAX_PART ? s.length : enc.encode(s).length);

// RFC 7622 §3.3.1: localpart must not contain these even though the
// IdentifierClass allows them.
const LOCAL_FORBIDDEN = /["&'/:<>@]/;

function precis(profile: (s: string) => string, s: string, part: string): string {
  try {
    return profile(s);
  } catch (e) {
    if (e instanceof PrecisError) throw new JidError(`${part}: ${e.message}`);
    throw e;
  }
}

export function prepLocal(s: string): string {
  if (s === '') throw new JidError('empty localpart');
  // Fast paths: the common case is already-prepared lowercase ASCII; printable ASCII
  // is all valid in the IdentifierClass (RFC 8264 §9.11) and only needs lowercasing.
  let out = s;
  if (!/^[a-z0-9._\-+]+$/.test(s)) {
    out = /^[\x21-\x7e]+$/.test(s) ? s.toLowerCase() : precis(enforceUsernameCaseMapped, s, 'localpart');
    if (LOCAL_FORBIDDEN.test(out)) throw new JidError('localpart contains a forbidden character');
  }
  if (byteLen(out) > MAX_PART) throw new JidError('localpart longer than 1023 bytes');
  return out;
}

export function prepResource(s: string): string {
  if (s === '') throw new JidError('empty resourcepart');
  let out = s;
  // Fast path: printable ASCII and SPACE are valid in the FreeformClass and NFC already.
  if (!/^[\x20-\x7e]+$/.test(s)) out = precis(enforceOpaqueString, s, 'resourcepart');
  if (byteLen(out) > MAX_PART) throw new JidError('resourcepart longer than 1023 bytes');
  return out;
}

export function prepDomain(s: string): string {
  let d = s.endsWith('.') ? s.slice(0, -1) : s;
  if (d === '') throw new JidError('empty domainpart');
  if (d.startsWith('[')) {
    if (!/^\[[0-9a-fA-F:.]+\]$/.test(d)) throw new JidError('bad IPv6 literal');
    return d.toLowerCase();
  }
  // A-labels (xn--) are decoded so that every spelling of a domain compares equal (RFC 7622 §3.2.1).
  if (!/^[a-z0-9.-]+$/.test(d) || d.includes('xn--')) {
    const ascii = tr46.toASCII(d, {
      checkBidi: true,
      checkHyphens: false,
      checkJoiners: true,
      useSTD3ASCIIRules: true,
      verifyDNSLength: false,
    });
    if (ascii === null) throw new JidError('invalid domainpart');
    d = tr46.toUnicode(ascii, { useSTD3ASCIIRules: true }).domain;
  }
  if (!labelsFit(d)) throw new JidError('invalid domain label');
  if (byteLen(d) > MAX_PART) throw new JidError('domainpart longer than 1023 bytes');
  return d;
}

/** every dot-separated label of d is 1..63 characters (a loop: split() allocated per stanza) */
function labelsFit(d: string): boolean {
  let start = 0;
  for (;;) {
    const dot = d.indexOf('.', start);
    const end = dot === -1 ? d.length : dot;
    if (end === start || end - start > 63) return false;
    if (dot === -1) return true;
    start = dot + 1;
  }
}

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  /** localpart@domain, or domain */
  readonly bare: string;
  /** bare/resource, or bare */
  readonly full: string;

  /** Parts must already be prepared; use Jid.parse / Jid.of to prepare input. */
  private constructor(local: string, domain: string, resource: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.bare = local ? `${local}@${domain}` : domain;
    this.full = resource ? `${this.bare}/${resource}` : this.bare;
  }

  static parse(s: string): Jid {
    // RFC 7622 §3.1: the first '/' separates the resource; the localpart is
    // before the first '@' that precedes that slash.
    const slash = s.indexOf('/');
    const head = slash === -1 ? s : s.slice(0, slash);
    const at = head.indexOf('@');
    const local = at === -1 ? '' : head.slice(0, at);
    const domain = at === -1 ? head : head.slice(at + 1);
    if (at !== -1 && local === '') throw new JidError('empty localpart');
    if (slash !== -1 && slash === s.length - 1) throw new JidError('empty resourcepart');
    return new Jid(at === -1 ? '' : prepLocal(local), prepDomain(domain), slash === -1 ? '' : prepResource(s.slice(slash + 1)));
  }

  static of(local: string, domain: string, resource = ''): Jid {
    return new Jid(local ? prepLocal(local) : '', prepDomain(domain), resource ? prepResource(resource) : '');
  }

  /** The bare JID of this one (itself if already bare). */
  toBare(): Jid {
    return this.resource ? new Jid(this.local, this.domain, '') : this;
  }

  withResource(resource: string): Jid {
    return new Jid(this.local, this.domain, prepResource(resource));
  }

  isBare(): boolean {
    return this.resource === '';
  }

  equals(other: Jid): boolean {
    return this.full === other.full;
  }

  toString(): string {
    return this.full;
  }
}

/** Parse a JID or return undefined instead of throwing. */
export function tryJid(s: string | undefined): Jid | undefined {
  if (s === undefined) return undefined;
  try {
    return Jid.parse(s);
  } catch {
    return undefined;
  }
}
