// PEP (XEP-0163) over PubSub (XEP-0060) with a real third-party client: slixmpp's own
// plugins (Debian python3-slixmpp: xep_0060, xep_0163, xep_0115, xep_0084, xep_0048,
// xep_0049, xep_0223, xep_0153) — OMEMO device lists and bundles with publish-options,
// avatars, XEP-0402 bookmarks through the XEP-0048/0049/0411 bridges, private nodes.
// Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts slixmpp's stanza log on stderr.
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { itPasses, requireSlixmpp, runProbe } from './probe.js';

/** The checks slixmpp_pep.py prints as `PASS <check>` lines. */
const CHECKS = [
  'caps: the server asks bob what his caps (with +notify) stand for',
  "disco: alice's account is a pubsub/pep service with publish-options",
  'omemo: device list (urn:xmpp:omemo:2:devices) published with publish-options',
  'omemo: bundle (urn:xmpp:omemo:2:bundles, item id = device id) published with publish-options',
  'omemo: legacy device list (axolotl.devicelist) published with publish-options',
  'omemo: legacy bundle (axolotl.bundles:<id>) published with publish-options',
  'omemo: bob (contact, +notify by caps) is notified of the device list, from the bare JID',
  'omemo: bob is notified of the legacy device list',
  "omemo: alice's own resource is notified of her device list",
  'omemo: bob reads the bundle by item id (get_item)',
  'omemo: bob reads the legacy bundle',
  'omemo: carol (no contact) subscribes to the open device list explicitly',
  'omemo: a second bundle and device list published with the same options',
  'omemo: bob is notified of the new device list',
  'omemo: carol is notified of the new device list through her subscription',
  'omemo: carol (no contact) reads the open device list',
  'omemo: carol reads the open legacy device list',
  'omemo: carol reads both bundles by item id (max_items max kept both)',
  'omemo: a resource coming online later gets the newest device list, with a delay stamp',
  'publish-options: access_model presence on the open device list: cancel, conflict/precondition-not-met',
  'publish-options: max_items 1 on the max bundles node: cancel, conflict/precondition-not-met',
  'publish-options: an unknown option: cancel, conflict/precondition-not-met',
  'node config: the legacy device list says access_model open',
  'node config: after reconfiguring to presence, the publish with presence goes through',
  'node config: carol now gets not-authorized/presence-subscription-required',
  'avatar: data and metadata published (xep_0084)',
  'avatar: bob is notified of the metadata (xep_0084 interest)',
  'avatar: bob fetches the data by the id in the metadata',
  'avatar: carol reads it as the vCard photo (XEP-0398)',
  "avatar: bob's xep_0153 sees the avatar hash in alice's presence",
  'bookmarks: XEP-0402 item published with the XEP-0402 publish-options',
  "bookmarks: alice's resource is notified (XEP-0402 §5)",
  'bookmarks: private storage (xep_0048 via xep_0049) lists the XEP-0402 room',
  'bookmarks: a legacy write to private storage (xep_0048 via xep_0049) is accepted',
  'bookmarks: the new room is a XEP-0402 item with the room JID as id (notified)',
  'bookmarks: the XEP-0402 node has both rooms',
  'bookmarks: the storage:bookmarks PEP node (xep_0048 via xep_0223) has both rooms (XEP-0411)',
  'bookmarks: the <url/> bookmark survives in private storage',
  "bookmarks: bob cannot read alice's XEP-0402 bookmarks",
  'private (XEP-0223): store with persist_items + whitelist accepted',
  'private (XEP-0223): alice retrieves it',
  'private (XEP-0223): bob gets not-allowed/closed-node',
  'private (XEP-0223): carol gets not-allowed/closed-node',
  'marker: bob (contact) gets the tune (presence access, xep_0118)',
  'private nodes: bob got no notification of bookmarks or XEP-0223 items',
  'marker: carol (no contact) gets not-authorized/presence-subscription-required for the tune',
];

async function befriend(server: Server, a: string, b: string): Promise<void> {
  const both = { subscription: 'both' as const, ask: false, approved: false, groups: [] };
  await server.storage.roster.put(a, { jid: `${b}@localhost`, ...both });
  await server.storage.roster.put(b, { jid: `${a}@localhost`, ...both });
}

describe('interop: slixmpp PEP (XEP-0163, XEP-0060, XEP-0115, XEP-0084, XEP-0402, XEP-0223)', function () {
  this.timeout(40_000);
  let server: Server | undefined;
  let out = '';
  before(async () => {
    requireSlixmpp();
    // alice and bob are contacts; carol is not
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    await befriend(server, 'alice', 'bob');
    out = await runProbe('slixmpp_pep.py', ['127.0.0.1', String(server.ports.c2s)], 35_000);
  });
  after(() => server?.stop());
  itPasses(() => out, CHECKS);
});
