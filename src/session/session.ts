// A bound client session: the JID, presence state and the outbound side.
// The stream (src/stream/c2s.ts) owns the transport; the session writes
// through it and carries what routing and modules need to know.
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import type { StreamErrorCondition } from '../api/errors.js';
import type { LocalSession } from './types.js';

export interface SessionOwner {
  readonly id: string;
  readonly secure: boolean;
  readonly remoteAddress: string;
  writeStanza(xml: string, kind: 'message' | 'presence' | 'iq'): void;
  close(condition?: StreamErrorCondition, text?: string): void;
}

export class Session implements LocalSession {
  available = false;
  priority = 0;
  presence: Element | undefined = undefined;
  private extMap: Map<string, unknown> | undefined;

  constructor(
    readonly jid: Jid,
    private readonly owner: SessionOwner,
  ) {}

  get id(): string {
    return this.owner.id;
  }
  get secure(): boolean {
    return this.owner.secure;
  }
  get remoteAddress(): string {
    return this.owner.remoteAddress;
  }
  /** allocated on first use: most sessions never need module state */
  get ext(): Map<string, unknown> {
    return (this.extMap ??= new Map());
  }

  send(stanza: Element): void {
    this.owner.writeStanza(stanza.toString(), stanza.name as 'message' | 'presence' | 'iq');
  }

  sendSerialized(xml: string, kind: 'message' | 'presence' | 'iq'): void {
    this.owner.writeStanza(xml, kind);
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    this.owner.close(condition, text);
  }
}
