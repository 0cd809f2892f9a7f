import { readFileSync } from 'node:fs';

/** package.json's version; found from src/server/ (tsx) and from dist/src/server/ (built). */
export const VERSION: string = (() => {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'uzzap') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
})();
