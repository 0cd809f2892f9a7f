import type { SessionApi } from '../api/module.js';

/** What the router needs from a bound session on this node. */
export interface LocalSession extends SessionApi {
  /**
   * write an already serialised stanza (fan-out serialises once); `peers` are the
   * other sessions that got the same delivery (a message to the bare JID)
   */
  sendSerialized(xml: string, kind: 'message' | 'presence' | 'iq', peers?: readonly LocalSession[]): void;
}
