// The session and presence registry: which full JIDs are online, on which node,
// with what priority, presence and flags. In memory for one node; in Redis when
// several nodes share it (src/cluster/: every node mirrors the others' entries
// from it and routes to them without a round trip per stanza).
export interface RegistryEntry {
  full: string;
  /** the node's name (UZZAP_NODE_NAME) */
  node: string;
  /** the node's incarnation (one per boot): a restarted node never owns its previous life's entries */
  inc: string;
  /** the session's own id (unique): ownership is compared on it, never on the JID */
  sid: string;
  priority: number;
  /** last available presence (serialised), undefined before initial presence / after unavailable */
  presence?: string;
  /** XEP-0280 carbons, RFC 6121 roster interest, XEP-0191 blocklist interest */
  flags?: { carbons: boolean; roster: boolean; blocklist: boolean };
  detached?: boolean;
  /** the client a Bind 2 login bound it for (XEP-0386: a hash of its user-agent id) */
  client?: string;
  secure?: boolean;
  addr?: string;
}

export interface Registry {
  readonly kind: 'memory' | 'redis';
  /** register a session; answers the entry it replaced (the same full JID bound by another session), if any */
  bind(e: RegistryEntry): Promise<RegistryEntry | undefined>;
  /** new presence, priority or flags; ignored unless that session still owns the JID */
  update(e: RegistryEntry): Promise<void>;
  /** the session ended; ignored unless it still owns the JID */
  unbind(full: string, node: string, sid: string): Promise<void>;
  resources(bare: string): Promise<RegistryEntry[]>;
  /** every entry (a node joining a cluster reads them once), in batches */
  scan(each: (batch: RegistryEntry[]) => void): Promise<void>;
  /**
   * forget every session a node had (of one incarnation, when given): at the node's
   * clean stop, and by a survivor for a node that stopped heartbeating
   */
  clearNode(node: string, inc?: string): Promise<number>;
  countOnline(): Promise<number>;
  /** a random secret every node sharing this registry gets the same (made by the first to ask); none in memory */
  sharedSecret?(name: string): Promise<string>;
  ping(): Promise<number>;
  close(): Promise<void>;
}

export const bareOf = (full: string): string => {
  const i = full.indexOf('/');
  return i === -1 ? full : full.slice(0, i);
};
