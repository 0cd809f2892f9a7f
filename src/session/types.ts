import type { DeliveryMeta, SessionFlags, SessionRecord } from '../api/module.js';
import type { StreamErrorCondition } from '../api/errors.js';

/** What the router and the session directory need from a bound session on this node. */
export interface LocalSession extends SessionRecord {
  readonly flags: SessionFlags;
  /** unique per session (the registry compares ownership on it; a resumed session keeps it) */
  readonly key: string;
  /** the client a Bind 2 login bound it for (XEP-0386: a hash of its <user-agent id/>) */
  client?: string;
  /**
   * write an already serialised stanza (fan-out serialises once); `peers` are the
   * other sessions that got the same delivery (a message to the bare JID)
   */
  sendSerialized(xml: string, kind: 'message' | 'presence' | 'iq', peers?: readonly LocalSession[], meta?: DeliveryMeta): void;
  close(condition?: StreamErrorCondition, text?: string): void;
  /** a stanza another node of the cluster sent on (routed before the session moved here): src/session/session.ts */
  sendForwarded?(xml: string, kind: 'message' | 'presence' | 'iq', peers?: readonly LocalSession[], meta?: DeliveryMeta): void;
}
