// SCRAM-SHA-1 (RFC 5802) helpers, shared by the client and by the code that
// writes pre-hashed accounts for the reference servers.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

const hmac = (key, data) => createHmac('sha1', key).update(data).digest();
const sha1 = (data) => createHash('sha1').update(data).digest();

// SaltedPassword is the expensive part (PBKDF2); cache it per (password, salt, i)
// so that repeated logins of the same account cost the generator almost nothing.
const saltedCache = new Map();
export function saltedPassword(password, salt, iterations) {
  const key = `${password}\0${salt.toString('base64')}\0${iterations}`;
  let sp = saltedCache.get(key);
  if (!sp) {
    sp = pbkdf2Sync(password, salt, iterations, 20, 'sha1');
    saltedCache.set(key, sp);
  }
  return sp;
}

/** Server-side credentials (what a server stores) for one password. */
export function scramCredentials(password, salt, iterations) {
  const sp = saltedPassword(password, salt, iterations);
  return {
    storedKey: sha1(hmac(sp, 'Client Key')),
    serverKey: hmac(sp, 'Server Key'),
    salt,
    iterations,
  };
}

const saslName = (s) => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

/** Client side of one SCRAM-SHA-1 exchange (no channel binding: gs2 header "n,,"). */
export class ScramClient {
  /** `cache: false`: PBKDF2 on every exchange, like a client that keeps no salted password (`reconnect`) */
  constructor(username, password, { cache = true } = {}) {
    this.password = password;
    this.cache = cache;
    this.nonce = randomBytes(18).toString('base64');
    this.firstBare = `n=${saslName(username)},r=${this.nonce}`;
  }
  first() {
    return 'n,,' + this.firstBare;
  }
  /** Takes server-first-message, returns client-final-message. */
  final(serverFirst) {
    const attrs = parseAttrs(serverFirst);
    if (!attrs.r || !attrs.r.startsWith(this.nonce)) throw new Error('SCRAM: bad server nonce');
    const iterations = parseInt(attrs.i, 10);
    if (!(iterations > 0) || !attrs.s) throw new Error('SCRAM: bad server-first-message');
    const salt = Buffer.from(attrs.s, 'base64');
    const sp = this.cache ? saltedPassword(this.password, salt, iterations) : pbkdf2Sync(this.password, salt, iterations, 20, 'sha1');
    const clientKey = hmac(sp, 'Client Key');
    const withoutProof = `c=biws,r=${attrs.r}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(sha1(clientKey), authMessage);
    for (let k = 0; k < clientKey.length; k++) clientKey[k] ^= signature[k];
    this.serverSignature = hmac(hmac(sp, 'Server Key'), authMessage).toString('base64');
    return `${withoutProof},p=${clientKey.toString('base64')}`;
  }
  /** Checks server-final-message (v=...). */
  verify(serverFinal) {
    const attrs = parseAttrs(serverFinal);
    if (attrs.e) throw new Error(`SCRAM: server error ${attrs.e}`);
    if (attrs.v !== this.serverSignature) throw new Error('SCRAM: bad server signature');
  }
}

function parseAttrs(msg) {
  const out = {};
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out[part[0]] = part.slice(2);
  }
  return out;
}
