// Room nicknames under PRECIS (RFC 8266, XEP-0045 §17.1) with a real third-party client:
// slixmpp's xep_0045 plugin (Debian python3-slixmpp) against conference.localhost.
// Run by `npm run test:interop`. SLIXMPP_DEBUG=1 puts slixmpp's stanza log on stderr.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';

const PY = '/usr/bin/python3';
const SCRIPT = new URL('./slixmpp_precis.py', import.meta.url).pathname;

/** The checks slixmpp_precis.py prints as `PASS <check>` lines. */
const CHECKS = [
  'room: alice creates an instant room',
  'invisible nick: emoji + VARIATION SELECTOR-16 is refused with jid-malformed',
  'invisible nick: a lone ZERO WIDTH SPACE is refused with jid-malformed',
  'invisible nick: "Romeo" + ZERO WIDTH SPACE is refused with jid-malformed',
  'look-alike nick: fullwidth "Ｒｏｍｅｏ" is refused with not-acceptable',
  'greek nick: bob enters as Ωμέγα',
  'greek nick: alice sees Ωμέγα arrive',
];

describe('interop: slixmpp room nicknames (PRECIS)', function () {
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
    assert.match(out, /^DONE passed=\d+ failed=\d+$/m, `slixmpp_precis.py did not finish:\n${out}\n${r.stderr}`);
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
