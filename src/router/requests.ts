// IQs the server itself sends (a module asking a client something: XEP-0115 asks a
// resource what its capabilities hash stands for) and waits on. The answer comes back
// addressed to the server's JID, from the JID the request went to; the router hands
// every result or error to the server here (src/router/router.ts, `iq`). Bounded: at
// most `max` wait at once, each at most `timeoutMs` (one sweep timer per table, no
// timer per request).
import type { Element } from '../xml/index.js';
import { randomToken } from '../random.js';
import { StanzaError, STANZA_ERRORS, type StanzaErrorCondition } from '../api/errors.js';
import { PendingIqs } from '../api/pending-iqs.js';

interface Waiting {
  to: string;
  resolve: (iq: Element) => void;
  reject: (e: Error) => void;
}

/** The request went unanswered, or could not be sent (the table was full). */
export class RequestFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestFailed';
  }
}

export class ServerRequests {
  private readonly table: PendingIqs<Waiting>;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (iq: Element) => void,
    limits: { max: number; timeoutMs: number },
  ) {
    this.table = new PendingIqs<Waiting>(
      { max: () => limits.max, timeoutMs: () => limits.timeoutMs },
      (w) => w.reject(new RequestFailed(`no answer from ${w.to}`)),
    );
  }

  get size(): number {
    return this.table.size;
  }

  /**
   * Send `iq` (type get or set, 'from' the server, 'to' set; its id is replaced) and
   * resolve with the result. An error reply rejects with its StanzaError.
   */
  request(iq: Element): Promise<Element> {
    const id = 'uz-' + randomToken(9);
    iq.attrs.id = id;
    const to = String(iq.attrs.to);
    return new Promise<Element>((resolve, reject) => {
      if (!this.table.add(id, { to, resolve, reject })) return reject(new RequestFailed('too many server requests waiting'));
      this.timer ??= setInterval(() => {
        this.table.sweep();
        if (this.table.size === 0) this.stop();
      }, 1000).unref();
      this.send(iq);
    });
  }

  /** A result or error addressed to the server: true when it answered one of ours. */
  answer(iq: Element, from: string): boolean {
    const id = iq.attrs.id;
    if (typeof id !== 'string' || !id.startsWith('uz-')) return false;
    // only the entity asked may answer (RFC 6120 §8.2.3: the reply comes from the 'to' of the request)
    const w = this.table.take(id, (w) => w.to === from);
    if (!w) return false;
    if (iq.attrs.type === 'result') w.resolve(iq);
    else w.reject(errorOf(iq));
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Fail every waiting request (the server stops). */
  close(): void {
    this.stop();
    for (const w of this.table.drain()) w.reject(new RequestFailed('server stopping'));
  }
}

function errorOf(iq: Element): StanzaError {
  const err = iq.getChild('error');
  const cond = err?.getChildElements().find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text');
  const name = (cond?.name ?? 'undefined-condition') as StanzaErrorCondition;
  return new StanzaError(name in STANZA_ERRORS ? name : 'undefined-condition');
}
