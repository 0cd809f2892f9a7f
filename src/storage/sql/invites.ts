// Invitations (xeps/0401-invites) on SQLite and Postgres alike.
import type { Sql } from './sql.js';
import type { InviteStore, StoredInvite } from '../types.js';

interface Row {
  id: string;
  kind: string;
  inviter: string;
  username: string;
  admin: number;
  register: number;
  uses: number;
  created_at: number | string;
  expires_at: number | string;
}

const COLUMNS = 'id, kind, inviter, username, admin, register, uses, created_at, expires_at';
const invite = (r: Row): StoredInvite => ({
  id: r.id,
  kind: r.kind === 'contact' ? 'contact' : 'account',
  inviter: r.inviter,
  username: r.username,
  admin: Number(r.admin) !== 0,
  register: Number(r.register) !== 0,
  uses: Number(r.uses),
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});

export class SqlInviteStore implements InviteStore {
  constructor(private readonly sql: Sql) {}

  async create(i: StoredInvite): Promise<void> {
    await this.sql.exec(`INSERT INTO invites (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
      i.id,
      i.kind,
      i.inviter,
      i.username,
      i.admin ? 1 : 0,
      i.register ? 1 : 0,
      i.uses,
      i.createdAt,
      i.expiresAt,
    ]);
  }

  async get(id: string, now = Date.now()): Promise<StoredInvite | undefined> {
    const [row] = await this.sql.query<Row>(`SELECT ${COLUMNS} FROM invites WHERE id = $1 AND expires_at > $2`, [id, now]);
    return row ? invite(row) : undefined;
  }

  async use(id: string, now = Date.now()): Promise<boolean> {
    return (await this.sql.exec('UPDATE invites SET uses = uses - 1 WHERE id = $1 AND uses > 0 AND expires_at > $2', [id, now])) > 0;
  }

  async unuse(id: string): Promise<void> {
    await this.sql.exec('UPDATE invites SET uses = uses + 1 WHERE id = $1', [id]);
  }

  async reserved(username: string, now = Date.now()): Promise<boolean> {
    const rows = await this.sql.query<{ id: string }>(
      'SELECT id FROM invites WHERE username = $1 AND uses > 0 AND expires_at > $2 LIMIT 1',
      [username, now],
    );
    return rows.length > 0;
  }

  async list(inviter: string, now = Date.now()): Promise<StoredInvite[]> {
    const rows = await this.sql.query<Row>(`SELECT ${COLUMNS} FROM invites WHERE inviter = $1 AND expires_at > $2 ORDER BY created_at`, [
      inviter,
      now,
    ]);
    return rows.map(invite);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.sql.exec('DELETE FROM invites WHERE id = $1', [id])) > 0;
  }

  async sweep(now = Date.now()): Promise<number> {
    return this.sql.exec('DELETE FROM invites WHERE expires_at <= $1 OR uses <= 0', [now]);
  }

  async deleteAll(inviter: string): Promise<number> {
    return this.sql.exec('DELETE FROM invites WHERE inviter = $1', [inviter]);
  }
}
