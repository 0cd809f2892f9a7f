// Server side of SASL PLAIN (RFC 4616) and SCRAM-SHA-1/-256[-PLUS]
// (RFC 5802, RFC 7677, channel binding per RFC 5929 / RFC 9266).
import { timingSafeEqual } from 'node:crypto';
import { randomToken } from '../../random.js';
import saslprep from '@mongodb-js/saslprep';
import { prepLocal, JidError } from '../../jid.js';
import type { Account } from '../../storage/types.js';
import { HASHES, hash, hmac, verifyPassword, type ScramHash } from './credentials.js';

export type SaslCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; data?: Buffer; username: string }
  | { kind: 'failure'; condition: SaslCondition; text?: string; username?: string };

export interface SaslContext {
  domain: string;
  lookup(username: string): Promise<Account | undefined>;
  /** channel-binding types usable on this connection, best first */
  cbTypes: string[];
  cbData(type: string): Buffer | undefined;
  /** server secret for deterministic fake salts of unknown users */
  fakeSaltKey: Buffer;
  iterations: number;
  /**
   * XEP-0474 (SSDP): the mechanisms and channel-binding types advertised on this
   * stream for the SASL profile in use; their hash goes into the server-first-message
   * as `h`, so a client detects a list a man in the middle shortened.
   */
  advertised?: { mechanisms: string[]; cbTypes: string[] };
}

/** XEP-0474 §3: sorted mechanisms joined by 0x1E, then 0x1F and the sorted channel-binding types. */
export function ssdpInput(a: { mechanisms: string[]; cbTypes: string[] }): string {
  const sort = (l: string[]): string[] => [...l].sort((x, y) => (Buffer.compare(Buffer.from(x), Buffer.from(y))));
  const mechs = sort(a.mechanisms).join('\x1e');
  return a.cbTypes.length ? `${mechs}\x1f${sort(a.cbTypes).join('\x1e')}` : mechs;
}

export interface SaslMechanism {
  step(response: Buffer | null): Promise<SaslStep>;
}

const fail = (condition: SaslCondition, text?: string, username?: string): SaslStep => ({ kind: 'failure', condition, text, username });

/** SASLprep + XMPP localpart preparation of an authcid. */
export function prepUsername(raw: string): string {
  // SASLprep maps nothing in printable ASCII: skip its table walk for the common case
  return prepLocal(/^[\x21-\x7e]+$/.test(raw) ? raw : saslprep(raw));
}

export class PlainMechanism implements SaslMechanism {
  constructor(private readonly ctx: SaslContext) {}

  async step(response: Buffer | null): Promise<SaslStep> {
    if (response === null) return { kind: 'challenge', data: Buffer.alloc(0) };
    const parts = response.toString('utf8').split('\0');
    if (parts.length !== 3) return fail('malformed-request');
    const [authzid, authcid, password] = parts as [string, string, string];
    let username: string;
    try {
      username = prepUsername(authcid);
    } catch {
      return fail('not-authorized');
    }
    if (authzid && !authzidMatches(authzid, username, this.ctx.domain)) return fail('invalid-authzid');
    const account = await this.ctx.lookup(username);
    let ok = false;
    try {
      ok = account ? await verifyPassword(account.credentials, password) : false;
    } catch {
      ok = false; // SASLprep rejected the password
    }
    if (!ok || !account) return fail('not-authorized', undefined, username);
    if (account.disabled) return fail('account-disabled', 'this account is disabled', username);
    return { kind: 'success', username };
  }
}

function authzidMatches(authzid: string, username: string, domain: string): boolean {
  const at = authzid.indexOf('@');
  if (at === -1 || authzid.includes('/')) return false;
  try {
    return prepLocal(authzid.slice(0, at)) === username && authzid.slice(at + 1).toLowerCase() === domain;
  } catch {
    return false;
  }
}

/** One SCRAM exchange. */
export class ScramMechanism implements SaslMechanism {
  private stage: 'first' | 'final' | 'done' = 'first';
  private gs2Header = '';
  private cbType: string | undefined;
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private username = '';
  private account: Account | undefined;
  private salt: Buffer = Buffer.alloc(0);
  private iterations = 0;

  constructor(
    private readonly ctx: SaslContext,
    private readonly h: ScramHash,
    private readonly plus: boolean,
    /** whether -PLUS mechanisms were offered (for downgrade detection) */
    private readonly plusOffered: boolean,
  ) {}

  async step(response: Buffer | null): Promise<SaslStep> {
    if (this.stage === 'first') {
      if (response === null || response.length === 0) return { kind: 'challenge', data: Buffer.alloc(0) };
      return this.first(response.toString('utf8'));
    }
    if (this.stage === 'final') {
      if (response === null) return fail('malformed-request');
      return this.final(response.toString('utf8'));
    }
    return fail('malformed-request');
  }

