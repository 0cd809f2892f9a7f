// The module contract: everything an extension in xeps/ may use. Modules
// declare what they provide; the core records each registration and undoes it
// when the module is unloaded or the server reloads, so modules never unhook.
// One file on purpose (~620 lines, nearly all types and their comments): a module
// author reads the whole contract here; the stream and ad-hoc parts are already apart
// (stream.ts, adhoc.ts).
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import type { Storage } from '../storage/types.js';
import type { StreamErrorCondition } from './errors.js';
import type { AdhocCommand, Commands } from './adhoc.js';
import type { InlineHandlers, NonzaHandler, NonzaStream } from './stream.js';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface XepInfo {
  n: number;
  version: string;
  status: 'complete' | 'partial';
  note?: string;
}

export interface XepModule<C = unknown> {
  /** unique; also the key of this module's settings under `modules:` in uzzap.yaml */
  name: string;
  xeps: XepInfo[];
  depends?: string[];
  config?: z.ZodType<C>;
  setup(m: ModuleContext<C>): void | Promise<void>;
}

/**
 * Per-session flags that other parts of the server read: set by the module that
 * owns the protocol (`ctx.sessions.setFlag`), kept in the session's record, so
 * that a record can be copied to other nodes as plain data.
 */
export interface SessionFlags {
  /** XEP-0280: the client enabled carbons */
  carbons: boolean;
  /** RFC 6121 §2.1.6: the client asked for the roster (it is sent roster pushes and subscription state changes) */
  roster: boolean;
  /** XEP-0191: the client asked for the blocklist (it is sent block/unblock pushes) */
  blocklist: boolean;
}

export type SessionFlag = keyof SessionFlags;

/**
 * A bound client session as modules see it: a record, not a connection. A module
 * never writes to a session: stanzas go through `ctx.deliver` / `ctx.send`, and
 * `ctx.sessions.close` ends one (the router and the session directory know where
 * the session lives).
 */
export interface SessionRecord {
  readonly id: string;
  readonly jid: Jid;
  readonly secure: boolean;
  readonly remoteAddress: string;
  /** last broadcast presence priority (-128..127) */
  readonly priority: number;
  /** the last available presence broadcast, if any (initial presence sent) */
  readonly presence: Element | undefined;
  readonly available: boolean;
  /** ms since the epoch: when the client last sent a stanza */
  readonly lastActive: number;
  /** XEP-0352: the client said it is inactive */
  readonly inactive: boolean;
  /** XEP-0198: the connection dropped and the session waits for resumption */
  readonly detached: boolean;
  readonly flags: Readonly<SessionFlags>;
  /**
   * A module's own state for a session of this node, keyed by module name (not
   * shared with other nodes: put what others read in `flags`).
   */
  readonly ext: Map<string, unknown>;
}

/** Where a user's resources are, and what may be done to a session from outside its stream. */
export interface SessionDirectory {
  /** a user's bound resources (bare JID), on every node of a cluster */
  of(bare: string): SessionRecord[];
  /** has the user any bound resource, on any node (no list made: per message) */
  online(bare: string): boolean;
  /** how many resources the user has bound, on every node (no list made: per message) */
  count(bare: string): number;
  /** a user's resources bound on this node (what a per-node cache may follow) */
  here(bare: string): SessionRecord[];
  /** is this full JID a bound session? */
  has(jid: Jid): boolean;
  /** every bound session */
  all(): SessionRecord[];
  setFlag(session: SessionRecord, flag: SessionFlag, on: boolean): void;
  /** end a session with a stream error (a detached one is dropped) */
  close(session: SessionRecord, condition?: StreamErrorCondition, text?: string): void;
}

/**
 * What the module that knows a stanza tells the core about it, so that the core
 * need not read payload namespaces.
 */
export interface DeliveryMeta {
  /** XEP-0280: a copy of a message another resource got; never stored offline by itself */
  copy?: boolean;
}

export interface StanzaEvent {
  stanza: Element;
  from: Jid;
  to: Jid;
  /** the local session the stanza came from, if any */
  origin?: SessionRecord;
}

