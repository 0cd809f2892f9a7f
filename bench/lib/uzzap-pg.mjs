// Postgres helpers for Uzzap runs on Postgres (UZZAP_POSTGRES_URL): only
// loopback servers and databases named uzzap_bench* are accepted, because a
// run may create, empty or bulk-load them. SQL goes through Uzzap's own
// driver wrapper (dist/src/storage/sql/postgres.js, the `pg` package).
import { parentPid } from './proc.mjs';

const REPO = new URL('../../', import.meta.url);

/** Parse and check a bench database URL; returns { url, database }. */
export function benchPgUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`bad Postgres URL ${url}`);
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) throw new Error(`not a Postgres URL: ${url}`);
  if (!/^(127\.|localhost$|\[::1\]$)/.test(u.hostname)) throw new Error(`only a loopback Postgres is allowed (got ${u.hostname})`);
  const database = decodeURIComponent(u.pathname.slice(1));
  if (!/^uzzap_bench\w*$/.test(database))
    throw new Error(`the bench only uses databases named uzzap_bench* (it may empty them); got '${database}'`);
  return { url, database };
}

/** For reports: the URL without a password. */
export const redactUrl = (url) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

/** An Sql (query/exec/script/close) on `url` with at most `max` connections. */
export async function openSql(url, max = 1) {
  const { openPostgres } = await import(new URL('dist/src/storage/sql/postgres.js', REPO).href);
  return openPostgres(url, max);
}

/** Create the database if it does not exist (connects to the `postgres` maintenance database). */
export async function ensureDatabase(url) {
  const { database } = benchPgUrl(url);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const sql = await openSql(admin.toString());
  try {
    const [row] = await sql.query('SELECT 1 AS x FROM pg_database WHERE datname = $1', [database]);
    if (!row) {
      await sql.script(`CREATE DATABASE "${database}"`);
      return true;
    }
    return false;
  } finally {
    await sql.close();
  }
}

/** Drop everything in the database's public schema (a fresh database for the next server start). */
export async function resetDatabase(url) {
  benchPgUrl(url);
  const sql = await openSql(url);
  try {
    await sql.script('DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
  } finally {
    await sql.close();
  }
}

/**
 * The Postgres processes that work for a database: `pids`, its backends (except the one `sql` itself
 * uses) plus the shared WAL writer, checkpointer and background writer; and `postmaster`, whose
 * reaped-children CPU time holds short-lived workers (parallel query, autovacuum). Only meaningful
 * when Postgres runs on this machine (its PIDs are ours to read in /proc).
 */
export async function dbProcs(sql, database) {
  const rows = await sql.query(
    `SELECT pid, pid = pg_backend_pid() AS me FROM pg_stat_activity
      WHERE datname = $1 OR backend_type IN ('walwriter', 'checkpointer', 'background writer')`,
    [database],
  );
  const me = rows.find((r) => r.me);
  return { pids: rows.filter((r) => !r.me).map((r) => Number(r.pid)), postmaster: me ? parentPid(Number(me.pid)) : null };
}

/** Postgres settings that matter for the figures. */
export async function pgSettings(sql) {
  const rows = await sql.query(
    `SELECT name, setting, unit FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'work_mem',
       'effective_cache_size', 'synchronous_commit', 'jit', 'max_parallel_workers_per_gather', 'random_page_cost')`,
  );
  const out = {};
  for (const r of rows) out[r.name] = r.unit === '8kB' ? `${(Number(r.setting) * 8) / 1024} MiB` : r.unit ? `${r.setting} ${r.unit}` : r.setting;
  return out;
}
