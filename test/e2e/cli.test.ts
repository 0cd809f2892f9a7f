// The `uzzap` command as a user runs it: a real server process started from
// environment variables, accounts managed while it runs, signals.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { BACKEND, REDIS_URL, newStorageSlot, startServer, testCert, type StorageSlot } from '../helpers/server.js';
import { connect, expectStanza, iq, stopAll, until, xml } from '../helpers/clients.js';
import { SERVICE, adminSet, createRoom } from '../helpers/muc.js';
import { HEADER, RawClient, openToSasl, rawSession, scramLogin } from '../helpers/raw.js';

const BIN = resolve('bin/uzzap.js');

/** Wait until a process's output (read through `log`) shows `text`; on a timeout the error carries the output. */
async function logged(log: () => string, text: string, ms: number): Promise<void> {
  await until(() => log().includes(text), `"${text}" in the log`, ms).catch((err: Error) => {
    throw new Error(`${err.message}: ${log()}`);
  });
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

describe('uzzap CLI and process lifecycle (e2e)', function () {
  this.timeout(60_000);
  let slot: StorageSlot;
  let env: NodeJS.ProcessEnv;
  let cwd: string;

  before(async () => {
    slot = await newStorageSlot();
    cwd = mkdtempSync(join(tmpdir(), 'uzzap-cli-'));
    const { cert, key } = await testCert();
    env = {
      PATH: process.env.PATH,
      UZZAP_DOMAIN: 'localhost',
      UZZAP_DATA_DIR: slot.dataDir,
      UZZAP_POSTGRES_URL: slot.postgresUrl,
      UZZAP_REDIS_URL: BACKEND === 'postgres' ? REDIS_URL : '',
      UZZAP_TLS_CERT: cert,
      UZZAP_TLS_KEY: key,
      UZZAP_LOG_LEVEL: 'info',
      UZZAP_SASL_SCRAM_ITERATIONS: '4096',
    };
  });

  const uzzap = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8' });

  it('user add / list / passwd / del, with clear errors', () => {
    let r = uzzap('user', 'add', 'Alice@localhost', 'secret');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /created alice@localhost/);
    r = uzzap('user', 'add', 'alice@localhost', 'again');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already exists/);
    r = uzzap('user', 'add', 'bad@@jid', 'x');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /invalid JID/);
    r = uzzap('user', 'add', 'eve@elsewhere.example', 'x');
    assert.match(r.stderr, /not on this server's domain/);
    r = uzzap('user', 'add', 'bob@localhost', 'secret');
    assert.equal(r.status, 0, r.stderr);
    r = uzzap('user', 'list');
    assert.deepEqual(r.stdout.trim().split('\n'), ['alice@localhost', 'bob@localhost']);
    r = uzzap('user', 'passwd', 'bob@localhost', 'newpass');
    assert.equal(r.status, 0, r.stderr);
    r = uzzap('user', 'del', 'nobody@localhost');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no such user/);
  });

  it('user del removes what the account left elsewhere: archive, room affiliation, contacts’ roster entries', async () => {
    // dave and erin chat, erin has dave in her roster, dave is a member of erin's persistent room
    let server = await startServer({ slot, users: { dave: 'secret', erin: 'secret' } });
    const dave = await connect(server, 'dave');
    const erin = await connect(server, 'erin');
    await iq(erin, xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'dave@localhost' }))));
    await createRoom(erin, 'club', 'Erin', { 'muc#roomconfig_persistentroom': '1' });
    assert.equal((await adminSet(erin, 'club', xml('item', { jid: 'dave@localhost', affiliation: 'member' }))).attrs.type, 'result');
    await erin.send(xml('message', { to: 'dave@localhost', type: 'chat' }, xml('body', {}, 'hello dave')));
    await expectStanza(dave, (s) => s.is('message') && s.getChildText('body') === 'hello dave');
    await until(async () => {
      await server.storage.archive.flush();
      return (await server.storage.archive.query({ owner: 'dave@localhost', max: 10, fromEnd: false })).items.length === 1;
    }, 'archived for dave');
    await stopAll(dave, erin);
    await server.stop();

    const r = uzzap('user', 'del', 'dave@localhost');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /deleted dave@localhost/);

    server = await startServer({ slot });
    try {
      assert.equal(await server.storage.accounts.get('dave'), undefined);
      assert.equal((await server.storage.archive.query({ owner: 'dave@localhost', max: 10, fromEnd: false })).items.length, 0, 'archive');
      assert.equal(await server.storage.roster.getItem('erin', 'dave@localhost'), undefined, "erin's roster");
      const affiliations = (await server.storage.rooms.all(SERVICE)).find((room) => room.name === 'club')?.affiliations ?? [];
      assert.deepEqual(
        affiliations.filter((a) => a.jid === 'dave@localhost'),
        [],
        'room affiliation',
      );
    } finally {
      await server.stop();
    }
  });

  it('reports an unreachable database clearly', function () {
    if (BACKEND !== 'postgres') {
      // the embedded run checks an unusable data directory instead
      writeFileSync(join(cwd, 'a-file'), '');
      const r = spawnSync(process.execPath, [BIN, 'user', 'list'], {
        cwd,
        env: { ...env, UZZAP_DATA_DIR: join(cwd, 'a-file', 'data') },
        encoding: 'utf8',
      });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /cannot open storage/);
      return;
    }
    const r = spawnSync(process.execPath, [BIN, 'user', 'list'], {
      cwd,
      env: { ...env, UZZAP_POSTGRES_URL: 'postgres://nobody@127.0.0.1:1/none' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot open storage \(Postgres/);
  });

  it('reports every configuration problem at once', () => {
    const r = spawnSync(process.execPath, [BIN, 'user', 'list'], {
      cwd,
      env: { ...env, UZZAP_C2S_PORT: 'abc', UZZAP_REGISTRATION: 'maybe' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /UZZAP_C2S_PORT/);
    assert.match(r.stderr, /UZZAP_REGISTRATION/);
  });

  it('user add-bulk creates 2,000 accounts quickly and rejects a bad file as a whole', () => {
    const file = join(cwd, 'users.txt');
    writeFileSync(file, Array.from({ length: 2000 }, (_, i) => `bulk${i}@localhost pw${i}`).join('\n') + '\n');
    const t = Date.now();
    let r = uzzap('user', 'add-bulk', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /created 2000 accounts/);
    assert.ok(Date.now() - t < 20_000, `took ${Date.now() - t} ms`);
    writeFileSync(file, 'ok@localhost pw\nbroken-line\n');
    r = uzzap('user', 'add-bulk', file);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /line 2/);
  });

  it("an admin's shutdown command stops the process cleanly (exit 0)", async () => {
    assert.equal(uzzap('user', 'add', 'root@localhost', 'pw').status, 0);
    const port = await freePort();
    const proc = spawn(process.execPath, [BIN, 'start'], {
      cwd,
      env: { ...env, UZZAP_C2S_PORT: String(port), UZZAP_C2S_TLS_PORT: '0', UZZAP_HTTP_PORT: '0', UZZAP_S2S_PORT: '0', UZZAP_S2S_TLS_PORT: '0', UZZAP_ADMINS: 'root@localhost' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      await logged(() => log, 'Uzzap listening', 15_000);
      const c = await rawSession(port, 'root', 'pw');
      c.send(
        `<iq type='set' id='s1' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#shutdown'/></iq>`,
      );
      const sid = /sessionid=["']([^"']+)/.exec(await c.waitFor(/<iq[^>]*id=.s1.[\s\S]*?<\/iq>/))![1]!;
      c.send(
        `<iq type='set' id='s2' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#shutdown' sessionid='${sid}' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='delay'><value>1</value></field></x></command></iq>`,
      );
      assert.match(await c.waitFor(/<iq[^>]*id=.s2.[\s\S]*?<\/iq>/), /status=.completed/);
      await c.waitFor(/<system-shutdown/, 5000);
      assert.equal(await exited, 0);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });

  describe('a running server', () => {
    let proc: ChildProcess;
    let port: number;
    let out = '';
    before(async () => {
      port = await freePort();
      // log_level comes from uzzap.yaml here (the environment would override the file)
      const sEnv: NodeJS.ProcessEnv = {
        ...env,
        UZZAP_C2S_PORT: String(port),
        UZZAP_C2S_TLS_PORT: '0',
        UZZAP_HTTP_PORT: '0',
        UZZAP_COMPONENT_PORT: '0',
        UZZAP_S2S_PORT: '0',
        UZZAP_S2S_TLS_PORT: '0',
      };
      delete sEnv.UZZAP_LOG_LEVEL;
      writeFileSync(join(cwd, 'uzzap.yaml'), 'log_level: info\n');
      proc = spawn(process.execPath, [BIN, 'start'], { cwd, env: sEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await logged(() => out, 'Uzzap listening', 15_000);
    });
    after(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });

    it('logs the chosen ports (port 0 = any free port)', () => {
      assert.match(out, new RegExp(`"c2s":${port}`));
      assert.match(out, /"http":[1-9]\d*/);
    });

    it('sees accounts the CLI adds, changes and deletes while it runs', async () => {
      assert.equal(uzzap('user', 'add', 'carol@localhost', 'pw1').status, 0);
      let c = await openToSasl(port);
      assert.match(await scramLogin(c, 'SCRAM-SHA-256', 'carol', 'pw1'), /^<success/);
      c.end();
      assert.equal(uzzap('user', 'passwd', 'carol@localhost', 'pw2').status, 0);
      c = await openToSasl(port);
      assert.match(await scramLogin(c, 'SCRAM-SHA-256', 'carol', 'pw1'), /not-authorized/);
      assert.match(await scramLogin(c, 'SCRAM-SHA-256', 'carol', 'pw2'), /^<success/);
      c.end();
      assert.equal(uzzap('user', 'del', 'carol@localhost').status, 0);
      c = await openToSasl(port);
      assert.match(await scramLogin(c, 'SCRAM-SHA-256', 'carol', 'pw2'), /not-authorized/);
      c.end();
    });

    it('`uzzap status` prints a live summary from the running server', async () => {
      const http = /"http":(\d+)/.exec(out)![1]!;
      const r = spawnSync(process.execPath, [BIN, 'status', '--url', `http://127.0.0.1:${http}`], { cwd, env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Uzzap \S+ serving localhost/);
      assert.match(r.stdout, /sessions\s+\d+ bound/);
      assert.match(r.stdout, /storage\s+(sqlite|postgres), [\d.]+ ms round-trip/);
      assert.match(r.stdout, /event loop\s+lag/);
      assert.match(r.stdout, /modules\s+.*\badmin\b/);
      const json = spawnSync(process.execPath, [BIN, 'status', '--json', '--url', `http://127.0.0.1:${http}`], {
        cwd,
        env,
        encoding: 'utf8',
      });
      assert.equal(JSON.parse(json.stdout).domain, 'localhost');
      const down = spawnSync(process.execPath, [BIN, 'status', '--url', 'http://127.0.0.1:1'], { cwd, env, encoding: 'utf8' });
      assert.equal(down.status, 1);
      assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
    });

    it('SIGHUP reloads the config file: live settings and module enablement apply, sessions stay', async () => {
      assert.equal(uzzap('user', 'add', 'dora@localhost', 'pw').status, 0);
      const c = await rawSession(port, 'dora', 'pw');
      const version = async (id: string): Promise<string> => {
        c.send(`<iq type='get' id='${id}' to='localhost'><query xmlns='jabber:iq:version'/></iq>`);
        return c.waitFor(new RegExp(`<iq[^>]*id=.${id}.[\\s\\S]*?</iq>`));
      };
      assert.match(await version('v1'), /type=.result/);
      const cmd = async (id: string): Promise<string> => {
        c.send(
          `<iq type='set' id='${id}' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#get-registered-users-num'/></iq>`,
        );
        return c.waitFor(new RegExp(`<iq[^>]*id=.${id}.[\\s\\S]*?</iq>`));
      };
      assert.match(await cmd('c1'), /<forbidden/);
      const flag = uzzap('user', 'admin', 'dora@localhost');
      assert.equal(flag.status, 0, flag.stderr);
      assert.match(flag.stdout, /dora@localhost is now an admin/);
      const reloads = () => out.split('\n').filter((l) => l.includes('configuration reloaded'));
      const before = reloads().length;
      writeFileSync(
        join(cwd, 'uzzap.yaml'),
        'log_level: debug\nbind_address: 127.0.0.1\nlimits:\n  max_resources: 4\nmodules:\n  disabled: [version]\n',
      );
      try {
        proc.kill('SIGHUP');
        await until(() => reloads().length > before, 'a reload logged').catch((err: Error) => {
          throw new Error(`${err.message}: ${out}`);
        });
        const report = JSON.parse(reloads()[before]!);
        assert.deepEqual(report.applied, ['log_level', 'limits.max_resources', 'admin flags on accounts']);
        assert.deepEqual(report.needsRestart, ['bind_address']);
        assert.deepEqual(report.modulesUnloaded, ['version']);
        // the session opened before the reload is still there, and the module is gone
        assert.match(await version('v2'), /service-unavailable/);
        assert.match(await cmd('c2'), /status=.completed/);
        c.end();
      } finally {
        // the file this server started with, reloaded: the other tests see its first configuration
        writeFileSync(join(cwd, 'uzzap.yaml'), 'log_level: info\n');
        const done = reloads().length;
        proc.kill('SIGHUP');
        await until(() => reloads().length > done, 'the original configuration reloaded');
      }
    });

    it('SIGTERM sends <system-shutdown/> to every stream and exits 0 within seconds', async () => {
      const c = await RawClient.connect(port);
      c.send(HEADER());
      await c.waitFor('</stream:features>');
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      const t = Date.now();
      proc.kill('SIGTERM');
      await c.waitFor(/<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      assert.equal(await exited, 0);
      assert.ok(Date.now() - t < 20_000);
    });
  });
});