/** true = handled, stop the chain. */
export type HookResult = boolean | void | Promise<boolean | void>;

export interface Hooks {
  /** stanzas addressed to a local user's bare JID (before default delivery) */
  'message/bare': (ev: StanzaEvent) => HookResult;
  'message/full': (ev: StanzaEvent) => HookResult;
  /** messages addressed to the server itself */
  'message/host': (ev: StanzaEvent) => HookResult;
  /**
   * presence to a local user's bare / full JID; also, with `origin` set, a local client's
   * presence to another server's entity: a subscription stanza ('presence/bare'), or
   * directed presence, available or unavailable (by the form of its 'to')
   */
  'presence/bare': (ev: StanzaEvent) => HookResult;
  'presence/full': (ev: StanzaEvent) => HookResult;
  'presence/host': (ev: StanzaEvent) => HookResult;
  /** presence without 'to' from a client: its broadcast */
  'presence/broadcast': (ev: StanzaEvent) => HookResult;
  /** a message that could not be delivered to any resource of a local user */
  'message/undelivered': (ev: StanzaEvent) => HookResult;
  /** before a stanza is written to a session (return true to drop it) */
  'stanza/out': (ev: { stanza: Element; session: SessionRecord }) => HookResult;
  'session/bound': (session: SessionRecord) => HookResult;
  'session/closed': (session: SessionRecord, reason: string) => HookResult;
  /**
   * In a cluster: sessions of a node that died (killed, not stopped) are gone from this
   * node's view; they did not end cleanly (no 'session/closed' ran for them anywhere).
   */
  'session/lost': (sessions: SessionRecord[]) => HookResult;
  /**
   * In a cluster: a session of another node ended, or went unavailable (its node ran
   * 'session/closed' or 'presence/broadcast' there). Rooms served here let it go: the
   * node that had it may not know of them (the session moved there from elsewhere).
   */
  'session/left': (session: SessionRecord) => HookResult;
  /**
   * A message with a body reached a session that cannot show it now: detached
   * (its connection dropped, XEP-0198) or inactive (XEP-0352). Push (XEP-0357) listens.
   */
  'push/needed': (session: SessionRecord, reason: 'detached' | 'inactive', message: string, unseen: number) => HookResult;
  'user/created': (username: string) => HookResult;
  /** an account is about to be deleted: its data is still there (cancel subscriptions, tell contacts) */
  'user/deleting': (username: string) => HookResult;
  /** an account and all its stored data are gone */
  'user/deleted': (username: string) => HookResult;
  'server/stopping': () => HookResult;
  /** a message from a local client, before routing (carbons 'sent' copies, hints); true = stop */
  'message/sent': (ev: StanzaEvent) => HookResult;
  /**
   * XEP-0115: the features of a session's client became known (its first presence with
   * caps was verified, or it announced different caps).
   */
  'caps/known': (session: SessionRecord, features: ReadonlySet<string>) => HookResult;
  /**
   * XEP-0115 across servers: the features of `jid`, a resource of a contact on another server,
   * are known (verified from its presence to local user `to`, a bare JID), or it sent its
   * presence to one more local user once they were. Once per (resource, caps, local user).
   */
  'caps/remote': (jid: Jid, features: ReadonlySet<string>, to: string) => HookResult;
  /**
   * A presence from a local client, before it is routed (a broadcast, or directed to a
   * contact or a room): modules may add to it (XEP-0398's avatar hash). true = drop it.
   */
  'presence/sent': (ev: StanzaEvent) => HookResult;
  /** XEP-0054: a user stored a new vCard (`card`, the <vCard/> element) through vcard-temp */
  'vcard/changed': (user: string, card: Element) => HookResult;
  /**
   * XEP-0163: a user's client published (`payload`) or retracted (no payload) item `id` of
   * its own PEP node (not the server on its behalf): bridges to older protocols follow.
   */
  'pep/changed': (user: string, node: string, id: string, payload: Element | undefined) => HookResult;
  /**
   * A user's presence subscription changed (RFC 6121 §3): `contact` (a bare JID) may now
   * see `user`'s presence (`from`: true) or no longer may. After the roster is stored.
   */
  'roster/subscriber': (user: string, contact: string, subscribed: boolean) => HookResult;
  /** a message was handed to these local sessions of its recipient */
  'message/delivered': (ev: StanzaEvent, targets: SessionRecord[]) => HookResult;
  /**
   * any stanza to a local user's JID, before routing by kind (privacy lists, blocking); true = handled.
   * Fails closed: a throwing handler gets the stanza refused (internal-server-error, wait).
   */
  'route/user': (ev: StanzaEvent) => HookResult;
  /** does `owner` (a local username) block `other`? true = blocked. Fails closed: a throwing handler means blocked. */
  'privacy/blocks': (owner: string, other: Jid) => HookResult;
  /**
   * XEP-0191: a local user blocked `jid` (stored and pushed); `item` is the <item/> of
   * their request as sent, so what rides in it (a XEP-0377 report) reaches whoever
   * listens. The block IQ is answered after these handlers.
   */
  'blocking/blocked': (ev: { user: string; jid: string; item: Element; origin?: SessionRecord }) => HookResult;
  /**
   * A top-level element of a client stream that is neither a stanza nor part of
   * the negotiation (SASL, binding, STARTTLS), once authenticated: XEP-0198's
   * <enable/>, <r/>, ..., XEP-0352's <active/>. true = handled; unclaimed ones
   * close the stream (unsupported-stanza-type). Register with `ctx.nonza`.
   */
  'stream/nonza': (el: Element, stream: NonzaStream) => HookResult;
}

