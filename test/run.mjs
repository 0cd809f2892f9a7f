#!/usr/bin/env node
// `npm test`: builds, then runs the suites on the embedded backend (SQLite +
// in-memory registry), then the contract and e2e suites again on Postgres and
// Redis when UZZAP_TEST_POSTGRES_URL / UZZAP_TEST_REDIS_URL are set.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mocha = join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
const extra = process.argv.slice(2);

let passed = 0;
let failed = 0;

/** Run mocha, echo its output, and add its passing/failing counts to the totals. */
function run(label, env, specs) {
  console.log(`\n=== ${label} ===`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', mocha, ...specs, ...extra], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, FORCE_COLOR: '0', ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      out += d.toString();
    });
    child.on('close', (code) => {
      const p = /^\s*(\d+) passing/m.exec(out);
      const f = /^\s*(\d+) failing/m.exec(out);
      passed += p ? Number(p[1]) : 0;
      failed += f ? Number(f[1]) : code === 0 ? 0 : 1;
      resolve(code === 0);
    });
  });
}

const build = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(1);

const results = [];
results.push([
  'embedded (SQLite + memory registry)',
  await run('embedded backend: SQLite + memory registry', { UZZAP_TEST_BACKEND: 'embedded' }, [
    'test/unit/**/*.test.ts',
    'test/contract/**/*.test.ts',
    'test/e2e/**/*.test.ts',
  ]),
]);

const pgUrl = process.env.UZZAP_TEST_POSTGRES_URL;
const redisUrl = process.env.UZZAP_TEST_REDIS_URL;
if (pgUrl && redisUrl) {
  results.push([
    'postgres + redis',
    await run('real backends: Postgres + Redis', { UZZAP_TEST_BACKEND: 'postgres' }, [
      'test/contract/**/*.test.ts',
      'test/e2e/**/*.test.ts',
      // several nodes of one cluster need Redis: this pass only
      'test/cluster/**/*.test.ts',
    ]),
  ]);
  // every test made its own schema (t_<random>) in the test database: drop them
  try {
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    const { rows } = await c.query("SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9a-f]{12}$'");
    for (const r of rows) await c.query(`DROP SCHEMA ${r.nspname} CASCADE`);
    await c.end();
  } catch (err) {
    console.log(`note: could not drop the test schemas: ${err.message}`);
  }
} else {
  console.log(
    '\nSKIPPED: the contract, e2e and cluster suites on Postgres/Redis did not run because ' +
      (!pgUrl && !redisUrl
        ? 'UZZAP_TEST_POSTGRES_URL and UZZAP_TEST_REDIS_URL are'
        : !pgUrl
          ? 'UZZAP_TEST_POSTGRES_URL is'
          : 'UZZAP_TEST_REDIS_URL is') +
      ' not set.\n  To run them: UZZAP_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test UZZAP_TEST_REDIS_URL=redis://127.0.0.1:6379/15 npm test',
  );
}
console.log('\n=== summary ===');
for (const [label, ok] of results) console.log(`${ok ? 'PASS' : 'FAIL'}  ${label}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(results.every(([, ok]) => ok) ? 0 : 1);