  private async first(msg: string): Promise<SaslStep> {
    // gs2-header: cbflag "," [authzid] ","
    const m = /^(n|y|p=([A-Za-z0-9.-]+)),(a=[^,]*)?,(.*)$/s.exec(msg);
    if (!m) return fail('malformed-request', 'bad GS2 header');
    const flag = m[1]!;
    const bare = m[4]!;
    if (this.plus) {
      if (!flag.startsWith('p=')) return fail('malformed-request', 'channel binding required by this mechanism');
      this.cbType = m[2]!;
      if (!this.ctx.cbTypes.includes(this.cbType)) return fail('malformed-request', `channel binding type ${this.cbType} not supported`);
    } else if (flag.startsWith('p=')) {
      return fail('malformed-request', 'channel binding requested with a non-PLUS mechanism');
    } else if (flag === 'y' && this.plusOffered) {
      // client supports binding and thinks we don't: a downgrade (RFC 5802 §6)
      return fail('not-authorized', 'channel binding downgrade detected');
    }
    this.gs2Header = msg.slice(0, msg.length - bare.length);
    const attrs = parseAttrs(bare);
    if (!attrs || !attrs.has('n') || !attrs.has('r') || attrs.has('m')) return fail('malformed-request');
    const rawUser = decodeSaslName(attrs.get('n')!);
    if (rawUser === undefined || attrs.get('r') === '') return fail('malformed-request');
    try {
      this.username = prepUsername(rawUser);
    } catch (e) {
      if (!(e instanceof JidError) && !(e instanceof Error)) throw e;
      this.username = '';
    }
    if (m[3] && (!this.username || !authzidMatches(decodeSaslName(m[3].slice(2)) ?? '', this.username, this.ctx.domain))) {
      return fail('invalid-authzid');
    }
    this.account = this.username ? await this.ctx.lookup(this.username) : undefined;
    const cred = this.account?.credentials[this.h];
    if (cred) {
      this.salt = Buffer.from(cred.salt, 'base64');
      this.iterations = cred.iterations;
    } else {
      // Unknown user: answer like a known one, with a stable fake salt, so the
      // exchange reveals nothing about which accounts exist.
      this.salt = hmac('sha256', this.ctx.fakeSaltKey, this.username || rawUser).subarray(0, 16);
      this.iterations = this.ctx.iterations;
    }
    this.clientFirstBare = bare;
    this.nonce = attrs.get('r')! + randomToken(18);
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString('base64')},i=${this.iterations}`;
    const advertised = this.ctx.advertised;
    if (advertised) this.serverFirst += `,h=${hash(HASHES[this.h].node, Buffer.from(ssdpInput(advertised))).toString('base64')}`;
    this.stage = 'final';
    return { kind: 'challenge', data: Buffer.from(this.serverFirst) };
  }

  private async final(msg: string): Promise<SaslStep> {
    this.stage = 'done';
    const pIdx = msg.lastIndexOf(',p=');
    if (pIdx === -1) return fail('malformed-request');
    const withoutProof = msg.slice(0, pIdx);
    const attrs = parseAttrs(withoutProof);
    if (!attrs || !attrs.has('c') || !attrs.has('r')) return fail('malformed-request');
    const proof = decodeB64(msg.slice(pIdx + 3));
    if (!proof) return fail('malformed-request', 'bad proof encoding');
    if (attrs.get('r') !== this.nonce) return fail('malformed-request', 'nonce mismatch');
    const c = decodeB64(attrs.get('c')!);
    if (!c) return fail('malformed-request', 'bad channel binding encoding');
    let expectedC: Buffer = Buffer.from(this.gs2Header);
    if (this.cbType) {
      const data = this.ctx.cbData(this.cbType);
      if (!data) return fail('not-authorized', 'channel binding unavailable');
      expectedC = Buffer.concat([expectedC, data]);
    }
    const cred = this.account?.credentials[this.h];
    if (!this.account || !cred) return fail('not-authorized', undefined, this.username);
    if (!c.equals(expectedC)) return fail('not-authorized', 'channel binding mismatch', this.username);
    const alg = HASHES[this.h].node;
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const storedKey = Buffer.from(cred.storedKey, 'base64');
    const clientSignature = hmac(alg, storedKey, authMessage);
    if (proof.length !== clientSignature.length) return fail('not-authorized', undefined, this.username);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    if (!timingSafeEqual(hash(alg, clientKey), storedKey)) return fail('not-authorized', undefined, this.username);
    if (this.account.disabled) return fail('account-disabled', 'this account is disabled', this.username);
    const serverSignature = hmac(alg, Buffer.from(cred.serverKey, 'base64'), authMessage);
    return { kind: 'success', data: Buffer.from(`v=${serverSignature.toString('base64')}`), username: this.username };
  }
}

function parseAttrs(s: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const part of s.split(',')) {
    if (part.length < 2 || part[1] !== '=') return undefined;
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

function decodeSaslName(s: string): string | undefined {
  if (/=(?!2C|3D)/.test(s)) return undefined;
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
export function decodeB64(s: string): Buffer | undefined {
  return B64.test(s) ? Buffer.from(s, 'base64') : undefined;
}