// ---- stream-level elements (nonzas): ./stream.ts ----

export type { AckState, HoldPolicy, InlineAnswer, InlineHandlers, NonzaHandler, NonzaStream, StreamSession, UnackedStanza } from './stream.js';
/** Receives the stanzas routed to a service domain. */
export type ServiceHandler = (stanza: Element, from: Jid, to: Jid) => void | Promise<void>;

/**
 * A service whose entities (rooms: `room@service`) each live on one node of a cluster:
 * stanzas to an entity go to the node that owns it (the first to claim it), stanzas to
 * the service itself are handled where they arrive. `acquired` runs when this node
 * becomes an entity's owner, before its first stanza (load its stored state afresh).
 */
export interface ServicePlacement {
  /**
   * This node serves entity `local` now. `state` is the snapshot the node that served it
   * before left (see `changed`), if any: newer than what storage holds.
   */
  acquired(local: string, state?: string): Promise<void>;
  /** a stanza that entered here went to the entity's owner on another node */
  forwarded?(stanza: Element, from: Jid, to: Jid): void;
  /**
   * Entities served here whose state changed since the last call, each with a snapshot
   * of it (undefined: the entity is gone). The cluster keeps the latest in Redis, for
   * the node that serves the entity next (after a crash, or a drain).
   */
  changed?(): [local: string, state: string | undefined][];
  /** A drain hands `local` to another node: its snapshot now, and it is forgotten here (no goodbye). */
  release?(local: string): string | undefined;
  /** Another node serves `local` now (this node lost its lease: fencing): forget it here, no goodbye. */
  dropped?(local: string): void;
  /**
   * What a directory of the service lists of `local` (served here, just changed), or
   * undefined when it is not listed; kept in Redis with its snapshot, for every node.
   */
  listing?(local: string): string | undefined;
  /** The cluster gives the service every node's listings (see `listing`); never called on one node. */
  attach?(cluster: { listings(): Promise<Map<string, string>> }): void;
}

export type IqTarget = 'host' | 'bare' | 'full';

export interface IqRequest {
  stanza: Element;
  type: 'get' | 'set';
  /** the first child element */
  payload: Element;
  from: Jid;
  to: Jid;
  /** IQ from a user to their own account (no 'to' or own bare JID) */
  self: boolean;
  origin?: SessionRecord;
}

/** Return the result payload (or nothing for an empty result); throw StanzaError for errors. */
export type IqHandler = (req: IqRequest) => Element | void | Promise<Element | void>;

