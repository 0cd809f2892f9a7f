// XEP-0133 Service Administration: the admin#* ad-hoc commands (node names and
// form fields exactly as the XEP defines them), the message of the day shown
// at login, and Uzzap's own commands for operating a running server: server
// statistics, reload configuration, change a live setting. The blacklist and
// whitelist are federation's (remote domains, src/s2s/policy.ts). Commands run through
// the XEP-0050 module; room administration lives with MUC (xeps/0045-muc).
import { z, type ModuleContext, type XepModule } from '../../src/api/index.js';
import { adminCommands } from './commands.js';
import { accountCommands } from './accounts.js';
import { sessionCommands } from './sessions.js';
import { listCommands } from './lists.js';
import { announceCommands } from './announce.js';
import { operatorCommands } from './operator.js';
import { federationCommands } from './federation.js';

const Config = z.strictObject({
  /** a client idle this long (no stanza sent, or inactive per XEP-0352) counts as idle, not active */
  idle_after: z.number().int().positive().default(600),
  /** most JIDs a user list returns at once (max_items "none" included); page with x-uzzap#start-after */
  max_list: z.number().int().positive().default(10000),
});
export type AdminConfig = z.infer<typeof Config>;

const admin: XepModule<AdminConfig> = {
  name: 'admin',
  xeps: [
    {
      n: 133,
      version: '1.3.0',
      status: 'partial',
      note: 'user management, lists and counts, sessions, federation blacklist/whitelist (domains), announce, MOTD, admin list, shutdown; no restart (needs a supervisor), no welcome message',
    },
  ],
  depends: ['adhoc'],
  config: Config as z.ZodType<AdminConfig>,
  setup(m: ModuleContext<AdminConfig>) {
    const commands = adminCommands(m);
    accountCommands(commands); // §4.1–§4.4, §4.7
    sessionCommands(commands); // §4.5, §4.8–§4.10
    federationCommands(commands); // §4.11–§4.12
    listCommands(commands); // §4.13–§4.22
    announceCommands(commands); // §4.23–§4.26
    operatorCommands(commands); // §4.29, §4.31, urn:uzzap:admin#*
  },
};

export default admin;
