// Top-level elements of a client stream that are not stanzas nor negotiation
// (XEP-0198's <enable/>, <r/>, ...; XEP-0352's <active/>): each goes to the
// module that registered its namespace ('stream/nonza' hook, `ctx.nonza`).
// The module gets a StreamSide, a narrow view of the stream: never the stream.
import type { StreamErrorCondition } from '../api/errors.js';
import type { AckState, NonzaStream, StreamSession } from '../api/module.js';
import type { Element } from '../xml/index.js';
import type { Core } from '../core.js';
import type { Kind, Session } from '../session/session.js';

/** What the stream lends its side. */
export interface NonzaOwner {
  /** the session bound on the stream, if any */
  readonly bound: Session | undefined;
  /** authenticated, no resource bound yet */
  readonly awaitingBind: boolean;
  readonly username: string;
  writeRaw(xml: string): void;
  writeStanza(xml: string, kind: Kind): void;
  close(condition?: StreamErrorCondition, text?: string, appCondition?: string): void;
  /** bind the stream to a resumed session */
  takeOver(session: Session): void;
}

export class StreamSide implements NonzaStream {
  readonly #core: Core;
  readonly #owner: NonzaOwner;
  constructor(core: Core, owner: NonzaOwner) {
    this.#core = core;
    this.#owner = owner;
  }
  get session(): StreamSession | undefined {
    return this.#owner.bound;
  }
  get canResume(): boolean {
    return this.#owner.awaitingBind;
  }
  get resumeWindow(): number {
    return this.#core.config.sm.resume_timeout;
  }
  write(xml: string): void {
    this.#owner.writeRaw(xml);
  }
  writeStanza(xml: string, kind: Kind): void {
    this.#owner.writeStanza(xml, kind);
  }
  close(condition?: StreamErrorCondition, text?: string, appCondition?: string): void {
    this.#owner.close(condition, text, appCondition);
  }
  enableAcks(resume: boolean): AckState {
    const session = this.#owner.bound;
    if (!session) throw new Error('no session bound on this stream');
    return this.#core.lifecycle.enable(session, resume);
  }
  findSession(previd: string): StreamSession | { h?: number } | Promise<StreamSession | { h?: number }> {
    return this.#core.lifecycle.lookup(previd, this.#owner.username);
  }
  resume(session: StreamSession): void {
    // only sessions from findSession reach here, and those are the core's
    this.#owner.takeOver(session as Session);
  }
}

/** Hand a nonza to the module of its namespace; an unclaimed one ends the stream as it always did. */
export function dispatchNonza(core: Core, el: Element, side: StreamSide, owner: NonzaOwner): void | Promise<void> {
  const r = core.hooks.run('stream/nonza', el, side);
  if (r === true) return;
  if (r === false) return unknown(el, owner);
  return r.then((handled) => {
    if (!handled) unknown(el, owner);
  });
}

function unknown(el: Element, owner: NonzaOwner): void {
  // RFC 6120 §7.2.1: nothing but binding before a resource is bound; §4.9.3.21 after
  if (owner.awaitingBind) return owner.close('not-authorized', 'bind a resource first');
  owner.close('unsupported-stanza-type', `<${el.name}/> is not a stanza this server handles`);
}
