// Federation with a real server: Debian's Prosody serves beta.test on 127.0.0.3,
// Uzzap serves uzzap.test on 127.0.0.2, both on the standard s2s port 5269 (the whole
// of 127/8 is loopback). Prosody finds Uzzap through a private hosts file read by
// libunbound (lua-unbound); Uzzap finds Prosody through s2s.hosts (UZZAP_S2S_HOSTS).
// Self-signed certificates, so both authenticate by dialback (XEP-0220) over STARTTLS.
// A slixmpp user of Prosody and an @xmpp/client user of Uzzap chat and subscribe.
// Prosody's mod_s2s_bidi is on: Prosody asks for a bidirectional stream (XEP-0288) and
// Uzzap answers over it.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { stopAll, type XmppClient } from '../helpers/clients.js';
import { itPasses, requireSlixmpp } from './probe.js';
import { S2S_CHECKS, converse, listening, selfSignedCert } from './s2s-peer.js';

const UZZAP_IP = '127.0.0.2';
const PROSODY_IP = '127.0.0.3';
const PROSODY_C2S = 15222;

function requireProsody(): void {
  for (const [pkg, why] of [
    ['prosody', 'the reference server'],
    ['lua-unbound', "Prosody's resolver, to read the test's hosts file"],
  ]) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    assert.match(r.stdout ?? '', /install ok installed/, `${pkg} (${why}) is not installed: apt-get install prosody lua-unbound`);
  }
}

describe('interop: federation with Prosody (s2s, STARTTLS, dialback)', function () {
  this.timeout(90_000);
  let dir = '';
  let prosody: ChildProcess | undefined;
  let server: Server;
  let alice: XmppClient;
  let output = '';

  before(async () => {
    requireSlixmpp();
    requireProsody();
    dir = mkdtempSync(join(tmpdir(), 'uzzap-prosody-'));
    const cert = selfSignedCert(dir, 'beta.test');
    writeFileSync(join(dir, 'hosts'), `${UZZAP_IP} uzzap.test\n${PROSODY_IP} beta.test\n`);
    const cfg = join(dir, 'prosody.cfg.lua');
    writeFileSync(
      cfg,
      `run_as_root = true
pidfile = "${dir}/prosody.pid"
data_path = "${dir}"
log = { debug = "${dir}/prosody.log" }
interfaces = { "${PROSODY_IP}" }
c2s_ports = { ${PROSODY_C2S} }
s2s_ports = { 5269 }
http_ports = { }; https_ports = { }
c2s_direct_tls_ports = { }; s2s_direct_tls_ports = { }
unbound = { hoststxt = "${dir}/hosts" }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence"; "s2s_bidi" }
s2s_secure_auth = false
s2s_require_encryption = true
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
VirtualHost "beta.test"
  ssl = { certificate = "${cert.crt}"; key = "${cert.key}" }
`,
    );
    const reg = spawnSync('prosodyctl', ['--config', cfg, 'register', 'user1', 'beta.test', 'pass1'], { encoding: 'utf8' });
    assert.equal(reg.status, 0, reg.stderr);
    prosody = spawn('prosody', ['-F', '--config', cfg], { stdio: 'ignore' });
    await listening(PROSODY_IP, 5269, 15_000);
    server = await startServer({
      users: { alice: 'secret' },
      config: {
        domain: 'uzzap.test',
        bind_address: UZZAP_IP,
        s2s: { port: 5269, hosts: { 'beta.test': `${PROSODY_IP}:5269` }, require_valid_certs: false },
      },
    });
    ({ alice, output } = await converse(server, UZZAP_IP, {
      jid: 'user1@beta.test',
      password: 'pass1',
      host: PROSODY_IP,
      c2s: PROSODY_C2S,
    }));
  });

  after(async () => {
    await stopAll(alice);
    await server?.stop();
    prosody?.kill('SIGTERM');
    if (dir && !process.env.UZZAP_KEEP_PROSODY) rmSync(dir, { recursive: true, force: true });
  });

  itPasses(() => output, S2S_CHECKS);

  it("Uzzap answered over Prosody's connection (XEP-0288): it authenticated no stream of its own", async () => {
    const text = await (await fetch(`http://${UZZAP_IP}:${server.ports.http}/metrics`)).text();
    const value = (line: string): number => Number(text.split('\n').find((l) => l.startsWith(line))?.split(' ').pop() ?? 0);
    assert.ok(value('uzzap_s2s_stanzas_total{direction="out",domain="beta.test"}') >= 2, text);
    assert.equal(value('uzzap_s2s_streams{direction="out",state="authenticated"}'), 0);
    assert.equal(value('uzzap_s2s_streams{direction="in",state="authenticated"}'), 1);
  });
});
