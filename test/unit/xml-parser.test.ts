// Unit tests for src/xml/parser.ts (StreamParser): chunking, restricted XML
// (RFC 6120 §11.1), well-formedness (§11.4), size/depth bounds, stream restart
// and WebSocket framing (RFC 7395).
import assert from 'node:assert/strict';
import { StreamParser, type StreamParserOptions, type XmlErrorCondition } from '../../src/xml/parser.js';

type Event = ['open', string, Record<string, string>] | ['element', string] | ['close'] | ['error', XmlErrorCondition, string];

class Recorder {
  events: Event[] = [];
  readonly parser: StreamParser;
  constructor(opts: Partial<StreamParserOptions> = {}) {
    this.parser = new StreamParser(
      {
        onOpen: (name, attrs) => this.events.push(['open', name, { ...attrs }]),
        onElement: (el) => this.events.push(['element', el.toString()]),
        onClose: () => this.events.push(['close']),
        onError: (cond, text) => this.events.push(['error', cond, text]),
      },
      { maxStanzaSize: 65536, ...opts },
    );
  }
  write(chunk: string | Buffer): this {
    this.parser.write(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    return this;
  }
  get elements(): string[] {
    return this.events.filter((e) => e[0] === 'element').map((e) => e[1] as string);
  }
  get errors(): Event[] {
    return this.events.filter((e) => e[0] === 'error');
  }
}

const HEADER =
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " + "to='localhost' version='1.0' xml:lang='en'>";
const FOOTER = '</stream:stream>';

const STANZAS = [
  "<message to='romeo@example.net' type='chat' id='m1'><body>Wherefore art thou, Romeo? h\u00e9llo \u{1F600} &amp; &lt;3 &quot;&apos;&gt;</body></message>",
  "<iq type='get' id='i1'><query xmlns='jabber:iq:roster'/></iq>",
  "<presence id='p&amp;1'><show>away</show><status>Gone &#x1F600; &#233;\u4e2d</status></presence>",
];
const STREAM = HEADER + STANZAS[0] + '\n  ' + STANZAS[1] + '\t\r\n' + STANZAS[2] + ' ' + FOOTER;

/** Feed `input` split into chunks of the given byte sizes (last chunk takes the rest). */
function feedChunked(input: Buffer, sizes: Iterable<number>, opts?: Partial<StreamParserOptions>): Event[] {
  const r = new Recorder(opts);
  let off = 0;
  for (const n of sizes) {
    if (off >= input.length) break;
    r.write(input.subarray(off, off + n));
    off += n;
  }
  if (off < input.length) r.write(input.subarray(off));
  return r.events;
}

const bytewise = (input: string | Buffer, opts?: Partial<StreamParserOptions>): Event[] => {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  return feedChunked(buf, Array(buf.length).fill(1) as number[], opts);
};

function* randomSizes(seed: number, max: number): Generator<number> {
  // mulberry32: deterministic so a failure can be reproduced
  let a = seed >>> 0;
  for (;;) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    yield 1 + Math.floor(r * max);
  }
}

function only(events: Event[], cond: XmlErrorCondition, label = ''): void {
  const errors = events.filter((e) => e[0] === 'error');
  assert.equal(errors.length, 1, `${label}: exactly one error expected, got ${JSON.stringify(events)}`);
  assert.equal(errors[0]![1], cond, `${label}: ${JSON.stringify(errors[0])}`);
  assert.equal(events[events.length - 1]![0], 'error', `${label}: nothing is reported after the error`);
}

/**
 * The input must fail with `cond` whether it arrives in one chunk, byte by
 * byte, or split in two anywhere. `prefix` (e.g. the stream header) is fed
 * first as a chunk of its own.
 */
function expectErrorEverySplit(input: string, cond: XmlErrorCondition, prefix = '', opts?: Partial<StreamParserOptions>): void {
  const buf = Buffer.from(input);
  const run = (sizes: Iterable<number>): Event[] => {
    const r = new Recorder(opts);
    if (prefix) r.write(prefix);
    let off = 0;
    for (const n of sizes) {
      if (off >= buf.length) break;
      r.write(buf.subarray(off, off + n));
      off += n;
    }
    if (off < buf.length) r.write(buf.subarray(off));
    return r.events;
  };
  only(run([buf.length]), cond, 'one chunk');
  only(run(Array(buf.length).fill(1) as number[]), cond, 'byte by byte');
  for (let i = 1; i < buf.length; i++) only(run([i]), cond, `split at ${i}: ${JSON.stringify(buf.subarray(0, i).toString())}`);
}

