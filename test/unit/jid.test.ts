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

      // 3-byte characters right at the boundary
      const euro341 = '\u20ac'.repeat(341); // 1023 bytes
      assert.equal(Jid.parse(`${euro341}@example.com`).local, euro341);
      rejects('\u20ac'.repeat(342) + '@example.com', '1026 bytes');
      // 4-byte characters (surrogate pairs): 256 × 4 = 1024 bytes
      assert.equal(Jid.parse('\u{1D11E}'.repeat(255) + '@example.com').local.length, 510);
      rejects('\u{1D11E}'.repeat(256) + '@example.com', '1024 bytes of astral characters');
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
