// `npm start` only starts; a build older than the sources is reported in one line.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staleBuild } from '../../src/build-check.js';

describe('build check', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'uzzap-build-'));
    for (const d of ['src/im', 'xeps/0030-disco', 'dist/src']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'src/im/a.ts'), '');
    writeFileSync(join(root, 'xeps/0030-disco/index.ts'), '');
    writeFileSync(join(root, 'dist/src/main.js'), '');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const at = (path: string, seconds: number): void => utimesSync(join(root, path), seconds, seconds);

  it('is quiet when the build is newer than every source', () => {
    at('src/im/a.ts', 1000);
    at('xeps/0030-disco/index.ts', 1000);
    at('dist/src/main.js', 2000);
    assert.equal(staleBuild(root), undefined);
  });

  it('says so when a source (in src/ or xeps/) changed after the build', () => {
    at('dist/src/main.js', 2000);
    at('src/im/a.ts', 1000);
    at('xeps/0030-disco/index.ts', 2500);
    assert.match(staleBuild(root) ?? '', /older than the sources \(changed 500 s after it\).*npm run build/);
  });

  it('is quiet without sources (an installed package) or without a build', () => {
    rmSync(join(root, 'src'), { recursive: true });
    rmSync(join(root, 'xeps'), { recursive: true });
    assert.equal(staleBuild(root), undefined);
    rmSync(join(root, 'dist'), { recursive: true });
    assert.equal(staleBuild(root), undefined);
  });

  it('npm start only starts: no build step before it', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.prestart, undefined);
    assert.match(pkg.scripts.start ?? '', /^node (--[\w-]+=\S+ )*bin\/uzzap\.js start$/, 'node options, then the server: no tsc');
    assert.match(pkg.scripts.prepare ?? '', /tsc/, 'npm install builds');
  });
});
