// XEP-0060 errors: an RFC 6120 condition with the pubsub#errors element that says why
// (the table of §6-§8; `unsupported` names the feature, §5.6).
import { x, StanzaError, type ErrorType, type StanzaErrorCondition } from '../../src/api/index.js';

export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';

export function pubsubError(condition: StanzaErrorCondition, app?: string, text?: string, type?: ErrorType): StanzaError {
  return new StanzaError(condition, text, type, app ? x(app, { xmlns: NS_PUBSUB_ERRORS }) : undefined);
}

/** feature-not-implemented with <unsupported feature='...'/> (§5.6, §6.1.3.10, ...) */
export function unsupported(feature: string, text?: string): StanzaError {
  return new StanzaError('feature-not-implemented', text, 'cancel', x('unsupported', { xmlns: NS_PUBSUB_ERRORS, feature }));
}
