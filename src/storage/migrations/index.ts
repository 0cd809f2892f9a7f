// Numbered schema migrations, applied in order at start (and by `uzzap migrate`).
// SQL here is portable between SQLite and Postgres: TEXT, BIGINT, ON CONFLICT.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'accounts and per-user data',
    sql: `
      CREATE TABLE accounts (
        username TEXT PRIMARY KEY,
        credentials TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE user_data (
        username TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (username, kind, key)
      );
    `,
  },
];
