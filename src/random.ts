// Random tokens (stream ids, SCRAM nonces) drawn from a pooled buffer: one
// getrandom call per 4 KiB instead of one per connection and per login.
// (Module-level, but only an entropy source: it carries no server state.)
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.allocUnsafe(4096);
let offset = POOL.length;

/** `bytes` fresh random bytes, base64url-encoded (never reused: the pool is refilled). */
export function randomToken(bytes: number): string {
  if (offset + bytes > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const s = POOL.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return s;
}
