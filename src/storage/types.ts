// Storage interfaces. Modules ask for a store by kind; they never see a driver.
// One SQL implementation (src/storage/sql/) runs on SQLite and on Postgres.

/** SCRAM credentials for one hash (RFC 5802 §3): never the password itself. */
export interface ScramCredential {
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

export interface StoredCredentials {
  'SHA-1': ScramCredential;
  'SHA-256': ScramCredential;
}

export interface Account {
  username: string;
  credentials: StoredCredentials;
  createdAt: number;
  disabled: boolean;
  /** a server administrator (besides those in the configuration's admins) */
  admin: boolean;
  /** ms since the epoch of the last successful login, if any */
  lastLogin?: number;
}

export class AccountExistsError extends Error {
  constructor(readonly username: string) {
    super(`account ${username} already exists`);
    this.name = 'AccountExistsError';
  }
}

export interface AccountStore {
  /** Throws AccountExistsError if the username is taken. */
  create(username: string, credentials: StoredCredentials): Promise<void>;
  /** Creates many in one transaction; returns the usernames that already existed (skipped). */
  createMany(accounts: { username: string; credentials: StoredCredentials }[]): Promise<string[]>;
  get(username: string): Promise<Account | undefined>;
  setCredentials(username: string, credentials: StoredCredentials): Promise<boolean>;
  setDisabled(username: string, disabled: boolean): Promise<boolean>;
  /** Deletes the account row; per-user data of other stores goes through UserDataStore.deleteAll. */
  delete(username: string): Promise<boolean>;
  /** usernames in order; `disabled` restricts to (non-)disabled accounts */
  list(opts?: { after?: string; limit?: number; disabled?: boolean }): Promise<string[]>;
  count(opts?: { disabled?: boolean }): Promise<number>;
  setAdmin(username: string, admin: boolean): Promise<boolean>;
  /** usernames with the admin flag */
  admins(): Promise<string[]>;
  /** record login times, many at once (written in batches, not once per login) */
  recordLogins(logins: { username: string; at: number }[]): Promise<void>;
}

/** Small per-user XML documents keyed by (kind, key): vCard, private XML, ... */
export interface UserDataStore {
  get(username: string, kind: string, key: string): Promise<string | undefined>;
  set(username: string, kind: string, key: string, value: string): Promise<void>;
  remove(username: string, kind: string, key: string): Promise<boolean>;
  /** every (key, value) of one kind, ordered by key */
  list(username: string, kind: string): Promise<{ key: string; value: string }[]>;
  /** remove every entry of one kind; returns how many */
  clear(username: string, kind: string): Promise<number>;
  /** Everything a user stored, for account deletion. */
  deleteAll(username: string): Promise<number>;
}

export type Subscription = 'none' | 'to' | 'from' | 'both';

/** One contact in a user's roster (RFC 6121 §2.1.2). */
export interface RosterItem {
  /** bare JID of the contact */
  jid: string;
  name?: string;
  subscription: Subscription;
  /** pending outbound subscription request (ask='subscribe') */
  ask: boolean;
  /** subscription pre-approved by the user (RFC 6121 §3.4) */
  approved: boolean;
  groups: string[];
}

export interface RosterStore {
  /** the roster and its version (0 for a user who never had one) */
  get(username: string): Promise<{ version: number; items: RosterItem[] }>;
  getItem(username: string, jid: string): Promise<RosterItem | undefined>;
  /** insert or replace an item; returns the roster's new version */
  put(username: string, item: RosterItem): Promise<number>;
  /** returns the new version, or undefined if there was no such item */
  remove(username: string, jid: string): Promise<number | undefined>;
  count(username: string): Promise<number>;
  /** local users whose roster holds jid (account deletion tells them) */
  holders(jid: string): Promise<string[]>;
  /** inbound subscription requests not yet answered (RFC 6121 §3.1.3), redelivered at login */
  addPending(username: string, jid: string, stanza: string): Promise<void>;
  removePending(username: string, jid: string): Promise<boolean>;
  pending(username: string): Promise<{ jid: string; stanza: string }[]>;
  deleteAll(username: string): Promise<void>;
}

/** XEP-0160 offline messages, kept in arrival order. */
export interface OfflineStore {
  /** store unless the user already has `max`; false when full */
  push(username: string, stanza: string, max: number): Promise<boolean>;
  /** the oldest `limit` messages, in order */
  list(username: string, limit?: number): Promise<{ id: number; stanza: string }[]>;
  /** delete delivered messages */
  remove(username: string, ids: number[]): Promise<void>;
  count(username: string): Promise<number>;
  deleteAll(username: string): Promise<number>;
  /** users with at least one stored message (read once at start) */
  users(): Promise<string[]>;
}

/** A room's affiliation (XEP-0045 §5.2), kept for persistent rooms. */
export interface RoomAffiliation {
  /** bare JID (or a domain) */
  jid: string;
  affiliation: 'owner' | 'admin' | 'member' | 'outcast';
  /** registered nickname (XEP-0045 §7.10) */
  nick?: string;
  reason?: string;
}

export interface StoredRoom {
  /** the room's local part */
  name: string;
  /** the room's configuration, as the service serialises it (JSON) */
  config: string;
  /** the current subject (JSON), '' if none */
  subject: string;
  affiliations: RoomAffiliation[];
}

/** Persistent multi-user chat rooms (XEP-0045), per service domain. */
export interface RoomStore {
  /** every stored room of a service, with its affiliations (read at start) */
  all(service: string): Promise<StoredRoom[]>;
  /** insert or update a room's configuration and subject */
  save(service: string, name: string, config: string, subject: string): Promise<void>;
  /** set (or with affiliation 'none', remove) one affiliation */
  setAffiliation(service: string, name: string, a: RoomAffiliation | { jid: string; affiliation: 'none' }): Promise<void>;
  /** delete a room and its affiliations */
  remove(service: string, name: string): Promise<boolean>;
}

/** One archived message (XEP-0313): `id` is its archive UID (the XEP-0359 stanza-id). */
export interface ArchivedMessage {
  id: string;
  /** ms since the epoch, when it was archived */
  ts: number;
  /** bare JID of the other party (for a room archive: the occupant JID of the sender) */
  with: string;
  stanza: string;
}

export interface ArchiveRow extends ArchivedMessage {
  /** the archive's owner: a local user's bare JID or a room's bare JID */
  owner: string;
  /** full JID of the other party, when known */
  withFull?: string;
  /** who caused the row (the sender's full JID): its share of the queue is bounded (pressure) */
  source?: string;
}

export interface ArchiveQuery {
  owner: string;
  /** bare JID, or a full JID to match exactly */
  with?: string;
  start?: number;
  end?: number;
  /** exclusive bounds by archive UID (RSM after/before, MAM after-id/before-id) */
  after?: string;
  before?: string;
  /** only these UIDs */
  ids?: string[];
  max: number;
  /** the last page instead of the first (RSM <before/>) */
  fromEnd: boolean;
  /** count matches only up to this many (beyond it `count` is undefined): keeps a page's cost flat */
  countLimit?: number;
}

export class ArchiveIdNotFound extends Error {
  constructor(readonly id: string) {
    super(`no archived message ${id}`);
  }
}

/** XEP-0313 archives of users and rooms. Writes are batched in memory and flushed together. */
export interface ArchiveStore {
  /** load the deployment's id key (openStorage does it) */
  init(): Promise<void>;
  /**
   * A new archive id for a message of `owner`'s archive (the XEP-0359 stanza-id to stamp
   * before delivery): it carries the row's key and time (src/storage/sql/archive-ids.ts).
   */
  newId(owner: string, ts?: number): string;
  /**
   * In a cluster, this node's lane of sequence numbers (`lane` of `lanes`): nodes sharing
   * one database never allocate the same seq for one owner (archive-ids.ts).
   */
  useLane(lane: number, lanes: number): void;
  /**
   * queue a message for the archive (written with the next batch, within milliseconds);
   * an id not made by newId is kept as given, with `ts` as its time
   */
  add(row: ArchiveRow): void;
  /** write everything queued now */
  flush(): Promise<void>;
  /** rows waiting to be written */
  readonly queued: number;
  /**
   * When the database falls behind (many rows queued), a promise that settles
   * once the queue has drained: writers wait on it, so the load slows down
   * (TCP backpressure) instead of the queue growing or dropping rows.
   */
  pressure(source?: string): Promise<void> | undefined;
  /** a page in chronological order; `complete` when the page reached the end in its direction. Throws ArchiveIdNotFound. */
  query(q: ArchiveQuery): Promise<{ items: ArchivedMessage[]; complete: boolean; count: number | undefined }>;
  /** the oldest and newest message of an archive */
  bounds(owner: string): Promise<{ first?: ArchivedMessage; last?: ArchivedMessage }>;
  /**
   * Replace the stored stanza of one message by its archive id (XEP-0425: a moderated message
   * becomes its tombstone), whether it is written yet or still waits in the batch; false when
   * the archive of that owner holds no such message.
   */
  replace(owner: string, id: string, stanza: string): Promise<boolean>;
  /** delete messages older than a time (all archives, or one); returns how many */
  purge(before: number, owner?: string): Promise<number>;
  deleteAll(owner: string): Promise<number>;
}

/** A publish-subscribe node (XEP-0060) as stored: its settings as JSON, owned by the pubsub module. */
export interface StoredPubSubNode {
  node: string;
  /** node configuration (JSON) */
  config: string;
  /** affiliations other than the service owner's: bare JID -> affiliation (JSON) */
  affiliations: string;
  /** explicit subscriptions: JID -> state (JSON) */
  subscriptions: string;
  createdAt: number;
}

export interface StoredPubSubItem {
  node: string;
  id: string;
  /** the bare JID that published it */
  publisher: string;
  /** the item's payload element, serialised ('' for none) */
  payload: string;
  publishedAt: number;
}

/**
 * Publish-subscribe nodes and items of one service: for PEP, `service` is the owner's
 * bare JID. Items come newest first.
 */
export interface PubSubStore {
  nodes(service: string): Promise<StoredPubSubNode[]>;
  /** the newest item of each node of the service */
  lastItems(service: string): Promise<StoredPubSubItem[]>;
  /** create or replace a node's settings */
  saveNode(service: string, node: StoredPubSubNode): Promise<void>;
  /** delete a node and its items */
  deleteNode(service: string, node: string): Promise<boolean>;
  /** items by id (those that exist), or the `max` newest (all without it) */
  items(service: string, node: string, opts?: { ids?: string[]; max?: number }): Promise<StoredPubSubItem[]>;
  /** store an item as the node's newest (replacing one with its id), then keep only the `keep` newest */
  publish(service: string, item: StoredPubSubItem, keep: number): Promise<void>;
  retract(service: string, node: string, id: string): Promise<boolean>;
  purge(service: string, node: string): Promise<number>;
  /** every node and item of a service (an account deleted) */
  deleteAll(service: string): Promise<number>;
}

/** XEP-0115 verification strings whose answer verified, with what they stand for. */
export interface CapsStore {
  get(ver: string): Promise<string | undefined>;
  put(ver: string, info: string): Promise<void>;
}

/** An invitation (XEP-0401): who may register, or befriend its inviter, with its token. */
export interface StoredInvite {
  /** a hash of the token (the token is never stored) */
  id: string;
  /** 'account': registration; 'contact': befriend the inviter (and register, if `uses` allows) */
  kind: 'account' | 'contact';
  /** the inviting account ('' for an invitation from an administrator or the CLI) */
  inviter: string;
  /** the only username it registers ('' for any) */
  username: string;
  /** the registered account becomes a server administrator */
  admin: boolean;
  /** the token registers an account (a contact invitation without it only befriends an existing account) */
  register: boolean;
  /** uses left (registrations, or the one befriending) */
  uses: number;
  createdAt: number;
  expiresAt: number;
}

export interface InviteStore {
  create(invite: StoredInvite): Promise<void>;
  /** the invitation, if it has not expired */
  get(id: string, now?: number): Promise<StoredInvite | undefined>;
  /** take one use; false when none is left or it expired (atomic: two registrations cannot share the last use) */
  use(id: string, now?: number): Promise<boolean>;
  /** give back a use taken for nothing (the registration failed after all) */
  unuse(id: string): Promise<void>;
  /** an invitation still open names this username (it is kept for its invitee) */
  reserved(username: string, now?: number): Promise<boolean>;
  /** invitations of one inviter ('' for the administrators'), not expired */
  list(inviter: string, now?: number): Promise<StoredInvite[]>;
  delete(id: string): Promise<boolean>;
  /** remove used-up and expired invitations; returns how many */
  sweep(now?: number): Promise<number>;
  /** an account's invitations, for account deletion */
  deleteAll(inviter: string): Promise<number>;
}

export interface Storage {
  readonly invites: InviteStore;
  readonly kind: 'sqlite' | 'postgres';
  readonly pubsub: PubSubStore;
  readonly caps: CapsStore;
  readonly accounts: AccountStore;
  readonly userData: UserDataStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly rooms: RoomStore;
  readonly archive: ArchiveStore;
  /** ms of the last round-trip to the database (health/metrics) */
  ping(): Promise<number>;
  close(): Promise<void>;
}
