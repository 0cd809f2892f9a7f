import type { Sql } from './sql.js';
import {
  AccountExistsError,
  type Account,
  type AccountStore,
  type StoredCredentials,
  type UserDataStore,
  type OfflineStore,
} from '../types.js';

interface AccountRow {
  username: string;
  credentials: string;
  created_at: number;
  disabled: number;
  admin: number;
  last_login: number | string | null;
}

export class SqlAccountStore implements AccountStore {
  constructor(private readonly sql: Sql) {}

  async create(username: string, credentials: StoredCredentials): Promise<void> {
    const n = await this.sql.exec(
      'INSERT INTO accounts (username, credentials, created_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING',
      [username, JSON.stringify(credentials), Date.now()],
    );
    if (n === 0) throw new AccountExistsError(username);
  }

  async createMany(accounts: { username: string; credentials: StoredCredentials }[]): Promise<string[]> {
    const skipped: string[] = [];
    const now = Date.now();
    await this.sql.transaction(async (tx) => {
      for (const a of accounts) {
        const n = await tx.exec(
          'INSERT INTO accounts (username, credentials, created_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING',
          [a.username, JSON.stringify(a.credentials), now],
        );
        if (n === 0) skipped.push(a.username);
      }
    });
    return skipped;
  }

  async get(username: string): Promise<Account | undefined> {
    const [row] = await this.sql.query<AccountRow>(
      'SELECT username, credentials, created_at, disabled, admin, last_login FROM accounts WHERE username = $1',
      [username],
    );
    if (!row) return undefined;
    return {
      username: row.username,
      credentials: JSON.parse(row.credentials) as StoredCredentials,
      createdAt: Number(row.created_at),
      disabled: Number(row.disabled) !== 0,
      admin: Number(row.admin) !== 0,
      lastLogin: row.last_login == null ? undefined : Number(row.last_login),
    };
  }

  async setCredentials(username: string, credentials: StoredCredentials): Promise<boolean> {
    return (await this.sql.exec('UPDATE accounts SET credentials = $2 WHERE username = $1', [username, JSON.stringify(credentials)])) > 0;
  }

  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    return (await this.sql.exec('UPDATE accounts SET disabled = $2 WHERE username = $1', [username, disabled ? 1 : 0])) > 0;
  }

  async delete(username: string): Promise<boolean> {
    return (await this.sql.exec('DELETE FROM accounts WHERE username = $1', [username])) > 0;
  }

  async list(opts: { after?: string; limit?: number; disabled?: boolean } = {}): Promise<string[]> {
    const where = opts.disabled === undefined ? '' : ` AND disabled = ${opts.disabled ? 1 : 0}`;
    const rows = await this.sql.query<{ username: string }>(
      `SELECT username FROM accounts WHERE username > $1${where} ORDER BY username LIMIT $2`,
      [opts.after ?? '', opts.limit ?? 1_000_000_000],
    );
    return rows.map((r) => r.username);
  }

  async count(opts: { disabled?: boolean } = {}): Promise<number> {
    const where = opts.disabled === undefined ? '' : ` WHERE disabled = ${opts.disabled ? 1 : 0}`;
    const [row] = await this.sql.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM accounts${where}`);
    return Number(row?.n ?? 0);
  }

  async setAdmin(username: string, admin: boolean): Promise<boolean> {
    return (await this.sql.exec('UPDATE accounts SET admin = $2 WHERE username = $1', [username, admin ? 1 : 0])) > 0;
  }

  async admins(): Promise<string[]> {
    return (await this.sql.query<{ username: string }>('SELECT username FROM accounts WHERE admin = 1 ORDER BY username')).map(
      (r) => r.username,
    );
  }

  async recordLogins(logins: { username: string; at: number }[]): Promise<void> {
    if (!logins.length) return;
    await this.sql.transaction(async (tx) => {
      for (const l of logins) await tx.exec('UPDATE accounts SET last_login = $2 WHERE username = $1', [l.username, l.at]);
    });
  }
}

export class SqlUserDataStore implements UserDataStore {
  constructor(private readonly sql: Sql) {}

  async get(username: string, kind: string, key: string): Promise<string | undefined> {
    const [row] = await this.sql.query<{ value: string }>('SELECT value FROM user_data WHERE username = $1 AND kind = $2 AND key = $3', [
      username,
      kind,
      key,
    ]);
    return row?.value;
  }

  async set(username: string, kind: string, key: string, value: string): Promise<void> {
    await this.sql.exec(
      `INSERT INTO user_data (username, kind, key, value, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (username, kind, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [username, kind, key, value, Date.now()],
    );
  }

  async remove(username: string, kind: string, key: string): Promise<boolean> {
    return (await this.sql.exec('DELETE FROM user_data WHERE username = $1 AND kind = $2 AND key = $3', [username, kind, key])) > 0;
  }

  async list(username: string, kind: string): Promise<{ key: string; value: string }[]> {
    return this.sql.query<{ key: string; value: string }>(
      'SELECT key, value FROM user_data WHERE username = $1 AND kind = $2 ORDER BY key',
      [username, kind],
    );
  }

  async clear(username: string, kind: string): Promise<number> {
    return this.sql.exec('DELETE FROM user_data WHERE username = $1 AND kind = $2', [username, kind]);
  }

  async deleteAll(username: string): Promise<number> {
    return this.sql.exec('DELETE FROM user_data WHERE username = $1', [username]);
  }
}

export class SqlOfflineStore implements OfflineStore {
  constructor(private readonly sql: Sql) {}

  async push(username: string, stanza: string, max: number): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      const [r] = await tx.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM offline_messages WHERE username = $1', [username]);
      if (Number(r?.n ?? 0) >= max) return false;
      await tx.exec('INSERT INTO offline_messages (username, stanza, created_at) VALUES ($1, $2, $3)', [username, stanza, Date.now()]);
      return true;
    });
  }

  async list(username: string, limit = 1_000_000): Promise<{ id: number; stanza: string }[]> {
    const rows = await this.sql.query<{ id: number; stanza: string }>(
      'SELECT id, stanza FROM offline_messages WHERE username = $1 ORDER BY id LIMIT $2',
      [username, limit],
    );
    return rows.map((r) => ({ id: Number(r.id), stanza: r.stanza }));
  }

  async remove(username: string, ids: number[]): Promise<void> {
    if (!ids.length) return;
    await this.sql.transaction(async (tx) => {
      for (const id of ids) await tx.exec('DELETE FROM offline_messages WHERE username = $1 AND id = $2', [username, id]);
    });
  }

  async count(username: string): Promise<number> {
    const [r] = await this.sql.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM offline_messages WHERE username = $1', [username]);
    return Number(r?.n ?? 0);
  }

  async deleteAll(username: string): Promise<number> {
    return this.sql.exec('DELETE FROM offline_messages WHERE username = $1', [username]);
  }

  async users(): Promise<string[]> {
    return (await this.sql.query<{ username: string }>('SELECT DISTINCT username FROM offline_messages')).map((r) => r.username);
  }
}
