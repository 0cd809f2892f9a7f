import type { Sql } from './sql.js';
import type { RosterItem, RosterStore, Subscription } from '../types.js';

interface Row {
  jid: string;
  name: string | null;
  subscription: string;
  ask: number;
  approved: number;
  groups: string;
}

const toItem = (r: Row): RosterItem => ({
  jid: r.jid,
  ...(r.name !== null ? { name: r.name } : {}),
  subscription: r.subscription as Subscription,
  ask: Number(r.ask) !== 0,
  approved: Number(r.approved) !== 0,
  groups: JSON.parse(r.groups) as string[],
});

export class SqlRosterStore implements RosterStore {
  constructor(private readonly sql: Sql) {}

  async get(username: string): Promise<{ version: number; items: RosterItem[] }> {
    // one round trip for the version and the items (read at every login)
    const rows = await this.sql.query<Row & { version: number | null }>(
      `SELECT v.version AS version, r.jid, r.name, r.subscription, r.ask, r.approved, r.groups
       FROM (SELECT CAST($1 AS TEXT) AS u) q
       LEFT JOIN roster_versions v ON v.username = q.u
       LEFT JOIN roster_items r ON r.username = q.u
       ORDER BY r.jid`,
      [username],
    );
    const version = Number(rows[0]?.version ?? 0);
    return { version, items: rows.filter((r) => r.jid !== null).map(toItem) };
  }

  async getItem(username: string, jid: string): Promise<RosterItem | undefined> {
    const [r] = await this.sql.query<Row>(
      'SELECT jid, name, subscription, ask, approved, groups FROM roster_items WHERE username = $1 AND jid = $2',
      [username, jid],
    );
    return r ? toItem(r) : undefined;
  }

  private bump(tx: Sql, username: string): Promise<{ version: number }[]> {
    return tx.query<{ version: number }>(
      `INSERT INTO roster_versions (username, version) VALUES ($1, 1)
       ON CONFLICT (username) DO UPDATE SET version = roster_versions.version + 1 RETURNING version`,
      [username],
    );
  }

  async put(username: string, item: RosterItem): Promise<number> {
    return this.sql.transaction(async (tx) => {
      await tx.exec(
        `INSERT INTO roster_items (username, jid, name, subscription, ask, approved, groups) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (username, jid) DO UPDATE SET name = excluded.name, subscription = excluded.subscription,
           ask = excluded.ask, approved = excluded.approved, groups = excluded.groups`,
        [username, item.jid, item.name ?? null, item.subscription, item.ask ? 1 : 0, item.approved ? 1 : 0, JSON.stringify(item.groups)],
      );
      const [v] = await this.bump(tx, username);
      return Number(v!.version);
    });
  }

  async remove(username: string, jid: string): Promise<number | undefined> {
    return this.sql.transaction(async (tx) => {
      const n = await tx.exec('DELETE FROM roster_items WHERE username = $1 AND jid = $2', [username, jid]);
      if (n === 0) return undefined;
      const [v] = await this.bump(tx, username);
      return Number(v!.version);
    });
  }

  async count(username: string): Promise<number> {
    const [r] = await this.sql.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM roster_items WHERE username = $1', [username]);
    return Number(r?.n ?? 0);
  }

  async holders(jid: string): Promise<string[]> {
    return (await this.sql.query<{ username: string }>('SELECT username FROM roster_items WHERE jid = $1', [jid])).map((r) => r.username);
  }

  async addPending(username: string, jid: string, stanza: string): Promise<void> {
    await this.sql.exec(
      `INSERT INTO roster_pending (username, jid, stanza, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (username, jid) DO UPDATE SET stanza = excluded.stanza`,
      [username, jid, stanza, Date.now()],
    );
  }

  async removePending(username: string, jid: string): Promise<boolean> {
    return (await this.sql.exec('DELETE FROM roster_pending WHERE username = $1 AND jid = $2', [username, jid])) > 0;
  }

  async pending(username: string): Promise<{ jid: string; stanza: string }[]> {
    return this.sql.query<{ jid: string; stanza: string }>(
      'SELECT jid, stanza FROM roster_pending WHERE username = $1 ORDER BY created_at, jid',
      [username],
    );
  }

  async deleteAll(username: string): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.exec('DELETE FROM roster_items WHERE username = $1', [username]);
      await tx.exec('DELETE FROM roster_pending WHERE username = $1', [username]);
      await tx.exec('DELETE FROM roster_versions WHERE username = $1', [username]);
    });
  }
}
