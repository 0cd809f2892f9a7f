import { MIGRATIONS, type Migration } from '../migrations/index.js';
import type { Sql } from './sql.js';

/** Apply pending migrations; safe when several nodes start at once (Postgres advisory lock). */
export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return sql.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(7355608)');
    await tx.script(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const done = new Set((await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      const pg = tx.dialect === 'postgres';
      const text = m.dialect ? `${m.sql}\n${pg ? m.dialect.postgres : m.dialect.sqlite}` : m.sql;
      if (text.trim())
        await tx.script(
          text
            .replace(/\{\{serial\}\}/g, pg ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT')
            .replace(/\{\{json_array\}\}/g, pg ? 'json_build_array' : 'json_array')
            .replace(/\{\{without_rowid\}\}/g, pg ? '' : 'WITHOUT ROWID'),
        );
      await tx.exec('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
    return applied;
  });
}
