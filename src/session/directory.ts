// The session directory modules see (ctx.sessions): where a user's resources are,
// their flags, and ending a session from outside its stream. Modules get records
// (SessionRecord), never a session's connection; writing goes through the router
// (ctx.deliver, ctx.send). It answers from the node's session table, which in a
// cluster mirrors the other nodes' sessions too (src/cluster/): `of` and `all` list
// them, a flag set here reaches the registry, and `close` ends a session on any node.
import type { SessionDirectory, SessionRecord } from '../api/module.js';
import type { SessionTable } from './table.js';
import type { LocalSession } from './types.js';

export function sessionDirectory(table: SessionTable<LocalSession>, changed: (s: LocalSession) => void): SessionDirectory {
  // a record that is still the bound session under its JID (not one replaced or ended)
  const live = (r: SessionRecord): LocalSession | undefined => {
    const found = table.getLocal(r.jid.bare, r.jid.resource);
    return found === r ? found : undefined;
  };
  return {
    of: (bare) => [...table.resources(bare)],
    online: (bare) => table.online(bare),
    count: (bare) => table.countOf(bare),
    here: (bare) => [...table.localResources(bare)],
    has: (j) => table.get(j.bare, j.resource) !== undefined,
    all: () => [...table.all()],
    setFlag: (r, flag, on) => {
      const s = live(r);
      if (s && s.flags[flag] !== on) {
        s.flags[flag] = on;
        changed(s);
      }
    },
    // a session of another node is closed there
    close: (r, condition, text) => (live(r) ?? (table.get(r.jid.bare, r.jid.resource) === r ? (r as LocalSession) : undefined))?.close(condition, text),
  };
}
