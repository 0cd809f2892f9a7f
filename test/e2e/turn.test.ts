// XEP-0215 (STUN/TURN discovery with TURN REST API credentials) and XEP-0157 (contact
// addresses), over real sockets; the TURN credentials are tried on a real coturn
// (Debian `coturn`, started here on loopback with the shared secret).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import type { Server } from '../../src/server.js';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../helpers/server.js';
import { connect, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { turnCredential } from '../../xeps/0215-extdisco/index.js';

const NS = 'urn:xmpp:extdisco:2';
const SECRET = 'turn-s3cret';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const services = (c: XmppClient, type?: string) => iq(c, xml('iq', { type: 'get', to: 'localhost' }, xml('services', { xmlns: NS, ...(type ? { type } : {}) })));

/** Allocate a relay on coturn with these credentials (turnutils_uclient: exit 0 = allocated and relayed). */
async function allocate(port: number, username: string, password: string): Promise<boolean> {
  const r = await promisify(execFile)('turnutils_uclient', ['-u', username, '-w', password, '-p', String(port), '-e', '127.0.0.1', '-n', '1', '-m', '1', '-y', '127.0.0.1'], {
    timeout: 20_000,
  }).then(
    () => true,
    () => false,
  );
  return r;
}

describe('XEP-0215 external services (STUN/TURN) and XEP-0157 contact addresses', function () {
  this.timeout(60_000);
  let server: Server;
  let turnPort: number;
  let coturn: ChildProcess | undefined;
  const clients: XmppClient[] = [];

  before(async () => {
    turnPort = await freePort();
    server = await startServer({
      users: { alice: 'secret' },
      config: {
        modules: {
          turn: { host: `127.0.0.1:${turnPort}`, secret: SECRET, ttl: 600 },
          contact: { abuse: 'xmpp:abuse@localhost,mailto:abuse@example.org', support: ['https://example.org/help'] },
        },
      },
    });
  });
  after(async () => {
    await stopAll(...clients);
    coturn?.kill('SIGKILL');
    await server?.stop();
  });

  it('the environment names are the public contract (UZZAP_TURN_*, UZZAP_CONTACT_*); a secret of digits stays as written', () => {
    const { config } = loadConfig({
      env: { UZZAP_TURN_HOST: 'turn.example.org:3479', UZZAP_TURN_SECRET: '007123', UZZAP_CONTACT_ABUSE: 'xmpp:a@example.org,mailto:a@example.org' },
    });
    const mods = config.modules as unknown as Record<string, Record<string, unknown>>;
    assert.deepEqual(mods.turn, { host: 'turn.example.org:3479', secret: '007123' });
    assert.equal(mods.contact!.abuse, 'xmpp:a@example.org,mailto:a@example.org');
  });

  it('lists STUN and TURN (udp, tcp); TURN with an expiring REST API credential for this user', async () => {
    const alice = await connect(server, 'alice');
    clients.push(alice);
    const info = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
    const r = await services(alice);
    const list = r.getChild('services', NS)!.getChildren('service');
    assert.deepEqual(list.map((s) => `${s.attrs.type}/${s.attrs.transport}`).sort(), ['stun/tcp', 'stun/udp', 'turn/tcp', 'turn/udp']);
    for (const s of list) {
      assert.equal(s.attrs.host, '127.0.0.1');
      assert.equal(s.attrs.port, String(turnPort));
    }
    const turn = list.find((s) => s.attrs.type === 'turn')!;
    assert.equal(turn.attrs.restricted, '1');
    const [expiry, user] = turn.attrs.username!.split(':');
    assert.equal(user, 'alice@localhost');
    assert.ok(Math.abs(Number(expiry) - (Date.now() / 1000 + 600)) < 30, 'expires after the configured ttl');
    assert.equal(turn.attrs.password, createHmac('sha1', SECRET).update(turn.attrs.username!).digest('base64'));
    assert.ok(Math.abs(Date.parse(turn.attrs.expires!) - Number(expiry) * 1000) < 1000);
    assert.equal(list.find((s) => s.attrs.type === 'stun')!.attrs.password, undefined, 'STUN needs no credential');
    // one type only (§3.2), and fresh credentials for one service (§3.3)
    assert.deepEqual((await services(alice, 'stun')).getChild('services')!.getChildren('service').map((s) => s.attrs.type), ['stun', 'stun']);
    const cred = await iq(
      alice,
      xml('iq', { type: 'get', to: 'localhost' }, xml('credentials', { xmlns: NS }, xml('service', { type: 'turn', host: '127.0.0.1', port: String(turnPort) }))),
    );
    assert.ok(cred.getChild('credentials', NS)!.getChild('service')!.attrs.password);
    const none = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('credentials', { xmlns: NS }, xml('service', { type: 'turn', host: 'elsewhere' }))));
    assert.ok(none.getChild('error')?.getChild('item-not-found'));
  });

  it('coturn accepts the credentials the server gives, and refuses wrong or expired ones', async () => {
    assert.equal(spawnSync('turnserver', ['--version']).error, undefined, 'coturn is not installed: apt-get install coturn');
    coturn = spawn(
      'turnserver',
      ['-n', '--listening-ip=127.0.0.1', `--listening-port=${turnPort}`, '--relay-ip=127.0.0.1', '--min-port=49160', '--max-port=49300',
        '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=localhost', '--no-tls', '--no-dtls', '--no-cli', '--allow-loopback-peers',
        '--log-file=stdout', '--simple-log'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    coturn.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    await until(() => log.includes('Total General servers'), 'coturn listening', 10_000);
    const alice = await connect(server, 'alice', { resource: 'call' });
    clients.push(alice);
    const turn = (await services(alice, 'turn')).getChild('services')!.getChildren('service').find((s) => s.attrs.transport === 'udp')!;
    assert.equal(await allocate(turnPort, turn.attrs.username!, turn.attrs.password!), true, `allocation refused:\n${log.slice(-2000)}`);
    assert.equal(await allocate(turnPort, turn.attrs.username!, 'not-the-password'), false, 'a wrong password is refused');
    const expired = turnCredential(SECRET, 'alice@localhost', Math.floor(Date.now() / 1000) - 60);
    assert.equal(await allocate(turnPort, expired.username, expired.password), false, 'an expired credential is refused');
  });

  it('XEP-0157: contact addresses in the server disco#info', async () => {
    const alice = await connect(server, 'alice', { resource: 'info' });
    clients.push(alice);
    const info = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const form = info
      .getChild('query')!
      .getChildren('x')
      .find((f) => f.getChildren('field').some((v) => v.getChildText('value') === 'http://jabber.org/network/serverinfo'))!;
    const field = (v: string) => form.getChildren('field').find((f) => f.attrs.var === v)?.getChildren('value').map((e) => e.getText());
    assert.deepEqual(field('abuse-addresses'), ['xmpp:abuse@localhost', 'mailto:abuse@example.org']);
    assert.deepEqual(field('support-addresses'), ['https://example.org/help']);
    assert.equal(field('admin-addresses'), undefined);
  });

  it('without UZZAP_TURN_HOST nothing is announced', async () => {
    const plain = await startServer({ users: { bob: 'secret' } });
    try {
      const bob = await connect(plain, 'bob');
      clients.push(bob);
      const r = await services(bob);
      assert.ok(r.getChild('error')?.getChild('service-unavailable'), r.toString());
    } finally {
      await plain.stop();
    }
  });
});
