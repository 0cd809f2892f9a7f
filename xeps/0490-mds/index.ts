// XEP-0490 Message Displayed Synchronization, server assist (§5): a client may put the
// <displayed/> it would publish into the message it sends anyway; the server takes it
// out, publishes it to the sender's PEP node urn:xmpp:mds:displayed:0 (item id: the
// message's 'to', as written), and routes the rest. This runs before carbons and the
// archive see the message (they never see the element). A message that held nothing
// else is not routed. Without server assist clients publish the node themselves (PEP).
import { z, type Element, type XepModule } from '../../src/api/index.js';

const NS_MDS = 'urn:xmpp:mds:displayed:0';
/** XEP-0490 §4: how clients publish the node (private, one item per chat) */
const OPTIONS = { persist_items: true, access_model: 'whitelist', max_items: 'max', send_last_published_item: 'never' };

const mds: XepModule = {
  name: 'mds',
  depends: ['pep'],
  config: z.object({}),
  xeps: [{ n: 490, version: '1.0.1', status: 'complete', note: 'with server assist' }],
  setup(m) {
    m.feature('urn:xmpp:mds:server-assist:0', 'bare');
    const publish = async (user: string, to: string, displayed: Element): Promise<void> => {
      try {
        await m.use('pep')?.publish(user, NS_MDS, to, displayed, OPTIONS);
      } catch (err) {
        m.log.warn({ err }, 'mds: publishing the displayed marker failed');
      }
    };
    m.hook(
      'message/sent',
      // synchronous unless the message carries a marker: every message passes here
      (ev) => {
        const displayed = ev.stanza.getChild('displayed', NS_MDS);
        const to = ev.stanza.attrs.to;
        if (!displayed || !ev.origin || !to) return false;
        ev.stanza.children = ev.stanza.children.filter((c) => c !== displayed);
        displayed.parent = null;
        // nothing else to deliver: not routed
        return publish(ev.from.local, to, displayed).then(() => ev.stanza.getChildElements().length === 0);
      },
      // before everything else that reads a sent message (MAM's backpressure wait is 100,000)
      200_000,
    );
  },
};

export default mds;
