// XEP-0199 XMPP Ping, client-to-server (and to the user's own account).
import type { XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:ping';

const ping: XepModule = {
  name: 'ping',
  xeps: [{ n: 199, version: '2.0.1', status: 'complete', note: 'client-to-server; server-initiated pings come with stream management' }],
  setup(m) {
    m.feature(NS);
    m.iq({ type: 'get', ns: NS, name: 'ping', to: ['host', 'bare'] }, () => undefined);
  },
};

export default ping;
