// Federation with a real server: Debian's ejabberd serves gamma.test on 127.0.0.4,
// Uzzap serves uzzap.test on 127.0.0.5, both on the standard s2s port 5269 (the whole
// of 127/8 is loopback). ejabberd resolves names only through /etc/hosts and DNS, so it
// runs in a private mount namespace (unshare --mount) where the test's hosts file is
// bind-mounted over /etc/hosts (the real one is never touched); Uzzap finds ejabberd
// through s2s.hosts. Self-signed certificates, so both authenticate by dialback
// (XEP-0220) over STARTTLS. A slixmpp user of ejabberd and an @xmpp/client user of
// Uzzap chat and subscribe.
//
// The ejabberd node is the test's own: its config, spool, logs and PID file live in a
// temp dir, it runs as the `ejabberd` user (setpriv, so that it stays in the process
// group the test made, which ejabberdctl's `su` would leave), under a node name and
// cookie of its own, and with epmd-less distribution on a free loopback port
// (ERL_DIST_PORT), so it neither starts an epmd nor registers with a running one.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { stopAll, type XmppClient } from '../helpers/clients.js';
import { itPasses, requireSlixmpp } from './probe.js';
import { S2S_CHECKS, converse, listening, selfSignedCert } from './s2s-peer.js';

const UZZAP_IP = '127.0.0.5';
const EJABBERD_IP = '127.0.0.4';
const EJABBERD_C2S = 15222;
const EJABBERD_USER = 'ejabberd';

function requireEjabberd(): void {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', 'ejabberd'], { encoding: 'utf8' });
  assert.match(r.stdout ?? '', /install ok installed/, 'ejabberd (the reference server) is not installed: apt-get install ejabberd');
  assert.equal(
    process.getuid?.(),
    0,
    'this test runs as root: ejabberd gets a private /etc/hosts (unshare --mount, mount --bind) and runs as the ejabberd user',
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const running = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

/** resolves true once p exited, false if it still runs after ms */
function exited(p: ChildProcess, ms: number): Promise<boolean> {
  if (!running(p)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      p.removeListener('exit', done);
      resolve(false);
    }, ms);
    const done = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    p.once('exit', done);
  });
}

