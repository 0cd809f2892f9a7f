// RFC 6121 subscriptions with a real third-party client: slixmpp (Debian
// python3-slixmpp). Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts
// slixmpp's stanza log on stderr.
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { itPasses, requireSlixmpp, runProbe } from './probe.js';

/** The checks slixmpp_subscribe.py prints as `PASS <check>` lines. */
const CHECKS = [
  'offline request: delivered at login from the bare JID',
  'offline request: the XEP-0172 nick is kept',
  'offline request: the XEP-0379 preauth token is kept',
  'offline request: the id is kept',
  'approval: alice gets subscribed from bob',
  "approval: alice's roster shows subscription to",
];

describe('interop: slixmpp subscriptions (RFC 6121)', function () {
  this.timeout(30_000);
  let server: Server;
  let out = '';
  before(async () => {
    requireSlixmpp();
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    out = await runProbe('slixmpp_subscribe.py', ['127.0.0.1', String(server.ports.c2s)]);
  });
  after(() => server?.stop());

  itPasses(() => out, CHECKS);
});
