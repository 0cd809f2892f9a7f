// Account management shared by the CLI, the server and (later) in-band
// registration and admin commands.
import { Jid, JidError } from './jid.js';
import { deriveCredentials, prepPassword } from './stream/sasl/credentials.js';
import type { Storage, StoredCredentials } from './storage/types.js';
import { FastTokens } from './stream/sasl/fast.js';

export class AccountInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountInputError';
  }
}

/** Parse "user@domain" (or a bare username) for this server's domain; returns the prepared localpart. */
export function usernameFor(input: string, domain: string): string {
  let jid: Jid;
  try {
    jid = Jid.parse(input.includes('@') ? input : `${input}@${domain}`);
  } catch (e) {
    if (e instanceof JidError) throw new AccountInputError(`invalid JID "${input}": ${e.message}`);
    throw e;
  }
  if (!jid.local || jid.resource) throw new AccountInputError(`"${input}" is not a bare JID (user@${domain})`);
  if (jid.domain !== domain) throw new AccountInputError(`${jid.bare} is not on this server's domain (${domain})`);
  return jid.local;
}

export function checkPassword(password: string): void {
  if (password.length === 0) throw new AccountInputError('empty password');
  try {
    prepPassword(password);
  } catch {
    throw new AccountInputError('password contains characters SASLprep prohibits');
  }
}

export async function credentialsFor(password: string, iterations: number): Promise<StoredCredentials> {
  checkPassword(password);
  return deriveCredentials(password, iterations);
}

export interface AccountHooks {
  deleting?(username: string): void | Promise<void>;
  deleted?(username: string): void | Promise<void>;
  created?(username: string): void | Promise<void>;
}

export class Accounts {
  constructor(
    private readonly storage: Storage,
    private readonly iterations: () => number,
    private readonly hooks: AccountHooks = {},
  ) {}

  async create(username: string, password: string): Promise<void> {
    await this.storage.accounts.create(username, await credentialsFor(password, this.iterations()));
    await this.hooks.created?.(username);
  }

  /** A new password also ends every FAST token of the account (XEP-0484 §6). */
  async setPassword(username: string, password: string): Promise<boolean> {
    const changed = await this.storage.accounts.setCredentials(username, await credentialsFor(password, this.iterations()));
    if (changed) await FastTokens.clear(this.storage, username);
    return changed;
  }

  /** Delete the account and everything stored for it. */
  async delete(username: string): Promise<boolean> {
    if (!(await this.storage.accounts.get(username))) return false;
    await this.hooks.deleting?.(username);
    if (!(await this.storage.accounts.delete(username))) return false;
    await this.storage.userData.deleteAll(username);
    await this.storage.invites.deleteAll(username);
    await this.storage.roster.deleteAll(username);
    await this.storage.offline.deleteAll(username);
    await this.hooks.deleted?.(username);
    return true;
  }

  /**
   * Create many accounts: key derivation runs in parallel on the libuv pool,
   * rows are written in batches of one transaction each.
   */
  async createMany(
    entries: { username: string; password: string }[],
    onProgress?: (done: number) => void,
  ): Promise<{ created: number; skipped: string[] }> {
    const BATCH = 500;
    let created = 0;
    const skipped: string[] = [];
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch = entries.slice(i, i + BATCH);
      const creds = await Promise.all(batch.map((e) => credentialsFor(e.password, this.iterations())));
      const s = await this.storage.accounts.createMany(batch.map((e, j) => ({ username: e.username, credentials: creds[j]! })));
      skipped.push(...s);
      created += batch.length - s.length;
      onProgress?.(i + batch.length);
    }
    return { created, skipped };
  }
}
