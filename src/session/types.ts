import type { SessionApi } from '../api/module.js';

/** What the router needs from a bound session on this node. */
export interface LocalSession extends SessionApi {
  /** write an already serialised stanza (fan-out serialises once) */
  sendSerialized(xml: string, kind: 'message' | 'presence' | 'iq'): void;
}
