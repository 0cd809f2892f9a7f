// The invitation landing page (XEP-0401) in headless Chromium: it renders, its
// button opens the invitation's xmpp: URI, and its QR code decodes to the page's
// own address (the SVG is rasterised in the page and read back with qr's decoder).
// A screenshot goes to test-artifacts/invite-landing.png (UZZAP_TEST_ARTIFACTS overrides).
// Needs Debian's chromium at /usr/bin/chromium (UZZAP_CHROMIUM overrides it).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import decodeQR from 'qr/decode.js';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { createInvite, inviteUri, landingUrl } from '../../xeps/0401-invites/invites.js';

const CHROMIUM = process.env.UZZAP_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.UZZAP_TEST_ARTIFACTS ?? fileURLToPath(new URL('../../test-artifacts', import.meta.url));

describe('invitation landing page in headless Chromium', function () {
  this.timeout(60_000);
  let server: Server;
  let browser: Browser;
  before(async () => {
    server = await startServer({ users: { alice: 'secret' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows the invitation, the clients to install, the xmpp: button and a QR code of the page', async () => {
    const { token, invite } = await createInvite(server.storage, { kind: 'contact', inviter: 'alice', register: true, ttl: 3600 });
    const url = landingUrl(`http://127.0.0.1:${server.ports.http}`, token);
    const page = await browser.newPage({ viewport: { width: 800, height: 1200 } });
    const res = await page.goto(url);
    assert.equal(res?.status(), 200);
    assert.equal(await page.locator('h1').textContent(), 'You have been invited to localhost');
    assert.match((await page.locator('body').textContent()) ?? '', /alice@localhost invites you to chat/);
    assert.equal(await page.locator('#accept').getAttribute('href'), inviteUri('localhost', invite, token));
    assert.equal(await page.locator('a', { hasText: 'Conversations' }).count(), 1);
    // the QR code, rasterised by the browser, decodes to the page's address (as the server names it)
    const rgba = await page.evaluate(async () => {
      const svg = document.querySelector('#qr svg')!;
      const img = new Image();
      img.src = `data:image/svg+xml;base64,${btoa(new XMLSerializer().serializeToString(svg))}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = c.height = 400;
      const g = c.getContext('2d')!;
      g.fillStyle = '#fff';
      g.fillRect(0, 0, 400, 400);
      g.drawImage(img, 0, 0, 400, 400);
      return Array.from(g.getImageData(0, 0, 400, 400).data);
    });
    assert.equal(decodeQR({ width: 400, height: 400, data: new Uint8Array(rgba) }), landingUrl(`http://localhost:${server.ports.http}`, token));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'invite-landing.png'), fullPage: true });
    await page.close();
  });
});
