// Shared by the interop tests that drive a slixmpp probe script: run it with the
// system Python (asynchronously: the server runs in this process and must keep
// answering) and turn its `PASS <check>` / `FAIL <check>: <why>` lines into tests.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';

export const PY = '/usr/bin/python3';

/** fails the suite early, with the fix, when Debian's python3-slixmpp is missing */
export function requireSlixmpp(): void {
  const probe = spawnSync(PY, ['-c', 'import slixmpp']);
  assert.equal(probe.status, 0, 'python3-slixmpp is not installed: apt-get install python3-slixmpp');
}

/**
 * Runs test/interop/<script> with `args` and returns its stdout, once it printed
 * its final `DONE passed=N failed=M` line. SLIXMPP_DEBUG=1 (inherited by the
 * script) puts slixmpp's stanza log on stderr; it is passed through here.
 */
export async function runProbe(script: string, args: string[], timeoutMs = 25_000): Promise<string> {
  const path = new URL(`./${script}`, import.meta.url).pathname;
  const r = await promisify(execFile)(PY, [path, ...args], { timeout: timeoutMs }).catch(
    (e: { stdout?: string; stderr?: string; message: string }) => ({ stdout: e.stdout ?? '', stderr: `${e.message}\n${e.stderr ?? ''}` }),
  );
  if (process.env.SLIXMPP_DEBUG) process.stderr.write(r.stderr);
  assert.match(r.stdout, /^DONE passed=\d+ failed=\d+$/m, `${script} did not finish:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** one test asserting no FAIL/ABORT line, and one per expected `PASS <check>` line */
export function itPasses(output: () => string, checks: readonly string[]): void {
  it('reports no failed check', () => {
    const fails = output()
      .split('\n')
      .filter((l) => /^(FAIL|ABORT) /.test(l));
    assert.deepEqual(fails, [], output());
  });
  it('reports exactly the expected checks', () => {
    const passes = output()
      .split('\n')
      .filter((l) => l.startsWith('PASS '))
      .map((l) => l.slice(5));
    assert.deepEqual(passes, [...checks], output());
  });
  for (const name of checks) {
    it(name, () => {
      assert.ok(output().split('\n').includes(`PASS ${name}`), `no "PASS ${name}" line in:\n${output()}`);
    });
  }
}

/**
 * The whole suite for a probe that needs only alice and bob on a default server:
 * start it, run test/interop/<script> against its client port, check the PASS lines.
 */
export function describeProbe(title: string, script: string, checks: readonly string[]): void {
  describe(title, function () {
    this.timeout(30_000);
    let server: Server | undefined;
    let out = '';
    before(async () => {
      requireSlixmpp();
      server = await startServer({ users: { alice: 'secret', bob: 'secret' } });
      out = await runProbe(script, ['127.0.0.1', String(server.ports.c2s)]);
    });
    after(() => server?.stop());
    itPasses(() => out, checks);
  });
}
