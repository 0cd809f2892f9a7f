// What streams and sessions need from the server that owns them. The Server
// class implements it; keeping it an interface keeps the import graph acyclic.
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Metrics } from './metrics.js';
import type { Router } from './router/router.js';
import type { HookBus } from './router/hooks.js';
import type { SessionTable } from './session/table.js';
import type { LocalSession } from './session/types.js';
import type { Storage } from './storage/types.js';
import type { Registry } from './registry/types.js';
import type { TlsMaterial } from './tls.js';
import type { FeatureContext, InlineHandlers, PreAuthIqRequest } from './api/module.js';
import type { Element } from './xml/index.js';
import type { AuthThrottle } from './stream/sasl/throttle.js';
import type { SessionManager } from './session/manager.js';
import type { Cluster } from './cluster/cluster.js';
import type { FastTokens } from './stream/sasl/fast.js';

export interface Core {
  readonly config: Config;
  readonly nodeId: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly router: Router;
  readonly hooks: HookBus;
  readonly sessions: SessionTable<LocalSession>;
  /** binding, stream-management detach/resume, and the end of sessions */
  readonly lifecycle: SessionManager;
  readonly storage: Storage;
  readonly registry: Registry;
  /** the other nodes, when several share Redis (undefined: one node) */
  readonly cluster: Cluster | undefined;
  readonly tls: TlsMaterial;
  readonly throttle: AuthThrottle;
  /** secret for fake SCRAM salts of unknown users */
  readonly saslSecret: Buffer;
  /** stream features modules offer in a phase */
  streamFeatures(phase: 'pre-auth' | 'post-auth', s: FeatureContext): string;
  /** a module's part in SASL2/Bind 2 requests for elements of a namespace */
  inline(ns: string): InlineHandlers | undefined;
  /** what SASL2's <inline/> and Bind 2's <inline/> list from modules */
  inlineFeatures(): { sasl: string[]; bind: string[] };
  /** FAST tokens (XEP-0484) */
  readonly fast: FastTokens;
  /** handler of an IQ allowed before authentication, by payload namespace */
  preAuthIq(ns: string): ((req: PreAuthIqRequest) => Element | void | Promise<Element | void>) | undefined;
  /** streams currently open (for shutdown) */
  readonly streams: Set<{ shutdown(): void; tick(now: number): void }>;
}
