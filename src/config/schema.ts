// Configuration: one typed object, defaulted and validated at start.
// Every leaf of DEFAULTS can be set in uzzap.yaml (same nesting) or by the
// environment variable UZZAP_<PATH_IN_CAPS> (e.g. c2s.tls_port ->
// UZZAP_C2S_TLS_PORT). docs/configuration.md documents each one; a test checks
// that every leaf is documented.
import { z } from 'zod';

export const DEFAULTS = {
  domain: 'localhost',
  c2s: {
    port: 5222,
    tls_port: 5223,
    require_tls: true,
    /** seconds a connection may stay unauthenticated */
    preauth_timeout: 30,
  },
  http: {
    port: 5280,
    /** also serve HTTPS (and wss://) with the server certificate on tls_port */
    tls: false,
    tls_port: 5281,
    /** treat plain-HTTP WebSocket/BOSH connections as encrypted (a TLS-terminating proxy in front) */
    behind_tls_proxy: false,
    /** bearer token for GET /status (`uzzap status`); empty: /status answers loopback clients only */
    status_token: '',
  },
  /** BOSH (XEP-0124/0206) at /http-bind on the HTTP port(s) */
  bosh: { max_wait: 60, inactivity: 60, max_pause: 120, requests: 2, max_sessions: 10000, max_per_address: 100 },
  /** XEP-0114 external components (bridges, bots); the port listens only when a secret is set */
  component: {
    port: 5347,
    /** shared secret for every component domain without a secret of its own */
    secret: '',
    /** domains allowed to connect; empty: any subdomain of the server's domain */
    allowed: [] as string[],
    /** per-component secrets, domain: secret (env: "irc.example.com=s1,sms.example.com=s2") */
    secrets: {} as Record<string, string>,
    /** bytes queued towards one component before it counts as a slow consumer and is disconnected */
    outbound_buffer: 16777216,
    /** IQs forwarded to a component awaiting its answer; answered with an error when it goes away */
    max_pending_iqs: 10000,
    /** seconds a component has to answer an IQ before the sender gets remote-server-timeout */
    iq_timeout: 60,
  },
  /**
   * traffic shaping per session, applied by pausing reads (TCP backpressure); 0 = unlimited.
   * Clients: 1 MiB/s, far above what a person's client sends (a chat bench client at
   * 100 msgs/s sends ~20 KB/s) and far below what one flooding socket can push (9 MB/s
   * measured), so a flood is taken at the pace of the others; Debian's Prosody ships
   * 10 kB/s and ejabberd 3,000 B/s.
   */
  rate_limits: {
    c2s: { stanzas: 0, bytes: 1_048_576 },
    component: { stanzas: 0, bytes: 0 },
    /** each incoming server-to-server stream (overrides and exemptions by remote domain): one stream carries a whole server's users */
    s2s: { stanzas: 0, bytes: 16_777_216 },
    /** seconds of traffic at the limit a session may send in one burst */
    burst: 2,
    /** bare JIDs, component domains and remote server domains that are never limited */
    exempt: [] as string[],
    /** per account, component or remote server domain: { 'bot@example.com': { stanzas: 1000, bytes: 0 } } (uzzap.yaml only) */
    overrides: {} as Record<string, { stanzas: number; bytes: number }>,
  },
  bind_address: '',
  data_dir: './data',
  postgres_url: '',
  /** Postgres servers the message archive is sharded over, by owner (empty: the main database) */
  postgres_archive_urls: [] as string[],
  redis_url: '',
  /** this node's name in a cluster (default: host name and c2s port, stable across restarts) */
  node_name: '',
  /** worker processes sharing this machine's ports (a cluster on one host; needs redis_url); "auto": one per CPU */
  workers: '1',
  cluster: {
    /** ms between a node's heartbeats */
    heartbeat_ms: 2000,
    /** ms without a heartbeat after which a node counts as dead (its sessions leave every mirror) */
    dead_after_ms: 8000,
    /** entries an inbox stream (and the events stream) is trimmed to */
    inbox_max: 100_000,
    /** envelopes waiting for Redis on this node; past it messages go to offline storage */
    outbox_max: 100_000,
    /** keep a copy of every resumable session (XEP-0198 queue) in Redis, so it can resume on another node after this one dies */
    sm_copy: true,
  },
  /** federation (server-to-server, RFC 6120, XEP-0220 dialback) */
  s2s: {
    /** the port other servers connect to (0: no incoming federation) */
    port: 5269,
    /** domain: host[:port] used in place of DNS, xmpps://host[:port] for direct TLS (env: "example.org=10.0.0.5:5269,chat.example.net=xmpps://host:5270") */
    hosts: {} as Record<string, string>,
    /** peers must present certificates that verify (system CAs, RFC 6125 names); false: dialback alone authenticates them */
    require_valid_certs: true,
    /** the dialback secret; empty: the cluster's, made once in Redis (or this process's own without Redis) */
    dialback_secret: '',
    /** stanzas one remote domain's stream may hold while it is being made; more are bounced */
    queue_max: 1000,
    /** seconds to connect to a remote server */
    connect_timeout: 10,
    /** seconds an unused outgoing stream stays open */
    idle_timeout: 600,
    /** bytes queued towards one remote server before its stream counts as stuck and is closed (what waits is bounced) */
    outbound_buffer: 16_777_216,
    /** outgoing streams at once (one per remote domain); a stanza for one more domain is bounced */
    max_streams: 10_000,
    /** the port for direct TLS from other servers (XEP-0368, `_xmpps-server`; 0: none) */
    tls_port: 5270,
    /** CA certificates (PEM file) trusted for peers besides the system's; empty: the system's alone */
    ca_file: '',
    /** offer and use SASL EXTERNAL (XEP-0178) when the peer's certificate verifies; dialback otherwise */
    sasl_external: true,
    /** the largest stanza a remote server may send (bytes); larger ends its stream (policy-violation) */
    max_stanza_size: 262_144,
    /** refuse messages from remote users who are not in the recipient's roster (with a subscription either way) */
    refuse_strangers: false,
    /** remote domains never talked to (XEP-0133 "Edit Blacklist" adds to what the server stores) */
    blacklist: [] as string[],
    /** when not empty, the only remote domains talked to (XEP-0133 "Edit Whitelist" adds to what the server stores) */
    whitelist: [] as string[],
    /** remote domains with their own label in the per-domain metrics; the rest are counted under "other" */
    metrics_domains: 100,
  },
  admins: [] as string[],
  registration: 'closed' as 'open' | 'closed',
  sm: {
    /** seconds a session whose connection dropped is kept for resumption */
    resume_timeout: 300,
    /** unacknowledged stanzas kept per session; more closes the stream */
    max_queue: 1000,
    /** the server asks for an ack after this many stanzas */
    ack_every: 10,
    /** ... or when stanzas have waited this many seconds unacknowledged */
    ack_interval: 5,
  },
  csi: {
    /** presences/chat states held for an inactive client before they are sent anyway */
    max_held: 1000,
  },
  ping_interval: 60,
  /** seconds a client has to answer a liveness check */
  ping_timeout: 30,
  max_stanza_size: 262144,
  log_level: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
  tls: { cert: '', key: '' },
  sasl: {
    scram_iterations: 4096,
    /** XEP-0484 FAST: seconds a token lives (a login with it past half its life gets a new one) */
    fast_ttl: 1_209_600,
    /** FAST: clients (devices) per account holding tokens; a new one beyond this ends the longest unused */
    fast_max_clients: 16,
    /** key FAST tokens are derived from; empty: a key file in data_dir (a cluster on several machines sets the same key on every node) */
    token_key: '',
  },
  auth: {
    /** first delay (ms) added to a failed authentication from one address */
    failure_delay: 250,
    /** cap (ms) of the doubling delay */
    failure_delay_max: 5000,
    /** seconds after which an address's failure count is forgotten */
    failure_window: 300,
  },
  limits: {
    /** bytes queued towards one client before it counts as a slow consumer */
    outbound_buffer: 1048576,
    /** stanzas from one client waiting on asynchronous work before reading pauses */
    inbound_queue: 64,
    /** max resources per account; the oldest is not replaced, the new bind fails */
    max_resources: 32,
  },
  storage: {
    /** SQLite busy timeout (ms) so CLI writes wait for the running server */
    sqlite_busy_timeout: 5000,
    postgres_pool: 10,
    /** MB of page cache for SQLite's archive writer (the newest index pages of every active archive) */
    sqlite_archive_cache_mb: 8,
    /** MB of SQLite write-ahead log after which the archive writer checkpoints it (off the event loop) */
    sqlite_checkpoint_mb: 64,
    /** ms between the archive writer's folds of the day counts' changes (SQLite; what a `with` query also reads) */
    sqlite_archive_fold_ms: 5000,
    /** message archive: rows per written batch */
    archive_batch_rows: 10_000,
    /** message archive: ms a row waits at most for its batch (what a crash can lose) */
    archive_batch_ms: 250,
    /** message archive: queued rows above which senders wait for the writer (backpressure; nothing is dropped) */
    archive_queue_rows: 30_000,
    /** message archive: rows one sender may have queued before that sender alone waits */
    archive_source_rows: 1_000,
  },
  modules: { disabled: [] as string[] },
};

