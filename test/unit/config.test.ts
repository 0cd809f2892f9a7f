// Unit tests for src/config/load.ts and src/config/schema.ts: defaults, the
// UZZAP_* environment variables, uzzap.yaml, and error reporting.
// The environment is always passed explicitly (process.env is never touched)
// and cwd is a fresh temporary directory, so no stray uzzap.yaml is read.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configLeaves, loadConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/schema.js';

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

// Taken when this file is imported, before any test has run.
const PRISTINE = structuredClone(DEFAULTS);

/** Put DEFAULTS back as it was, in place (see the 'does not modify' test below). */
function restoreInPlace(target: Plain, source: Plain): void {
  for (const k of Object.keys(target)) if (!(k in source)) delete target[k];
  for (const [k, v] of Object.entries(source)) {
    if (isPlain(v) && isPlain(target[k])) restoreInPlace(target[k] as Plain, v);
    else target[k] = structuredClone(v);
  }
}

function problemsOf(fn: () => unknown): string[] {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.ok(Array.isArray(caught.problems) && caught.problems.length > 0);
  for (const p of caught.problems) assert.ok(caught.message.includes(p), 'the message lists every problem');
  return caught.problems;
}

describe('config', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'uzzap-config-test-'));
    dirs.push(d);
    return d;
  };
  let empty: string;

  before(() => {
    empty = tempDir();
  });
  afterEach(() => {
    restoreInPlace(DEFAULTS as unknown as Plain, PRISTINE as unknown as Plain);
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const load = (env: Record<string, string>, opts: { cwd?: string; file?: string } = {}) =>
    loadConfig({ env, cwd: opts.cwd ?? empty, file: opts.file });

  describe('defaults', () => {
    it('uses the documented defaults when nothing is set', () => {
      const { config, file } = load({});
      assert.equal(file, undefined);
      assert.deepEqual(config, PRISTINE);
      assert.equal(config.domain, 'localhost');
      assert.equal(config.c2s.port, 5222);
      assert.equal(config.c2s.tls_port, 5223);
      assert.equal(config.c2s.require_tls, true);
      assert.equal(config.http.port, 5280);
      assert.equal(config.component.port, 5347);
      assert.equal(config.component.secret, '');
      assert.equal(config.data_dir, './data');
      assert.equal(config.postgres_url, '');
      assert.equal(config.redis_url, '');
      assert.deepEqual(config.admins, []);
      assert.equal(config.registration, 'closed');
      assert.equal(config.sm.resume_timeout, 300);
      assert.equal(config.ping_interval, 60);
      assert.equal(config.max_stanza_size, 262144);
      assert.equal(config.log_level, 'info');
      assert.deepEqual(config.tls, { cert: '', key: '' });
    });

    it('ignores unrelated environment variables', () => {
      const { config } = load({ PATH: '/bin', UZZAP_NOT_A_SETTING: 'x', DOMAIN: 'nope.example' });
      assert.deepEqual(config, PRISTINE);
    });

    it('does not modify DEFAULTS, so an override does not leak into a later load', () => {
      load({ UZZAP_C2S_PORT: '1234', UZZAP_SM_RESUME_TIMEOUT: '7', UZZAP_TLS_CERT: '/x.pem', UZZAP_DOMAIN: 'a.example' });
      assert.deepEqual(DEFAULTS, PRISTINE, 'DEFAULTS unchanged');
      const { config } = load({});
      assert.equal(config.c2s.port, 5222);
      assert.equal(config.sm.resume_timeout, 300);
      assert.equal(config.tls.cert, '');
      assert.equal(config.domain, 'localhost');
    });

    it('every leaf has an environment variable named after its path', () => {
      const names = configLeaves().map((l) => l.env);
      for (const n of [
        'UZZAP_DOMAIN',
        'UZZAP_C2S_PORT',
        'UZZAP_C2S_TLS_PORT',
        'UZZAP_C2S_REQUIRE_TLS',
        'UZZAP_HTTP_PORT',
        'UZZAP_COMPONENT_PORT',
        'UZZAP_COMPONENT_SECRET',
        'UZZAP_DATA_DIR',
        'UZZAP_POSTGRES_URL',
        'UZZAP_REDIS_URL',
        'UZZAP_ADMINS',
        'UZZAP_REGISTRATION',
        'UZZAP_SM_RESUME_TIMEOUT',
        'UZZAP_PING_INTERVAL',
        'UZZAP_MAX_STANZA_SIZE',
        'UZZAP_LOG_LEVEL',
        'UZZAP_TLS_CERT',
        'UZZAP_TLS_KEY',
      ]) {
        assert.ok(names.includes(n), n);
      }
      assert.equal(new Set(names).size, names.length, 'no two settings share an environment variable');
    });
  });

  describe('environment variables', () => {
    const cases: [string, string, (c: ReturnType<typeof load>['config']) => unknown, unknown][] = [
      ['UZZAP_DOMAIN', 'chat.example.org', (c) => c.domain, 'chat.example.org'],
      ['UZZAP_C2S_PORT', '15222', (c) => c.c2s.port, 15222],
      ['UZZAP_C2S_TLS_PORT', '15223', (c) => c.c2s.tls_port, 15223],
      ['UZZAP_HTTP_PORT', '18080', (c) => c.http.port, 18080],
      ['UZZAP_COMPONENT_PORT', '15347', (c) => c.component.port, 15347],
      ['UZZAP_COMPONENT_SECRET', 's3cr3t', (c) => c.component.secret, 's3cr3t'],
      ['UZZAP_DATA_DIR', '/var/lib/uzzap', (c) => c.data_dir, '/var/lib/uzzap'],
      ['UZZAP_POSTGRES_URL', 'postgres://u:p@db:5432/uzzap', (c) => c.postgres_url, 'postgres://u:p@db:5432/uzzap'],
      ['UZZAP_POSTGRES_URL', 'postgresql://db/uzzap', (c) => c.postgres_url, 'postgresql://db/uzzap'],
      ['UZZAP_REDIS_URL', 'redis://cache:6379/2', (c) => c.redis_url, 'redis://cache:6379/2'],
      ['UZZAP_REDIS_URL', 'rediss://cache:6380', (c) => c.redis_url, 'rediss://cache:6380'],
      ['UZZAP_ADMINS', 'Admin@Example.COM, bob@example.com', (c) => c.admins, ['admin@example.com', 'bob@example.com']],
      ['UZZAP_ADMINS', 'root@example.com', (c) => c.admins, ['root@example.com']],
      ['UZZAP_ADMINS', '', (c) => c.admins, []],
      ['UZZAP_REGISTRATION', 'open', (c) => c.registration, 'open'],
      ['UZZAP_REGISTRATION', 'closed', (c) => c.registration, 'closed'],
      ['UZZAP_SM_RESUME_TIMEOUT', '42', (c) => c.sm.resume_timeout, 42],
      ['UZZAP_SM_RESUME_TIMEOUT', '0', (c) => c.sm.resume_timeout, 0],
      ['UZZAP_PING_INTERVAL', '15', (c) => c.ping_interval, 15],
      ['UZZAP_MAX_STANZA_SIZE', '65536', (c) => c.max_stanza_size, 65536],
      ['UZZAP_MAX_STANZA_SIZE', ' 4096 ', (c) => c.max_stanza_size, 4096],
      ['UZZAP_LOG_LEVEL', 'debug', (c) => c.log_level, 'debug'],
      ['UZZAP_LOG_LEVEL', 'silent', (c) => c.log_level, 'silent'],
      ['UZZAP_TLS_CERT', '/etc/uzzap/cert.pem', (c) => c.tls.cert, '/etc/uzzap/cert.pem'],
      ['UZZAP_TLS_KEY', '/etc/uzzap/key.pem', (c) => c.tls.key, '/etc/uzzap/key.pem'],
      ['UZZAP_C2S_REQUIRE_TLS', 'false', (c) => c.c2s.require_tls, false],
      ['UZZAP_C2S_REQUIRE_TLS', 'true', (c) => c.c2s.require_tls, true],
      ['UZZAP_C2S_REQUIRE_TLS', '0', (c) => c.c2s.require_tls, false],
      ['UZZAP_C2S_REQUIRE_TLS', 'no', (c) => c.c2s.require_tls, false],
      ['UZZAP_C2S_REQUIRE_TLS', 'OFF', (c) => c.c2s.require_tls, false],
      ['UZZAP_C2S_REQUIRE_TLS', '1', (c) => c.c2s.require_tls, true],
      ['UZZAP_C2S_REQUIRE_TLS', 'Yes', (c) => c.c2s.require_tls, true],
    ];
    for (const [env, raw, get, want] of cases) {
      it(`${env}=${JSON.stringify(raw)} → ${JSON.stringify(want)}`, () => {
        const { config } = load({ [env]: raw });
        assert.deepEqual(get(config), want);
      });
    }

    it('UZZAP_C2S_REQUIRE_TLS=false overrides the default true (and only that key)', () => {
      const { config } = load({ UZZAP_C2S_REQUIRE_TLS: 'false' });
      assert.equal(config.c2s.require_tls, false);
      assert.equal(config.c2s.port, 5222);
      assert.equal(config.c2s.tls_port, 5223);
    });

    it('UZZAP_MODULES_<MODULE>_<KEY> sets a module setting, typed by its look', () => {
      const { config } = load({
        UZZAP_MODULES_MUC_MESSAGE_RATE: '0',
        UZZAP_MODULES_MUC_DOMAIN: 'rooms.example.com',
        UZZAP_MODULES_MUC_PERSISTENT: 'true',
        UZZAP_MODULES_DISABLED: 'carbons',
      });
      const muc = (config.modules as unknown as Record<string, Record<string, unknown>>).muc!;
      assert.deepEqual(muc, { message_rate: 0, domain: 'rooms.example.com', persistent: true });
      assert.deepEqual(config.modules.disabled, ['carbons']);
    });

    it('UZZAP_PEP_<KEY> is the public name of modules.pep.<key>; the long form wins', () => {
      const pep = (env: Record<string, string>) =>
        (load(env).config.modules as unknown as Record<string, Record<string, unknown>>).pep;
      assert.deepEqual(pep({ UZZAP_PEP_MAX_ITEM_SIZE: '131072' }), { max_item_size: 131072 });
      assert.deepEqual(pep({ UZZAP_PEP_MAX_ITEM_SIZE: '1', UZZAP_MODULES_PEP_MAX_ITEM_SIZE: '2' }), { max_item_size: 2 });
      assert.deepEqual(pep({ UZZAP_MODULES_PEP_MAX_ITEM_SIZE: '2', UZZAP_PEP_MAX_ITEM_SIZE: '1' }), { max_item_size: 2 });
    });

    it('port 0 (pick any free port) is allowed', () => {
      const { config } = load({ UZZAP_C2S_PORT: '0', UZZAP_C2S_TLS_PORT: '0', UZZAP_HTTP_PORT: '0', UZZAP_COMPONENT_PORT: '0' });
      assert.equal(config.c2s.port, 0);
      assert.equal(config.c2s.tls_port, 0);
      assert.equal(config.http.port, 0);
      assert.equal(config.component.port, 0);
    });

    it('sets many variables at once', () => {
      const { config } = load({
        UZZAP_DOMAIN: 'example.net',
        UZZAP_C2S_PORT: '6222',
        UZZAP_REGISTRATION: 'open',
        UZZAP_ADMINS: 'a@example.net,b@example.net',
        UZZAP_LOG_LEVEL: 'warn',
      });
      assert.equal(config.domain, 'example.net');
      assert.equal(config.c2s.port, 6222);
      assert.equal(config.registration, 'open');
      assert.deepEqual(config.admins, ['a@example.net', 'b@example.net']);
      assert.equal(config.log_level, 'warn');
    });

    const bad: [string, string][] = [
      ['UZZAP_C2S_PORT', 'abc'],
      ['UZZAP_C2S_PORT', ''],
      ['UZZAP_C2S_PORT', '65536'],
      ['UZZAP_C2S_PORT', '-1'],
      ['UZZAP_C2S_PORT', '52.22'],
      ['UZZAP_HTTP_PORT', '80x'],
      ['UZZAP_PING_INTERVAL', '0'],
      ['UZZAP_MAX_STANZA_SIZE', '100'],
      ['UZZAP_SM_RESUME_TIMEOUT', '-5'],
      ['UZZAP_C2S_REQUIRE_TLS', 'maybe'],
      ['UZZAP_REGISTRATION', 'maybe'],
      ['UZZAP_LOG_LEVEL', 'verbose'],
      ['UZZAP_ADMINS', 'notajid'],
      ['UZZAP_ADMINS', 'a@example.com/res'],
      ['UZZAP_POSTGRES_URL', 'mysql://db/uzzap'],
      ['UZZAP_REDIS_URL', 'http://cache'],
      ['UZZAP_DOMAIN', ''],
    ];
    for (const [env, raw] of bad) {
      it(`rejects ${env}=${JSON.stringify(raw)}, naming the variable`, () => {
        const problems = problemsOf(() => load({ [env]: raw }));
        assert.ok(
          problems.some((p) => p.includes(env)),
          `a problem should name ${env}: ${JSON.stringify(problems)}`,
        );
      });
    }

    it('reports several bad values in ONE ConfigError', () => {
      const problems = problemsOf(() =>
        load({ UZZAP_C2S_PORT: 'abc', UZZAP_REGISTRATION: 'maybe', UZZAP_ADMINS: 'notajid', UZZAP_C2S_REQUIRE_TLS: 'perhaps' }),
      );
      for (const env of ['UZZAP_C2S_PORT', 'UZZAP_REGISTRATION', 'UZZAP_ADMINS', 'UZZAP_C2S_REQUIRE_TLS']) {
        assert.ok(
          problems.some((p) => p.includes(env)),
          `${env} in ${JSON.stringify(problems)}`,
        );
      }
      assert.ok(
        problems.some((p) => p.includes('abc')),
        'the bad value is quoted',
      );
    });
  });

  describe('uzzap.yaml', () => {
    it('reads uzzap.yaml from cwd and env overrides it', () => {
      const dir = tempDir();
      const path = join(dir, 'uzzap.yaml');
      writeFileSync(
        path,
        [
          'domain: yaml.example',
          'c2s:',
          '  port: 6222',
          '  tls_port: 6223',
          '  require_tls: false',
          'admins:',
          '  - Root@YAML.example',
          'registration: open',
          'sm:',
          '  resume_timeout: 60',
          '',
        ].join('\n'),
      );
      const fromFile = load({}, { cwd: dir });
      assert.equal(fromFile.file, path);
      assert.equal(fromFile.config.domain, 'yaml.example');
      assert.equal(fromFile.config.c2s.port, 6222);
      assert.equal(fromFile.config.c2s.tls_port, 6223);
      assert.equal(fromFile.config.c2s.require_tls, false);
      assert.equal(fromFile.config.c2s.preauth_timeout, PRISTINE.c2s.preauth_timeout, 'unset keys keep their default');
      assert.deepEqual(fromFile.config.admins, ['root@yaml.example']);
      assert.equal(fromFile.config.registration, 'open');
      assert.equal(fromFile.config.sm.resume_timeout, 60);
      assert.equal(fromFile.config.http.port, 5280);

      const overridden = load(
        { UZZAP_C2S_PORT: '7222', UZZAP_DOMAIN: 'env.example', UZZAP_C2S_REQUIRE_TLS: 'true', UZZAP_ADMINS: 'x@env.example' },
        { cwd: dir },
      );
      assert.equal(overridden.config.domain, 'env.example');
      assert.equal(overridden.config.c2s.port, 7222);
      assert.equal(overridden.config.c2s.require_tls, true);
      assert.deepEqual(overridden.config.admins, ['x@env.example']);
      assert.equal(overridden.config.c2s.tls_port, 6223, 'keys the env does not set still come from the file');
      assert.equal(overridden.config.sm.resume_timeout, 60);
    });

    it('reads an explicit file relative to cwd', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'other.yml'), 'domain: other.example\nhttp:\n  port: 0\n');
      const { config, file } = load({}, { cwd: dir, file: 'other.yml' });
      assert.equal(file, join(dir, 'other.yml'));
      assert.equal(config.domain, 'other.example');
      assert.equal(config.http.port, 0);
    });

    it('an empty file gives the defaults', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), '');
      assert.deepEqual(load({}, { cwd: dir }).config, PRISTINE);
    });

    it('rejects an unknown top-level key', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), 'domain: a.example\nbogus_setting: 1\n');
      const problems = problemsOf(() => load({}, { cwd: dir }));
      assert.ok(
        problems.some((p) => p.includes('bogus_setting')),
        JSON.stringify(problems),
      );
    });

    it('rejects an unknown nested key', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), 'c2s:\n  prot: 5222\n');
      const problems = problemsOf(() => load({}, { cwd: dir }));
      assert.ok(
        problems.some((p) => p.includes('prot')),
        JSON.stringify(problems),
      );
    });

    it('rejects a value of the wrong type in the file', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), 'c2s:\n  port: "5222"\nregistration: sometimes\n');
      const problems = problemsOf(() => load({}, { cwd: dir }));
      assert.ok(
        problems.some((p) => p.includes('c2s.port')),
        JSON.stringify(problems),
      );
      assert.ok(
        problems.some((p) => p.includes('registration')),
        JSON.stringify(problems),
      );
    });

    it('reports invalid YAML with the file name', () => {
      const dir = tempDir();
      const path = join(dir, 'broken.yaml');
      writeFileSync(path, 'domain: [unclosed\nc2s:\n  port: 1\n');
      const problems = problemsOf(() => load({}, { cwd: dir, file: 'broken.yaml' }));
      assert.ok(
        problems.some((p) => p.includes(path)),
        JSON.stringify(problems),
      );
    });

    it('rejects a file whose top level is not a mapping', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), '- domain\n- c2s\n');
      const problems = problemsOf(() => load({}, { cwd: dir }));
      assert.ok(
        problems.some((p) => p.includes(join(dir, 'uzzap.yaml'))),
        JSON.stringify(problems),
      );
    });

    it('reports problems from the file and from the environment together', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), 'unknown_key: 1\n');
      const problems = problemsOf(() => load({ UZZAP_HTTP_PORT: 'http' }, { cwd: dir }));
      assert.ok(
        problems.some((p) => p.includes('unknown_key')),
        JSON.stringify(problems),
      );
      assert.ok(
        problems.some((p) => p.includes('UZZAP_HTTP_PORT')),
        JSON.stringify(problems),
      );
    });

    it('does not pick up uzzap.yaml from another directory', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'uzzap.yaml'), 'domain: elsewhere.example\n');
      assert.equal(load({}, { cwd: empty }).config.domain, 'localhost');
    });
  });
});

describe('docs/configuration.md', () => {
  it('documents every configuration key and its environment variable', async () => {
    const { readFileSync } = await import('node:fs');
    const { configLeaves } = await import('../../src/config/load.js');
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const leaf of configLeaves()) {
      const key = leaf.path.join('.');
      if (!doc.includes(`| \`${key}\` | \`${leaf.env}\` |`)) throw new Error(`docs/configuration.md lacks ${key} / ${leaf.env}`);
    }
  });
});