/** What a stream feature's condition sees of the stream it would be offered on. */
export interface FeatureContext {
  secure: boolean;
  /** stream management was already enabled inline (XEP-0386 Bind 2): <sm/> is not offered again */
  smEnabled?: boolean;
}

export interface PreAuthIqRequest {
  stanza: Element;
  type: 'get' | 'set';
  payload: Element;
  remoteAddress: string;
  secure: boolean;
  /** the connection it came on (unique while it is open): what one IQ grants a later one on the same stream */
  stream: string;
}

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/** What disco#info / disco#items answer for a node of the server (XEP-0030 §3.2, §4.2). */
export interface DiscoNodeInfo {
  identities?: DiscoIdentity[];
  features?: string[];
  /** XEP-0128 forms (a pubsub node's meta-data) */
  forms?: Element[];
  items?: { jid: string; node?: string; name?: string }[];
}

/** Resolves the nodes a module serves; undefined = not mine. */
export type DiscoNodeResolver = (node: string, from: Jid) => DiscoNodeInfo | undefined | Promise<DiscoNodeInfo | undefined>;

export interface Disco {
  features(scope: 'host' | 'bare'): string[];
  identities(scope: 'host' | 'bare'): DiscoIdentity[];
  items(): { jid: string; name?: string }[];
  forms(scope: 'host' | 'bare'): Element[];
  /** a node of the server (ad-hoc commands and the like); undefined when nobody serves it */
  node(node: string, from: Jid): Promise<DiscoNodeInfo | undefined>;
  /** disco#items of a user's account for `from` (see `discoAccountItems`) */
  accountItems(owner: string, from: Jid): Promise<{ jid: string; node?: string; name?: string }[]>;
  /** disco#info of a node of a user's account, for `from` (see `discoAccountItems`); undefined: no such node */
  accountNode(owner: string, node: string, from: Jid): Promise<DiscoNodeInfo | undefined>;
}

// ---- ad-hoc commands (XEP-0050): ./adhoc.ts ----

export type { AdhocCommand, AdhocNote, CommandRequest, CommandResult, CommandStage, Commands, SubmittedFormApi } from './adhoc.js';

// ---- operating the server (admin commands, status) ----

export interface ServerStats {
  node: string;
  version: string;
  uptimeSeconds: number;
  sessions: number;
  /** sessions waiting for resumption (XEP-0198) */
  detachedSessions: number;
  connections: number;
  components: string[];
  /** stanzas received per second over the last 10 s */
  stanzasInPerSecond: number;
  stanzasOutPerSecond: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** event-loop delay, ms: mean and p99 since the last reading */
  eventLoopLagMs: { mean: number; p99: number };
  storage: { kind: string; latencyMs: number | null };
  registry: { kind: string; latencyMs: number | null };
  /** module-contributed figures (rooms, occupants, ...) */
  extra: Record<string, number>;
  /** every live node of the cluster, this one included (absent without Redis) */
  cluster?: ClusterNodeStats[];
}

/** A node of the cluster as its last heartbeat said. */
export interface ClusterNodeStats {
  name: string;
  host: string;
  pid: number;
  sessions: number;
  connections: number;
  stanzasInPerSecond: number;
  stanzasOutPerSecond: number;
  eventLoopLagMs: { mean: number; p99: number };
  /** ms since its last heartbeat */
  heartbeatAgeMs: number;
}

export interface ReloadReport {
  applied: string[];
  needsRestart: string[];
  modulesLoaded: string[];
  modulesUnloaded: string[];
  modulesReloaded: string[];
  errors: string[];
}

export interface AdminApi {
  stats(): Promise<ServerStats>;
  /** re-read the configuration file and environment, apply what can change live */
  reload(): Promise<ReloadReport>;
  /** settings that can change live, with their current values (dotted paths) */
  liveSettings(): { path: string; value: unknown }[];
  /** change one live setting until the next reload or restart; throws Error with the reason */
  setLive(path: string, raw: string): Promise<ReloadReport>;
  /** admins from the configuration and accounts flagged as admin (bare JIDs) */
  admins(): string[];
  /** flag or unflag a local account as admin */
  setAdmin(bare: string, admin: boolean): Promise<boolean>;
  /** stop the server as SIGTERM would (the process exits when run by `uzzap start`) */
  shutdown(): void;
  /** when a local user last logged in (ms since the epoch) */
  lastLogin(username: string): Promise<number | undefined>;
  /** figures a module adds to the statistics (read when stats are asked for) */
  statistic(name: string, read: () => number): void;
}

