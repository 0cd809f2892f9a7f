// XEP-0484 FAST: tokens a client gets once with its password and then logs in
// with in one round trip, through the HT-SHA-256-* mechanisms
// (draft-schmaus-kitten-sasl-ht-09, the form XEP-0484 cites and clients use:
// initiator = authcid NUL HMAC(token, "Initiator" || cb-data), the server's
// additional data = HMAC(token, "Responder" || cb-data)).
//
// Storage: a token is never stored. Each client (the <user-agent id/> of SASL2)
// of an account has two slots, `new` (issued, not used yet) and `current`,
// each holding a random seed, the mechanism the token is bound to, and times;
// the token is HMAC-SHA256(server token key, user, client, seed). A copy of the
// database alone logs no one in; the key is `sasl.token_key`, or a file in the
// data directory made on first use (nodes of a cluster on several machines set
// the same key, or share the directory). Slots live in the user's data (kind
// 'fast'): account deletion removes them, a password change clears them.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Storage } from '../../storage/types.js';
import type { Account } from '../../storage/types.js';
import type { SaslMechanism, SaslStep } from './mechanisms.js';
import { prepUsername } from './mechanisms.js';

export const NS_FAST = 'urn:xmpp:fast:0';
const KIND = 'fast';

/** HT mechanisms by the channel binding they use ('' = none) */
const HT: Record<string, string> = {
  'HT-SHA-256-EXPR': 'tls-exporter',
  'HT-SHA-256-UNIQ': 'tls-unique',
  'HT-SHA-256-ENDP': 'tls-server-end-point',
  'HT-SHA-256-NONE': '',
};

/** The HT mechanisms usable on a connection with these channel-binding types, best first. */
export function htMechanisms(cbTypes: string[]): string[] {
  return Object.keys(HT).filter((m) => HT[m] === '' || cbTypes.includes(HT[m]!));
}

interface Slot {
  seed: string;
  mech: string;
  /** ms since the epoch */
  iat: number;
  exp: number;
}
interface ClientSlots {
  new?: Slot;
  current?: Slot;
}

export interface FastSettings {
  token_key: string;
  fast_ttl: number;
  fast_max_clients: number;
}

/** A token that verified: what it was, and when it was issued and ends. */
export interface UsedToken {
  token: string;
  iat: number;
  exp: number;
}

export class FastTokens {
  private key: Promise<Buffer> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly settings: () => FastSettings,
    private readonly dataDir: string,
  ) {}

  /** the slots' key for one client: its id is not stored as given */
  private static clientKey(uaId: string): string {
    return createHash('sha256').update(uaId).digest('base64url').slice(0, 22);
  }

  private async tokenKey(): Promise<Buffer> {
    const configured = this.settings().token_key;
    if (configured) return Buffer.from(configured);
    this.key ??= loadKey(this.dataDir).catch((err: unknown) => {
      this.key = undefined; // tried again at the next use
      throw err;
    });
    return this.key;
  }

  private async token(username: string, client: string, seed: string): Promise<string> {
    const mac = createHmac('sha256', await this.tokenKey())
      .update(`fast\0${username}\0${client}\0${seed}`)
      .digest('base64url');
    return `uzzap-fast-${mac}`;
  }

  private async read(username: string, client: string): Promise<ClientSlots> {
    const raw = await this.storage.userData.get(username, KIND, client);
    if (!raw) return {};
    try {
      return JSON.parse(raw) as ClientSlots;
    } catch {
      return {};
    }
  }

  private write(username: string, client: string, slots: ClientSlots): Promise<void> {
    return this.storage.userData.set(username, KIND, client, JSON.stringify(slots));
  }

  /**
   * A new token for this client, bound to `mech`; it replaces an unused one. A client
   * beyond `sasl.fast_max_clients` of the account makes room by dropping the one whose
   * newest token was issued longest ago.
   */
  async issue(username: string, uaId: string, mech: string, now = Date.now()): Promise<{ token: string; expiry: number }> {
    const client = FastTokens.clientKey(uaId);
    const { fast_ttl, fast_max_clients } = this.settings();
    const slots = await this.read(username, client);
    if (!slots.new && !slots.current) await this.makeRoom(username, fast_max_clients - 1);
    const slot: Slot = { seed: randomBytes(16).toString('base64url'), mech, iat: now, exp: now + fast_ttl * 1000 };
    slots.new = slot;
    await this.write(username, client, slots);
    return { token: await this.token(username, client, slot.seed), expiry: slot.exp };
  }

  private async makeRoom(username: string, keep: number): Promise<void> {
    const all = await this.storage.userData.list(username, KIND);
    if (all.length <= keep) return;
    const newest = (v: string): number => {
      try {
        const s = JSON.parse(v) as ClientSlots;
        return Math.max(s.new?.iat ?? 0, s.current?.iat ?? 0);
      } catch {
        return 0;
      }
    };
    const byAge = all.map((e) => ({ key: e.key, at: newest(e.value) })).sort((a, b) => a.at - b.at);
    for (const e of byAge.slice(0, all.length - keep)) await this.storage.userData.remove(username, KIND, e.key);
  }

  /**
   * The token of this client that `matches` accepts (bound to `mech`), 'expired' when it
   * did but has run out, undefined when none did. Using the `new` token makes it the
   * current one (the previous current token ends: XEP-0484 §5).
   */
  async verify(
    username: string,
    uaId: string,
    mech: string,
    matches: (token: string) => boolean,
    now = Date.now(),
  ): Promise<UsedToken | 'expired' | undefined> {
    const client = FastTokens.clientKey(uaId);
    const slots = await this.read(username, client);
    for (const which of ['new', 'current'] as const) {
      const slot = slots[which];
      if (!slot || slot.mech !== mech) continue;
      const token = await this.token(username, client, slot.seed);
      if (!matches(token)) continue;
      if (slot.exp <= now) return 'expired';
      if (which === 'new') await this.write(username, client, { current: slot });
      return { token, iat: slot.iat, exp: slot.exp };
    }
    return undefined;
  }

  /** End this client's tokens (`<fast invalidate='true'/>`). */
  async invalidate(username: string, uaId: string): Promise<void> {
    await this.storage.userData.remove(username, KIND, FastTokens.clientKey(uaId));
  }

  /** End every token of an account (its password changed). */
  static async clear(storage: Storage, username: string): Promise<void> {
    await storage.userData.clear(username, KIND);
  }
}

