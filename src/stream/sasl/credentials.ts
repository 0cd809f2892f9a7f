// SCRAM credential derivation (RFC 5802 §3). Passwords are SASLprep'd, salted
// and stretched; only StoredKey/ServerKey are kept.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import saslprep from '@mongodb-js/saslprep';
import type { ScramCredential, StoredCredentials } from '../../storage/types.js';

const pbkdf2Async = promisify(pbkdf2);

export type ScramHash = 'SHA-1' | 'SHA-256';
export const HASHES: Record<ScramHash, { node: 'sha1' | 'sha256'; len: number }> = {
  'SHA-1': { node: 'sha1', len: 20 },
  'SHA-256': { node: 'sha256', len: 32 },
};

export const hmac = (alg: string, key: Buffer, data: string | Buffer): Buffer => createHmac(alg, key).update(data).digest();
export const hash = (alg: string, data: Buffer): Buffer => createHash(alg).update(data).digest();

/** SASLprep a password (RFC 4013); throws on prohibited characters. */
export function prepPassword(password: string): string {
  // ASCII printable passwords are unchanged by SASLprep: skip the table walk.
  return /^[\x20-\x7e]*$/.test(password) ? password : saslprep(password);
}

export async function saltedPassword(h: ScramHash, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(prepPassword(password), salt, iterations, HASHES[h].len, HASHES[h].node);
}

export function keysFromSalted(h: ScramHash, salted: Buffer): { storedKey: Buffer; serverKey: Buffer } {
  const alg = HASHES[h].node;
  return { storedKey: hash(alg, hmac(alg, salted, 'Client Key')), serverKey: hmac(alg, salted, 'Server Key') };
}

async function derive(h: ScramHash, password: string, iterations: number): Promise<ScramCredential> {
  const salt = randomBytes(16);
  const { storedKey, serverKey } = keysFromSalted(h, await saltedPassword(h, password, salt, iterations));
  return { salt: salt.toString('base64'), iterations, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
}

/** Credentials for both SCRAM hashes; PBKDF2 runs on the libuv pool, off the event loop. */
export async function deriveCredentials(password: string, iterations: number): Promise<StoredCredentials> {
  const [sha1, sha256] = await Promise.all([derive('SHA-1', password, iterations), derive('SHA-256', password, iterations)]);
  return { 'SHA-1': sha1, 'SHA-256': sha256 };
}

/** Check a clear password (SASL PLAIN, XEP-0077 old password) against stored credentials. */
export async function verifyPassword(creds: StoredCredentials, password: string): Promise<boolean> {
  const c = creds['SHA-256'];
  const { storedKey } = keysFromSalted('SHA-256', await saltedPassword('SHA-256', password, Buffer.from(c.salt, 'base64'), c.iterations));
  const expected = Buffer.from(c.storedKey, 'base64');
  return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
}