describe('StreamParser', () => {
  describe('chunking', () => {
    it('parses a stream header, three stanzas and the closing tag in one chunk', () => {
      const events = new Recorder().write(STREAM).events;
      assert.equal(events.length, 5, JSON.stringify(events));
      assert.deepEqual(events[0], [
        'open',
        'stream:stream',
        {
          xmlns: 'jabber:client',
          'xmlns:stream': 'http://etherx.jabber.org/streams',
          to: 'localhost',
          version: '1.0',
          'xml:lang': 'en',
        },
      ]);
      assert.equal(events[1]![0], 'element');
      assert.match(events[1]![1] as string, /^<message to="romeo@example\.net" type="chat" id="m1"><body>/);
      assert.ok((events[1]![1] as string).includes('h\u00e9llo \u{1F600} &amp; &lt;3'));
      assert.deepEqual(events[2], ['element', '<iq type="get" id="i1"><query xmlns="jabber:iq:roster"/></iq>']);
      assert.equal(events[3]![0], 'element');
      assert.ok((events[3]![1] as string).includes('Gone \u{1F600} \u00e9\u4e2d'));
      assert.ok((events[3]![1] as string).includes('id="p&amp;1"'));
      assert.deepEqual(events[4], ['close']);
    });

    it('gives identical results when fed byte by byte', () => {
      assert.deepEqual(bytewise(STREAM), new Recorder().write(STREAM).events);
    });

    it('gives identical results when split in two at every byte position', () => {
      const expected = new Recorder().write(STREAM).events;
      const buf = Buffer.from(STREAM);
      for (let i = 1; i < buf.length; i++) {
        assert.deepEqual(feedChunked(buf, [i]), expected, `split at byte ${i}`);
      }
    });

    it('gives identical results for random chunkings', () => {
      const expected = new Recorder().write(STREAM).events;
      const buf = Buffer.from(STREAM);
      for (let seed = 1; seed <= 200; seed++) {
        assert.deepEqual(feedChunked(buf, randomSizes(seed, 1 + (seed % 40))), expected, `seed ${seed}`);
      }
    });

    it('decodes multi-byte UTF-8 characters split across chunks', () => {
      const text = 'h\u00e9 \u4e2d\u6587 \u{1F600}\u{1D11E} \u0635';
      const doc = Buffer.from(`${HEADER}<message><body>${text}</body></message>`);
      const want = [`<message><body>${text}</body></message>`];
      const start = Buffer.byteLength(`${HEADER}<message><body>`);
      for (let i = start; i <= start + Buffer.byteLength(text); i++) {
        const r = new Recorder();
        r.write(doc.subarray(0, i)).write(doc.subarray(i));
        assert.deepEqual(r.elements, want, `split at ${i}`);
        assert.deepEqual(r.errors, []);
      }
      const events = bytewise(doc);
      assert.deepEqual(
        events.filter((e) => e[0] === 'element').map((e) => e[1]),
        want,
      );
    });

    it('accepts whitespace keepalives between stanzas', () => {
      const r = new Recorder({ maxStanzaSize: 1024 });
      r.write(HEADER).write(' ').write('<presence/>');
      for (let i = 0; i < 100; i++) r.write(i % 2 ? ' ' : '\n');
      r.write('\r\n\t ').write('<message><body>hi</body></message>').write(' ');
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.elements, ['<presence/>', '<message><body>hi</body></message>']);
    });

    // RFC 6120 §4.6.1: an idle client keeps its connection alive with single
    // spaces; they are not part of any stanza and their number is unbounded.
    it('accepts whitespace keepalives on an idle stream beyond maxStanzaSize bytes in total', () => {
      const r = new Recorder({ maxStanzaSize: 1024 });
      r.write(HEADER).write('<presence/>');
      for (let i = 0; i < 5000; i++) r.write(' ');
      r.write('<presence/>');
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.elements, ['<presence/>', '<presence/>']);
    });

    it('accepts the XML declaration before the stream header (one chunk)', () => {
      const r = new Recorder().write(`<?xml version='1.0'?>${HEADER}<presence/>`);
      assert.deepEqual(r.errors, []);
      assert.equal(r.events[0]![0], 'open');
      assert.deepEqual(r.elements, ['<presence/>']);
    });

    it('accepts the XML declaration before the stream header however it is split', () => {
      const doc = `<?xml version='1.0' encoding='UTF-8'?>\n${HEADER}<presence/>`;
      const expected = new Recorder().write(doc).events;
      assert.equal(expected.length, 2);
      const buf = Buffer.from(doc);
      for (let i = 1; i < buf.length; i++) {
        assert.deepEqual(feedChunked(buf, [i]), expected, `split at ${i}: ${JSON.stringify(doc.slice(0, i))}`);
      }
      assert.deepEqual(bytewise(doc), expected, 'byte by byte');
    });

    it('accepts CDATA in a body, also split across chunks', () => {
      const doc = `${HEADER}<message><body><![CDATA[a < b && c > d ]] ]>]]></body></message>`;
      const want = ['<message><body>a &lt; b &amp;&amp; c &gt; d ]] ]&gt;</body></message>'];
      assert.deepEqual(new Recorder().write(doc).elements, want);
      const buf = Buffer.from(doc);
      for (let i = 1; i < buf.length; i++) {
        const events = feedChunked(buf, [i]);
        assert.deepEqual(
          events.filter((e) => e[0] === 'element').map((e) => e[1]),
          want,
          `split at ${i}`,
        );
        assert.ok(!events.some((e) => e[0] === 'error'), `split at ${i}`);
      }
    });

    it('keeps the text that follows a CDATA section', () => {
      const r = new Recorder().write(`${HEADER}<message><body>a<![CDATA[<x>]]>b<i/>c</body></message>`);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.elements, ['<message><body>a&lt;x&gt;b<i/>c</body></message>']);
    });

    // RFC 6120 §11.1 restricts comments and processing instructions; the
    // content of a CDATA section is character data, not markup.
    it('accepts markup-like text inside CDATA ("<!--", "<?")', () => {
      const r = new Recorder().write(`${HEADER}<message><body><![CDATA[<!-- not a comment --> <?php echo 1; ?>]]></body></message>`);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.elements, ['<message><body>&lt;!-- not a comment --&gt; &lt;?php echo 1; ?&gt;</body></message>']);
    });
  });

  describe('restricted-xml (RFC 6120 §11.1)', () => {
    it('rejects a comment inside a stanza', () => {
      expectErrorEverySplit(`${HEADER}<message><body>a<!-- x -->b</body></message>`, 'restricted-xml');
    });

    it('rejects a comment at stream level', () => {
      expectErrorEverySplit(`${HEADER}<presence/><!-- x --><presence/>`, 'restricted-xml');
    });

    it("rejects a comment split as '<!' + '-- x -->'", () => {
      const r = new Recorder()
        .write(HEADER + '<presence/>')
        .write('<!')
        .write('-- x -->')
        .write('<presence/>');
      only(r.events, 'restricted-xml');
      assert.deepEqual(r.elements, ['<presence/>']);
      const r2 = new Recorder().write(HEADER).write('<').write('!').write('-').write('- x -->');
      only(r2.events, 'restricted-xml');
    });

    it('rejects a DOCTYPE', () => {
      expectErrorEverySplit(`<!DOCTYPE stream:stream>${HEADER}`, 'restricted-xml');
      expectErrorEverySplit(`${HEADER}<!DOCTYPE foo [<!ELEMENT foo ANY>]><presence/>`, 'restricted-xml');
    });

    it('rejects an ENTITY declaration', () => {
      expectErrorEverySplit(`${HEADER}<!ENTITY lol "lol"><message><body>&lol;</body></message>`, 'restricted-xml');
    });

    it('rejects a processing instruction after the header', () => {
      expectErrorEverySplit('<?foo bar?><presence/>', 'restricted-xml', HEADER);
      expectErrorEverySplit('<presence/><?foo bar?><presence/>', 'restricted-xml', HEADER);
      expectErrorEverySplit('<message><?foo bar?></message>', 'restricted-xml', HEADER);
      expectErrorEverySplit("<?xml version='1.0'?><presence/>", 'restricted-xml', HEADER);
    });

    it('rejects a processing instruction that arrives in the same chunk as the stream header', () => {
      only(new Recorder().write(`${HEADER}<?xml version='1.0'?><presence/>`).events, 'restricted-xml', 'XML declaration after the header');
      only(
        new Recorder().write(`${HEADER}<presence/><?`).write('foo bar?><presence/>').events,
        'restricted-xml',
        "'<?' at the end of the header chunk",
      );
    });

    it('rejects a processing instruction (other than the XML declaration) before the header', () => {
      expectErrorEverySplit(`<?foo bar?>${HEADER}<presence/>`, 'restricted-xml');
    });

    it('rejects an unknown entity in text and in an attribute', () => {
      expectErrorEverySplit(`${HEADER}<message><body>a &foo; b</body></message>`, 'restricted-xml');
      expectErrorEverySplit('<message><body>a &foo; b</body></message>', 'restricted-xml', HEADER);
      only(new Recorder().write(`${HEADER}<message to='&foo;'/>`).events, 'restricted-xml');
    });
  });

  describe('not-well-formed', () => {
    it('rejects a mismatched end tag', () => {
      expectErrorEverySplit(`${HEADER}<message><body>hi</message></body>`, 'not-well-formed');
      only(new Recorder().write(`${HEADER}<message></presence>`).events, 'not-well-formed');
    });

    it('rejects an end tag with no open element in the stream', () => {
      only(new Recorder().write(`${HEADER}</message>`).events, 'not-well-formed');
    });

    it('rejects a bad element name', () => {
      expectErrorEverySplit(`${HEADER}<1abc/>`, 'not-well-formed');
      only(new Recorder().write(`${HEADER}<message><-x/></message>`).events, 'not-well-formed');
    });

    it('rejects a bad attribute name', () => {
      only(new Recorder().write(`${HEADER}<message 1to='x'/>`).events, 'not-well-formed');
    });

    it('rejects text outside a stanza at stream level', () => {
      const r = new Recorder().write(HEADER).write('hello<presence/>');
      only(r.events, 'not-well-formed');
      assert.deepEqual(r.elements, []);
      expectErrorEverySplit(`${HEADER}<presence/>junk<presence/>`, 'not-well-formed');
      expectErrorEverySplit(`junk${HEADER}`, 'not-well-formed');
    });

    it('rejects bad character references', () => {
      expectErrorEverySplit(`${HEADER}<message><body>&#0;</body></message>`, 'not-well-formed');
      only(new Recorder().write(`${HEADER}<message><body>&#x1;</body></message>`).events, 'not-well-formed');
      only(new Recorder().write(`${HEADER}<message><body>&#xD800;</body></message>`).events, 'not-well-formed');
      only(new Recorder().write(`${HEADER}<message><body>&#xFFFF;</body></message>`).events, 'not-well-formed');
    });

    // XML 1.0 well-formedness constraints that RFC 6120 §11.4 requires a server to enforce.
    it("rejects an unescaped '&' in text", () => {
      only(new Recorder().write(`${HEADER}<message><body>fish & chips</body></message>`).events, 'not-well-formed');
    });
  });

  describe('policy-violation: stanza size', () => {
    const MAX = 10_000;
    const opts = { maxStanzaSize: MAX };
    const stanzaOf = (size: number): string => {
      const head = '<message><body>';
      const tail = '</body></message>';
      return head + 'x'.repeat(size - head.length - tail.length) + tail;
    };

    it('rejects a stanza larger than maxStanzaSize arriving in one chunk', () => {
      const r = new Recorder(opts).write(HEADER).write(stanzaOf(2 * MAX));
      only(r.events, 'policy-violation');
      assert.deepEqual(r.elements, []);
      const r2 = new Recorder(opts).write(HEADER + stanzaOf(3 * MAX) + '<presence/>');
      only(r2.events, 'policy-violation');
      assert.deepEqual(r2.elements, []);
    });

    it('rejects a stanza larger than maxStanzaSize streamed in 1 KiB chunks', () => {
      const big = Buffer.from(stanzaOf(2 * MAX));
      const r = new Recorder(opts).write(HEADER);
      for (let off = 0; off < big.length; off += 1024) r.write(big.subarray(off, off + 1024));
      only(r.events, 'policy-violation');
      assert.deepEqual(r.elements, []);
    });

    it('fails a never-ending stanza before much more than maxStanzaSize has been fed', () => {
      const CHUNK = 1024;
      const r = new Recorder(opts).write(HEADER);
      let fed = 0;
      const start = Buffer.from("<message to='a@b'><body>");
      r.write(start);
      fed += start.length;
      const filler = Buffer.alloc(CHUNK, 'x');
      for (let i = 0; i < 1000 && r.errors.length === 0; i++) {
        r.write(filler);
        fed += CHUNK;
      }
      only(r.events.slice(1), 'policy-violation');
      assert.ok(fed > MAX, `no error before the stanza exceeds the limit (fed ${fed})`);
      // the parser feeds its tokenizer in pieces of max(512, min(16384, max/16)) bytes
      const piece = Math.max(512, Math.min(16384, Math.floor(MAX / 16)));
      const bound = MAX + 2 * Math.max(piece, CHUNK);
      assert.ok(fed <= bound, `error after ${fed} bytes, expected at most ${bound}`);
    });

    it('fails a never-ending attribute value the same way', () => {
      const r = new Recorder(opts).write(HEADER).write("<message to='");
      let fed = 0;
      for (let i = 0; i < 1000 && r.errors.length === 0; i++) {
        r.write(Buffer.alloc(1024, 'a'));
        fed += 1024;
      }
      only(r.events.slice(1), 'policy-violation');
      assert.ok(fed <= MAX + 2 * 1024, `error after ${fed} bytes`);
    });

    it('accepts a stanza just under the limit, however it arrives', () => {
      const s = stanzaOf(MAX - 1);
      assert.equal(Buffer.byteLength(s), MAX - 1);
      const want = [s];
      // own chunk
      let r = new Recorder(opts).write(HEADER).write(s);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.elements, want);
      // same chunk as the header
      r = new Recorder(opts).write(HEADER + s);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.elements, want);
      // after smaller stanzas, in one chunk, followed by another
      r = new Recorder(opts).write(HEADER + '<presence/>'.repeat(37) + s + '<presence/>');
      assert.deepEqual(r.errors, []);
      assert.equal(r.elements.length, 39);
      assert.equal(r.elements[37], s);
      // streamed in 1 KiB chunks
      const buf = Buffer.from(HEADER + '<presence/>' + s + '<presence/>');
      const events = feedChunked(buf, Array(Math.ceil(buf.length / 1024)).fill(1024) as number[], opts);
      assert.ok(!events.some((e) => e[0] === 'error'), JSON.stringify(events.filter((e) => e[0] === 'error')));
      assert.equal(events.filter((e) => e[0] === 'element').length, 3);
      // with random chunk sizes
      for (let seed = 1; seed <= 20; seed++) {
        const ev = feedChunked(buf, randomSizes(seed, 3000), opts);
        assert.ok(!ev.some((e) => e[0] === 'error'), `seed ${seed}`);
        assert.equal(ev.filter((e) => e[0] === 'element').length, 3, `seed ${seed}`);
      }
    });

    it('accepts many small stanzas in one chunk totalling more than the limit', () => {
      const stanzas = Array.from({ length: 1000 }, (_, i) => `<presence id='p${i}'><show>away</show></presence>`);
      const doc = HEADER + stanzas.join('');
      assert.ok(doc.length > 3 * MAX);
      const r = new Recorder(opts).write(doc);
      assert.deepEqual(r.errors, []);
      assert.equal(r.elements.length, 1000);
      assert.equal(r.elements[999], '<presence id="p999"><show>away</show></presence>');
      // and in 1 KiB chunks
      const buf = Buffer.from(doc);
      const events = feedChunked(buf, Array(Math.ceil(buf.length / 1024)).fill(1024) as number[], opts);
      assert.ok(!events.some((e) => e[0] === 'error'));
      assert.equal(events.filter((e) => e[0] === 'element').length, 1000);
    });
  });

  describe('policy-violation: depth', () => {
    const nested = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);

    it('accepts moderately nested stanzas', () => {
      const r = new Recorder().write(HEADER + `<message>${nested(20)}</message>`);
      assert.deepEqual(r.errors, []);
      assert.equal(r.elements.length, 1);
    });

    it('rejects deeply nested elements', () => {
      const r = new Recorder().write(HEADER + `<message>${nested(500)}</message>`);
      only(r.events, 'policy-violation');
      assert.deepEqual(r.elements, []);
    });

    it('honours maxDepth', () => {
      assert.deepEqual(new Recorder({ maxDepth: 8 }).write(HEADER + nested(3)).errors, []);
      only(new Recorder({ maxDepth: 8 }).write(HEADER + nested(12)).events, 'policy-violation');
      only(bytewise(HEADER + nested(12), { maxDepth: 8 }), 'policy-violation');
    });
  });

  describe('after an error', () => {
    it('reports nothing more, in the same chunk or later ones', () => {
      const r = new Recorder().write(`${HEADER}<message></presence><presence/>`);
      only(r.events, 'not-well-formed');
      const n = r.events.length;
      r.write('<presence/><message><body>x</body></message>').write(FOOTER).write('<!-- x -->').write('&foo;<a>');
      assert.equal(r.events.length, n);
    });

    it('reports nothing more after a restricted-xml error', () => {
      const r = new Recorder().write(HEADER).write('<!-- x --><presence/>');
      only(r.events, 'restricted-xml');
      const n = r.events.length;
      r.write('<presence/>').write(FOOTER);
      assert.equal(r.events.length, n);
    });

    it('reports nothing more after a policy-violation', () => {
      const r = new Recorder({ maxStanzaSize: 2048 })
        .write(HEADER)
        .write(`<message><body>${'x'.repeat(10000)}</body></message><presence/>`);
      only(r.events, 'policy-violation');
      const n = r.events.length;
      r.write('<presence/>').write(FOOTER);
      assert.equal(r.events.length, n);
    });
  });

  describe('reset (stream restart)', () => {
    it('without reset a second header is just an element inside the stream', () => {
      const r = new Recorder().write(HEADER + '<presence/>').write(HEADER);
      assert.equal(r.events.filter((e) => e[0] === 'open').length, 1);
    });

    it('after reset a fresh header opens a new stream', () => {
      const r = new Recorder().write(HEADER + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
      r.parser.reset();
      r.write("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
      r.write("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").write(FOOTER);
      assert.deepEqual(r.errors, []);
      const kinds = r.events.map((e) => e[0]);
      assert.deepEqual(kinds, ['open', 'element', 'open', 'element', 'close']);
      assert.equal((r.events[2] as ['open', string, Record<string, string>])[2].to, 'example.com');
      assert.equal(r.elements[1], '<iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>');
    });

    it('after reset the XML declaration is allowed again and a fresh header is required', () => {
      const r = new Recorder().write(HEADER + '<presence/>');
      r.parser.reset();
      r.write(`<?xml version='1.0'?>${HEADER}<presence/>`);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(
        r.events.map((e) => e[0]),
        ['open', 'element', 'open', 'element'],
      );
    });
  });

  describe('framed mode (WebSocket, RFC 7395)', () => {
    const OPEN = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
    const CLOSE = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";

    it('<open/> opens, stanzas are elements, <close/> closes', () => {
      const r = new Recorder({ framed: true });
      r.write(OPEN);
      assert.deepEqual(r.events, [['open', 'open', { xmlns: 'urn:ietf:params:xml:ns:xmpp-framing', to: 'localhost', version: '1.0' }]]);
      r.write("<message to='a@localhost'><body>hi</body></message>");
      assert.deepEqual(r.events[1], ['element', '<message to="a@localhost"><body>hi</body></message>']);
      r.write("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>");
      assert.deepEqual(r.events[2], ['element', '<iq type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq>']);
      r.write(CLOSE);
      assert.deepEqual(r.events[3], ['close']);
      assert.equal(r.events.length, 4);
      assert.deepEqual(r.errors, []);
    });

    it('a restart after SASL is a new <open/> frame', () => {
      const r = new Recorder({ framed: true });
      r.write(OPEN).write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
      r.parser.reset();
      r.write(OPEN).write('<presence/>').write(CLOSE);
      assert.deepEqual(
        r.events.map((e) => e[0]),
        ['open', 'element', 'open', 'element', 'close'],
      );
    });

    it('rejects restricted XML inside a frame', () => {
      const r = new Recorder({ framed: true }).write(OPEN).write('<message><!-- x --></message>');
      only(r.events, 'restricted-xml');
    });
  });
});
