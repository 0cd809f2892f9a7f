// External components (XEP-0114) with a real third-party library: slixmpp's
// ComponentXMPP (Debian python3-slixmpp) as bridge.localhost, talking to a
// slixmpp client user through Uzzap.
// Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts slixmpp's stanza log on stderr.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { itPasses, requireSlixmpp, runProbe } from './probe.js';

const SECRET = 'interop-secret';

/** The checks slixmpp_component.py prints as `PASS <check>` lines, in order. */
const CHECKS = [
  'handshake: accepted with the right secret',
  "message: the component receives it from the user's full JID",
  'message: addressed to room42@bridge.localhost',
  'message: the user receives the echo from nick@bridge.localhost',
  'disco#info: the component answers with its gateway identity',
  'disco#info: answered from bridge.localhost',
  'version: the component answers jabber:iq:version',
  'version: an IQ to room42@bridge.localhost is answered from that address',
  "component IQ: the user's version result reaches bot@bridge.localhost",
  "component IQ: the server answers the component's disco#info",
  'presence: a directed presence from nick@bridge.localhost/irc reaches the user',
  'disco#items: the server lists bridge.localhost while it is connected',
  'wrong secret: no handshake, the stream is closed',
  'wrong secret: stream error not-authorized',
  'after the refusal: the connected component still echoes',
  'gone: an IQ to bot@bridge.localhost gets service-unavailable',
  'gone: the server no longer lists bridge.localhost',
];

describe('interop: slixmpp external component (XEP-0114)', function () {
  this.timeout(30_000);
  let server: Server;
  let out = '';
  before(async () => {
    requireSlixmpp();
    server = await startServer({ config: { component: { port: 0, secret: SECRET } }, users: { alice: 'secret' } });
    out = await runProbe('slixmpp_component.py', ['127.0.0.1', String(server.ports.c2s), String(server.ports.component), SECRET]);
  });
  after(() => server?.stop());

  itPasses(() => out, CHECKS);

  it('the server counted the refused handshake', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    assert.match(metrics, /uzzap_component_auth_failures_total\{reason="not-authorized"\} 1\b/);
  });
});
