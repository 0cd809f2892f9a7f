// RFC 6121 subscriptions with a real third-party client: slixmpp (Debian
// python3-slixmpp). Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts
// slixmpp's stanza log on stderr.
import { describeProbe } from './probe.js';

/** The checks slixmpp_subscribe.py prints as `PASS <check>` lines. */
const CHECKS = [
  'offline request: delivered at login from the bare JID',
  'offline request: the XEP-0172 nick is kept',
  'offline request: the XEP-0379 preauth token is kept',
  'offline request: the id is kept',
  'approval: alice gets subscribed from bob',
  "approval: alice's roster shows subscription to",
];

describeProbe('interop: slixmpp subscriptions (RFC 6121)', 'slixmpp_subscribe.py', CHECKS);
