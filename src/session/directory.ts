// The session directory modules see (ctx.sessions): where a user's resources are,
// their flags, and ending a session from outside its stream. Modules get records
// (SessionRecord), never a session's connection; writing goes through the router
// (ctx.deliver, ctx.send). Today it answers from this node's session table; in a
// cluster it is the one place that also knows other nodes' sessions.
import type { SessionDirectory, SessionRecord } from '../api/module.js';
import type { SessionTable } from './table.js';
import type { LocalSession } from './types.js';

export function sessionDirectory(table: SessionTable<LocalSession>): SessionDirectory {
  // a record that is still the bound session under its JID (not one replaced or ended)
  const live = (r: SessionRecord): LocalSession | undefined => {
    const found = table.get(r.jid.bare, r.jid.resource);
    return found === r ? found : undefined;
  };
  return {
    of: (bare) => [...table.resources(bare)],
    has: (j) => table.get(j.bare, j.resource) !== undefined,
    all: () => [...table.all()],
    setFlag: (r, flag, on) => {
      const s = live(r);
      if (s) s.flags[flag] = on;
    },
    close: (r, condition, text) => live(r)?.close(condition, text),
  };
}
