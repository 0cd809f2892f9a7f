// Reading the chunked archive (archive.ts writes it): a page of messages in seq
// order, and how many messages a query matches, over mam_chunks and, for a `with`
// filter, mam_with_days (migration 11: per owner, contact and UTC day, how many
// messages). There is no index per contact: a `with` page scans (owner, first_seq)
// over the days that have messages with that contact (consecutive days as one
// range), and a `with` count is a sum of whole days plus the chunks of the partial
// days at the range's ends. So a contact's page reads the owner's chunks of the days
// it talked with that contact: cheap for a phone's archive, more for an owner of
// thousands of chunks a day asking for a contact it rarely talks to.
// On SQLite the chunks are found through their keys (migration 13): mam_chunk_keys and
// the keys of the last few seconds' chunks, mam_chunk_keys_new, read as one (chunkSql).
import type { Sql } from './sql.js';
import { PER_MS } from './archive-ids.js';
import { CHUNK_SPAN, decodeChunk, type Entry } from './archive-chunks.js';

/** A chunk as read back. */
export interface ChunkRow {
  with_jid: string;
  first_seq: number | string;
  last_seq: number | string;
  n: number | string;
  body: string | null;
  /** SQLite: the chunk's id (mam_chunks has no index but its id) */
  id?: number | string;
}

/**
 * The SQL of a read of chunks by `where` (conditions on owner, first_seq, with_jid,
 * last_seq and n with $-numbered parameters). `rows`: the chunks (with `owner` when
 * asked, and on SQLite their id); `n`: their message counts; `sum`: the sum of those
 * (as `s`); `delete`: a DELETE of those chunks.
 * Postgres reads mam_chunks by its index. SQLite reads the merged keys and the new ones
 * as one (a compound SELECT: with an order and a limit, a merge of two index scans that
 * stops at the limit), then the chunks by id.
 */
export function chunkSql(
  dialect: Sql['dialect'],
  what: 'rows' | 'n' | 'sum' | 'delete',
  where: string,
  opts: { owner?: boolean; order?: 'ASC' | 'DESC'; limit?: number; lock?: boolean } = {},
): string {
  const order = opts.order ? ` ORDER BY first_seq ${opts.order}` : '';
  const limit = opts.limit !== undefined ? ` LIMIT ${opts.limit}` : '';
  const owner = opts.owner ? 'owner, ' : '';
  if (what === 'sum') return `SELECT sum(n) AS s FROM (${chunkSql(dialect, 'n', where, opts)}) AS whole`;
  if (dialect === 'postgres') {
    if (what === 'delete') return `DELETE FROM mam_chunks WHERE ${where}`;
    const cols = what === 'n' ? 'n' : `${owner}with_jid, first_seq, last_seq, n, body`;
    return `SELECT ${cols} FROM mam_chunks WHERE ${where}${order}${limit}${opts.lock ? ' FOR UPDATE' : ''}`;
  }
  const keys = (cols: string): string =>
    `SELECT ${cols} FROM mam_chunk_keys WHERE ${where} UNION ALL SELECT ${cols} FROM mam_chunk_keys_new WHERE ${where}${order}${limit}`;
  if (what === 'n') return keys('n');
  if (what === 'delete') return `DELETE FROM mam_chunks WHERE id IN (${keys('chunk')})`;
  return `SELECT ${owner ? 'k.owner, ' : ''}k.with_jid, k.first_seq, k.last_seq, k.n, k.chunk AS id, c.body
    FROM (${keys('owner, with_jid, first_seq, last_seq, n, chunk')}) AS k JOIN mam_chunks AS c ON c.id = k.chunk${order ? ` ORDER BY k.first_seq ${opts.order}` : ''}`;
}

/** The WHERE clause naming one chunk read back (by its id on SQLite, where mam_chunks has no other index), its parameters numbered from `at`. */
export function oneChunk(row: ChunkRow, owner: string, at: number): [string, unknown[]] {
  return row.id !== undefined
    ? [`id = $${at}`, [row.id]]
    : [`owner = $${at} AND with_jid = $${at + 1} AND first_seq = $${at + 2}`, [owner, row.with_jid, row.first_seq]];
}

/** chunks read per round trip while a page is collected */
const SCAN_PAGE = 64;
/** days of mam_with_days read per round trip while a `with` page is collected */
const DAYS_PAGE = 256;
/** a UTC day in seq units: migration 11's DAY, which its triggers store */
const DAY = 86_400_000 * PER_MS;
/** the day of a seq, floored as migration 11's SQL does (exact: a float quotient can round up near a day's end) */
function dayOf(seq: number): number {
  let d = Math.floor(seq / DAY);
  if (d * DAY > seq) d--;
  else if ((d + 1) * DAY <= seq) d++;
  return d;
}
/** messages in seq order, or the reverse */
const order =
  (desc: boolean) =>
  (a: { entry: Entry }, b: { entry: Entry }): number =>
    desc ? b.entry.seq - a.entry.seq : a.entry.seq - b.entry.seq;
