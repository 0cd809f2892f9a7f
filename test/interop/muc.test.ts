// Multi-User Chat interop with a real third-party client: slixmpp's xep_0045
// plugin (Debian python3-slixmpp) against conference.localhost.
// Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts slixmpp's stanza log on stderr.
import { describeProbe } from './probe.js';

/** The checks slixmpp_muc.py prints as `PASS <check>` lines. */
const CHECKS = [
  'create room: self-presence has status 110 and 201',
  'create room: creator is owner/moderator',
  'locked room: bob is refused with item-not-found',
  'instant room: empty submit form accepted',
  'config form: has FORM_TYPE muc#roomconfig',
  'config form: modified form submitted back is accepted',
  'config form: the new room name is stored',
  'join: bob self-presence has 110 (and no 201)',
  'join: bob sees alice in the room',
  'join: history message delivered with delay from the room',
  'join: history message carries stanza-id by the room',
  'join: alice sees bob arrive',
  "groupchat: bob receives alice's message from room/alice",
  "groupchat: bob's copy carries stanza-id by the room",
  "groupchat: alice receives bob's message from room/bob",
  "groupchat: alice's copy carries stanza-id by the room",
  'groupchat: bob gets his own message reflected',
  'subject: bob sees the new subject from room/alice',
  'self-ping: alice pinging room/alice gets a result',
  'kick: set_role none answered with result',
  'kick: bob gets own unavailable presence with 110 and 307',
  'kick: the kick reason reaches bob',
  'kick: alice sees bob leave with 307 (no 110)',
  'self-ping after kick: error not-acceptable',
  'bare-JID leave: bob gets own unavailable presence with 110',
  'bare-JID leave: alice sees bob leave with role none and his status',
  'bare-JID leave: bob is no longer an occupant (self-ping not-acceptable)',
  'moderation: the message to moderate has a stanza-id',
  'moderation: the :0 request is answered with result',
  'moderation: bob gets the :0 announcement from the room, by room/alice, with the reason',
  'moderation: alice gets the :0 announcement from the room, by room/alice, with the reason',
  'moderation: the room archive still has an entry for the message',
  'moderation: the archived entry has no body any more',
  'moderation: the archived entry is a tombstone slixmpp reads (moderated by room/alice, retracted)',
  'moderation: the body is nowhere in the archive',
];

describeProbe('interop: slixmpp MUC (XEP-0045)', 'slixmpp_muc.py', CHECKS);
