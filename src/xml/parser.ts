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
// Known leniency: a repeated attribute keeps its last value instead of being
// rejected (ltx builds attributes into an object; the server stamps 'from'
// itself, so this cannot be used to spoof an address).
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
const WHITESPACE = /^\s*$/;
const ENTITY = /&(?:#[0-9]+|#x[0-9a-fA-F]+|([A-Za-z_:][A-Za-z0-9_.:-]*));/y;
const PARTIAL_ENTITY = /^&(?:#x?[0-9a-fA-F]*|[A-Za-z_:][A-Za-z0-9_.:-]*)?$/;
const PREDEFINED = new Set(['amp', 'lt', 'gt', 'quot', 'apos']);
/** longest construct held back between pieces (an XML declaration, an entity) */
const MAX_HELD = 1024;
const escapeCdata = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export class StreamParser {
  private sax = new SaxLtx();
  private decoder = new StringDecoder('utf8');
  private root: Element | null = null;
  private cursor: Element | null = null;
  private depth = 0;
  private held = '';
  private inCdata = false;
  private seenMarkup = false;
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
    this.held = '';
    this.inCdata = false;
    this.seenMarkup = false;
    this.sinceEnd = 0;
  }

  private feed(piece: string, byteLength: number): void {
    if (piece.length === 0) return;
    // whitespace keepalives between stanzas never count towards the size bound
    const idle = this.cursor === null && WHITESPACE.test(piece);
    const s = this.filter(piece);
    if (s === undefined) return;
    this.endedInPiece = false;
    const before = this.sinceEnd;
    if (!idle) this.sinceEnd += byteLength;
    if (s.length) {
      try {
        this.sax.write(s);
      } catch (e) {
        this.fail('not-well-formed', (e as Error).message); // e.g. &#0; (ltx checks character references)
        return;
      }
    }
    if (this.failed) return;
    if (this.endedInPiece) {
      // an element ended somewhere in this piece: what is left is at most one piece
      this.sinceEnd = Math.min(this.sinceEnd, byteLength);
    } else if (!idle && before + byteLength > this.opts.maxStanzaSize + this.piece) {
      this.fail('policy-violation', 'stanza too large');
    }
  }

  /**
   * Lexical pre-pass over the text before ltx sees it (ltx silently skips or
   * mangles these constructs):
   *  - comments, DOCTYPE/ENTITY declarations, processing instructions and
   *    entity references other than the five predefined ones: restricted-xml
   *    (RFC 6120 §11.1); the XML declaration is allowed at the start of a stream;
   *  - a bare '&': not-well-formed;
   *  - CDATA sections are turned into escaped text (ltx drops text after them).
   * An incomplete construct at the end of a piece is held back for the next one.
   * Returns the text to tokenize, or undefined after failing the stream.
   */
  private filter(piece: string): string | undefined {
    if (this.held.length > MAX_HELD) return void this.fail('not-well-formed', 'unterminated markup');
    const s = this.held ? this.held + piece : piece;
    this.held = '';
    let out = '';
    let i = 0;
    while (i < s.length) {
      if (this.inCdata) {
        const end = s.indexOf(']]>', i);
        if (end === -1) {
          const keep = s.endsWith(']]') ? 2 : s.endsWith(']') ? 1 : 0;
          out += escapeCdata(s.slice(i, s.length - keep));
          this.held = s.slice(s.length - keep);
          return out;
        }
        out += escapeCdata(s.slice(i, end));
        i = end + 3;
        this.inCdata = false;
        continue;
      }
      const bang = s.indexOf('<!', i);
      const pi = s.indexOf('<?', i);
      const amp = s.indexOf('&', i);
      let j = s.length;
      if (bang !== -1) j = bang;
      if (pi !== -1 && pi < j) j = pi;
      if (amp !== -1 && amp < j) j = amp;
      if (j === s.length) {
        // hold back a trailing '<' that may start '<!' or '<?'
        const keep = s.charCodeAt(s.length - 1) === 60 ? 1 : 0;
        out += this.emit(s.slice(i, s.length - keep));
        this.held = s.slice(s.length - keep);
        return out;
      }
      out += this.emit(s.slice(i, j));
      const rest = s.slice(j, j + 16);
      if (j === amp) {
        ENTITY.lastIndex = j;
        const m = ENTITY.exec(s);
        if (m) {
          if (m[1] !== undefined && !PREDEFINED.has(m[1])) return void this.fail('restricted-xml', `entity &${m[1]}; is not allowed`);
          out += this.emit(m[0]);
          i = j + m[0].length;
          continue;
        }
        if (rest.length < 16 && PARTIAL_ENTITY.test(s.slice(j))) return this.hold(out, s, j);
        return void this.fail('not-well-formed', "'&' must start an entity reference");
      }
      if (j === bang) {
        if (s.startsWith(CDATA, j)) {
          this.inCdata = true;
          i = j + CDATA.length;
          continue;
        }
        if (s.length - j < CDATA.length && CDATA.startsWith(s.slice(j))) return this.hold(out, s, j);
        return void this.fail('restricted-xml', 'comments and DTDs are not allowed');
      }
      // '<?': only the XML declaration, and only before anything else in the stream
      if (!this.seenMarkup && (s.startsWith('<?xml', j) || '<?xml'.startsWith(s.slice(j)))) {
        const end = s.indexOf('?>', j);
        if (end === -1) return this.hold(out, s, j);
        if (!/^<\?xml\s/.test(s.slice(j, end + 2))) return void this.fail('restricted-xml', 'processing instructions are not allowed');
        i = end + 2;
        continue;
      }
      return void this.fail('restricted-xml', 'processing instructions are not allowed');
    }
    return out;
  }

  private hold(out: string, s: string, from: number): string {
    this.held = s.slice(from);
    return out;
  }

  /** pass text through, noting when the stream has started (no XML declaration after that) */
  private emit(t: string): string {
    if (!this.seenMarkup && !WHITESPACE.test(t)) this.seenMarkup = true;
    return t;
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
    // a second stream header inside the stream (no restart was negotiated) is not a stanza to buffer
    if (!this.opts.framed && this.depth === 1 && name === this.root!.name)
      return this.fail('policy-violation', 'unexpected stream header: this stream was not restarted');
    if (++this.depth > this.maxDepth) return this.fail('policy-violation', 'elements nested too deeply');
    const el = new Element(name, attrs);
    const parent = this.cursor;
    if (parent !== null) {
      parent.children.push(el);
      el.parent = parent;
    }
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