export type FederationList = 'blacklist' | 'whitelist';

/**
 * Who the server federates with, as admins edit it (XEP-0133 Edit Blacklist / Edit
 * Whitelist): remote domains, each covering its subdomains. What admins store applies
 * together with the configuration's lists (s2s.blacklist / s2s.whitelist).
 */
export interface FederationApi {
  /** the domains admins stored in a list, sorted */
  stored(list: FederationList): string[];
  /** the configuration's domains of a list (s2s.blacklist / s2s.whitelist): not changed by `setStored` */
  configured(list: FederationList): readonly string[];
  /** replace what admins stored in a list (kept over restarts; every node of a cluster follows) */
  setStored(list: FederationList, domains: readonly string[]): Promise<void>;
}

export interface ModuleMetrics {
  /** a gauge read at scrape time; names get the uzzap_ prefix */
  gauge(name: string, help: string, read: () => number): void;
  counter(name: string, help: string): { inc(n?: number): void };
  /** a counter by labels; keep their values few (reasons, kinds: never JIDs) */
  labelledCounter<L extends string>(name: string, help: string, labels: readonly L[]): { inc(values: Record<L, string>, n?: number): void };
  histogram(name: string, help: string, buckets: number[]): { observe(v: number): void };
}

/** Serves requests under a path prefix of the HTTP listener (`path` without the query). */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void | Promise<void>;

export interface ServerInfo {
  readonly name: string;
  readonly version: string;
  readonly startedAt: number;
  /**
   * Where clients reach this server's HTTP listener: `https://<domain>:<https port>` when
   * HTTPS is on, else `http://<domain>:<http port>` (no trailing slash).
   */
  webBase(): string;
  /** the server's data directory (UZZAP_DATA_DIR): where modules keep files */
  readonly dataDir: string;
  isAdmin(jid: Jid): boolean;
  /** UZZAP_REGISTRATION=open (live setting) */
  registrationOpen(): boolean;
}

/** Account management with the server's hooks (deletion cleans up everywhere). */
export interface AccountsApi {
  /** throws AccountExistsError; AccountInputError for a bad password */
  create(username: string, password: string): Promise<void>;
  setPassword(username: string, password: string): Promise<boolean>;
  delete(username: string): Promise<boolean>;
}

