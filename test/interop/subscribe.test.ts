// RFC 6121 subscriptions with a real third-party client: slixmpp (Debian
// python3-slixmpp). Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts
// slixmpp's stanza log on stderr.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';

const PY = '/usr/bin/python3';
const SCRIPT = new URL('./slixmpp_subscribe.py', import.meta.url).pathname;

/** The checks slixmpp_subscribe.py prints as `PASS <check>` lines. */
const CHECKS = [
  'offline request: delivered at login from the bare JID',
  'offline request: the XEP-0172 nick is kept',
  'offline request: the XEP-0379 preauth token is kept',
  'offline request: the id is kept',
  'approval: alice gets subscribed from bob',
  "approval: alice's roster shows subscription to",
];

describe('interop: slixmpp subscriptions (RFC 6121)', function () {
  this.timeout(30_000);
  let server: Server;
  let out = '';
  before(async () => {
    const probe = spawnSync(PY, ['-c', 'import slixmpp']);
    assert.equal(probe.status, 0, 'python3-slixmpp is not installed: apt-get install python3-slixmpp');
    server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
    // asynchronous: the server runs in this process and must keep answering
    const r = await promisify(execFile)(PY, [SCRIPT, '127.0.0.1', String(server.ports.c2s)], { timeout: 25_000 }).catch(
      (e: { stdout?: string; stderr?: string; message: string }) => ({ stdout: e.stdout ?? '', stderr: `${e.message}\n${e.stderr ?? ''}` }),
    );
    out = r.stdout;
    if (process.env.SLIXMPP_DEBUG) process.stderr.write(r.stderr);
    assert.match(out, /^DONE passed=\d+ failed=\d+$/m, `slixmpp_subscribe.py did not finish:\n${out}\n${r.stderr}`);
  });
  after(() => server?.stop());

  it('reports no failed check', () => {
    const fails = out.split('\n').filter((l) => /^(FAIL|ABORT) /.test(l));
    assert.deepEqual(fails, [], out);
  });

  for (const name of CHECKS) {
    it(name, () => {
      assert.ok(out.split('\n').includes(`PASS ${name}`), `no "PASS ${name}" line in:\n${out}`);
    });
  }
});
