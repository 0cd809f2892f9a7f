// Real XMPP clients for tests: @xmpp/client over real sockets, plus helpers
// that read like a conversation (alice sends, bob receives).
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { client, xml, type Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { testCa } from './server.js';

export { xml };
export type XmppClient = Client & { received: Element[] };

export interface ConnectOptions {
  resource?: string;
  password?: string;
  mechanism?: 'PLAIN' | 'SCRAM-SHA-1';
  /** starttls (default) or direct TLS (XEP-0368) */
  transport?: 'starttls' | 'direct';
  /** send initial presence after login (default true) */
  presence?: boolean;
  /** the stream's xml:lang */
  lang?: string;
  /**
   * 2 (default, what @xmpp/client does when offered): SASL2 with Bind 2 (XEP-0388,
   * XEP-0386); 1: RFC 6120 SASL and resource binding (the SASL2 feature is hidden from the library)
   */
  sasl?: 1 | 2;
  /** the server's domain (default localhost) */
  domain?: string;
  /** the address the server listens on (default 127.0.0.1) */
  host?: string;
  /** the client's <user-agent id/> in SASL2 (default: none; with a credentials callback @xmpp/client sends only the one it is handed) */
  userAgent?: string;
}

export async function connect(server: Server, username: string, opts: ConnectOptions = {}): Promise<XmppClient> {
  const password = opts.password ?? 'secret';
  const host = opts.host ?? '127.0.0.1';
  const service = opts.transport === 'direct' ? `xmpps://${host}:${server.ports.c2sTls}` : `xmpp://${host}:${server.ports.c2s}`;
  const c = client({
    service,
    domain: opts.domain ?? 'localhost',
    resource: opts.resource,
    lang: opts.lang,
    // with a credentials callback, @xmpp/client sends the <user-agent/> it is handed here, and none otherwise
    credentials: (
      auth: (creds: { username: string; password: string }, mech: string, userAgent?: Element) => Promise<void>,
      mechanisms: string[],
    ) =>
      auth(
        { username, password },
        opts.mechanism ?? (mechanisms.includes('SCRAM-SHA-1') ? 'SCRAM-SHA-1' : mechanisms[0]!),
        opts.userAgent ? xml('user-agent', { id: opts.userAgent }) : undefined,
      ),
  }) as XmppClient;
  await trustTestCa(c);
  if (opts.sasl === 1) sasl1Only(c);
  // @xmpp/connection waits 2 s for each stream (re)open; a loaded CI machine doing
  // dozens of TLS handshakes at once can take longer (seen once, 100-occupant MUC test)
  (c as unknown as { timeout: number }).timeout = 10_000;
  c.received = [];
  c.on('stanza', (s: Element) => c.received.push(s));
  c.on('error', () => undefined);
  // no automatic reconnects in tests
  (c as unknown as { reconnect: { stop(): void } }).reconnect?.stop();
  // @xmpp/connection's open() listens for the server's header only after its own header's
  // write callback: a server in the same process can answer first (seen with direct TLS,
  // ~1 run in 3 of the suite), and start() then times out although the client went
  // online (the log shows it authenticated and bound). Online is what counts.
  const online = new Promise<void>((resolve) => c.once('online', () => resolve()));
  const started = c.start();
  started.catch(() => undefined);
  await Promise.race([started, online]);
  if (opts.presence !== false) {
    // RFC 6121 §4.2.2: the server sends the initial presence back to the resource that
    // sent it. Wait for that echo (leaving it in `received`) so that it cannot land in
    // the middle of what a test collects next (seen once on Postgres, muc.test.ts).
    const self = c.jid!.toString();
    const echoed = new Promise<void>((resolve) => {
      const on = (s: Element): void => {
        if (!s.is('presence') || s.attrs.from !== self || s.attrs.type) return;
        c.removeListener('stanza', on);
        resolve();
      };
      c.on('stanza', on);
    });
    await c.send(xml('presence'));
    await Promise.race([
      echoed,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${self}: no echo of the initial presence`)), 10_000).unref()),
    ]);
  }
  return c;
}

/** Hide SASL2 from this client: it logs in with RFC 6120 SASL and binds with an IQ. */
export function sasl1Only(c: Client): void {
  c.prependListener('element', (el: Element) => {
    if (el.is('features', NS_STREAM)) el.children = el.children.filter((ch) => typeof ch === 'string' || !ch.is('authentication', 'urn:xmpp:sasl:2'));
  });
}

type TransportSocket = EventEmitter & { secure: boolean; connect(opts: tls.ConnectionOptions): void };

// The parts of @xmpp/client-core's Client that trustTestCa reaches into (the typings leave them out).
interface ClientInternals {
  socket: TransportSocket | null;
  transports: { prototype: { Socket: new () => TransportSocket; socketParameters(service: string): object | undefined } }[];
  Transport: { prototype: { socketParameters(service: string): object | undefined } };
  socketParameters(service: string): object | undefined;
  sendReceive(el: Element): Promise<Element>;
  isSecure(): boolean;
  _attachSocket(socket: TransportSocket): void;
  restart(): Promise<unknown>;
}

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

/**
 * Make this client verify the server's certificate (for localhost) against the test CA
 * (connect() does it; call it on a client made with @xmpp/client's client() before start()),
 * on direct TLS and on STARTTLS. @xmpp/client takes no TLS options: for direct TLS it
 * hands socketParameters() to tls.connect, so this client's copy adds the CA; @xmpp/starttls
 * upgrades with tls.connect({ socket, host }) alone, so this client negotiates STARTTLS
 * itself, before the library's handler sees the features, and leaves that handler nothing to do.
 */
export async function trustTestCa(c: Client): Promise<void> {
  const ca = await testCa();
  const conn = c as unknown as ClientInternals;
  const tlsOptions: tls.ConnectionOptions = { ca, host: 'localhost', servername: 'localhost' };
  conn.socketParameters = (service) => {
    const params = conn.Transport.prototype.socketParameters(service);
    return params && service.startsWith('xmpps:') ? { ...params, ...tlsOptions } : params;
  };
  c.prependListener('element', (el: Element) => {
    if (!el.is('features', NS_STREAM) || !el.getChild('starttls', NS_TLS) || conn.isSecure()) return;
    // what else is offered (mechanisms, when TLS is optional) is offered again on the encrypted stream
    el.children = [];
    const upgrade = async (): Promise<void> => {
      const answer = await conn.sendReceive(xml('starttls', { xmlns: NS_TLS }));
      if (!answer.is('proceed', NS_TLS)) throw new Error('STARTTLS_FAILURE');
      // the socket class of the library's direct-TLS transport (tls.connect with the events Connection expects)
      const Direct = conn.transports.find((T) => T.prototype.socketParameters('xmpps://localhost:5223') !== undefined)!;
      const secure = new Direct.prototype.Socket();
      secure.connect({ socket: conn.socket as unknown as Socket, ...tlsOptions });
      await new Promise<void>((resolve, reject) => {
        secure.once('connect', resolve);
        secure.once('error', reject);
      });
      conn._attachSocket(secure);
      await conn.restart();
    };
    upgrade().catch((err: unknown) => c.emit('error', err));
  });
}

/** Wait for a stanza matching pred (already received ones count). */
export function expectStanza(c: XmppClient, pred: (s: Element) => boolean, timeoutMs = 3000, what = 'stanza'): Promise<Element> {
  const found = c.received.find(pred);
  if (found) {
    c.received.splice(c.received.indexOf(found), 1);
    return Promise.resolve(found);
  }
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      c.removeListener('stanza', on);
      reject(new Error(`timed out waiting for ${what}; got: ${c.received.map((s) => s.toString()).join('\n') || 'nothing'}`));
    }, timeoutMs);
    const on = (s: Element): void => {
      if (!pred(s)) return;
      clearTimeout(t);
      c.removeListener('stanza', on);
      c.received.splice(c.received.indexOf(s), 1);
      resolve(s);
    };
    c.on('stanza', on);
  });
}

export const isMessage = (body?: string) => (s: Element) => s.is('message') && (body === undefined || s.getChildText('body') === body);

/**
 * A XEP-0199 ping to the server, answered. The server handles a client's stanzas one at
 * a time, in order, and a stream delivers in order: once the answer is in, the server has
 * handled (and routed) everything this client sent before, and everything the server
 * sent this client before the answer is in its `received` list.
 */
async function ping(c: XmppClient): Promise<void> {
  const r = await iq(c, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  if (r.attrs.type !== 'result') throw new Error(`ping failed: ${r.toString()}`);
}

/**
 * Each client in turn completes a ping round trip with the server: whatever a client
 * earlier in the list sent before the call, the server has routed, and a client later
 * in the list has received (list clients twice for every pair in both directions).
 */
export async function barrier(...clients: XmppClient[]): Promise<void> {
  for (const c of clients) await ping(c);
}

/**
 * Assert nothing matching pred reached c, once the clients in `after` (the senders whose
 * stanzas could cause it) and then c passed a barrier. A number instead waits that many
 * ms (for tests where nothing in a client's stream orders the event, e.g. a timer).
 */
export async function expectNothing(
  c: XmppClient,
  pred: (s: Element) => boolean,
  opts: number | { after: XmppClient[] } = 300,
): Promise<void> {
  if (typeof opts === 'number') await new Promise((r) => setTimeout(r, opts));
  else await barrier(...opts.after, c);
  const got = c.received.find(pred);
  if (got) throw new Error(`unexpected stanza: ${got.toString()}`);
}

export async function stopAll(...clients: (XmppClient | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.stop().catch(() => undefined)));
}

/** Poll an asynchronous condition (storage written by the server in the background). */
export async function until(cond: () => Promise<boolean> | boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Cut the client's TCP connection without a stream close, as a phone leaving coverage would. */
export function dropConnection(c: Client): void {
  const wrapper = (c as unknown as { socket: { socket?: { destroy(): void }; destroy?(): void } }).socket;
  (wrapper.socket ?? (wrapper as { destroy(): void })).destroy();
}

/** Send an IQ and return the response (result or error) without throwing. */
export async function iq(c: XmppClient, el: Element, timeoutMs = 3000): Promise<Element> {
  const id = `t${Math.random().toString(36).slice(2)}`;
  el.attrs.id = id;
  const p = expectStanza(
    c,
    (s) => s.is('iq') && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'),
    timeoutMs,
    `IQ response ${id}`,
  );
  await c.send(el);
  return p;
}
