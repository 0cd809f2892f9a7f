// `npm start` only starts (the build happens at `npm install` / `npm run build`), so a
// tree edited since its build would run old code without a word. This says so, once.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time (ms) of the .ts files under `dir`, or 0 if there are none. */
function newestSource(dir: string): number {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0; // no sources (an installed package ships only dist/)
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The source files changed after the build under `root` (src/ and xeps/ against
 * dist/src/main.js): a line to log, or undefined when the build is current.
 */
export function staleBuild(root: string): string | undefined {
  let built: number;
  try {
    built = statSync(join(root, 'dist', 'src', 'main.js')).mtimeMs;
  } catch {
    return undefined;
  }
  const newest = Math.max(newestSource(join(root, 'src')), newestSource(join(root, 'xeps')));
  if (newest <= built) return undefined;
  return `the build in dist/ is older than the sources (changed ${Math.round((newest - built) / 1000)} s after it): run \`npm run build\` to run the current code`;
}