export const MIN_SEQ = Number.MIN_SAFE_INTEGER;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * The first `want` messages in [lo, hi] that pass `keep`, in seq order (descending
 * when `desc`), read chunk by chunk in first_seq order. A chunk holds seqs from its
 * first_seq to at most first_seq + CHUNK_SPAN, so the scan stops once no later chunk
 * can hold a message before the `want`-th found. With a contact, only the days that
 * have messages with it are scanned (mam_with_days), consecutive days as one range.
 */
export async function collect(
  sql: Sql,
  owner: string,
  withJid: string | undefined,
  lo: number,
  hi: number,
  desc: boolean,
  keep: (e: Entry) => boolean,
  want: number,
): Promise<{ withJid: string; entry: Entry }[]> {
  const found: { withJid: string; entry: Entry }[] = [];
  if (want <= 0 || lo > hi) return found;
  const fLo = Math.max(lo - CHUNK_SPAN, MIN_SEQ);
  if (withJid === undefined) {
    await scan(sql, owner, undefined, fLo, hi, lo, hi, desc, keep, want, found);
    return found.sort(order(desc));
  }
  // the contact's days over [fLo, hi], in scan order, a page at a time; runs of days in a row are one range
  let from = dayOf(fLo);
  let to = dayOf(hi);
  for (;;) {
    // SQLite: with the days in the changes not folded yet (migration 12); a day listed
    // there whose chunks went meanwhile is only a range scanned for nothing
    const days = (
      await sql.query<{ day: number | string }>(
        sql.dialect === 'sqlite'
          ? `SELECT day FROM mam_with_days WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4
              UNION SELECT day FROM mam_day_delta WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4 AND n > 0
              ORDER BY day ${desc ? 'DESC' : 'ASC'} LIMIT ${DAYS_PAGE}`
          : `SELECT day FROM mam_with_days WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4 ORDER BY day ${desc ? 'DESC' : 'ASC'} LIMIT ${DAYS_PAGE}`,
        [owner, withJid, from, to],
      )
    ).map((r) => Number(r.day));
    for (let i = 0; i < days.length;) {
      let j = i;
      while (j + 1 < days.length && days[j + 1] === days[j]! + (desc ? -1 : 1)) j++;
      const first = Math.min(days[i]!, days[j]!);
      const last = Math.max(days[i]!, days[j]!);
      const rLo = Math.max(first * DAY, fLo);
      const rHi = Math.min((last + 1) * DAY - 1, hi);
      if (found.length >= want) {
        // no message in this range or later can come before the want-th found
        const kth = found[want - 1]!.entry.seq;
        if (desc ? rHi + CHUNK_SPAN < kth : rLo > kth) return found.sort(order(desc));
      }
      if (await scan(sql, owner, withJid, rLo, rHi, lo, hi, desc, keep, want, found)) return found.sort(order(desc));
      i = j + 1;
    }
    if (days.length < DAYS_PAGE) break;
    if (desc) to = days.at(-1)! - 1;
    else from = days.at(-1)! + 1;
  }
  return found.sort(order(desc));
}

/**
 * collect()'s keyset scan of chunks with first_seq in [rLo, rHi] for messages in [lo, hi]: adds what passes to `found`, kept at `want`; true once no later chunk can matter.
 */
async function scan(
  sql: Sql,
  owner: string,
  withJid: string | undefined,
  rLo: number,
  rHi: number,
  lo: number,
  hi: number,
  desc: boolean,
  keep: (e: Entry) => boolean,
  want: number,
  found: { withJid: string; entry: Entry }[],
): Promise<boolean> {
  const withClause = withJid === undefined ? '' : ' AND with_jid = $5';
  const text = desc
    ? chunkSql(sql.dialect, 'rows', `owner = $1 AND first_seq < $2 AND first_seq >= $3 AND last_seq >= $4${withClause}`, {
        order: 'DESC',
        limit: SCAN_PAGE,
      })
    : chunkSql(sql.dialect, 'rows', `owner = $1 AND first_seq > $2 AND first_seq <= $3 AND last_seq >= $4${withClause}`, {
        order: 'ASC',
        limit: SCAN_PAGE,
      });
  // the keyset cursor: exclusive
  let cursor = desc ? rHi + 1 : rLo - 1;
  for (;;) {
    const params: unknown[] = desc ? [owner, cursor, rLo, lo] : [owner, cursor, rHi, lo];
    if (withJid !== undefined) params.push(withJid);
    const rows = await sql.query<ChunkRow>(text, params);
    for (const row of rows) {
      const first = Number(row.first_seq);
      if (found.length >= want) {
        const kth = found[want - 1]!.entry.seq;
        if (desc ? first + CHUNK_SPAN < kth : first > kth) return true;
      }
      for (const entry of decodeChunk(row.body!))
        if (entry.seq >= lo && entry.seq <= hi && keep(entry)) found.push({ withJid: row.with_jid, entry });
      if (found.length >= want) {
        found.sort(order(desc));
        found.length = want;
      }
    }
    if (rows.length < SCAN_PAGE) return false;
    cursor = Number(rows.at(-1)!.first_seq);
  }
}

