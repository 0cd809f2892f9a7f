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

export interface Chunk {
  owner: string;
  with: string;
  first: number;
  last: number;
  n: number;
  body: string;
}

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

/** The rows of one batch as chunks: grouped by (owner, with), in seq order, split at CHUNK_SPAN and CHUNK_MAX. */
export function chunkBatch(rows: readonly { owner: string; with: string; seq: number; withFull: string | null; stanza: string; legacy: string | null }[]): Chunk[] {
  // owner -> contact -> entries (two plain lookups: no key string made per row)
  const groups = new Map<string, Map<string, Entry[]>>();
  for (const r of rows) {
    let byWith = groups.get(r.owner);
    if (!byWith) groups.set(r.owner, (byWith = new Map()));
    let g = byWith.get(r.with);
    if (!g) byWith.set(r.with, (g = []));
    g.push({ seq: r.seq, full: r.withFull, stanza: r.stanza, legacy: r.legacy });
  }
  const out: Chunk[] = [];
  for (const [owner, byWith] of groups)
    for (const [withJid, entries] of byWith) {
      entries.sort((a, b) => a.seq - b.seq);
      let start = 0;
      for (let i = 1; i <= entries.length; i++) {
        if (i < entries.length && i - start < CHUNK_MAX && entries[i]!.seq - entries[start]!.seq <= CHUNK_SPAN) continue;
        const part = entries.slice(start, i);
        out.push({ owner, with: withJid, first: part[0]!.seq, last: part.at(-1)!.seq, n: part.length, body: encodeChunk(part) });
        start = i;
      }
    }
  return out;
}
