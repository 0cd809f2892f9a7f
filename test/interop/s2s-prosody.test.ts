// Federation with a real server: Debian's Prosody serves beta.test (and its MUC
// component conference.beta.test) on 127.0.0.3, Uzzap serves uzzap.test (and
// conference.uzzap.test) on 127.0.0.2, both on the standard s2s port 5269 (the whole of
// 127/8 is loopback). Prosody finds Uzzap through a private hosts file read by
// libunbound (lua-unbound); Uzzap finds Prosody through s2s.hosts (UZZAP_S2S_HOSTS).
// A slixmpp user of Prosody and an @xmpp/client user of Uzzap chat and subscribe
// (slixmpp_s2s.py), then meet in a room on each server (slixmpp_s2s_muc.py).
//
// Twice: with self-signed certificates, so that both authenticate by dialback
// (XEP-0220) over STARTTLS, and with Prosody's mod_s2s_bidi on (Prosody asks for a
// bidirectional stream, XEP-0288, and Uzzap answers over it); and with certificates of
// one CA both trust (Prosody's s2s_secure_auth, Uzzap's require_valid_certs), so that
// both authenticate their domains by SASL EXTERNAL (XEP-0178), without bidi (each side
// opens its own stream). Prosody's debug log is ${dir}/prosody.log; UZZAP_KEEP_PROSODY=1
// keeps the dir.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { generateCert } from '../../src/tls.js';
import { startServer, testCert } from '../helpers/server.js';
import { stopAll, type XmppClient } from '../helpers/clients.js';
import { itPasses, requireSlixmpp } from './probe.js';
import { S2S_CHECKS, S2S_MUC_CHECKS, converse, listening, meetInRooms, selfSignedCert } from './s2s-peer.js';

const UZZAP_IP = '127.0.0.2';
const PROSODY_IP = '127.0.0.3';
const PROSODY_C2S = 15222;
const PROSODY_ROOM = 'federated@conference.beta.test';
const UZZAP_ROOM = 'lobby@conference.uzzap.test';

function requireProsody(): void {
  for (const [pkg, why] of [
    ['prosody', 'the reference server'],
    ['lua-unbound', "Prosody's resolver, to read the test's hosts file"],
  ]) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    assert.match(r.stdout ?? '', /install ok installed/, `${pkg} (${why}) is not installed: apt-get install prosody lua-unbound`);
  }
}

type Mode = 'dialback' | 'certificates';

/** What a suite started, for its tests: Uzzap, alice (online) and the conversation's probe output. */
interface Pair {
  dir: string;
  server: Server;
  alice: XmppClient;
  output: string;
}

const running = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

/** SIGTERM to Prosody (its own PID: it runs in the foreground), SIGKILL if it is still there after 10 s */
async function stopProsody(p: ChildProcess | undefined): Promise<void> {
  if (!p || !running(p)) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGTERM');
  let t: NodeJS.Timeout | undefined;
  const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (t = setTimeout(() => r(true), 10_000)))]);
  clearTimeout(t);
  if (late) {
    p.kill('SIGKILL');
    await exited;
  }
}

