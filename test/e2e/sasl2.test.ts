// SASL2 (XEP-0388), Bind 2 (XEP-0386), FAST (XEP-0484), SCRAM downgrade
// protection (XEP-0474) and XEP-0198 inside them: raw probes for the wire, and
// @xmpp/client (which implements SASL2, Bind 2 and FAST) for what a client does.
import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { client, xml, type Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, dropConnection, stopAll, trustTestCa, until, type XmppClient } from '../helpers/clients.js';
import { HEADER, RawClient, channelBinding, openToSasl, scramExchange } from '../helpers/raw.js';

const NS2 = 'urn:xmpp:sasl:2';
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const ua = (id: string): string => `<user-agent id='${id}'><software>probe</software></user-agent>`;
const FINAL = /<success[\s\S]*?<\/success>|<failure[\s\S]*?<\/failure>/;

/** SASL2 PLAIN with the rest of the request in `extra`; resolves with <success/> or <failure/>. */
async function plain2(c: RawClient, user: string, extra = '', password = 'secret'): Promise<string> {
  c.data = '';
  c.send(`<authenticate xmlns='${NS2}' mechanism='PLAIN'><initial-response>${b64(`\0${user}\0${password}`)}</initial-response>${extra}</authenticate>`);
  return c.waitFor(FINAL);
}

/** An HT-* (FAST) login: authcid NUL HMAC(token, "Initiator" || cb-data). */
async function ht(c: RawClient, mech: string, user: string, token: string, extra = '', cb = Buffer.alloc(0)): Promise<string> {
  const mac = createHmac('sha256', token).update(Buffer.concat([Buffer.from('Initiator'), cb])).digest();
  c.data = '';
  c.send(
    `<authenticate xmlns='${NS2}' mechanism='${mech}'><initial-response>${b64(Buffer.concat([Buffer.from(`${user}\0`), mac]))}</initial-response>${extra}<fast xmlns='urn:xmpp:fast:0'/></authenticate>`,
  );
  return c.waitFor(FINAL);
}

