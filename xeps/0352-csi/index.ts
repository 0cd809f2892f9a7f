// XEP-0352 Client State Indication: <active/> and <inactive/> reach this module
// through its nonza registration. The hold itself is the session's mechanism
// (src/session/session.ts sendSerialized): while a client is inactive, presence
// and chat states wait (the latest per sender); a message with a body goes at
// once, after what was held. Disabled, the elements are unknown to the server
// (unsupported-stanza-type) and nothing is ever held.
import type { XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:csi:0';

const csi: XepModule = {
  name: 'csi',
  xeps: [{ n: 352, version: '1.0.0', status: 'complete' }],
  setup(m) {
    m.streamFeature(`<csi xmlns='${NS}'/>`, 21);
    m.nonza(NS, (el, s) => {
      if (!s.session) return s.close('not-authorized', 'bind a resource first');
      if (el.name === 'active' || el.name === 'inactive') s.session.setInactive(el.name === 'inactive');
    });
  },
};

export default csi;