/**
 * How many messages of [lo, hi] pass the filter, counting up to `limit` (undefined
 * beyond it). Without a per-message filter, whole chunks are summed in SQL and only
 * the chunks across the range's ends are read.
 */
export async function count(
  sql: Sql,
  owner: string,
  withJid: string | undefined,
  lo: number,
  hi: number,
  perMessage: ((e: Entry) => boolean) | undefined,
  limit: number | undefined,
): Promise<number | undefined> {
  if (lo > hi) return 0;
  if (perMessage) {
    const n = (await collect(sql, owner, withJid, lo, hi, false, perMessage, limit === undefined ? MAX_SEQ : limit + 1)).length;
    return limit !== undefined && n > limit ? undefined : n;
  }
  if (withJid !== undefined) {
    // whole days [dA, dB] from mam_with_days: every chunk whose first_seq is in them lies
    // inside [lo, hi] (dB ends CHUNK_SPAN before hi); the chunks before and after, read
    // dA: the first day starting at or after max(lo, 0); dB: the last ending by hi - CHUNK_SPAN
    const dA = -dayOf(-Math.max(lo, 0)); // a ceiling
    const dB = dayOf(hi - CHUNK_SPAN + 1) - 1;
    if (dA <= dB) {
      const [d] = await sql.query<{ s: number | string | null }>(
        sql.dialect === 'sqlite'
          ? `SELECT (SELECT coalesce(sum(n), 0) FROM mam_with_days WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4)
              + (SELECT coalesce(sum(n), 0) FROM mam_day_delta WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4) AS s`
          : 'SELECT sum(n) AS s FROM mam_with_days WHERE owner = $1 AND with_jid = $2 AND day >= $3 AND day <= $4',
        [owner, withJid, dA, dB],
      );
      const n =
        Number(d?.s ?? 0) +
        (await countChunks(sql, owner, withJid, Math.max(lo - CHUNK_SPAN, MIN_SEQ), dA * DAY - 1, lo, hi)) +
        (await countChunks(sql, owner, withJid, (dB + 1) * DAY, hi, lo, hi));
      return limit !== undefined && n > limit ? undefined : n;
    }
  }
  const withClause = withJid === undefined ? '' : ' AND with_jid = $4';
  const params: unknown[] = [owner, lo, hi];
  if (withJid !== undefined) params.push(withJid);
  // chunks wholly inside [lo, hi]
  const [c] = await sql.query<{ s: number | string | null }>(
    chunkSql(sql.dialect, 'sum', `owner = $1 AND first_seq >= $2 AND last_seq <= $3${withClause}`, {
      limit: limit === undefined ? undefined : limit + 1,
    }),
    params,
  );
  let n = Number(c?.s ?? 0);
  if (limit !== undefined && n > limit) return undefined;
  // chunks across an end of the range: read, and count their messages inside it
  const edges = await sql.query<ChunkRow>(
    chunkSql(
      sql.dialect,
      'rows',
      `owner = $1 AND first_seq <= $3 AND last_seq >= $2
         AND ((first_seq < $2 AND first_seq >= $2 - ${CHUNK_SPAN}) OR (last_seq > $3 AND first_seq > $3 - ${CHUNK_SPAN}))${withClause}`,
    ),
    params,
  );
  for (const row of edges) for (const e of decodeChunk(row.body!)) if (e.seq >= lo && e.seq <= hi) n++;
  return limit !== undefined && n > limit ? undefined : n;
}

/** count()'s messages in [lo, hi] of one contact's chunks whose first_seq is in [fLo, fHi] (a day or two at most) */
async function countChunks(sql: Sql, owner: string, withJid: string, fLo: number, fHi: number, lo: number, hi: number): Promise<number> {
  if (fLo > fHi) return 0;
  const params = [owner, withJid, fLo, fHi, lo, hi];
  const inDays = 'owner = $1 AND first_seq >= $3 AND first_seq <= $4 AND with_jid = $2';
  const [c] = await sql.query<{ s: number | string | null }>(
    chunkSql(sql.dialect, 'sum', `${inDays} AND first_seq >= $5 AND last_seq <= $6`),
    params,
  );
  let n = Number(c?.s ?? 0);
  const across = await sql.query<ChunkRow>(chunkSql(sql.dialect, 'rows', `${inDays} AND (first_seq < $5 OR last_seq > $6)`), params);
  for (const row of across) for (const e of decodeChunk(row.body!)) if (e.seq >= lo && e.seq <= hi) n++;
  return n;
}
