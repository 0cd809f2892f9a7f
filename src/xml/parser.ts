// Streaming XML parser for one XMPP stream, on top of ltx's SAX tokenizer.
//
// ltx tokenizes fast but is lenient: it silently skips comments, processing
// instructions and DOCTYPEs, does not check names, and has no size limits.
// RFC 6120 §11.1 requires rejecting those constructs (restricted-xml) and we
// must bound memory per connection, so this wrapper adds, per stream:
//   - a restricted-markup scan (`<!` other than CDATA, `<?` after the header),
//   - name checks and end-tag matching (not-well-formed),
//   - a stanza size bound (policy-violation) and a depth bound,
//   - UTF-8 decoding across chunk boundaries.
import { StringDecoder } from 'node:string_decoder';
import SaxLtx from 'ltx/lib/parsers/ltx.js';
import { Element } from 'ltx';

export type XmlErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation';

export interface StreamParserHandler {
  /** The stream header (or a WebSocket <open/>) was read. */
  onOpen(name: string, attrs: Record<string, string>): void;
  /** A complete top-level element (stanza or nonza). */
  onElement(el: Element): void;
  /** The stream's closing tag was read. */
  onClose(): void;
  onError(condition: XmlErrorCondition, text: string): void;
}

export interface StreamParserOptions {
  maxStanzaSize: number;
  maxDepth?: number;
  /** WebSocket framing (RFC 7395): each frame is one complete element, no stream wrapper. */
  framed?: boolean;
}

// XML Name, simplified: a letter, '_' or ':' then name characters.
const NAME = /^[\p{L}_:][\p{L}\p{N}_:.\-\u00B7]*$/u;
const ASCII_NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*$/;
const validName = (n: string): boolean => ASCII_NAME.test(n) || NAME.test(n);
const CDATA = '<![CDATA[';

export class StreamParser {
  private sax = new SaxLtx();
  private decoder = new StringDecoder('utf8');
  private root: Element | null = null;
  private cursor: Element | null = null;
  private depth = 0;
  private scanCarry = '';
  /** bytes fed since the last top-level element ended (upper bound of the current element's size) */
  private sinceEnd = 0;
  private endedInPiece = false;
  private failed = false;
  private readonly piece: number;
  private readonly maxDepth: number;

  constructor(
    private readonly handler: StreamParserHandler,
    private readonly opts: StreamParserOptions,
  ) {
    // Feed the tokenizer in pieces so the size bound is exact to within one
    // piece without knowing where in a chunk an element starts.
    this.piece = Math.max(512, Math.min(16384, Math.floor(opts.maxStanzaSize / 16)));
    this.maxDepth = opts.maxDepth ?? 64;
    this.sax.on('startElement', (name: string, attrs: Record<string, string>) => this.start(name, attrs));
    this.sax.on('endElement', (name: string) => this.end(name));
    this.sax.on('text', (text: string) => this.text(text));
  }

  /** Feed raw bytes. After an error the parser ignores further input. */
  write(chunk: Buffer): void {
    if (this.failed) return;
    const step = this.piece;
    for (let off = 0; off < chunk.length && !this.failed; off += step) {
      const bytes = off === 0 && chunk.length <= step ? chunk : chunk.subarray(off, off + step);
      this.feed(this.decoder.write(bytes), bytes.length);
    }
  }

  /** Reset for a stream restart (after STARTTLS or SASL success). */
  reset(): void {
    this.sax = new SaxLtx();
    this.sax.on('startElement', (name: string, attrs: Record<string, string>) => this.start(name, attrs));
    this.sax.on('endElement', (name: string) => this.end(name));
    this.sax.on('text', (text: string) => this.text(text));
    this.root = null;
    this.cursor = null;
    this.depth = 0;
    this.scanCarry = '';
    this.sinceEnd = 0;
  }

  private feed(s: string, byteLength: number): void {
    if (s.length === 0) return;
    if (!this.scan(s)) return;
    this.endedInPiece = false;
    const before = this.sinceEnd;
    this.sinceEnd += byteLength;
    try {
      this.sax.write(s);
    } catch (e) {
      // ltx throws from its entity decoder: unknown named entities are
      // restricted (RFC 6120 §11.1), bad character references malformed.
      const msg = (e as Error).message;
      this.fail(msg.includes('entity') ? 'restricted-xml' : 'not-well-formed', msg);
      return;
    }
    if (this.failed) return;
    if (this.endedInPiece) {
      // an element ended somewhere in this piece: what is left is at most one piece
      this.sinceEnd = Math.min(this.sinceEnd, byteLength);
    } else if (before + byteLength > this.opts.maxStanzaSize + this.piece && this.depth > 0) {
      this.fail('policy-violation', 'stanza too large');
    }
  }