const tokenOf = (success: string): { token: string; expiry: string } => {
  const m = /<token xmlns='urn:xmpp:fast:0' expiry='([^']+)' token='([^']+)'\/>/.exec(success);
  assert.ok(m, `no token in ${success}`);
  return { expiry: m[1]!, token: m[2]! };
};
/** the session of user/resource is kept for resumption, without a connection */
const detached = (user: string, resource: string): boolean =>
  !!(server.sessions.get(`${user}@localhost`, resource) as { detached?: boolean } | undefined)?.detached;
let server: Server;
const condition = (failure: string): string | undefined => /<failure xmlns='urn:xmpp:sasl:2'><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-sasl'\/>/.exec(failure)?.[1];

describe('SASL2, Bind 2 and FAST (e2e)', () => {
  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret' } });
  });
  after(() => server.stop());

  it('offers SASL2 after TLS only, with inline resumption, Bind 2 features and FAST mechanisms', async () => {
    const plain = await RawClient.connect(server.ports.c2s);
    plain.send(HEADER());
    await plain.waitFor('</stream:features>');
    assert.doesNotMatch(plain.data, /urn:xmpp:sasl:2/);
    plain.end();
    const c = await openToSasl(server.ports.c2s);
    const auth = /<authentication xmlns='urn:xmpp:sasl:2'>([\s\S]*?)<inline>([\s\S]*)<\/inline><\/authentication>/.exec(c.data);
    assert.ok(auth, c.data);
    assert.equal(auth[1], ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'].map((m) => `<mechanism>${m}</mechanism>`).join(''));
    assert.match(auth[2]!, /<sm xmlns='urn:xmpp:sm:3'\/>/);
    const bindInline = /<bind xmlns='urn:xmpp:bind:0'><inline>(.*?)<\/inline><\/bind>/.exec(auth[2]!)?.[1] ?? '';
    for (const ns of ['urn:xmpp:carbons:2', 'urn:xmpp:csi:0', 'urn:xmpp:sm:3']) assert.match(bindInline, new RegExp(`<feature var='${ns}'/>`));
    // TLS 1.3 here: tls-exporter and tls-server-end-point bindings, and the one without
    assert.match(auth[2]!, /<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-EXPR<\/mechanism><mechanism>HT-SHA-256-ENDP<\/mechanism><mechanism>HT-SHA-256-NONE<\/mechanism><\/fast>/);
    c.end();
  });

  it('logs in, binds, enables stream management and carbons and issues a token in one request; no bind offered after', async () => {
    const c = await openToSasl(server.ports.c2s);
    const id = randomUUID();
    const bind = `<bind xmlns='urn:xmpp:bind:0'><tag>raw</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/><enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/></bind>`;
    const success = await plain2(c, 'alice', `${ua(id)}${bind}<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>`);
    assert.match(success, /^<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost\/raw<\/authorization-identifier><bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3' id='[^']+' resume='true' max='300'\/><\/bound><token /);
    const { expiry } = tokenOf(success);
    assert.ok(Date.parse(expiry) > Date.now() + 13 * 86_400_000, expiry);
    // no restart: the post-authentication features come at once, without binding or <sm/>
    const features = await c.waitFor(/<stream:features>[\s\S]*?<\/stream:features>/);
    assert.doesNotMatch(features, /xmpp-bind|urn:xmpp:sm:3/);
    const s = server.sessions.get('alice@localhost', 'raw')!;
    assert.ok(s.flags.carbons, 'carbons on');
    assert.ok((s as unknown as { inactive: boolean }).inactive, 'CSI inactive');
    c.data = '';
    c.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq><r xmlns='urn:xmpp:sm:3'/>`);
    await c.waitFor(/<iq [^>]*id=.r1.[^>]*type=.result.|<iq [^>]*type=.result.[^>]*id=.r1./);
    await c.waitFor(/<a xmlns='urn:xmpp:sm:3' h='1'\/>/);
    // a second <authenticate/> on an authenticated stream is a stream error
    c.send(`<authenticate xmlns='${NS2}' mechanism='PLAIN'/>`);
    await c.waitFor(/<stream:error><[a-z-]+ xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await c.waitFor('</stream:stream>');
    await c.waitClosed();
  });

  it('FAST: the token logs in with one message each way (HT-SHA-256-NONE, -ENDP, -EXPR) and resumes the session inline', async () => {
    const id = randomUUID();
    const a = await openToSasl(server.ports.c2s);
    const first = await plain2(
      a,
      'bob',
      `${ua(id)}<bind xmlns='urn:xmpp:bind:0'><tag>phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>`,
    );
    const { token } = tokenOf(first);
    const previd = /<enabled xmlns='urn:xmpp:sm:3' id='([^']+)'/.exec(first)![1]!;
    await a.waitFor('</stream:features>');
    a.socket.destroy();
    await until(() => detached('bob', 'phone'), 'session detached');
    // a message while away waits in the detached session
    const alice = await connect(server, 'alice', { resource: 'sender' });
    await alice.send(xml('message', { to: 'bob@localhost/phone', type: 'chat' }, xml('body', {}, 'while away')));
    await until(() => (server.sessions.get('bob@localhost', 'phone') as unknown as { sm: { queue: unknown[] } }).sm.queue.length === 1, 'queued');

    const b = await openToSasl(server.ports.c2s);
    const resumed = await ht(
      b,
      'HT-SHA-256-NONE',
      'bob',
      token,
      `${ua(id)}<resume xmlns='urn:xmpp:sm:3' previd='${previd}' h='0'/><bind xmlns='urn:xmpp:bind:0'><tag>phone</tag></bind>`,
    );
    const responder = createHmac('sha256', token).update('Responder').digest('base64');
    assert.equal(
      resumed,
      `<success xmlns='urn:xmpp:sasl:2'><additional-data>${responder}</additional-data><authorization-identifier>bob@localhost/phone</authorization-identifier><resumed xmlns='urn:xmpp:sm:3' previd='${previd}' h='0'/></success>`,
    );
    // the retransmission follows, and no stream features (XEP-0198: the stream goes on at once)
    await b.waitFor('while away');
    assert.doesNotMatch(b.data, /stream:features/);
    b.end();

    // the channel-bound variants with tokens of their own
    for (const [mech, type] of [
      ['HT-SHA-256-ENDP', 'tls-server-end-point'],
      ['HT-SHA-256-EXPR', 'tls-exporter'],
    ] as const) {
      const c = await openToSasl(server.ports.c2s);
      const issued = tokenOf(await plain2(c, 'bob', `${ua(id)}<request-token xmlns='urn:xmpp:fast:0' mechanism='${mech}'/>`));
      c.end();
      const d = await openToSasl(server.ports.c2s);
      const cb = channelBinding(d, type);
      const ok = await ht(d, mech, 'bob', issued.token, ua(id), Buffer.from(cb));
      assert.match(ok, /^<success/, `${mech}: ${ok}`);
      const want = createHmac('sha256', issued.token).update(Buffer.concat([Buffer.from('Responder'), Buffer.from(cb)])).digest('base64');
      assert.match(ok, new RegExp(`<additional-data>${want.replace(/[+/]/g, '\\$&')}</additional-data>`));
      // bound to its mechanism: the same token without channel binding fails
      d.end();
      const e = await openToSasl(server.ports.c2s);
      assert.equal(condition(await ht(e, 'HT-SHA-256-NONE', 'bob', issued.token, ua(id))), 'not-authorized');
      e.end();
    }
    await stopAll(alice);
  });

  it('FAST refuses a forged token, another client’s or user’s token, a malformed request; nothing is bound', async () => {
    const id = randomUUID();
    const other = randomUUID();
    const issue = async (user: string, client: string): Promise<string> => {
      const c = await openToSasl(server.ports.c2s);
      const t = tokenOf(await plain2(c, user, `${ua(client)}<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>`)).token;
      c.end();
      return t;
    };
    const token = await issue('carol', id);
    // the other client and the other user have tokens of their own: what refuses carol's is the binding, not a missing slot
    const otherClients = await issue('carol', other);
    const davesToken = await issue('dave', id);
    const tries: [string, string, string, string][] = [
      ['forged', 'carol', `${token}x`, ua(id)],
      ['another client', 'carol', token, ua(other)],
      ['another user', 'dave', token, ua(id)],
    ];
    for (const [what, user, t, extra] of tries) {
      const d = await openToSasl(server.ports.c2s);
      const r = await ht(d, 'HT-SHA-256-NONE', user, t, `${extra}<bind xmlns='urn:xmpp:bind:0'><tag>x</tag></bind>`);
      assert.equal(condition(r), 'not-authorized', `${what}: ${r}`);
      assert.ok(!server.sessions.get(`${user}@localhost`, 'x'), `${what}: nothing bound`);
      // the stream is unchanged: the password still works on it (what @xmpp/client does next)
      assert.match(await plain2(d, user), /^<success/, what);
      d.end();
    }
    // and each token works where it belongs
    for (const [user, t, client] of [['carol', otherClients, other], ['dave', davesToken, id]] as const) {
      const d = await openToSasl(server.ports.c2s);
      assert.match(await ht(d, 'HT-SHA-256-NONE', user, t, ua(client)), /^<success/, `${user}'s own token`);
      d.end();
    }
    let m = await openToSasl(server.ports.c2s);
    // no user agent: FAST needs the client's id
    const mac = createHmac('sha256', token).update('Initiator').digest();
    m.data = '';
    m.send(`<authenticate xmlns='${NS2}' mechanism='HT-SHA-256-NONE'><initial-response>${b64(Buffer.concat([Buffer.from('carol\0'), mac]))}</initial-response></authenticate>`);
    assert.equal(condition(await m.waitFor(FINAL)), 'malformed-request');
    // not a NUL and a 32-byte HMAC
    m.data = '';
    m.send(`<authenticate xmlns='${NS2}' mechanism='HT-SHA-256-NONE'><initial-response>${b64('carol')}</initial-response>${ua(id)}</authenticate>`);
    assert.equal(condition(await m.waitFor(FINAL)), 'malformed-request');
    m.data = '';
    m.send(`<authenticate xmlns='${NS2}' mechanism='NOPE'/>`);
    assert.match(await m.waitFor(FINAL), /^<failure xmlns='urn:xmpp:sasl:2'><invalid-mechanism xmlns='urn:ietf:params:xml:ns:xmpp-sasl'\/><\/failure>$/);
    m.data = '';
    m.send(`<response xmlns='${NS2}'>AAAA</response>`);
    assert.equal(condition(await m.waitFor(FINAL)), 'malformed-request');
    m.end();
    // a failed exchange is over: its <response/> continues nothing (and its Bind 2 never runs)
    m = await openToSasl(server.ports.c2s);
    m.send(`<authenticate xmlns='${NS2}' mechanism='SCRAM-SHA-1'><initial-response>!!</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>ghost</tag></bind></authenticate>`);
    assert.equal(condition(await m.waitFor(FINAL)), 'incorrect-encoding');
    m.data = '';
    m.send(`<response xmlns='${NS2}'>${b64('n,,n=carol,r=abc')}</response>`);
    assert.equal(condition(await m.waitFor(FINAL)), 'malformed-request');
    assert.ok(!server.sessions.get('carol@localhost', 'ghost'));
    m.end();
    // during a SASL2 exchange, anything but <response/> or <abort/> ends the stream (XEP-0388 §2.5)
    const n = await openToSasl(server.ports.c2s);
    n.data = '';
    n.send(`<authenticate xmlns='${NS2}' mechanism='SCRAM-SHA-1'><initial-response>${b64('n,,n=carol,r=abc')}</initial-response></authenticate>`);
    await n.waitFor('</challenge>');
    n.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${b64('\0carol\0secret')}</auth>`);
    await n.waitFor(/<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await n.waitClosed();
  });

  it('a password change ends every token; invalidate ends the one used', async () => {
    const id = randomUUID();
    const issue = async (): Promise<string> => {
      const c = await openToSasl(server.ports.c2s);
      const t = tokenOf(await plain2(c, 'dave', `${ua(id)}<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>`)).token;
      c.end();
      return t;
    };
    const token = await issue();
    await server.accounts.setPassword('dave', 'secret');
    const c = await openToSasl(server.ports.c2s);
    assert.equal(condition(await ht(c, 'HT-SHA-256-NONE', 'dave', token, ua(id))), 'not-authorized');
    c.end();
    const again = await issue();
    const d = await openToSasl(server.ports.c2s);
    d.data = '';
    const mac = createHmac('sha256', again).update('Initiator').digest();
    d.send(
      `<authenticate xmlns='${NS2}' mechanism='HT-SHA-256-NONE'><initial-response>${b64(Buffer.concat([Buffer.from('dave\0'), mac]))}</initial-response>${ua(id)}<fast xmlns='urn:xmpp:fast:0' invalidate='true'/></authenticate>`,
    );
    const r = await d.waitFor(FINAL);
    assert.match(r, /^<success/);
    assert.doesNotMatch(r, /<token/);
    d.end();
    const e = await openToSasl(server.ports.c2s);
    assert.equal(condition(await ht(e, 'HT-SHA-256-NONE', 'dave', again, ua(id))), 'not-authorized');
    e.end();
  });

  it('two <resume/> in one request: one resumption; Bind 2 beyond max_resources fails the login before any of it happens', async () => {
    const c = await openToSasl(server.ports.c2s);
    const r = await plain2(
      c,
      'alice',
      `${ua(randomUUID())}<resume xmlns='urn:xmpp:sm:3' previd='a' h='0'/><resume xmlns='urn:xmpp:sm:3' previd='b' h='0'/><bind xmlns='urn:xmpp:bind:0'><tag>twice</tag></bind>`,
    );
    assert.equal(r.match(/<failed xmlns='urn:xmpp:sm:3'>/g)?.length, 1, r);
    c.end();
    const small = await startServer({ users: { zed: 'secret' }, config: { limits: { max_resources: 1 } } });
    try {
      const a = await openToSasl(small.ports.c2s);
      assert.match(await plain2(a, 'zed', `${ua(randomUUID())}<bind xmlns='urn:xmpp:bind:0'><tag>one</tag></bind>`), /^<success/);
      const id = randomUUID();
      const b = await openToSasl(small.ports.c2s);
      const refused = await plain2(b, 'zed', `${ua(id)}<bind xmlns='urn:xmpp:bind:0'><tag>two</tag></bind><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>`);
      assert.equal(condition(refused), 'temporary-auth-failure');
      assert.equal(await small.storage.userData.list('zed', 'fast').then((l) => l.length), 0, 'no token issued');
      a.end();
      b.end();
    } finally {
      await small.stop();
    }
  });

  it('a failed inline resumption is answered before <bound/>, and a new session is bound', async () => {
    const c = await openToSasl(server.ports.c2s);
    const r = await plain2(
      c,
      'alice',
      `${ua(randomUUID())}<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/><bind xmlns='urn:xmpp:bind:0'><tag>fresh</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>`,
    );
    assert.match(
      r,
      /<authorization-identifier>alice@localhost\/fresh<\/authorization-identifier><failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/failed><bound xmlns='urn:xmpp:bind:0'><enabled /,
    );
    c.end();
  });

  it('SCRAM carries the XEP-0474 hash of what was offered, in SASL and in SASL2', async () => {
    for (const sasl2 of [undefined, ua(randomUUID())]) {
      for (const mech of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
        const c = await openToSasl(server.ports.c2s);
        const offered = [...(/<mechanisms[^>]*>(.*?)<\/mechanisms>/.exec(c.data)![1]!.matchAll(/<mechanism>([^<]+)</g))].map((m) => m[1]!);
        const cbTypes = [...c.data.matchAll(/<channel-binding type='([^']+)'\/>/g)].map((m) => m[1]!);
        const input = `${[...offered].sort().join('\x1e')}\x1f${[...cbTypes].sort().join('\x1e')}`;
        const { out, serverFirst } = await scramExchange(c, mech, 'alice', 'secret', { sasl2 });
        assert.match(out, /^<success/);
        const h = createHash(mech === 'SCRAM-SHA-1' ? 'sha1' : 'sha256').update(input).digest('base64');
        assert.match(serverFirst, new RegExp(`,h=${h.replace(/[+/]/g, '\\$&')}$`), `${mech} ${sasl2 ? 'SASL2' : 'SASL'}`);
        c.end();
      }
    }
  });

  it('Bind 2: the same client reconnecting replaces its session; another client with the same tag gets tag/part', async () => {
    const id = randomUUID();
    const bind = `<bind xmlns='urn:xmpp:bind:0'><tag>tablet</tag></bind>`;
    const a = await openToSasl(server.ports.c2s);
    assert.match(await plain2(a, 'carol', `${ua(id)}${bind}`), /carol@localhost\/tablet</);
    const b = await openToSasl(server.ports.c2s);
    const other = /<authorization-identifier>carol@localhost\/(tablet\/[A-Za-z0-9_-]{10})</.exec(await plain2(b, 'carol', `${ua(randomUUID())}${bind}`));
    assert.ok(other, 'tag/part for another client');
    const c = await openToSasl(server.ports.c2s);
    assert.match(await plain2(c, 'carol', `${ua(id)}${bind}`), /carol@localhost\/tablet</);
    await a.waitFor('<conflict');
    await a.waitClosed();
    assert.ok(server.sessions.get('carol@localhost', other[1]!), 'the other client keeps its session');
    b.end();
    c.end();
  });
});

describe('SASL2 and FAST with @xmpp/client', () => {
  before(async () => {
    server = await startServer({ users: { erin: 'secret', frank: 'secret' } });
  });
  after(() => server.stop());

  type Token = { mechanism: string; token: string; expiry: string };
  interface Fast {
    saveToken(t: Token): Promise<void>;
    fetchToken(): Promise<Token | null>;
    deleteToken(): Promise<void>;
  }

  /** a client as an app makes one: a fixed user-agent id, the token kept by the app */
  async function app(user: string, id: string, store: { token: Token | null }): Promise<Client & { fast: Fast }> {
    const c = client({
      service: `xmpp://127.0.0.1:${server.ports.c2s}`,
      domain: 'localhost',
      username: user,
      password: 'secret',
      resource: 'app',
      userAgent: xml('user-agent', { id }, xml('software', {}, 'test')),
    }) as Client & { fast: Fast };
    c.fast.saveToken = async (t) => void (store.token = t);
    c.fast.fetchToken = async () => store.token;
    c.fast.deleteToken = async () => void (store.token = null);
    c.on('error', () => undefined);
    await trustTestCa(c);
    return c;
  }

  const fastLogins = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    return Number(/uzzap_auth_success_total\{mechanism="HT-SHA-256-NONE"\} (\d+)/.exec(text)?.[1] ?? 0);
  };

  it('gets a token with its password, reconnects with it and resumes: a message sent meanwhile arrives once', async () => {
    const store = { token: null as Token | null };
    const id = randomUUID();
    const erin = await app('erin', id, store);
    const received: Element[] = [];
    erin.on('stanza', (s: Element) => received.push(s));
    await erin.start();
    assert.equal(erin.jid?.toString(), 'erin@localhost/app');
    assert.ok(store.token?.token, 'token saved');
    assert.equal(store.token.mechanism, 'HT-SHA-256-NONE');
    await erin.send(xml('presence'));
    const frank = await connect(server, 'frank');
    const before = await fastLogins();
    const sm = (erin as unknown as { streamManagement: { once(e: string, f: () => void): void } }).streamManagement;
    const resumed = new Promise<void>((resolve) => sm.once('resumed', resolve));
    dropConnection(erin);
    await until(() => detached('erin', 'app'), 'detached');
    await frank.send(xml('message', { to: 'erin@localhost/app', type: 'chat' }, xml('body', {}, 'meanwhile')));
    await resumed; // @xmpp/reconnect: FAST + <resume/> in one <authenticate/>
    await until(() => received.some((s) => s.getChildText('body') === 'meanwhile'), 'delivered after resume');
    assert.equal(await fastLogins(), before + 1);
    await frank.send(xml('message', { to: 'erin@localhost/app', type: 'chat' }, xml('body', {}, 'after')));
    await until(() => received.some((s) => s.getChildText('body') === 'after'), 'live again');
    assert.equal(received.filter((s) => s.getChildText('body') === 'meanwhile').length, 1);
    (erin as unknown as { reconnect: { stop(): void } }).reconnect.stop();
    await erin.stop();

    // a new start of the app: the stored token logs it in (a new session)
    const again = await app('erin', id, store);
    await again.start();
    assert.equal(await fastLogins(), before + 2);
    await stopAll(frank as XmppClient);
    await again.stop();
  });

  it('a token the server refuses is dropped: the client logs in with its password and gets a new one', async () => {
    const store = { token: { mechanism: 'HT-SHA-256-NONE', token: 'uzzap-fast-forged', expiry: new Date(Date.now() + 86_400_000).toISOString() } as Token | null };
    const c = await app('frank', randomUUID(), store);
    await c.start();
    assert.ok(store.token && store.token.token !== 'uzzap-fast-forged', 'a new token');
    (c as unknown as { reconnect: { stop(): void } }).reconnect.stop();
    await c.stop();
  });
});