/** SIGKILL to the process group p leads (spawned detached), ignoring one that is gone */
function killGroup(p: ChildProcess): void {
  try {
    if (p.pid) process.kill(-p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

describe('interop: federation with ejabberd (s2s, STARTTLS, dialback)', function () {
  this.timeout(120_000);
  let dir = '';
  let node = '';
  let ejabberd: ChildProcess | undefined;
  let server: Server | undefined;
  let alice: XmppClient | undefined;
  let output = '';

  // `setpriv … ejabberdctl --config-dir … <args>` as the ejabberd user, in a process group of its own
  const asEjabberd = (args: string[]): string[] => [
    `--reuid=${EJABBERD_USER}`,
    `--regid=${EJABBERD_USER}`,
    '--init-groups',
    'ejabberdctl',
    '--config-dir',
    join(dir, 'etc'),
    '--spool',
    join(dir, 'spool'),
    '--logs',
    join(dir, 'logs'),
    ...args,
  ];
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, HOME: dir });

  /** one ejabberdctl command against the test's node (ERL_DIST_PORT: no epmd), killed with its erl after ms */
  function ctl(args: string[], ms = 20_000): Promise<{ code: number | null; out: string }> {
    const p = spawn('setpriv', asEjabberd(args), { cwd: dir, env: env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise((resolve) => {
      let code: number | null = null;
      const finish = (): void => {
        clearTimeout(t);
        resolve({ code, out: out.trim() });
      };
      const t = setTimeout(() => {
        killGroup(p);
        out += `\n(killed after ${ms} ms)`;
        // the group is dead; its pipes close at once, this is only a bound on that
        setTimeout(finish, 2_000).unref();
      }, ms);
      p.once('error', (e) => {
        out += String(e);
        finish();
      });
      p.once('close', (c) => {
        code = c;
        finish();
      });
    });
  }

  const consoleTail = (): string => {
    try {
      return readFileSync(join(dir, 'ejabberd.out'), 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  };

  before(async () => {
    requireSlixmpp();
    requireEjabberd();
    dir = mkdtempSync(join(tmpdir(), 'uzzap-ejabberd-'));
    for (const d of ['etc', 'spool', 'logs']) mkdirSync(join(dir, d));
    const cert = selfSignedCert(dir, 'gamma.test');
    // ejabberd wants the certificate and its key in one PEM file
    writeFileSync(join(dir, 'etc', 'gamma.pem'), readFileSync(cert.crt, 'utf8') + readFileSync(cert.key, 'utf8'));
    // what ejabberd sees as /etc/hosts: the node name is …@localhost
    writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost ${hostname()}\n${UZZAP_IP} uzzap.test\n${EJABBERD_IP} gamma.test\n`);
    writeFileSync(
      join(dir, 'etc', 'ejabberd.yml'),
      `hosts: [gamma.test]
loglevel: debug
certfiles: ["${dir}/etc/gamma.pem"]
listen:
  - {port: ${EJABBERD_C2S}, ip: "${EJABBERD_IP}", module: ejabberd_c2s, starttls: true}
  - {port: 5269, ip: "${EJABBERD_IP}", module: ejabberd_s2s_in}
s2s_use_starttls: optional
outgoing_s2s_families: [ipv4]
s2s_max_retry_delay: 5
auth_method: internal
acl: {local: {user_regexp: ""}}
access_rules: {local: {allow: local}, s2s: {allow: all}}
shaper_rules: {max_user_sessions: 10}
modules: {mod_disco: {}, mod_roster: {}, mod_ping: {}, mod_s2s_dialback: {}, mod_stream_mgmt: {}}
`,
    );
    // sourced by ejabberdctl (bash), for the node and for every ctl command
    node = `uzzapgamma${randomBytes(4).toString('hex')}@localhost`;
    const cookie = randomBytes(16).toString('hex');
    writeFileSync(
      join(dir, 'etc', 'ejabberdctl.cfg'),
      `ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -setcookie ${cookie} -kernel inet_dist_use_interface {127,0,0,1}"
ERL_DIST_PORT=${await freePort()}
ERLANG_NODE=${node}
EJABBERD_PID_PATH=${dir}/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
`,
    );
    writeFileSync(join(dir, 'etc', 'inetrc'), '{lookup,["file","native"]}.\n');
    const own = spawnSync('chown', ['-R', `${EJABBERD_USER}:${EJABBERD_USER}`, dir], { encoding: 'utf8' });
    assert.equal(own.status, 0, own.stderr);

    const log = openSync(join(dir, 'ejabberd.out'), 'a');
    ejabberd = spawn(
      'unshare',
      ['--mount', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', join(dir, 'hosts'), 'setpriv', ...asEjabberd(['foreground'])],
      { cwd: dir, env: env(), detached: true, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const alive = (): void => {
      if (ejabberd && !running(ejabberd))
        throw new Error(`ejabberd exited (${ejabberd.exitCode ?? ejabberd.signalCode}):\n${consoleTail()}`);
    };
    await listening(EJABBERD_IP, 5269, 30_000, alive);
    await listening(EJABBERD_IP, EJABBERD_C2S, 10_000, alive);
    const reg = await ctl(['register', 'user1', 'gamma.test', 'pass1']);
    assert.equal(reg.code, 0, `ejabberdctl register: ${reg.out}`);

    server = await startServer({
      users: { alice: 'secret' },
      config: {
        domain: 'uzzap.test',
        bind_address: UZZAP_IP,
        s2s: { port: 5269, hosts: { 'gamma.test': `${EJABBERD_IP}:5269` }, require_valid_certs: false },
      },
    });
    ({ alice, output } = await converse(server, UZZAP_IP, {
      jid: 'user1@gamma.test',
      password: 'pass1',
      host: EJABBERD_IP,
      c2s: EJABBERD_C2S,
    }));
  });

  after(async () => {
    try {
      await stopAll(alice);
      await server?.stop();
    } finally {
      if (ejabberd && running(ejabberd)) {
        // ejabberdctl stop, else SIGKILL to the group (unshare → ejabberdctl → beam.smp and its port programs)
        await ctl(['stop'], 15_000);
        if (!(await exited(ejabberd, 15_000))) {
          killGroup(ejabberd);
          await exited(ejabberd, 5_000);
        }
      }
      // the node's own PID file (removed when it stops), should its VM have outlived the group;
      // checked first, as a PID can be reused
      try {
        const pid = Number(readFileSync(join(dir, 'ejabberd.pid'), 'utf8').trim());
        if (dir && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(node)) process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
      if (dir && !process.env.UZZAP_KEEP_EJABBERD) rmSync(dir, { recursive: true, force: true });
    }
  });

  itPasses(() => output, S2S_CHECKS);
});
