// Unit tests for src/jid.ts: XMPP address parsing and preparation (RFC 7622,
// PRECIS profiles of RFC 8265, IDNA2008/UTS #46 for the domainpart).
import assert from 'node:assert/strict';
import { Jid, JidError, tryJid, prepLocal, prepResource, prepDomain } from '../../src/jid.js';

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Asserts that parsing throws a JidError (and not some other error type). */
function rejects(input: string, why?: string): void {
  assert.throws(
    () => Jid.parse(input),
    (e: unknown) => e instanceof JidError && e.name === 'JidError',
    `${JSON.stringify(input)} should be rejected${why ? ` (${why})` : ''}`,
  );
  assert.equal(tryJid(input), undefined, `tryJid(${JSON.stringify(input)}) should be undefined`);
}

describe('jid (RFC 7622)', () => {
  describe('splitting into parts (§3.1)', () => {
    it('parses localpart@domainpart/resourcepart', () => {
      const j = Jid.parse('juliet@example.com/balcony');
      assert.equal(j.local, 'juliet');
      assert.equal(j.domain, 'example.com');
      assert.equal(j.resource, 'balcony');
      assert.equal(j.bare, 'juliet@example.com');
      assert.equal(j.full, 'juliet@example.com/balcony');
      assert.equal(j.toString(), 'juliet@example.com/balcony');
      assert.equal(j.isBare(), false);
    });

    it("splits the resource at the first '/' so the resource may contain '/' and '@'", () => {
      const j = Jid.parse('juliet@example.com/foo/bar@baz/qux');
      assert.equal(j.local, 'juliet');
      assert.equal(j.domain, 'example.com');
      assert.equal(j.resource, 'foo/bar@baz/qux');
      assert.equal(j.full, 'juliet@example.com/foo/bar@baz/qux');
    });

    it("an '@' after the first '/' belongs to the resource, not the localpart", () => {
      const j = Jid.parse('example.com/juliet@example.net');
      assert.equal(j.local, '');
      assert.equal(j.domain, 'example.com');
      assert.equal(j.resource, 'juliet@example.net');
      assert.equal(j.bare, 'example.com');
    });

    it('parses a domain-only JID', () => {
      const j = Jid.parse('example.com');
      assert.equal(j.local, '');
      assert.equal(j.domain, 'example.com');
      assert.equal(j.resource, '');
      assert.equal(j.bare, 'example.com');
      assert.equal(j.full, 'example.com');
      assert.equal(j.isBare(), true);
    });

    it('parses domain/resource', () => {
      const j = Jid.parse('example.com/some resource');
      assert.equal(j.local, '');
      assert.equal(j.domain, 'example.com');
      assert.equal(j.resource, 'some resource');
      assert.equal(j.full, 'example.com/some resource');
    });

    it('parses an IPv6 literal domainpart', () => {
      const j = Jid.parse('juliet@[::1]/r');
      assert.equal(j.domain, '[::1]');
      assert.equal(j.resource, 'r');
    });

    it('Jid.of prepares each part', () => {
      const j = Jid.of('Juliet', 'Example.COM', 'Balcony');
      assert.equal(j.full, 'juliet@example.com/Balcony');
      assert.equal(Jid.of('', 'example.com').full, 'example.com');
    });
  });

  describe('localpart (UsernameCaseMapped, RFC 8265 §3.3)', () => {
    it('case-maps the localpart and the domainpart', () => {
      const j = Jid.parse('Juliet@Example.COM');
      assert.equal(j.local, 'juliet');
      assert.equal(j.domain, 'example.com');
      assert.equal(j.full, 'juliet@example.com');
    });

    it('case-maps non-ASCII letters in the localpart', () => {
      assert.equal(Jid.parse('ÉLODIE@example.com').local, 'élodie');
      assert.equal(Jid.parse('\u00c5NGSTR\u00d6M@example.com').local, '\u00e5ngstr\u00f6m');
    });

    it('normalises the localpart to NFC', () => {
      const j = Jid.parse('jose\u0301@example.com');
      assert.equal(j.local, 'jos\u00e9');
      assert.equal(j.local.length, 4);
      assert.ok(j.equals(Jid.parse('jos\u00e9@example.com')));
    });

    it('maps fullwidth characters to their narrow forms (width mapping)', () => {
      const j = Jid.parse('\uFF2A\uFF35\uFF2C\uFF29\uFF25\uFF34@example.com'); // ＪＵＬＩＥＴ
      assert.equal(j.local, 'juliet');
      assert.equal(Jid.parse('\uFF4A\uFF55\uFF4C\uFF49\uFF45\uFF54@example.com').local, 'juliet'); // ｊｕｌｉｅｔ
    });

    it('accepts other printable characters the IdentifierClass allows', () => {
      assert.equal(Jid.parse('a.b_c-d+e=f,g!h#i$j%k@example.com').local, 'a.b_c-d+e=f,g!h#i$j%k');
    });

    for (const ch of ['"', '&', "'", ':', '<', '>']) {
      it(`rejects ${JSON.stringify(ch)} in the localpart (§3.3.1)`, () => {
        rejects(`ro${ch}meo@example.com`);
        assert.throws(() => prepLocal(`ro${ch}meo`), JidError);
      });
    }

    it("rejects '/' and '@' in a localpart given separately", () => {
      assert.throws(() => Jid.of('ro/meo', 'example.com'), JidError);
      assert.throws(() => Jid.of('ro@meo', 'example.com'), JidError);
      assert.throws(() => prepLocal('a/b'), JidError);
      assert.throws(() => prepLocal('a@b'), JidError);
    });

    it('rejects a second @ (the domainpart would contain it)', () => {
      rejects('a@b@example.com');
    });

    it('rejects spaces in the localpart (ASCII and non-ASCII)', () => {
      rejects('romeo montague@example.com');
      rejects('romeo\u00A0montague@example.com');
      rejects('romeo\u3000montague@example.com');
    });

    it('rejects control characters in the localpart', () => {
      rejects('ro\u0000meo@example.com');
      rejects('ro\u0007meo@example.com');
      rejects('ro\tmeo@example.com');
      rejects('ro\u007Fmeo@example.com');
      rejects('ro\u0085meo@example.com');
    });

    it('rejects an empty localpart', () => {
      rejects('@example.com');
      rejects('@example.com/r');
      assert.throws(() => prepLocal(''), JidError);
    });

    it('limits the localpart to 1023 bytes of UTF-8, not 1023 characters', () => {
      assert.equal(Jid.parse('a'.repeat(1023) + '@example.com').local.length, 1023);
      rejects('a'.repeat(1024) + '@example.com', '1024 bytes');

      const l400 = '\u00e9'.repeat(400); // 800 bytes
      assert.equal(utf8(l400), 800);
      assert.equal(Jid.parse(`${l400}@example.com`).local, l400);

      const l600 = '\u00e9'.repeat(600); // 1200 bytes, only 600 UTF-16 units
      assert.equal(utf8(l600), 1200);
      rejects(`${l600}@example.com`, '1200 bytes');

      // 3-byte characters right at the boundary (CJK ideographs, letters of the IdentifierClass)
      const han341 = '\u4e2d'.repeat(341); // 1023 bytes
      assert.equal(Jid.parse(`${han341}@example.com`).local, han341);
      rejects('\u4e2d'.repeat(342) + '@example.com', '1026 bytes');
      // 4-byte characters (surrogate pairs): 256 × 4 = 1024 bytes
      assert.equal(Jid.parse('\u{20000}'.repeat(255) + '@example.com').local.length, 510);
      rejects('\u{20000}'.repeat(256) + '@example.com', '1024 bytes of astral characters');
    });
  });

  describe('resourcepart (OpaqueString, RFC 8265 §4.2)', () => {
    it('preserves case', () => {
      assert.equal(Jid.parse('juliet@example.com/Balcony').resource, 'Balcony');
      assert.ok(!Jid.parse('juliet@example.com/Balcony').equals(Jid.parse('juliet@example.com/balcony')));
    });

    it('normalises the resourcepart to NFC', () => {
      const j = Jid.parse('juliet@example.com/cafe\u0301');
      assert.equal(j.resource, 'caf\u00e9');
      assert.ok(j.equals(Jid.parse('juliet@example.com/caf\u00e9')));
    });

    it('keeps spaces and maps non-ASCII spaces to ASCII space', () => {
      assert.equal(Jid.parse('juliet@example.com/Juliet Capulet').resource, 'Juliet Capulet');
      assert.equal(Jid.parse('juliet@example.com/Juliet\u00A0Capulet').resource, 'Juliet Capulet');
    });

    it('does not width-map the resourcepart', () => {
      assert.equal(Jid.parse('juliet@example.com/\uFF21').resource, '\uFF21');
    });

    it('rejects an empty resourcepart', () => {
      rejects('juliet@example.com/');
      rejects('example.com/');
      assert.throws(() => prepResource(''), JidError);
    });

    it('rejects control characters in the resourcepart', () => {
      rejects('juliet@example.com/bal\u0000cony');
      rejects('juliet@example.com/bal\u0001cony');
      rejects('juliet@example.com/bal\ncony');
      rejects('juliet@example.com/bal\u007Fcony');
    });

    it('limits the resourcepart to 1023 bytes of UTF-8', () => {
      assert.equal(Jid.parse('j@example.com/' + 'r'.repeat(1023)).resource.length, 1023);
      rejects('j@example.com/' + 'r'.repeat(1024));
      assert.equal(Jid.parse('j@example.com/' + '\u00e9'.repeat(400)).resource, '\u00e9'.repeat(400));
      rejects('j@example.com/' + '\u00e9'.repeat(600), '1200 bytes');
    });
  });

  describe('domainpart (§3.2, IDNA)', () => {
    it('lowercases an ASCII domainpart', () => {
      assert.equal(Jid.parse('EXAMPLE.COM').domain, 'example.com');
    });

    it('maps a non-ASCII domainpart with uppercase letters to lowercase U-labels', () => {
      assert.equal(Jid.parse('juliet@\u00c9XAMPLE.com').domain, '\u00e9xample.com');
      assert.ok(Jid.parse('\u00c9XAMPLE.com').equals(Jid.parse('\u00e9xample.com')));
    });

    it('keeps an internationalised domainpart as U-labels', () => {
      assert.equal(Jid.parse('juliet@m\u00fcnchen.de').domain, 'm\u00fcnchen.de');
      assert.equal(Jid.parse('juliet@M\u00dcNCHEN.DE').domain, 'm\u00fcnchen.de');
    });

    // RFC 7622 §3.2.1: "each A-label MUST be converted to a U-label during
    // preparation of a string for inclusion in a domainpart slot", and §3.2.2
    // compares domainparts as U-labels. So the A-label and U-label spellings of
    // one domain must prepare to the same JID, whatever their case.
    it('converts A-labels to U-labels so both spellings of a domain are the same JID', () => {
      const unicode = Jid.parse('juliet@m\u00fcnchen.de');
      const upperAce = Jid.parse('juliet@XN--MNCHEN-3YA.DE');
      const lowerAce = Jid.parse('juliet@xn--mnchen-3ya.de');
      assert.equal(upperAce.domain, 'm\u00fcnchen.de');
      assert.equal(lowerAce.domain, 'm\u00fcnchen.de');
      assert.ok(lowerAce.equals(unicode));
      assert.ok(lowerAce.equals(upperAce));
      assert.equal(prepDomain('xn--mnchen-3ya.de'), prepDomain('m\u00fcnchen.de'));
    });

    it('rejects a label that looks like an A-label but does not decode, whatever its case', () => {
      rejects('juliet@XN--ZZ.com');
      rejects('juliet@xn--zz.com');
    });

    it('strips one trailing dot', () => {
      assert.equal(Jid.parse('juliet@example.com.').domain, 'example.com');
      assert.equal(Jid.parse('juliet@example.com./r').full, 'juliet@example.com/r');
      assert.ok(Jid.parse('example.com.').equals(Jid.parse('example.com')));
    });

    it('rejects an empty domainpart', () => {
      rejects('');
      rejects('juliet@');
      rejects('juliet@/r');
      rejects('/r');
      rejects('.');
      rejects('juliet@.');
      assert.throws(() => prepDomain(''), JidError);
    });

    it('rejects empty labels', () => {
      rejects('a..b');
      rejects('juliet@a..b');
      rejects('juliet@.example.com');
      rejects('juliet@example.com..');
      rejects('A..B');
    });

    it('rejects labels longer than 63 octets', () => {
      const l63 = 'a'.repeat(63);
      assert.equal(Jid.parse(`juliet@${l63}.com`).domain, `${l63}.com`);
      rejects(`juliet@${l63}a.com`);
      rejects(`juliet@${l63.toUpperCase()}A.com`);
    });

    it('limits the domainpart to 1023 bytes', () => {
      const label = 'a'.repeat(63);
      const d1023 = Array(16).fill(label).join('.'); // 16*63 + 15 = 1023
      assert.equal(d1023.length, 1023);
      assert.equal(Jid.parse(d1023).domain, d1023);
      rejects(Array(17).fill(label).join('.'));
    });

    it('rejects characters not allowed in host names', () => {
      rejects('juliet@exa mple.com');
      rejects('juliet@exa_mple.com');
      rejects('juliet@ex%ample.com');
      rejects('juliet@exa\u0000mple.com');
      rejects('juliet@exa\u0007mple.com');
    });

    it('rejects a malformed IPv6 literal', () => {
      rejects('juliet@[not-an-address]');
    });
  });

  describe('RFC 7622 §3.5 examples', () => {
    const valid: [string, string][] = [
      ['juliet@example.com', 'juliet@example.com'],
      ['juliet@example.com/foo', 'juliet@example.com/foo'],
      ['juliet@example.com/foo bar', 'juliet@example.com/foo bar'],
      ['juliet@example.com/foo@bar', 'juliet@example.com/foo@bar'],
      ['foo\\20bar@example.com', 'foo\\20bar@example.com'],
      ['fussball@example.com', 'fussball@example.com'],
      ['fu\u00dfball@example.com', 'fu\u00dfball@example.com'], // ß is PVALID and not case-folded to "ss"
      ['\u03c0@example.com', '\u03c0@example.com'],
      ['\u03a3@example.com/foo', '\u03c3@example.com/foo'],
      ['\u03c3@example.com/foo', '\u03c3@example.com/foo'],
      ['\u03c2@example.com/foo', '\u03c2@example.com/foo'], // final sigma stays itself
      ['king@example.com/\u265a', 'king@example.com/\u265a'],
      ['example.com', 'example.com'],
      ['example.com/foobar', 'example.com/foobar'],
      ['a.example.com/b@example.net', 'a.example.com/b@example.net'],
    ];
    for (const [input, prepared] of valid) {
      it(`accepts ${JSON.stringify(input)}`, () => assert.equal(Jid.parse(input).full, prepared));
    }
    const invalid: [string, string][] = [
      ['"juliet"@example.com', 'quotation marks in the localpart'],
      ['foo bar@example.com', 'space in the localpart'],
      ['juliet@example.com/', 'empty resourcepart'],
      ['@example.com/', 'empty localpart'],
      ['henry\u2163@example.com', 'ROMAN NUMERAL FOUR has a compatibility decomposition (HasCompat)'],
      ['\u265a@example.com', 'a symbol in the localpart'],
      ['juliet@', 'empty domainpart'],
      ['/foobar', 'empty domainpart'],
    ];
    for (const [input, why] of invalid) {
      it(`rejects ${JSON.stringify(input)} (${why})`, () => rejects(input, why));
    }
  });

  describe('invisible and look-alike code points (RFC 8264 §9.13, §9.8)', () => {
    it('rejects default-ignorable code points in the resourcepart', () => {
      for (const r of ['phone\u200b', '\u200b', '\ud83e\udd16\ufe0f', 'ph\u00adone', 'phone\u2060', '\ufeffphone', 'a\u{e0041}']) {
        rejects(`juliet@example.com/${r}`, `resource ${JSON.stringify(r)}`);
        assert.throws(() => prepResource(r), JidError);
      }
    });

    it('rejects them in the localpart too', () => {
      rejects('romeo\u200b@example.com');
      rejects('rom\u00adeo@example.com');
      rejects('romeo\ufe0f@example.com');
    });

    it('rejects joiners outside the contexts of RFC 5892 Appendix A', () => {
      rejects('juliet@example.com/a\u200cb');
      rejects('juliet@example.com/a\u200db');
      rejects('juliet@example.com/\ud83d\udc69\u200d\ud83d\udcbb', 'an emoji ZWJ sequence has no virama before the joiner');
    });

    it('accepts joiners where a script needs them', () => {
      // Persian: ZWNJ between a dual-joining and a right-joining letter
      assert.equal(Jid.parse('juliet@example.com/\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645').resource.length, 8);
      // Devanagari: ZWJ after a virama
      assert.equal(Jid.parse('juliet@example.com/\u0915\u094d\u200d\u0937').resource, '\u0915\u094d\u200d\u0937');
    });

    it('rejects private-use, unassigned, noncharacter and line-separator code points', () => {
      for (const r of ['\ue000', '\u0378', '\ufdd0', '\uffff', 'a\u2028b', 'a\u2029b', '\ud800'])
        rejects(`juliet@example.com/${r}`, JSON.stringify(r));
    });

    it('accepts emoji and letters of any script in the resourcepart', () => {
      for (const r of ['\ud83e\udd16', '\u03a9\u03bc\u03ad\u03b3\u03b1', '\u4e2d\u6587', 'caf\u00e9 \u2615']) {
        assert.equal(Jid.parse(`juliet@example.com/${r}`).resource, r);
      }
    });

    it('composes conjoining Hangul jamo only when given as syllables', () => {
      assert.equal(Jid.parse('juliet@example.com/\uac00').resource, '\uac00');
      rejects('juliet@example.com/\u1100\u1161', 'old Hangul jamo are disallowed before normalisation');
    });
  });

  describe('tryJid', () => {
    it('returns a Jid for valid input', () => {
      const j = tryJid('Juliet@Example.com/Balcony');
      assert.ok(j instanceof Jid);
      assert.equal(j.full, 'juliet@example.com/Balcony');
    });

    it('returns undefined for invalid or missing input instead of throwing', () => {
      assert.equal(tryJid(undefined), undefined);
      for (const bad of ['', '@d', 'a@d/', 'a@', 'a..b', 'a b@d', 'x@' + 'a'.repeat(64)]) {
        assert.equal(tryJid(bad), undefined, JSON.stringify(bad));
      }
    });
  });

  describe('toBare / withResource / equals', () => {
    it('toBare drops the resource and returns the same object for a bare JID', () => {
      const full = Jid.parse('juliet@example.com/balcony');
      const bare = full.toBare();
      assert.equal(bare.full, 'juliet@example.com');
      assert.equal(bare.resource, '');
      assert.equal(bare.local, 'juliet');
      assert.equal(bare.domain, 'example.com');
      assert.ok(bare.isBare());
      assert.equal(full.resource, 'balcony', 'the original is not modified');
      assert.equal(bare.toBare(), bare);
      assert.equal(Jid.parse('example.com/r').toBare().full, 'example.com');
    });

    it('withResource prepares and replaces the resource', () => {
      const j = Jid.parse('juliet@example.com/balcony').withResource('cafe\u0301');
      assert.equal(j.full, 'juliet@example.com/caf\u00e9');
      assert.equal(Jid.parse('example.com').withResource('Res').full, 'example.com/Res');
      assert.throws(() => Jid.parse('juliet@example.com').withResource(''), JidError);
      assert.throws(() => Jid.parse('juliet@example.com').withResource('a\u0000'), JidError);
    });

    it('equals compares prepared full JIDs', () => {
      assert.ok(Jid.parse('Juliet@EXAMPLE.com/balcony').equals(Jid.parse('juliet@example.com/balcony')));
      assert.ok(!Jid.parse('juliet@example.com/balcony').equals(Jid.parse('juliet@example.com/garden')));
      assert.ok(!Jid.parse('juliet@example.com/balcony').equals(Jid.parse('juliet@example.com')));
      assert.ok(!Jid.parse('juliet@example.com').equals(Jid.parse('romeo@example.com')));
      assert.ok(!Jid.parse('example.com').equals(Jid.parse('juliet@example.com')));
    });
  });
});
