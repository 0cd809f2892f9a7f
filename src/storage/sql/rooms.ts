import type { Sql } from './sql.js';
import type { RoomAffiliation, RoomStore, StoredRoom } from '../types.js';

interface AffRow {
  room: string;
  jid: string;
  affiliation: RoomAffiliation['affiliation'];
  nick: string | null;
  reason: string | null;
}

export class SqlRoomStore implements RoomStore {
  constructor(private readonly sql: Sql) {}

  async all(service: string): Promise<StoredRoom[]> {
    const rooms = await this.sql.query<{ name: string; config: string; subject: string }>(
      'SELECT name, config, subject FROM muc_rooms WHERE service = $1 ORDER BY name',
      [service],
    );
    const byName = new Map<string, StoredRoom>(rooms.map((r) => [r.name, { ...r, affiliations: [] }]));
    const affs = await this.sql.query<AffRow>('SELECT room, jid, affiliation, nick, reason FROM muc_affiliations WHERE service = $1', [
      service,
    ]);
    for (const a of affs) {
      byName.get(a.room)?.affiliations.push({
        jid: a.jid,
        affiliation: a.affiliation,
        ...(a.nick !== null ? { nick: a.nick } : {}),
        ...(a.reason !== null ? { reason: a.reason } : {}),
      });
    }
    return [...byName.values()];
  }

  async save(service: string, name: string, config: string, subject: string): Promise<void> {
    await this.sql.exec(
      `INSERT INTO muc_rooms (service, name, config, subject, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (service, name) DO UPDATE SET config = excluded.config, subject = excluded.subject, updated_at = excluded.updated_at`,
      [service, name, config, subject, Date.now()],
    );
  }

  async setAffiliation(service: string, name: string, a: RoomAffiliation | { jid: string; affiliation: 'none' }): Promise<void> {
    if (a.affiliation === 'none') {
      await this.sql.exec('DELETE FROM muc_affiliations WHERE service = $1 AND room = $2 AND jid = $3', [service, name, a.jid]);
      return;
    }
    await this.sql.exec(
      `INSERT INTO muc_affiliations (service, room, jid, affiliation, nick, reason) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (service, room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
      [service, name, a.jid, a.affiliation, a.nick ?? null, a.reason ?? null],
    );
  }

  async remove(service: string, name: string): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      await tx.exec('DELETE FROM muc_affiliations WHERE service = $1 AND room = $2', [service, name]);
      return (await tx.exec('DELETE FROM muc_rooms WHERE service = $1 AND name = $2', [service, name])) > 0;
    });
  }
}
