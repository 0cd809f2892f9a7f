// Archive ids (the XEP-0359 stanza-id a recipient sees, the MAM result id) derived
// from the row's sequence number, so the archive needs no index on ids: an id
// decodes to its (owner, seq) key, which the primary index already has.
//
// seq = (ms since 2000-01-01) * 4096 + a counter: time-ordered, so archive order,
// time filters and purges are ranges of seq, and the time of a row is its seq.
// Up to 4,096 ids per ms on a node; more borrow from the next ms. Numbers stay
// below 2^53 until 2069. Two nodes writing one database must not allocate the same
// seq for one owner in one ms: in a cluster each node has a lane (useLane: a residue
// modulo the number of lanes, claimed in Redis by src/cluster/cluster.ts), so with 16
// lanes a node has 256 ids per ms before it borrows from the next ms.
//
// The id is seq under a keyed permutation (a 6-round Feistel network over two
// 32-bit halves, round function the MurmurHash3 finaliser), in 13 base-32
// characters: not guessable from a neighbour's id without the deployment's key,
// which is random and stored in the database. It is a bijection, not a cipher;
// nothing depends on its secrecy but the unguessability of ids. Hand-written:
// no library offers a keyed 64-bit permutation small enough to run per message.

export const ARCHIVE_EPOCH = Date.UTC(2000, 0, 1);
export const PER_MS = 4096;
const TWO32 = 2 ** 32;
const ROUNDS = 6;
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** digit value by char code (-1: not a digit); ids are decoded per archived message */
const DIGIT = new Int8Array(128).fill(-1);
const ALPHABET_CODES = Uint16Array.from(ALPHABET, (c) => c.charCodeAt(0));
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;
const ID_LENGTH = 13;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The time (ms since the Unix epoch) a sequence number stands for. */
export function seqTime(seq: number): number {
  return Math.floor(seq / PER_MS) + ARCHIVE_EPOCH;
}

/** The first sequence number of a time (ms since the Unix epoch). */
export function timeSeq(ts: number): number {
  return (ts - ARCHIVE_EPOCH) * PER_MS;
}

export class ArchiveIds {
  private readonly keys: number[];
  private last = 0;
  /** for rows with an explicit time in the past (imports): their own counter */
  private past = 0;

  /** `secret`: the deployment's key, 32 hex digits */
  constructor(secret: string) {
    if (!/^[0-9a-f]{32}$/.test(secret)) throw new Error('archive id key must be 32 hex digits');
    const words = [0, 8, 16, 24].map((i) => parseInt(secret.slice(i, i + 8), 16));
    this.keys = Array.from({ length: ROUNDS }, (_, i) => fmix32((words[i % 4]! + Math.imul(i + 1, 0x9e3779b9)) >>> 0));
  }

  private lane = 0;
  private lanes = 1;

  /** Allocate only seqs ≡ lane (mod lanes): this node's share when several write one database. */
  useLane(lane: number, lanes: number): void {
    if (!Number.isInteger(lanes) || lanes < 1 || PER_MS % lanes !== 0 || !Number.isInteger(lane) || lane < 0 || lane >= lanes)
      throw new Error(`bad archive lane ${lane} of ${lanes}`);
    this.lane = lane;
    this.lanes = lanes;
  }

  /** the first seq ≥ s in this node's lane */
  private inLane(s: number): number {
    return s + ((((this.lane - (s % this.lanes)) % this.lanes) + this.lanes) % this.lanes);
  }

  /** A fresh sequence number for a row archived at `ts` (now by default). */
  next(ts = Date.now()): number {
    const seq = timeSeq(Math.max(Math.trunc(ts), ARCHIVE_EPOCH));
    // now, or a clock step back of under 10 s: keep counting up
    if (seq > this.last) return (this.last = this.inLane(seq));
    if (this.last - seq < 10_000 * PER_MS) return (this.last = this.inLane(this.last + 1));
    // an explicit time in the past
    return seq + ((this.past++ * this.lanes + this.lane) % PER_MS);
  }

  encode(seq: number): string {
    let l = Math.floor(seq / TWO32) >>> 0;
    let r = seq >>> 0;
    for (let i = 0; i < ROUNDS; i++) {
      const t = (l ^ fmix32((r ^ this.keys[i]!) >>> 0)) >>> 0;
      l = r;
      r = t;
    }
    // 64 bits as 13 base-32 digits, most significant first
    const codes = this.codes;
    let hi = l;
    let lo = r;
    for (let d = ID_LENGTH - 1; d >= 0; d--) {
      codes[d] = ALPHABET_CODES[lo & 31]!;
      lo = ((lo >>> 5) | ((hi & 31) << 27)) >>> 0;
      hi >>>= 5;
    }
    const id = String.fromCharCode.apply(null, codes as unknown as number[]);
    this.recent[this.recentAt] = id;
    this.recentSeq[this.recentAt] = seq;
    this.recentAt ^= 1;
    return id;
  }
  private readonly codes = new Uint16Array(ID_LENGTH);
  /**
   * The last two ids made and their seqs: an id is made for a message's stanza-id (or the
   * sender's copy) and decoded again when the row is queued, a few steps later
   */
  private readonly recent = ['', ''];
  private readonly recentSeq = [0, 0];
  private recentAt = 0;

  /** The sequence number of an id this key made, or undefined (another format: a legacy or foreign id). */
  decode(id: string): number | undefined {
    if (id.length !== ID_LENGTH) return undefined;
    if (id === this.recent[0]) return this.recentSeq[0];
    if (id === this.recent[1]) return this.recentSeq[1];
    let hi = 0;
    let lo = 0;
    for (let i = 0; i < ID_LENGTH; i++) {
      const code = id.charCodeAt(i);
      const v = code < 128 ? DIGIT[code]! : -1;
      // 13 digits carry 65 bits: the first one only 4
      if (v < 0 || (i === 0 && v >= 16)) return undefined;
      hi = ((hi << 5) | (lo >>> 27)) >>> 0;
      lo = ((lo << 5) | v) >>> 0;
    }
    let l = hi;
    let r = lo;
    for (let i = ROUNDS - 1; i >= 0; i--) {
      const t = (r ^ fmix32((l ^ this.keys[i]!) >>> 0)) >>> 0;
      r = l;
      l = t;
    }
    // a sequence number is a non-negative integer below 2^53 (a top half below 2^21)
    if (l >= 2 ** 21) return undefined;
    return l * TWO32 + r;
  }
}
