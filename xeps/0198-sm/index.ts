// XEP-0198 Stream Management. The mechanics live with the stream and the
// session, because a managed session outlives its connection:
//   src/stream/c2s.ts       <enable/>, <r/>, <a/>, <resume/>; liveness checks (tick)
//   src/session/session.ts  the unacknowledged queue, 'h' counting, ack requests
//   src/session/manager.ts  detach, resume lookup, expiry into offline storage
// This module advertises the feature; settings are the core's `sm.*` keys.
import type { XepModule } from '../../src/api/index.js';

const sm: XepModule = {
  name: 'sm',
  xeps: [
    {
      n: 198,
      version: '1.6.3',
      status: 'complete',
      note: 'resumption; unacknowledged messages go to offline storage when the window ends',
    },
  ],
  setup(m) {
    m.streamFeature(`<sm xmlns='urn:xmpp:sm:3'/>`, 20);
  },
};

export default sm;