/** a counter or gauge of Uzzap's /metrics (the http listener is on bind_address), 0 when absent */
async function metric(server: Server, series: string): Promise<number> {
  const text = await (await fetch(`http://${UZZAP_IP}:${server.ports.http}/metrics`)).text();
  return Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${series} `))
      ?.split(' ')[1] ?? 0,
  );
}

/**
 * The hooks of a suite: Prosody and Uzzap started for `mode`, the conversation held
 * (converse()); everything stopped after. Returns the suite's Pair, filled in by before().
 */
function federation(mode: Mode): Pair {
  const pair = {} as Pair;
  let prosody: ChildProcess | undefined;

  before(async () => {
    requireSlixmpp();
    requireProsody();
    pair.dir = mkdtempSync(join(tmpdir(), 'uzzap-prosody-'));
    const dir = pair.dir;
    let ssl: string;
    // Uzzap's settings for the mode: its certificate, and what its s2s requires
    let uzzap: { tls?: { cert: string; key: string }; s2s: Record<string, unknown> };
    if (mode === 'dialback') {
      const cert = selfSignedCert(dir, 'beta.test');
      ssl = `{ certificate = "${cert.crt}"; key = "${cert.key}" }`;
      uzzap = { s2s: { require_valid_certs: false } };
    } else {
      // the tests' CA (which alice trusts for Uzzap's client port too) issues both
      const shared = dirname((await testCert()).ca);
      const beta = await generateCert('beta.test', shared);
      const ours = await generateCert('uzzap.test', shared);
      ssl = `{ certificate = "${beta.cert}"; key = "${beta.key}"; cafile = "${beta.ca}" }`;
      uzzap = { tls: { cert: ours.cert, key: ours.key }, s2s: { ca_file: ours.ca, require_valid_certs: true } };
    }
    writeFileSync(
      join(dir, 'hosts'),
      `${UZZAP_IP} uzzap.test\n${UZZAP_IP} conference.uzzap.test\n${PROSODY_IP} beta.test\n${PROSODY_IP} conference.beta.test\n`,
    );
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
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence"${mode === 'dialback' ? '; "s2s_bidi"' : ''} }
s2s_secure_auth = ${mode === 'certificates'}
s2s_require_encryption = true
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
-- for every host, the MUC component too
ssl = ${ssl}
VirtualHost "beta.test"
Component "conference.beta.test" "muc"
`,
    );
    const reg = spawnSync('prosodyctl', ['--config', cfg, 'register', 'user1', 'beta.test', 'pass1'], { encoding: 'utf8' });
    assert.equal(reg.status, 0, reg.stderr);
    const p = spawn('prosody', ['-F', '--config', cfg], { stdio: 'ignore' });
    prosody = p;
    const alive = (): void => {
      if (!running(p)) throw new Error(`prosody exited (${p.exitCode ?? p.signalCode}), see ${dir}/prosody.log`);
    };
    await listening(PROSODY_IP, 5269, 15_000, alive);
    await listening(PROSODY_IP, PROSODY_C2S, 5_000, alive);
    const s2s = { port: 5269, hosts: { 'beta.test': `${PROSODY_IP}:5269`, 'conference.beta.test': `${PROSODY_IP}:5269` } };
    pair.server = await startServer({
      users: { alice: 'secret' },
      config: { domain: 'uzzap.test', bind_address: UZZAP_IP, ...uzzap, s2s: { ...s2s, ...uzzap.s2s } },
    });
    ({ alice: pair.alice, output: pair.output } = await converse(pair.server, UZZAP_IP, {
      jid: 'user1@beta.test',
      password: 'pass1',
      host: PROSODY_IP,
      c2s: PROSODY_C2S,
    }));
  });

  after(async () => {
    try {
      await stopAll(pair.alice);
      await pair.server?.stop();
    } finally {
      await stopProsody(prosody);
      if (pair.dir && !process.env.UZZAP_KEEP_PROSODY) rmSync(pair.dir, { recursive: true, force: true });
    }
  });
  return pair;
}

/** A nested suite: the two users meet in a room on each server (after the suite's own tests). */
function roomsOnBothServers(pair: Pair, more: () => void = () => undefined): void {
  describe('a room on each server (XEP-0045 across servers)', () => {
    const rooms = { output: '' } as { output: string; fromRemoteRoom: Element; fromLocalRoom: Element };
    before(async () => {
      Object.assign(
        rooms,
        await meetInRooms(
          pair.alice,
          { jid: 'user1@beta.test', password: 'pass1', host: PROSODY_IP, c2s: PROSODY_C2S },
          PROSODY_ROOM,
          UZZAP_ROOM,
        ),
      );
    });

    itPasses(() => rooms.output, S2S_MUC_CHECKS);

    it("the Uzzap user gets the message of Prosody's user in Prosody's room, from its occupant JID", () => {
      assert.equal(rooms.fromRemoteRoom.attrs.from, `${PROSODY_ROOM}/beta-user`);
      assert.equal(rooms.fromRemoteRoom.attrs.to, pair.alice.jid?.toString());
    });

    it("the Uzzap user gets the message of Prosody's user in Uzzap's room, from its occupant JID", () => {
      assert.equal(rooms.fromLocalRoom.attrs.from, `${UZZAP_ROOM}/beta-user`);
      assert.equal(rooms.fromLocalRoom.attrs.to, pair.alice.jid?.toString());
    });

    more();
  });
}

