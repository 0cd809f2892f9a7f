// The archive's write queue, kept off the JavaScript heap.
//
// A row waits up to `batch_ms` (250 ms) for its batch: long enough to outlive two or
// three young-generation collections, each of which copied every waiting row and its
// stanza again. Measured in the chat bench (250 pairs, one core, --trace-gc): with
// the rows kept as objects and strings, scavenges took 8.4 ms on average; with the rows
// dropped at once, 1.3 ms. So a waiting row here is numbers in typed arrays, its
// strings are indices into a small table of the segment's distinct JIDs, and its
// stanza is UTF-8 bytes in one Buffer per segment (memory outside the collected heap).
// Row objects are made again only when the segment is written, and die young. A
// written segment is reset and filled again (SqlArchiveStore keeps one spare):
// allocating megabytes of buffers four times a second made V8 run a full
// mark-compact for the memory outside its heap (24 instead of 8 in a 20 s run).
//
// A segment is written as its columns (columns()), which archive-chunks.ts's chunkRows
// turns into chunks, on SQLite's writer thread.
//
// Written by hand: this is a few typed arrays, not a data structure a library offers.

import type { Columns } from './archive-chunks.js';

/** A row waiting for its batch: the key already decided. */
export interface Queued {
  owner: string;
  seq: number;
  with: string;
  withFull: string | null;
  legacy: string | null;
  stanza: string;
  source: string | undefined;
}

const NONE = -1;
/** owner, with, withFull, source: four string refs per row */
const REFS = 4;

/** Rows of one batch to be, in the order they were queued. */
export class Segment {
  /** rows queued */
  n = 0;
  private cap = 64;
  private seqs = new Float64Array(this.cap);
  private refs = new Int32Array(this.cap * REFS);
  /** stanza bytes: [start, end) per row */
  private spans = new Uint32Array(this.cap * 2);
  /** UTF-16 length of each stanza */
  private units = new Uint32Array(this.cap);
  private bytes: Buffer;
  private used = 0;
  /** the segment's distinct strings (JIDs): a few hundred, however many rows */
  private strings: string[] = [];
  private index = new Map<string, number>();
  /** rare: ids of an older build, and stanzas replaced (XEP-0425) while waiting */
  private legacy: Map<number, string> | undefined;
  private replaced: Map<number, string> | undefined;
  /**
   * The stanza of the row before. A one-to-one message is queued twice in a row (the
   * recipient's copy, then the sender's) with the same text: the second row points at
   * the first one's bytes instead of encoding the stanza again.
   */
  private lastStanza: string | undefined;
  private lastSpan = 0;

  constructor(bytes = 64 * 1024) {
    this.bytes = Buffer.allocUnsafeSlow(bytes);
  }

  /** Empty it to be filled again: its arrays and buffer are kept at the size they grew to. */
  reset(): void {
    this.n = 0;
    this.used = 0;
    this.strings = [];
    this.index = new Map();
    this.legacy = undefined;
    this.replaced = undefined;
    this.lastStanza = undefined;
  }

