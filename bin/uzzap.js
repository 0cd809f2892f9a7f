#!/usr/bin/env node
// Runs the compiled CLI (npm install / npm ci build it via the "prepare" script).
import { existsSync } from 'node:fs';
const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('uzzap: not built yet; run `npm install` (or `npm run build`) first');
  process.exit(1);
}
await import(main.href);
