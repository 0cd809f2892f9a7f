// Interop with a real third-party client: slixmpp (Debian python3-slixmpp).
// Run by `npm run test:interop` (CI installs the package first).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';

const PY = '/usr/bin/python3';
const SCRIPT = new URL('./slixmpp_client.py', import.meta.url).pathname;

describe('interop: slixmpp', function () {
  this.timeout(30_000);
  let server: Server;
  before(async () => {
    const probe = spawnSync(PY, ['-c', 'import slixmpp']);
    assert.equal(probe.status, 0, 'python3-slixmpp is not installed: apt-get install python3-slixmpp');
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
  });
  after(() => server?.stop());

  // asynchronous: the server runs in this process and must keep answering
  const run = async (mech?: string): Promise<string> => {
    const r = await promisify(execFile)(PY, [SCRIPT, '127.0.0.1', String(server.ports.c2s), ...(mech ? [mech] : [])], {
      timeout: 25_000,
    }).catch((e: { stdout: string; stderr: string }) => assert.fail(`slixmpp failed:\n${e.stdout}\n${e.stderr}`));
    assert.match(r.stdout, /message delivered/);
    assert.match(r.stdout, /OK$/m);
    return r.stdout;
  };

  it('logs in with its preferred mechanism (SCRAM-*-PLUS over tls-unique), chats, pings, discovers', async () => {
    assert.match(await run(), /with SCRAM-SHA-(256|1)-PLUS/);
  });

  for (const mech of ['SCRAM-SHA-1-PLUS', 'PLAIN']) {
    it(`logs in with ${mech}`, async () => {
      assert.match(await run(mech), new RegExp(`with ${mech}`));
    });
  }
});
