// A raw XMPP socket for probes that no well-behaved client library would send
// (bad XML, wrong namespaces, oversized stanzas) and for SASL mechanisms the
// client libraries lack (SCRAM-SHA-256, -PLUS channel binding).
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { testCa } from './server.js';

export const HEADER = (to = 'localhost'): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`;

export class RawClient {
  data = '';
  closed = false;
  private waiters: (() => void)[] = [];
  private constructor(public socket: net.Socket | TLSSocket) {
    this.attach(socket);
  }

  private attach(s: net.Socket): void {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.data += d;
      this.waiters.forEach((w) => w());
    });
    s.on('close', () => {
      this.closed = true;
      this.waiters.forEach((w) => w());
    });
    s.on('error', () => undefined);
  }

  /** Plain TCP, or direct TLS verifying the server's certificate for localhost against the test CA. */
  static async connect(port: number, opts: { tls?: boolean } = {}): Promise<RawClient> {
    const ca = opts.tls ? await testCa() : undefined;
    return new Promise((resolve, reject) => {
      const s = ca
        ? tls.connect({ port, host: '127.0.0.1', ca, ALPNProtocols: ['xmpp-client'], servername: 'localhost' }, () =>
            resolve(new RawClient(s)),
          )
        : net.connect({ port, host: '127.0.0.1' }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** A probe over a socket made elsewhere (a server-to-server TLS connection with a client certificate). */
  static over(socket: net.Socket | TLSSocket): RawClient {
    return new RawClient(socket);
  }

  send(s: string | Buffer): void {
    this.socket.write(s);
  }

  /** Wait until the received data (since `from`) matches; returns the match. */
  waitFor(re: RegExp | string, timeoutMs = 3000): Promise<string> {
    const test = (): string | undefined => {
      if (typeof re === 'string') return this.data.includes(re) ? re : undefined;
      return re.exec(this.data)?.[0];
    };
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = test();
        if (m !== undefined) {
          resolve(m);
          return true;
        }
        if (this.closed) {
          reject(new Error(`connection closed before ${re}; got: ${this.data}`));
          return true;
        }
        return false;
      };
      if (check()) return;
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got: ${this.data}`)), timeoutMs);
      const w = (): void => {
        if (check()) {
          clearTimeout(t);
          this.waiters.splice(this.waiters.indexOf(w), 1);
        }
      };
      this.waiters.push(w);
    });
  }

  waitClosed(timeoutMs = 3000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve();
      const t = setTimeout(() => reject(new Error(`connection still open; got: ${this.data}`)), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** STARTTLS on this connection (after the features were received). */
  async starttls(): Promise<void> {
    const ca = await testCa();
    this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.waitFor('<proceed');
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.data = '';
    this.attach(secure);
  }

  end(): void {
    this.socket.end();
  }
}

/** Connect, STARTTLS (unless direct TLS or plain), and wait for the SASL features. */
export async function openToSasl(port: number, opts: { tls?: 'starttls' | 'direct' | 'none' } = {}): Promise<RawClient> {
  const mode = opts.tls ?? 'starttls';
  const c = await RawClient.connect(port, { tls: mode === 'direct' });
  c.send(HEADER());
  await c.waitFor('</stream:features>');
  if (mode === 'starttls') {
    await c.starttls();
    c.send(HEADER());
    await c.waitFor('</stream:features>');
  }
  return c;
}

export function channelBinding(c: RawClient, type: string): Buffer {
  const s = c.socket as TLSSocket;
  if (type === 'tls-exporter') return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  if (type === 'tls-server-end-point') return createHash('sha256').update(s.getPeerX509Certificate()!.raw).digest();
  // what OpenSSL-based clients (Python's ssl) send: the client's own Finished message
  if (type === 'tls-unique') return s.getFinished()!;
  throw new Error(`unknown channel binding ${type}`);
}

/** A SCRAM client exchange (RFC 5802); resolves with the server's final element text. */
export async function scramLogin(
  c: RawClient,
  mech: ScramMech,
  user: string,
  password: string,
  cb?: { type: string; data?: Buffer },
  flag: 'n' | 'y' = 'n',
): Promise<string> {
  return (await scramExchange(c, mech, user, password, { cb, flag })).out;
}

type ScramMech = 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS';
const NS_SASL2 = 'urn:xmpp:sasl:2';

/**
 * SCRAM in RFC 6120 SASL or, with `sasl2`, in XEP-0388's elements (`sasl2` is the rest of
 * the <authenticate/> request: user agent, Bind 2, ...). Returns the final element and the
 * server-first-message (for XEP-0474's `h`); the server signature is checked on success.
 */
export async function scramExchange(
  c: RawClient,
  mech: ScramMech,
  user: string,
  password: string,
  opts: { cb?: { type: string; data?: Buffer }; flag?: 'n' | 'y'; sasl2?: string } = {},
): Promise<{ out: string; serverFirst: string }> {
  const { cb, flag = 'n', sasl2 } = opts;
  const alg = mech.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1';
  const len = alg === 'sha256' ? 32 : 20;
  const gs2 = cb ? `p=${cb.type},,` : `${flag},,`;
  const cnonce = randomBytes(12).toString('base64');
  const first = `n=${user},r=${cnonce}`;
  const ir = Buffer.from(gs2 + first).toString('base64');
  c.data = '';
  c.send(
    sasl2 === undefined
      ? `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mech}'>${ir}</auth>`
      : `<authenticate xmlns='${NS_SASL2}' mechanism='${mech}'><initial-response>${ir}</initial-response>${sasl2}</authenticate>`,
  );
  const ch = await c.waitFor(/<challenge[^>]*>([^<]*)<\/challenge>|<failure[\s\S]*?<\/failure>/);
  if (ch.startsWith('<failure')) return { out: ch, serverFirst: '' };
  const serverFirst = Buffer.from(/>([^<]*)</.exec(ch)![1]!, 'base64').toString();
  const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), len, alg);
  const clientKey = createHmac(alg, salted).update('Client Key').digest();
  const storedKey = createHash(alg).update(clientKey).digest();
  const cbind = Buffer.concat([Buffer.from(gs2), cb?.data ?? Buffer.alloc(0)]).toString('base64');
  const finalNoProof = `c=${cbind},r=${attrs.r}`;
  const authMessage = `${first},${serverFirst},${finalNoProof}`;
  const sig = createHmac(alg, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!)).toString('base64');
  c.data = '';
  const final = Buffer.from(`${finalNoProof},p=${proof}`).toString('base64');
  c.send(
    sasl2 === undefined
      ? `<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${final}</response>`
      : `<response xmlns='${NS_SASL2}'>${final}</response>`,
  );
  const out = await c.waitFor(/<success[^>]*\/>|<success[^>]*>[\s\S]*?<\/success>|<failure[\s\S]*?<\/failure>/);
  if (out.startsWith('<success')) {
    const data = sasl2 === undefined ? /^<success[^>]*>([^<]*)</.exec(out)?.[1] : /<additional-data>([^<]*)</.exec(out)?.[1];
    const v = Buffer.from(data ?? '', 'base64').toString();
    const serverKey = createHmac(alg, salted).update('Server Key').digest();
    const expected = createHmac(alg, serverKey).update(authMessage).digest('base64');
    if (v !== `v=${expected}`) throw new Error(`server signature mismatch: ${v}`);
  }
  return { out, serverFirst };
}

/** TLS, PLAIN, stream restart: up to the post-authentication features (in c.data). */
export async function authenticated(port: number, user: string, password: string): Promise<RawClient> {
  const c = await openToSasl(port);
  c.send(
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`,
  );
  await c.waitFor('<success');
  c.data = '';
  c.send(HEADER());
  await c.waitFor('</stream:features>');
  return c;
}

/** Full raw login: TLS, PLAIN, restart, bind. */
export async function rawSession(port: number, user: string, password: string, resource = 'raw'): Promise<RawClient> {
  const c = await authenticated(port, user, password);
  c.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  await c.waitFor(/<iq[^>]*id=['"]b1['"][\s\S]*?<\/iq>/);
  c.data = '';
  return c;
}