export type Config = typeof DEFAULTS;

const port = z.number().int().min(0).max(65535);
const positive = z.number().int().positive();
const bareJid = z.string().regex(/^[^@/\s]+@[^@/\s]+$/, 'must be a bare JID (user@domain)');
const domainName = z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a lowercase domain name');
const rate = z.strictObject({ stanzas: z.number().min(0), bytes: z.number().min(0) });
const url = (schemes: string[]) =>
  z.string().refine((s) => s === '' || schemes.some((p) => s.startsWith(p + '://')), `must be a ${schemes.join('/')}:// URL`);

export const ConfigSchema = z.strictObject({
  domain: z.string().min(1),
  c2s: z.strictObject({ port, tls_port: port, require_tls: z.boolean(), preauth_timeout: positive }),
  http: z.strictObject({ port, tls: z.boolean(), tls_port: port, behind_tls_proxy: z.boolean(), status_token: z.string() }),
  bosh: z.strictObject({
    max_wait: positive,
    inactivity: positive,
    max_pause: positive,
    requests: z.number().int().min(2).max(10),
    max_sessions: positive,
    max_per_address: positive,
  }),
  component: z.strictObject({
    port,
    secret: z.string(),
    allowed: z.array(domainName),
    secrets: z.record(domainName, z.string().min(1)),
    outbound_buffer: positive,
    max_pending_iqs: positive,
    iq_timeout: positive,
  }),
  rate_limits: z.strictObject({
    c2s: rate,
    component: rate,
    s2s: rate,
    burst: z.number().positive(),
    exempt: z.array(z.string().min(1)),
    overrides: z.record(z.string().min(1), rate),
  }),
  bind_address: z.string(),
  data_dir: z.string().min(1),
  postgres_url: url(['postgres', 'postgresql']),
  postgres_archive_urls: z.array(url(['postgres', 'postgresql']).refine((s) => s !== '', 'must not be empty')),
  redis_url: url(['redis', 'rediss']),
  node_name: z.string().regex(/^[A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only'),
  workers: z.string().regex(/^(auto|[1-9][0-9]*)$/, 'a number of workers, or "auto"'),
  cluster: z.strictObject({
    heartbeat_ms: positive,
    dead_after_ms: positive,
    inbox_max: positive,
    outbox_max: positive,
    sm_copy: z.boolean(),
  }),
  s2s: z.strictObject({
    port,
    hosts: z.record(
      domainName,
      z
        .string()
        .regex(/^(xmpps:\/\/)?(\[[^\]]+\]|[^:\s/]+)(:\d{1,5})?$/, 'must be host, host:port or xmpps://host:port (direct TLS)')
        .refine(
          (v) => !/:(\d+)$/.test(v) || (Number(/:(\d+)$/.exec(v)![1]) >= 1 && Number(/:(\d+)$/.exec(v)![1]) <= 65535),
          'port 1-65535',
        ),
    ),
    require_valid_certs: z.boolean(),
    dialback_secret: z.string(),
    queue_max: positive,
    connect_timeout: positive,
    idle_timeout: positive,
    outbound_buffer: positive,
    max_streams: positive,
    tls_port: port,
    ca_file: z.string(),
    sasl_external: z.boolean(),
    max_stanza_size: z.number().int().min(1024),
    refuse_strangers: z.boolean(),
    blacklist: z.array(domainName),
    whitelist: z.array(domainName),
    metrics_domains: z.number().int().min(0),
  }),
  admins: z.array(bareJid),
  registration: z.enum(['open', 'closed']),
  sm: z.strictObject({ resume_timeout: z.number().int().min(0), max_queue: positive, ack_every: positive, ack_interval: positive }),
  csi: z.strictObject({ max_held: positive }),
  ping_interval: positive,
  ping_timeout: positive,
  max_stanza_size: z.number().int().min(1024),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  tls: z.strictObject({ cert: z.string(), key: z.string() }),
  sasl: z.strictObject({
    scram_iterations: z.number().int().min(1).max(1_000_000),
    fast_ttl: positive,
    fast_max_clients: positive,
    token_key: z.string(),
  }),
  auth: z.strictObject({
    failure_delay: z.number().int().min(0),
    failure_delay_max: z.number().int().min(0),
    failure_window: positive,
  }),
  limits: z.strictObject({ outbound_buffer: positive, inbound_queue: positive, max_resources: positive }),
  storage: z.strictObject({
    sqlite_busy_timeout: z.number().int().min(0),
    postgres_pool: positive,
    sqlite_archive_cache_mb: positive,
    sqlite_checkpoint_mb: positive,
    sqlite_archive_fold_ms: positive,
    archive_batch_rows: positive,
    archive_batch_ms: positive,
    archive_queue_rows: positive,
    archive_source_rows: positive,
  }),
  // per-module settings live beside 'disabled' under their module's name; each module validates its own
  modules: z.looseObject({ disabled: z.array(z.string()) }),
});

/** Settings that a reload applies to the running server; the rest need a restart. */
export const LIVE_KEYS = [
  'log_level',
  's2s.refuse_strangers',
  's2s.blacklist',
  's2s.whitelist',
  'admins',
  'registration',
  'limits',
  'auth',
  'max_stanza_size',
  'ping_interval',
  'ping_timeout',
  'sasl',
  'sm',
  'csi',
  'bosh',
  'rate_limits',
  'http.status_token',
  'component.secret',
  'component.allowed',
  'component.secrets',
  'component.outbound_buffer',
  'component.max_pending_iqs',
  'component.iq_timeout',
];
