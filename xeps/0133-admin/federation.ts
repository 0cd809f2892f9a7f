// XEP-0133 §4.11–§4.12: the service-wide blacklist and whitelist, for federation
// (the bidirectional edit-* nodes). The lists hold remote domains, each covering its
// subdomains; what the configuration lists (s2s.blacklist / s2s.whitelist) applies too
// and is shown, not edited. The form holds what admins stored; submitting replaces it
// (an emptied field clears it). The server keeps the lists (src/s2s/policy.ts): they
// hold over restarts and on every node of a cluster.
import { tryJid, StanzaError, type AdhocNote, type FederationList, type FormField } from '../../src/api/index.js';
import { ask, jids, type AdminCommands } from './commands.js';

export function federationCommands({ m, host, command }: AdminCommands): void {
  /** a remote domain from what an admin typed, or a bad-request naming it */
  const domainOf = (s: string): string => {
    const j = tryJid(s);
    if (!j || j.local || j.resource)
      throw new StanzaError('bad-request', `"${s}" is not a domain (the lists hold domains, each with its subdomains)`);
    if (j.domain === host) throw new StanzaError('bad-request', `${host} is this server`);
    return j.domain;
  };

  const edit = (list: FederationList, label: string, what: string): void => {
    const v = `${list}jids`;
    command(
      `edit-${list}`,
      `Edit ${label}`,
      [
        ask(
          () => {
            const configured = m.federation.configured(list);
            const fields: FormField[] = [{ var: v, type: 'jid-multi', label: `The ${list}`, values: m.federation.stored(list) }];
            if (configured.length)
              fields.push({
                type: 'fixed',
                value: `Also listed by the configuration (s2s.${list}), not changed here: ${configured.join(', ')}`,
              });
            return fields;
          },
          {
            title: `Editing the ${label}`,
            instructions: `Fill out this form to edit the list of entities with whom communications are ${what}.`,
          },
        ),
      ],
      async (st) => {
        // an empty list is a choice; a missing field is a mistake, not "clear the list"
        if (st[v] === undefined) throw new StanzaError('bad-request', `the ${v} field is missing`);
        const wanted = [...new Set(jids(st, v).map(domainOf))];
        const before = new Set(m.federation.stored(list));
        await m.federation.setStored(list, wanted);
        const notes: AdhocNote[] = [];
        const added = wanted.filter((d) => !before.has(d));
        const removed = [...before].filter((d) => !wanted.includes(d));
        if (added.length) notes.push({ type: 'info', text: `added: ${added.join(', ')}` });
        if (removed.length) notes.push({ type: 'info', text: `removed: ${removed.join(', ')}` });
        if (!notes.length) notes.push({ type: 'info', text: 'no change' });
        if (list === 'whitelist')
          notes.push({
            type: 'info',
            text:
              wanted.length || m.federation.configured(list).length
                ? 'only the whitelisted domains (and their subdomains) are talked to'
                : 'the whitelist is empty: every domain not blacklisted is talked to',
          });
        return { notes };
      },
    );
  };
  edit('blacklist', 'Blacklist', 'disallowed');
  edit('whitelist', 'Whitelist', 'allowed');
}