export interface ModuleContext<C = unknown> {
  readonly host: string;
  readonly config: Readonly<C>;
  readonly log: Logger;
  readonly storage: Storage;
  readonly server: ServerInfo;
  readonly accounts: AccountsApi;
  readonly disco: Disco;
  /** advertise a disco#info feature */
  feature(ns: string, scope?: 'host' | 'bare'): void;
  identity(category: string, type: string, name?: string, scope?: 'host' | 'bare'): void;
  /** an XEP-0128 extended info form on the server's disco#info */
  discoForm(form: Element, scope?: 'host' | 'bare'): void;
  /**
   * A stream feature, in `order`: after authentication (default; e.g. roster
   * versioning) or before it (e.g. in-band registration), offered while `when` holds.
   */
  streamFeature(xml: string, order?: number, phase?: 'pre-auth' | 'post-auth', when?: (s: FeatureContext) => boolean): void;
  /**
   * Handle the client stream's top-level elements in namespace `ns` (after
   * authentication): stream management, client state. Unloading the module
   * makes them unknown again (unsupported-stanza-type), not merely unadvertised.
   */
  nonza(ns: string, handle: NonzaHandler): void;
  /** Take part in SASL2/Bind 2 requests with the elements of namespace `ns` (XEP-0388, XEP-0386). */
  inline(ns: string, handlers: InlineHandlers): void;
  /** Handle an IQ sent before authentication (XEP-0077 registration). */
  preAuthIq(ns: string, handle: (req: PreAuthIqRequest) => Element | void | Promise<Element | void>): void;
  discoItem(jid: string, name?: string): void;
  iq(match: { type: 'get' | 'set'; ns: string; name: string; to: IqTarget[] }, handle: IqHandler): void;
  hook<E extends keyof Hooks>(event: E, fn: Hooks[E], priority?: number): void;
  /** Route a stanza from the server (its 'from' must be set). */
  send(stanza: Element): void;
  /** Where users' sessions are; their flags; ending one. */
  readonly sessions: SessionDirectory;
  /**
   * A cache of this module's changed for `key` (a user's roster, a blocklist): the
   * other nodes of a cluster drop theirs. Call it after the write is stored. No-op on one node.
   */
  invalidate(topic: string, key: string): void;
  /** Drop a cached `key` when another node changed it (undone at unload). */
  onInvalidate(topic: string, drop: (key: string) => void): void;
  /**
   * Deliver one stanza to these sessions of one user as it is (its 'to' is not
   * changed), serialised once, past the routing hooks: the module has decided.
   */
  deliver(stanza: Element, targets: readonly SessionRecord[], meta?: DeliveryMeta): void;
  /**
   * Send one stanza to many full JIDs that differ only in 'to' (MUC fan-out):
   * serialised once, each copy gets its own 'to'. Local sessions are written
   * directly (blocking rules apply); other addresses are routed.
   */
  fanout(stanza: Element, targets: readonly Jid[]): void;
  /**
   * Serve a whole domain (a MUC service, a component): every stanza addressed
   * to it or a subdomain comes to `handle`, with 'from' already validated.
   */
  service(domain: string, handle: ServiceHandler, placement?: ServicePlacement): void;
  /** Serve nodes of the server's disco#info/#items (resolver returns undefined for others' nodes). */
  discoNode(resolve: DiscoNodeResolver): void;
  /** An ad-hoc command at the server's JID (XEP-0050). */
  command<S extends object>(cmd: AdhocCommand<S>): void;
  readonly commands: Commands;
  /** operating the server: statistics, reload, live settings, sessions, admins */
  readonly admin: AdminApi;
  /** the federation (s2s) lists admins edit */
  readonly federation: FederationApi;
  readonly metrics: ModuleMetrics;
  /** Ask the 'privacy/blocks' hooks whether owner blocks other. */
  blocks(owner: string, other: Jid): boolean | Promise<boolean>;
  /**
   * Send an IQ get/set from the server (its 'from' is set to the server's JID, its id
   * replaced) and wait for the answer: resolves with the result, rejects with the
   * StanzaError of an error reply, or an Error after 10 s without one.
   */
  request(iq: Element): Promise<Element>;
  /** Run a hook's handlers, for the events a module owns ('caps/known', 'roster/subscriber'); true = claimed. */
  run<E extends keyof Hooks>(event: E, ...args: Parameters<Hooks[E]>): boolean | Promise<boolean>;
  /** Offer an API to other modules under `name` (withdrawn when this module unloads). */
  provide<K extends keyof Provided>(name: K, api: Provided[K]): void;
  /** Another module's API, if that module is loaded now (ask at use, not at setup: modules reload). */
  use<K extends keyof Provided>(name: K): Provided[K] | undefined;
  /** Serve HTTP requests whose path starts with `prefix` (e.g. '/upload/') on the HTTP port(s). */
  http(prefix: string, handle: HttpHandler): void;
  /**
   * Items of a user's account in disco#items without a node (PEP nodes, XEP-0163 §6.1),
   * and, with `node`, what disco#info says of one of them (XEP-0060 §5.3).
   */
  discoAccountItems(list: AccountItemsResolver, node?: (owner: string, node: string, from: Jid) => Promise<DiscoNodeInfo | undefined>): void;
  onClose(fn: () => void | Promise<void>): void;
}

/** What disco#items on `owner`'s bare JID lists for `from` (their own nodes, or what they may see). */
export type AccountItemsResolver = (owner: string, from: Jid) => Promise<{ jid: string; node?: string; name?: string }[]>;