const KEY_BYTES = 32;

/** The key file, made on first use: written whole under another name, then linked in place (never half a key). */
async function loadKey(dir: string): Promise<Buffer> {
  const file = join(dir, 'token.key');
  const checked = (key: Buffer): Buffer => {
    if (key.length < KEY_BYTES) throw new Error(`${file} holds ${key.length} bytes, not a key of ${KEY_BYTES}: remove it or set sasl.token_key`);
    return key;
  };
  try {
    return checked(await readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, randomBytes(KEY_BYTES), { mode: 0o600 });
  try {
    // link fails if another node sharing the directory was first: its key wins
    await link(tmp, file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return checked(await readFile(file));
}

const hmac256 = (key: string, data: Buffer): Buffer => createHmac('sha256', key).update(data).digest();

/** One HT-SHA-256-* exchange (one message each way). */
export class HtMechanism implements SaslMechanism {
  /** the token that logged the client in */
  used: UsedToken | undefined;
  username = '';

  constructor(
    readonly mechanism: string,
    private readonly fast: FastTokens,
    private readonly lookup: (username: string) => Promise<Account | undefined>,
    private readonly domain: string,
    /** the client's <user-agent id/> (tokens are per client) */
    private readonly uaId: string | undefined,
    private readonly cbData: (type: string) => Buffer | undefined,
  ) {}

  async step(response: Buffer | null): Promise<SaslStep> {
    if (response === null) return { kind: 'challenge', data: Buffer.alloc(0) };
    const nul = response.indexOf(0);
    if (nul <= 0 || response.length - nul - 1 !== 32) return { kind: 'failure', condition: 'malformed-request' };
    if (!this.uaId) return { kind: 'failure', condition: 'malformed-request', text: 'FAST needs a <user-agent id/>' };
    let authcid = response.subarray(0, nul).toString('utf8');
    const at = authcid.lastIndexOf('@');
    if (at > 0 && authcid.slice(at + 1).toLowerCase() === this.domain) authcid = authcid.slice(0, at);
    try {
      this.username = prepUsername(authcid);
    } catch {
      return { kind: 'failure', condition: 'not-authorized' };
    }
    const username = this.username;
    const account = await this.lookup(username);
    if (!account) return { kind: 'failure', condition: 'not-authorized', username };
    const cbType = HT[this.mechanism] ?? '';
    const cb = cbType ? this.cbData(cbType) : Buffer.alloc(0);
    if (!cb) return { kind: 'failure', condition: 'not-authorized', text: 'channel binding unavailable', username };
    const mac = response.subarray(nul + 1);
    const initiator = Buffer.concat([Buffer.from('Initiator'), cb]);
    const used = await this.fast.verify(username, this.uaId, this.mechanism, (t) => timingSafeEqual(hmac256(t, initiator), mac));
    if (used === undefined) return { kind: 'failure', condition: 'not-authorized', username };
    if (used === 'expired') return { kind: 'failure', condition: 'credentials-expired', text: 'the token has expired', username };
    if (account.disabled) return { kind: 'failure', condition: 'account-disabled', text: 'this account is disabled', username };
    this.used = used;
    return { kind: 'success', data: hmac256(used.token, Buffer.concat([Buffer.from('Responder'), cb])), username };
  }
}