describe('interop: federation with Prosody (s2s, STARTTLS, dialback)', function () {
  this.timeout(120_000);
  const pair = federation('dialback');

  itPasses(() => pair.output, S2S_CHECKS);

  it("Uzzap answered over Prosody's connection (XEP-0288): it authenticated no stream of its own", async () => {
    assert.ok((await metric(pair.server, 'uzzap_s2s_stanzas_total{direction="out",domain="beta.test"}')) >= 2);
    assert.equal(await metric(pair.server, 'uzzap_s2s_streams{direction="out",state="authenticated"}'), 0);
    assert.equal(await metric(pair.server, 'uzzap_s2s_streams{direction="in",state="authenticated"}'), 1);
  });

  roomsOnBothServers(pair);
});

describe('interop: federation with Prosody by certificates (s2s_secure_auth, SASL EXTERNAL)', function () {
  this.timeout(120_000);
  const pair = federation('certificates');

  itPasses(() => pair.output, S2S_CHECKS);

  it('each server authenticated its domain to the other with SASL EXTERNAL, none by dialback', async () => {
    const s = pair.server;
    assert.equal(await metric(s, 'uzzap_s2s_sasl_external_total{direction="in",result="success"}'), 1, 'Prosody → Uzzap');
    assert.equal(await metric(s, 'uzzap_s2s_sasl_external_total{direction="out",result="success"}'), 1, 'Uzzap → Prosody');
    for (const direction of ['in', 'out'])
      for (const result of ['valid', 'invalid', 'error'])
        assert.equal(
          await metric(s, `uzzap_s2s_dialback_total{direction="${direction}",result="${result}"}`),
          0,
          `dialback ${direction} ${result}`,
        );
    assert.equal(await metric(s, 'uzzap_s2s_streams{direction="out",state="authenticated"}'), 1);
    assert.equal(await metric(s, 'uzzap_s2s_streams{direction="in",state="authenticated"}'), 1);
  });

  it("Prosody's log: EXTERNAL accepted from uzzap.test and succeeded to it", () => {
    const log = readFileSync(join(pair.dir, 'prosody.log'), 'utf8');
    assert.match(log, /Accepting SASL EXTERNAL identity from uzzap\.test/);
    assert.match(log, /SASL EXTERNAL with uzzap\.test succeeded/);
  });

  roomsOnBothServers(pair, () => {
    it("the rooms' domains: Prosody's by EXTERNAL (*.beta.test), Uzzap's by dialback that Prosody checked over an EXTERNAL stream", async () => {
      const s = pair.server;
      // in: beta.test and conference.beta.test → uzzap.test, and Prosody's callback stream beta.test → conference.uzzap.test
      assert.equal(await metric(s, 'uzzap_s2s_sasl_external_total{direction="in",result="success"}'), 3);
      // out: uzzap.test → beta.test, uzzap.test → conference.beta.test
      assert.equal(await metric(s, 'uzzap_s2s_sasl_external_total{direction="out",result="success"}'), 2);
      for (const direction of ['in', 'out'])
        assert.equal(await metric(s, `uzzap_s2s_sasl_external_total{direction="${direction}",result="failure"}`), 0);
      // conference.uzzap.test on the stream to beta.test (Prosody 0.12 always calls back: no XEP-0344 shortcut)
      assert.equal(await metric(s, 'uzzap_s2s_dialback_total{direction="out",result="valid"}'), 1);
      assert.equal(await metric(s, 'uzzap_s2s_dialback_total{direction="in",result="valid"}'), 0);
      const log = readFileSync(join(pair.dir, 'prosody.log'), 'utf8');
      // Prosody's log names the local host of each authentication
      assert.match(log, /conference\.beta\.test:saslauth\tdebug\tSASL EXTERNAL with uzzap\.test succeeded/);
      assert.match(log, /conference\.beta\.test:saslauth\tinfo\tAccepting SASL EXTERNAL identity from uzzap\.test/);
      assert.match(log, /beta\.test:saslauth\tdebug\tSASL EXTERNAL with conference\.uzzap\.test succeeded/);
      assert.match(log, /connection uzzap\.test->beta\.test is now authenticated for conference\.uzzap\.test/);
    });
  });
});