  push(r: Queued): void {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.seqs[i] = r.seq;
    const at = i * REFS;
    this.refs[at] = this.intern(r.owner);
    this.refs[at + 1] = this.intern(r.with);
    this.refs[at + 2] = r.withFull === null ? NONE : this.intern(r.withFull);
    this.refs[at + 3] = r.source === undefined ? NONE : this.intern(r.source);
    if (r.legacy !== null) (this.legacy ??= new Map()).set(i, r.legacy);
    this.units[i] = r.stanza.length;
    if (r.stanza === this.lastStanza) {
      // the same text as the row before (the other copy of a message): the same bytes
      this.spans[i * 2] = this.spans[this.lastSpan * 2]!;
      this.spans[i * 2 + 1] = this.spans[this.lastSpan * 2 + 1]!;
      return;
    }
    this.lastStanza = r.stanza;
    this.lastSpan = i;
    // three bytes per UTF-16 unit at most: the exact length is needed only near the end
    const room = this.bytes.length - this.used;
    if (r.stanza.length * 3 > room) {
      const need = Buffer.byteLength(r.stanza);
      if (need > room) {
        const next = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.used + need));
        this.bytes.copy(next, 0, 0, this.used);
        this.bytes = next;
      }
    }
    this.spans[i * 2] = this.used;
    this.used += this.bytes.write(r.stanza, this.used, 'utf8');
    this.spans[i * 2 + 1] = this.used;
  }

  /** The rows as objects (to write them, once). */
  rows(): Queued[] {
    const out: Queued[] = new Array(this.n);
    for (let i = 0; i < this.n; i++) out[i] = this.row(i);
    return out;
  }

  /**
   * The rows as columns, for chunkRows: copies of exactly the rows' part of each array, in
   * buffers of their own, so that the SQLite writer hands them to its thread by transfer
   * (`transfer()`). A view into the segment's arrays (which keep the size they grew to)
   * made structured cloning copy each whole buffer, and posting a batch took the event loop
   * 2.1 ms on average in the chat bench, 1.0 ms this way.
   */
  columns(): Omit<Columns, 'span' | 'max'> {
    return {
      n: this.n,
      seqs: this.seqs.slice(0, this.n),
      refs: this.refs.slice(0, this.n * REFS),
      spans: this.spans.slice(0, this.n * 2),
      units: this.units.slice(0, this.n),
      bytes: new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.used).slice(),
      strings: this.strings,
      replaced: [...(this.replaced ?? [])],
      skip: [...(this.legacy?.keys() ?? [])],
    };
  }

  /** The rows under an id of an older build (rare: written apart, one by one). */
  legacyRows(): Queued[] {
    return [...(this.legacy?.keys() ?? [])].map((i) => this.row(i));
  }

  /** The queued sources of its rows, one per row with a source (to release their shares). */
  sources(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.n; i++) {
      const s = this.refs[i * REFS + 3]!;
      if (s !== NONE) out.push(this.strings[s]!);
    }
    return out;
  }

  /** Replace the stanza of the first row `match` accepts; false if none does. */
  replace(match: (owner: string, seq: number, legacy: string | null) => boolean, stanza: string): boolean {
    for (let i = 0; i < this.n; i++)
      if (match(this.strings[this.refs[i * REFS]!]!, this.seqs[i]!, this.legacy?.get(i) ?? null)) {
        (this.replaced ??= new Map()).set(i, stanza);
        return true;
      }
    return false;
  }

  private row(i: number): Queued {
    const at = i * REFS;
    const full = this.refs[at + 2]!;
    const source = this.refs[at + 3]!;
    return {
      owner: this.strings[this.refs[at]!]!,
      seq: this.seqs[i]!,
      with: this.strings[this.refs[at + 1]!]!,
      withFull: full === NONE ? null : this.strings[full]!,
      legacy: this.legacy?.get(i) ?? null,
      stanza: this.replaced?.get(i) ?? this.bytes.toString('utf8', this.spans[i * 2], this.spans[i * 2 + 1]),
      source: source === NONE ? undefined : this.strings[source]!,
    };
  }

  private intern(s: string): number {
    let k = this.index.get(s);
    if (k === undefined) {
      k = this.strings.push(s) - 1;
      this.index.set(s, k);
    }
    return k;
  }

  private grow(): void {
    this.cap *= 2;
    const seqs = new Float64Array(this.cap);
    seqs.set(this.seqs);
    this.seqs = seqs;
    const refs = new Int32Array(this.cap * REFS);
    refs.set(this.refs);
    this.refs = refs;
    const spans = new Uint32Array(this.cap * 2);
    spans.set(this.spans);
    this.spans = spans;
    const units = new Uint32Array(this.cap);
    units.set(this.units);
    this.units = units;
  }
}