describe('FAST token lifetime (e2e)', () => {
  before(async () => {
    server = await startServer({ users: { gina: 'secret' }, config: { sasl: { fast_ttl: 2 } } });
  });
  after(() => server.stop());

  it('past half its life a token is rotated; the old one works until the new one is used; an expired one is credentials-expired', async () => {
    const id = randomUUID();
    const c = await openToSasl(server.ports.c2s);
    const t1 = tokenOf(await plain2(c, 'gina', `${ua(id)}<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>`));
    c.end();
    const issued = Date.parse(t1.expiry) - 2000;
    await until(() => Date.now() > issued + 1050, 'half of the lifetime', 3000);
    const d = await openToSasl(server.ports.c2s);
    const rotated = await ht(d, 'HT-SHA-256-NONE', 'gina', t1.token, ua(id));
    const t2 = tokenOf(rotated);
    assert.notEqual(t2.token, t1.token);
    d.end();
    // the client may not have stored the new one: the old one still works (and gets another
    // new one, which replaces the unused one: XEP-0484 §5)
    const e = await openToSasl(server.ports.c2s);
    const t3 = tokenOf(await ht(e, 'HT-SHA-256-NONE', 'gina', t1.token, ua(id)));
    e.end();
    const f = await openToSasl(server.ports.c2s);
    assert.equal(condition(await ht(f, 'HT-SHA-256-NONE', 'gina', t2.token, ua(id))), 'not-authorized');
    assert.match(await ht(f, 'HT-SHA-256-NONE', 'gina', t3.token, ua(id)), /^<success/);
    f.end();
    // the new one used: the old one is over
    const g = await openToSasl(server.ports.c2s);
    assert.equal(condition(await ht(g, 'HT-SHA-256-NONE', 'gina', t1.token, ua(id))), 'not-authorized');
    g.end();
    await until(() => Date.now() > Date.parse(t3.expiry) + 50, 'expiry', 4000);
    const h = await openToSasl(server.ports.c2s);
    assert.equal(condition(await ht(h, 'HT-SHA-256-NONE', 'gina', t3.token, ua(id))), 'credentials-expired');
    h.end();
  });
});
