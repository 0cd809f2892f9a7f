// Real XMPP clients for tests: @xmpp/client over real sockets, plus helpers
// that read like a conversation (alice sends, bob receives).
import { client, xml, type Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';

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
}

export async function connect(server: Server, username: string, opts: ConnectOptions = {}): Promise<XmppClient> {
  const password = opts.password ?? 'secret';
  const service = opts.transport === 'direct' ? `xmpps://127.0.0.1:${server.ports.c2sTls}` : `xmpp://127.0.0.1:${server.ports.c2s}`;
  const c = client({
    service,
    domain: 'localhost',
    resource: opts.resource,
    lang: opts.lang,
    credentials: (auth: (creds: { username: string; password: string }, mech: string) => Promise<void>, mechanisms: string[]) =>
      auth({ username, password }, opts.mechanism ?? (mechanisms.includes('SCRAM-SHA-1') ? 'SCRAM-SHA-1' : mechanisms[0]!)),
  }) as XmppClient;
  // @xmpp/connection waits 2 s for each stream (re)open; a loaded CI machine doing
  // dozens of TLS handshakes at once can take longer (seen once, 100-occupant MUC test)
  (c as unknown as { timeout: number }).timeout = 10_000;
  c.received = [];
  c.on('stanza', (s: Element) => c.received.push(s));
  c.on('error', () => undefined);
  // no automatic reconnects in tests
  (c as unknown as { reconnect: { stop(): void } }).reconnect?.stop();
  await c.start();
  if (opts.presence !== false) await c.send(xml('presence'));
  return c;
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

/** Assert nothing matching pred arrives within ms. */
export async function expectNothing(c: XmppClient, pred: (s: Element) => boolean, ms = 300): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
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
export function dropConnection(c: XmppClient): void {
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
