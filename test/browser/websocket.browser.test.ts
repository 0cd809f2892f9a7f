// A real web client: headless Chromium runs @xmpp/client (bundled for the
// browser, native WebSocket) against Uzzap's RFC 7395 endpoint, logs in as
// alice and chats with bob, a Node client over TCP.
// Needs Debian's chromium at /usr/bin/chromium (UZZAP_CHROMIUM overrides it).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectStanza, isMessage, stopAll, xml, type XmppClient } from '../helpers/clients.js';

const CHROMIUM = process.env.UZZAP_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STEP = 10_000; // bound for each in-page wait
// SASL on plain ws:// on loopback (as behind a TLS-terminating proxy)
const TRUST_PLAIN_WS = { behind_tls_proxy: true };

// The page's client: exposes window.xmppTest for the test to drive.
// In the browser @xmpp/client has no SCRAM-SHA-1 (its package maps it out), so it uses PLAIN.
const PAGE_SCRIPT = `
import { client, xml } from '@xmpp/client';

const state = { jid: null, online: false, messages: [], errors: [], status: [] };
let xmpp;

window.xmppTest = {
  state,
  async start(service, username, password) {
    xmpp = client({ service, domain: 'localhost', resource: 'browser', username, password });
    xmpp.reconnect.stop();
    xmpp.on('error', (e) => state.errors.push(String(e && (e.stack || e.message) || e)));
    xmpp.on('status', (s) => state.status.push(s));
    xmpp.on('stanza', (s) => {
      if (s.is('message') && s.getChild('body')) {
        state.messages.push({ from: s.attrs.from, type: s.attrs.type, body: s.getChildText('body') });
      }
    });
    const jid = await xmpp.start();
    state.jid = jid.toString();
    state.online = true;
    return { jid: state.jid, userAgent: navigator.userAgent, wsProtocol: xmpp.socket && xmpp.socket.socket && xmpp.socket.socket.protocol };
  },
  async presence() {
    await xmpp.send(xml('presence'));
  },
  async chat(to, body) {
    await xmpp.send(xml('message', { to, type: 'chat' }, xml('body', {}, body)));
  },
  async stop() {
    if (xmpp) await xmpp.stop();
    state.online = false;
  },
};
window.xmppReady = true;
`;

/**
 * @xmpp/resolve 0.14 maps "./lib/dns" out of browser builds, but imports it as
 * "./lib/dns.js" (which the browser field does not match), so a bundler would
 * pull in node:dns. Apply the package's intent: an empty module there.
 */
const xmppResolveBrowserField: Plugin = {
  name: 'xmpp-resolve-browser-dns',
  setup(b) {
    b.onResolve({ filter: /^\.\/lib\/dns\.js$/ }, (args) =>
      /[\\/]@xmpp[\\/]resolve[\\/]/.test(args.importer) ? { path: 'xmpp-resolve-dns', namespace: 'empty' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: '', loader: 'js' }));
  },
};

async function bundlePageScript(): Promise<string> {
  const out = await build({
    stdin: { contents: PAGE_SCRIPT, resolveDir: ROOT, sourcefile: 'xmpp-page.js', loader: 'js' },
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    plugins: [xmppResolveBrowserField],
  });
  return out.outputFiles[0]!.text;
}

/** Serve the page and its bundled script on a loopback port (a real http:// origin). */
function servePage(script: string): Promise<http.Server> {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>uzzap web client</title></head>
<body><script src="/client.js"></script></body></html>`;
  const srv = http.createServer((req, res) => {
    if (req.url === '/client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    } else if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

interface PageState {
  jid: string | null;
  online: boolean;
  messages: { from: string; type: string; body: string }[];
  errors: string[];
  status: string[];
}

declare global {
  interface Window {
    xmppReady?: boolean;
    xmppTest: {
      state: PageState;
      start(service: string, username: string, password: string): Promise<{ jid: string; userAgent: string; wsProtocol?: string }>;
      presence(): Promise<void>;
      chat(to: string, body: string): Promise<void>;
      stop(): Promise<void>;
    };
  }
}

describe('web client in headless Chromium over WebSocket (RFC 7395)', function () {
  this.timeout(60_000);
  let server: Server | undefined;
  let web: http.Server | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let bob: XmppClient | undefined;
  const pageLog: string[] = [];

  before(async function () {
    const script = await bundlePageScript();
    server = await startServer({ users: { alice: 'secret', bob: 'secret' }, config: { http: TRUST_PLAIN_WS } });
    web = await servePage(script);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30_000 });
  });

  after(async function () {
    if (page) await page.evaluate(() => window.xmppTest?.stop()).catch(() => undefined);
    await stopAll(bob);
    await browser?.close().catch(() => undefined);
    await new Promise<void>((r) => (web ? web.close(() => r()) : r()));
    web?.closeAllConnections();
    await server?.stop();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    const state = await page?.evaluate(() => window.xmppTest?.state).catch(() => undefined);
    console.log(`page console:\n${pageLog.join('\n') || '(empty)'}\npage client state: ${JSON.stringify(state)}`);
  });

  it('alice logs in from the browser, sends presence and a message to bob over TCP, and gets his reply', async () => {
    const ctx = await browser!.newContext();
    page = await ctx.newPage();
    page.setDefaultTimeout(STEP);
    page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`[pageerror] ${e.message}`));

    const origin = `http://127.0.0.1:${(web!.address() as AddressInfo).port}`;
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.xmppReady === true);

    bob = await connect(server!, 'bob');

    // login over the browser's native WebSocket
    const service = `ws://127.0.0.1:${server!.ports.http}/xmpp-websocket`;
    const login = await page.evaluate(
      ([s]) =>
        Promise.race([
          window.xmppTest.start(s!, 'alice', 'secret'),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error('login timed out')), 10_000)),
        ]),
      [service],
    );
    assert.match(login.jid, /^alice@localhost\/browser/);
    assert.match(login.userAgent, /HeadlessChrome\//, 'ran in headless Chromium');
    assert.equal(login.wsProtocol, 'xmpp', 'the browser negotiated the xmpp subprotocol');

    await page.evaluate(() => window.xmppTest.presence());

    // browser -> TCP
    await page.evaluate(() => window.xmppTest.chat('bob@localhost', 'hello from chromium'));
    const got = await expectStanza(bob, isMessage('hello from chromium'), STEP, 'alice’s message from the browser');
    assert.equal(got.attrs.type, 'chat');
    assert.equal(got.attrs.from, login.jid);

    // TCP -> browser
    await bob.send(xml('message', { to: login.jid, type: 'chat' }, xml('body', {}, 'hello from node over tcp')));
    await page.waitForFunction(() => window.xmppTest.state.messages.some((m) => m.body === 'hello from node over tcp'));
    const state = await page.evaluate(() => window.xmppTest.state);
    const reply = state.messages.find((m) => m.body === 'hello from node over tcp')!;
    assert.match(reply.from, /^bob@localhost\//);
    assert.equal(reply.type, 'chat');
    assert.deepEqual(state.errors, []);

    await page.evaluate(() => window.xmppTest.stop());
    await ctx.close();
  });
});
