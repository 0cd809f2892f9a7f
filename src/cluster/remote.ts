// A session bound on another node of the cluster, as this node sees it: the
// registry entry (src/registry/types.ts) kept current by the events stream. It
// stands in the SessionTable beside local sessions, so routing by priority,
// presence broadcasts and probes, carbons and roster pushes reach it like a local
// one; writing to it puts an envelope on its node's inbox (src/cluster/cluster.ts).
import { Jid } from '../jid.js';
import { parseXml, type Element } from '../xml/index.js';
import type { DeliveryMeta, SessionFlags } from '../api/module.js';
import type { StreamErrorCondition } from '../api/errors.js';
import type { LocalSession } from '../session/types.js';
import type { RegistryEntry } from '../registry/types.js';

/** What a remote session needs of the cluster: the way to its node. */
export interface RemoteLink {
  toSession(s: RemoteSession, xml: string, kind: 'message' | 'presence' | 'iq', peers?: readonly LocalSession[], meta?: DeliveryMeta): void;
  closeSession(s: RemoteSession, condition?: StreamErrorCondition, text?: string): void;
}

export class RemoteSession implements LocalSession {
  readonly jid: Jid;
  readonly node: string;
  readonly inc: string;
  readonly id: string;
  readonly key: string;
  priority = 0;
  available = false;
  detached = false;
  secure = true;
  remoteAddress = '';
  client: string | undefined;
  readonly lastActive = Date.now();
  readonly inactive = false;
  flags: SessionFlags = { carbons: false, roster: false, blocklist: false };
  private presenceXml: string | undefined;
  private presenceEl: Element | undefined;
  private extMap: Map<string, unknown> | undefined;

  constructor(
    private readonly link: RemoteLink,
    e: RegistryEntry,
  ) {
    this.jid = Jid.parse(e.full);
    this.node = e.node;
    this.inc = e.inc;
    this.id = e.sid;
    this.key = e.sid;
    this.update(e);
  }

  /** the entry changed (presence, priority, flags) */
  update(e: RegistryEntry): void {
    this.priority = e.priority;
    this.available = e.presence !== undefined;
    if (e.presence !== this.presenceXml) {
      this.presenceXml = e.presence;
      this.presenceEl = undefined;
    }
    if (e.flags) this.flags = e.flags;
    this.detached = e.detached === true;
    this.client = e.client;
    this.secure = e.secure !== false;
    this.remoteAddress = e.addr ?? '';
  }

  /** the last available presence, parsed when first read (probes, new subscribers) */
  get presence(): Element | undefined {
    if (this.presenceXml === undefined) return undefined;
    try {
      return (this.presenceEl ??= parseXml(this.presenceXml));
    } catch {
      return undefined;
    }
  }

  /** module state is per node: a remote session has none here */
  get ext(): Map<string, unknown> {
    return (this.extMap ??= new Map());
  }

  sendSerialized(xml: string, kind: 'message' | 'presence' | 'iq', peers?: readonly LocalSession[], meta?: DeliveryMeta): void {
    this.link.toSession(this, xml, kind, peers, meta);
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    this.link.closeSession(this, condition, text);
  }
}
