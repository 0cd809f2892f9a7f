// Archive chunks: the messages of one written batch that one owner exchanged with
// one contact are stored as one row of mam_chunks, (owner, with_jid, first_seq,
// last_seq, n, body). One row and two index entries per
// chunk instead of per message is what keeps the archive cheap when a conversation
// is busy (archive.ts has the figures); a quiet conversation gets chunks of one.
//
// The body is the entries one after the other, each a header
// `seq,fullLength,legacyLength,stanzaLength;` then the full JID, the id of an older
// build and the stanza (lengths in UTF-16 code units, -1 for none). Hand-written
// because it is on the hot path: building it is concatenation, where JSON.stringify
// scans every stanza for quotes to escape (measured in the chat bench: JSON took 8%
// of the event loop, most of the chunking cost). Chunks made by migration 8 from
// older rows are a JSON array of [seq, with_full, stanza, legacy_id] and start with
// '['; both are read.
//
// A chunk's messages lie within CHUNK_SPAN of its first_seq, so a reader looking
// for a seq needs only the chunks that start at most CHUNK_SPAN before it.
import { PER_MS } from './archive-ids.js';

/** one archived message inside a chunk */
export interface Entry {
  seq: number;
  /** full JID of the other party, when known */
  full: string | null;
  stanza: string;
  /** the id an older build gave it (kept, and found through mam_legacy) */
  legacy: string | null;
}

/** the seq range one chunk may cover: 2 s of archive time */
export const CHUNK_SPAN = 2000 * PER_MS;
/** messages per chunk at most: keeps a chunk's read and rewrite (XEP-0425 moderation) small */
export const CHUNK_MAX = 256;

/** what migration 8 wrote: [seq, with_full, stanza, legacy_id] */
type Migrated = [number, string | null, string, string | null];

export function encodeChunk(entries: readonly Entry[]): string {
  let out = '';
  for (const e of entries) {
    const full = e.full ?? '';
    const legacy = e.legacy ?? '';
    out += `${e.seq},${e.full === null ? -1 : full.length},${e.legacy === null ? -1 : legacy.length},${e.stanza.length};${full}${legacy}${e.stanza}`;
  }
  return out;
}

export function decodeChunk(body: string): Entry[] {
  if (body.startsWith('[')) {
    const wire = JSON.parse(body) as Migrated[];
    return wire.map((w) => ({ seq: Number(w[0]), full: w[1] ?? null, stanza: w[2], legacy: w[3] ?? null }));
  }
  const out: Entry[] = [];
  let at = 0;
  while (at < body.length) {
    const end = body.indexOf(';', at);
    if (end < 0) throw new Error('archive chunk: truncated header');
    const [seq, fullLen, legacyLen, stanzaLen] = body.slice(at, end).split(',').map(Number) as [number, number, number, number];
    let p = end + 1;
    const full = fullLen < 0 ? null : body.slice(p, (p += fullLen));
    const legacy = legacyLen < 0 ? null : body.slice(p, (p += legacyLen));
    const stanza = body.slice(p, (p += stanzaLen));
    if (p > body.length || !Number.isSafeInteger(seq)) throw new Error('archive chunk: bad entry');
    out.push({ seq, full, stanza, legacy });
    at = p;
  }
  return out;
}

/** A batch of queued rows as columns (archive-queue.ts's Segment), with the chunk bounds. */
export interface Columns {
  n: number;
  seqs: Float64Array;
  /** per row: owner, with, withFull, source, as indices into `strings` (-1: none) */
  refs: Int32Array;
  /** per row: start and end of its stanza in `bytes` */
  spans: Uint32Array;
  /** per row: its stanza's length in UTF-16 code units (the body's headers count those) */
  units: Uint32Array;
  /** the stanzas, UTF-8 */
  bytes: Uint8Array;
  strings: string[];
  /** rows whose stanza was replaced (XEP-0425) while they waited */
  replaced: [number, string][];
  /** rows written apart (under an id of an older build) */
  skip: number[];
  span: number;
  max: number;
}

/** The buffers a batch's columns own (Segment.columns() makes them for this): moved, not copied, to the writer thread. */
export function transfer(c: Columns): ArrayBuffer[] {
  return [c.seqs.buffer, c.refs.buffer, c.spans.buffer, c.units.buffer, c.bytes.buffer] as ArrayBuffer[];
}

/**
 * A batch's chunks as flat statement values, six per chunk: owner, with_jid, first_seq,
 * last_seq, n and the body as UTF-8 bytes (encodeChunk's text, byte for byte; a view
 * into one buffer for the whole batch). Rows are grouped by (owner, with), in seq
 * order, split at `span` and `max`.
 *
 * SQLite's writer thread runs this itself (Sql.execBuilt ships it there as its source
 * text), so the batch is handed over as a few typed arrays and one byte buffer instead
 * of thousands of strings, and the main thread does not stop to build it (which took
 * it 10-15 ms per batch in the chat bench). So it must use nothing from outside itself
 * but JavaScript's and Node's globals.
 */
export function chunkRows(c: Columns): unknown[] {
  const REFS = 4;
  const replaced = new Map(c.replaced);
  const skip = new Set(c.skip);
  const width = c.strings.length;
  const groups = new Map<number, number[]>();
  // an upper bound of the bodies' size: headers, full JIDs at 3 bytes per unit, stanzas
  let bound = 0;
  for (let i = 0; i < c.n; i++) {
    if (skip.has(i)) continue;
    const key = c.refs[i * REFS]! * width + c.refs[i * REFS + 1]!;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(i);
    const full = c.refs[i * REFS + 2]!;
    const r = replaced.get(i);
    bound += 64 + (full < 0 ? 0 : c.strings[full]!.length * 3) + (r !== undefined ? r.length * 3 : c.spans[i * 2 + 1]! - c.spans[i * 2]!);
  }
  const out = Buffer.allocUnsafe(bound);
  const src = Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength);
  const values: unknown[] = [];
  let at = 0;
  for (const rows of groups.values()) {
    rows.sort((a, b) => c.seqs[a]! - c.seqs[b]!);
    let start = 0;
    for (let k = 1; k <= rows.length; k++) {
      if (k < rows.length && k - start < c.max && c.seqs[rows[k]!]! - c.seqs[rows[start]!]! <= c.span) continue;
      const from = at;
      for (let j = start; j < k; j++) {
        const i = rows[j]!;
        const full = c.refs[i * REFS + 2]!;
        const fullText = full < 0 ? '' : c.strings[full]!;
        const r = replaced.get(i);
        at += out.write(`${c.seqs[i]!},${full < 0 ? -1 : fullText.length},-1,${r !== undefined ? r.length : c.units[i]!};`, at, 'latin1');
        if (full >= 0) at += out.write(fullText, at, 'utf8');
        if (r !== undefined) at += out.write(r, at, 'utf8');
        else at += src.copy(out, at, c.spans[i * 2]!, c.spans[i * 2 + 1]!);
      }
      const first = rows[start]!;
      values.push(
        c.strings[c.refs[first * REFS]!],
        c.strings[c.refs[first * REFS + 1]!],
        c.seqs[first],
        c.seqs[rows[k - 1]!],
        k - start,
        out.subarray(from, at),
      );
      start = k;
    }
  }
  return values;
}
