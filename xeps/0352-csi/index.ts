// XEP-0352 Client State Indication. The holding and flushing is in
// src/session/session.ts (sendSerialized): while a client is inactive, presence
// and chat states wait (the latest per sender), messages with a body go at once
// after what was held. <active/>/<inactive/> are read in src/stream/c2s.ts.
import type { XepModule } from '../../src/api/index.js';

const csi: XepModule = {
  name: 'csi',
  xeps: [{ n: 352, version: '1.0.0', status: 'complete' }],
  setup(m) {
    m.streamFeature(`<csi xmlns='urn:xmpp:csi:0'/>`, 21);
  },
};

export default csi;