  /** Reject comments, DOCTYPE/ENTITY declarations and processing instructions. */
  private scan(piece: string): boolean {
    const s = this.scanCarry ? this.scanCarry + piece : piece;
    this.scanCarry = '';
    let i = s.indexOf('<!');
    while (i !== -1) {
      const rest = s.length - i;
      if (rest >= CDATA.length ? s.startsWith(CDATA, i) : CDATA.startsWith(s.slice(i))) {
        if (rest < CDATA.length) {
          this.scanCarry = s.slice(i);
          break;
        }
      } else {
        this.fail('restricted-xml', 'comments and DTDs are not allowed');
        return false;
      }
      i = s.indexOf('<!', i + 2);
    }
    i = s.indexOf('<?');
    while (i !== -1) {
      // Only the XML declaration, and only before the stream header.
      if (this.root !== null || this.opts.framed || !(s.startsWith('<?xml ', i) || s.length - i < 6)) {
        this.fail('restricted-xml', 'processing instructions are not allowed');
        return false;
      }
      i = s.indexOf('<?', i + 2);
    }
    if (!this.scanCarry && s.charCodeAt(s.length - 1) === 60 /* < */) this.scanCarry = '<';
    return true;
  }

  private start(name: string, attrs: Record<string, string>): void {
    if (this.failed) return;
    if (!validName(name)) return this.fail('not-well-formed', `bad element name`);
    for (const k in attrs) if (!validName(k)) return this.fail('not-well-formed', `bad attribute name`);
    if (this.opts.framed && this.depth === 0) {
      // RFC 7395: every frame is a whole element; <open/> is the header.
      if (name === 'open') {
        this.handler.onOpen(name, attrs);
        this.sawOpenInFrame = true;
        return;
      }
      if (name === 'close') {
        this.sawCloseInFrame = true;
        return;
      }
    }
    if (!this.opts.framed && this.root === null) {
      this.root = new Element(name, attrs);
      this.depth = 1;
      this.handler.onOpen(name, attrs);
      return;
    }
    if (++this.depth > this.maxDepth) return this.fail('policy-violation', 'elements nested too deeply');
    const el = new Element(name, attrs);
    const topLevel = this.cursor === null;
    if (!topLevel) this.cursor!.children.push(el), (el.parent = this.cursor!);
    this.cursor = el;
  }

  private sawOpenInFrame = false;
  private sawCloseInFrame = false;

  private end(name: string): void {
    if (this.failed) return;
    if (this.opts.framed && this.cursor === null) {
      if (name === 'open' && this.sawOpenInFrame) return void (this.sawOpenInFrame = false);
      if (name === 'close' && this.sawCloseInFrame) {
        this.sawCloseInFrame = false;
        return this.handler.onClose();
      }
    }
    const cur = this.cursor;
    if (cur === null) {
      if (this.root !== null && name === this.root.name) {
        this.depth = 0;
        this.endedInPiece = true;
        return this.handler.onClose();
      }
      return this.fail('not-well-formed', 'unexpected end tag');
    }
    if (name !== cur.name) return this.fail('not-well-formed', `${cur.name} must be closed before ${name}`);
    this.depth--;
    const parent = cur.parent as Element | null;
    if (parent) {
      this.cursor = parent;
      return;
    }
    this.cursor = null;
    this.endedInPiece = true;
    this.handler.onElement(cur);
  }

  private text(t: string): void {
    if (this.failed) return;
    const cur = this.cursor;
    if (cur === null) {
      // Between top-level elements only whitespace (keepalives) is allowed.
      if (!/^\s*$/.test(t)) this.fail('not-well-formed', 'text outside of a stanza');
      else this.endedInPiece = true;
      return;
    }
    const last = cur.children[cur.children.length - 1];
    if (typeof last === 'string') cur.children[cur.children.length - 1] = last + t;
    else cur.children.push(t);
  }

  private fail(cond: XmlErrorCondition, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.handler.onError(cond, text);
  }
}
