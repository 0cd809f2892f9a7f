// Room nicknames under PRECIS (RFC 8266, XEP-0045 §17.1) with a real third-party client:
// slixmpp's xep_0045 plugin (Debian python3-slixmpp) against conference.localhost.
// Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts slixmpp's stanza log on stderr.
import { describeProbe } from './probe.js';

/** The checks slixmpp_precis.py prints as `PASS <check>` lines. */
const CHECKS = [
  'room: alice creates an instant room',
  'invisible nick: emoji + VARIATION SELECTOR-16 is refused with jid-malformed',
  'invisible nick: a lone ZERO WIDTH SPACE is refused with jid-malformed',
  'invisible nick: "Romeo" + ZERO WIDTH SPACE is refused with jid-malformed',
  'look-alike nick: fullwidth "Ｒｏｍｅｏ" is refused with not-acceptable',
  'greek nick: bob enters as Ωμέγα',
  'greek nick: alice sees Ωμέγα arrive',
];

describeProbe('interop: slixmpp room nicknames (PRECIS)', 'slixmpp_precis.py', CHECKS);