/** The APIs modules offer each other (`ctx.provide` / `ctx.use`), by name. */
export interface Provided {
  /** RFC 6121 rosters, as the core IM module keeps them (cached for online users) */
  roster: RosterView;
  /** XEP-0115: what each resource's client supports */
  caps: CapsView;
  /** XEP-0163: users' PEP nodes, for modules that bridge older protocols (XEP-0048, XEP-0398) */
  pep: PepApi;
  /** XEP-0402 bookmarks as XEP-0048 storage, for private XML storage (XEP-0049) */
  bookmarks: LegacyBookmarks;
  /** XEP-0398 avatars as vCard photos, for vcard-temp (XEP-0054) */
  avatars: AvatarPhotos;
  /** XEP-0445 invitations, for in-band registration (XEP-0077) */
  invites: InviteGrants;
}

/** What a pre-authenticated registration may do (xeps/0401-invites), by the stream its token came on. */
export interface InviteGrants {
  /** a valid token was given on this stream: the username it is bound to ('' for any) */
  granted(stream: string): { username: string } | undefined;
  /** an open invitation names this username: only its invitee may register it */
  reserved(username: string): Promise<boolean>;
  /** take one use of the stream's invitation before the account is made; false: none left */
  take(stream: string): Promise<boolean>;
  /** the account could not be made after all: the use taken goes back */
  giveBack(stream: string): Promise<void>;
  /** the account was made with it: befriend the inviter (contact invitations), make an admin (admin ones) */
  redeemed(stream: string, username: string): Promise<void>;
}

/** A user's bookmarks in the XEP-0048 format (<storage xmlns='storage:bookmarks'/>), kept as XEP-0402 PEP items. */
export interface LegacyBookmarks {
  get(user: string): Promise<Element>;
  set(user: string, storage: Element): Promise<void>;
}

export interface RosterView {
  /** bare JIDs subscribed to `user`'s presence (subscription 'from' or 'both') */
  subscribers(user: string): Promise<string[]>;
  /** bare JIDs whose presence `user` is subscribed to ('to' or 'both') */
  subscriptions(user: string): Promise<string[]>;
  item(user: string, jid: string): Promise<import('../storage/types.js').RosterItem | undefined>;
  /** make `user`'s subscription with `jid` mutual ('both'), with a roster push (XEP-0379/0401 invitations) */
  befriend(user: string, jid: string): Promise<void>;
}

export interface CapsView {
  /**
   * The features the client of `session` announced with XEP-0115 (from its presence),
   * once verified; undefined while unknown (not announced, being asked, or did not verify).
   */
  features(session: SessionRecord): ReadonlySet<string> | undefined;
  /**
   * Make `features` know the sessions of other nodes of a cluster whose caps another node
   * learned; undefined when there is nothing to read (no promise on the common path).
   */
  prefetch(sessions: readonly SessionRecord[]): Promise<void> | undefined;
  /**
   * The available resources of `bare`, a contact on another server, whose caps (from their
   * presence to local users) are known and verified, as this node saw them.
   */
  remote(bare: string): readonly RemoteCapsResource[];
}

/** A resource of another server and the features its client announced (XEP-0115). */
export interface RemoteCapsResource {
  jid: Jid;
  features: ReadonlySet<string>;
}

export interface PepItem {
  id: string;
  payload: Element;
}

export interface PepApi {
  /** Publish `payload` as item `id` of `owner`'s `node` on the owner's behalf (created with `config` when missing). */
  publish(owner: string, node: string, id: string, payload: Element, config?: Record<string, string | number | boolean>): Promise<void>;
  retract(owner: string, node: string, id: string): Promise<boolean>;
  /** The node's items, newest first (none when the node does not exist). */
  items(owner: string, node: string): Promise<PepItem[]>;
  /** The node's items as `requester` may read them (XEP-0060 access model), or undefined when it may not. */
  readable(owner: string, node: string, requester: Jid): Promise<PepItem[] | undefined>;
}

/** XEP-0398: a user's PEP avatar as a vCard PHOTO, for one who may see it. */
export interface AvatarPhotos {
  photo(owner: string, requester: Jid): Promise<{ type: string; data: string } | undefined>;
}
