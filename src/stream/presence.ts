// A client's broadcast presence (no 'to'), as its stream sees it on the way in:
// the session's availability and priority, and the registry other nodes read.
import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import { StanzaError } from '../api/errors.js';
import type { Core } from '../core.js';
import type { Session } from '../session/session.js';

/** Track broadcast presence (RFC 6121 §4.2, §4.5); returns an error for a bad priority. */
export function trackBroadcast(session: Session, el: Element, core: Core, _log: Logger): StanzaError | undefined {
  const type = el.attrs.type;
  if (type === undefined) {
    const p = el.getChildText('priority');
    let priority = 0;
    if (p !== null) {
      priority = Number(p.trim());
      if (!/^\s*[+-]?\d+\s*$/.test(p) || priority < -128 || priority > 127)
        return new StanzaError('bad-request', 'priority must be an integer from -128 to 127');
    }
    session.available = true;
    session.priority = priority;
    session.presence = el;
    core.lifecycle.changed(session);
  } else if (type === 'unavailable') {
    session.available = false;
    session.presence = undefined;
    core.lifecycle.changed(session);
  }
  return undefined;
}
