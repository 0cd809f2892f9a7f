// The session and presence registry: which full JIDs are online, on which
// node, with what priority and last available presence. In memory for one
// node; in Redis when several nodes share it (and to survive client restarts).
export interface RegistryEntry {
  full: string;
  node: string;
  priority: number;
  /** last available presence (serialised), undefined before initial presence / after unavailable */
  presence?: string;
}

export interface Registry {
  readonly kind: 'memory' | 'redis';
  bind(full: string, node: string): Promise<void>;
  unbind(full: string, node: string): Promise<void>;
  setPresence(full: string, node: string, priority: number, presence: string | undefined): Promise<void>;
  resources(bare: string): Promise<RegistryEntry[]>;
  /**
   * forget every session a node had: called at the node's clean stop. A node that
   * crashed leaves its entries (a survivors' sweep of dead nodes is the cluster's work).
   */
  clearNode(node: string): Promise<number>;
  countOnline(): Promise<number>;
  ping(): Promise<number>;
  close(): Promise<void>;
}
