// Unit tests for src/precis.ts: the PRECIS string classes (RFC 8264) and the
// UsernameCaseMapped, OpaqueString (RFC 8265) and Nickname (RFC 8266) profiles,
// with the examples of those RFCs.
import assert from 'node:assert/strict';
import { PrecisError, enforceNickname, enforceOpaqueString, enforceUsernameCaseMapped, nicknameKey } from '../../src/precis.js';

const fails = (f: (s: string) => string, s: string, reason: PrecisError['reason'] = 'disallowed'): void => {
  assert.throws(
    () => f(s),
    (e: unknown) => e instanceof PrecisError && e.reason === reason,
    `${f.name}(${JSON.stringify(s)}) should fail (${reason})`,
  );
};

describe('precis (RFC 8264, 8265, 8266)', () => {
  describe('UsernameCaseMapped (RFC 8265 §3.4 examples)', () => {
    const valid: [string, string][] = [
      ['juliet@example.com', 'juliet@example.com'], // '@' is in the IdentifierClass (ASCII7)
      ['fussball', 'fussball'],
      ['fu\u00dfball', 'fu\u00dfball'],
      ['\u03c0', '\u03c0'],
      ['\u03a3', '\u03c3'],
      ['\u03c3', '\u03c3'],
      ['\u03c2', '\u03c2'],
    ];
    for (const [input, out] of valid) {
      it(`accepts ${JSON.stringify(input)}`, () => assert.equal(enforceUsernameCaseMapped(input), out));
    }
    it('rejects "foo bar" (SPACE), "" (empty), "henryⅣ" (HasCompat) and "♚" (symbol)', () => {
      fails(enforceUsernameCaseMapped, 'foo bar');
      fails(enforceUsernameCaseMapped, '', 'empty');
      fails(enforceUsernameCaseMapped, 'henry\u2163');
      fails(enforceUsernameCaseMapped, '\u265a');
    });
    it('maps fullwidth and halfwidth forms before checking the class (width mapping, §3.3.1)', () => {
      assert.equal(enforceUsernameCaseMapped('\uff2a\uff55\uff4c\uff49\uff45\uff54'), 'juliet');
      assert.equal(enforceUsernameCaseMapped('\uff76'), '\u30ab'); // HALFWIDTH KATAKANA KA
    });
    it('disallows what the IdentifierClass leaves to the FreeformClass (RFC 8264 §4.2.3)', () => {
      for (const s of ['a\u00a0b', '\u2163', '\u00bd', '\u2192', '\u00bf', '\u01c5', '\ufb01']) fails(enforceUsernameCaseMapped, s);
    });
  });

  describe('OpaqueString (RFC 8265 §4.3 examples)', () => {
    it('accepts the valid examples', () => {
      assert.equal(enforceOpaqueString('correct horse battery staple'), 'correct horse battery staple');
      assert.equal(enforceOpaqueString('Correct Horse Battery Staple'), 'Correct Horse Battery Staple');
      assert.equal(enforceOpaqueString('\u03c0\u00df\u00e5'), '\u03c0\u00df\u00e5');
      assert.equal(enforceOpaqueString('Jack of \u2666s'), 'Jack of \u2666s');
      assert.equal(enforceOpaqueString('foo\u1680bar'), 'foo bar'); // OGHAM SPACE MARK to SPACE
    });
    it('rejects "" and a TAB', () => {
      fails(enforceOpaqueString, '', 'empty');
      fails(enforceOpaqueString, 'my cat is a \tby');
    });
    it('keeps width and case, normalises to NFC', () => {
      assert.equal(enforceOpaqueString('\uff21'), '\uff21');
      assert.equal(enforceOpaqueString('Cafe\u0301'), 'Caf\u00e9');
    });
  });

  describe('Nickname (RFC 8266)', () => {
    // §5 Table 1: nickname and its output for comparison
    const table: [string, string][] = [
      ['Foo', 'foo'],
      ['foo', 'foo'],
      ['Foo Bar', 'foo bar'],
      ['foo bar', 'foo bar'],
      ['\u03a3', '\u03c3'],
      ['\u03c3', '\u03c3'],
      ['\u03c2', '\u03c2'],
      ['\u03d4', '\u03cb'], // not idempotent in one pass: NFKC gives U+03AB, whose lowercase is U+03CB
      ['\u265a', '\u265a'],
      ['Richard \u2163', 'richard iv'],
    ];
    for (const [nick, key] of table) {
      it(`compares ${JSON.stringify(nick)} as ${JSON.stringify(key)} (§5)`, () => assert.equal(nicknameKey(nick), key));
    }

    it('examples 5 and 6 match; 5 and 7, 6 and 7 do not', () => {
      assert.equal(nicknameKey('\u03a3'), nicknameKey('\u03c3'));
      assert.notEqual(nicknameKey('\u03a3'), nicknameKey('\u03c2'));
      assert.notEqual(nicknameKey('\u03c3'), nicknameKey('\u03c2'));
    });

    it('enforcement keeps case and applies the additional mapping and NFKC (§2.1, §2.3)', () => {
      assert.equal(enforceNickname('Foo Bar'), 'Foo Bar');
      assert.equal(enforceNickname('stpeter '), 'stpeter');
      assert.equal(enforceNickname('St  Peter'), 'St Peter');
      assert.equal(enforceNickname('\u00a0St\u2003\u3000Peter\u00a0'), 'St Peter');
      assert.equal(enforceNickname('Richard \u2163'), 'Richard IV');
      assert.equal(enforceNickname('\uff32\uff4f\uff4d\uff45\uff4f'), 'Romeo');
      assert.equal(enforceNickname('\u265a'), '\u265a');
    });

    it('accepts emoji and letters of any script', () => {
      for (const s of ['\u{1f916}', '\u03a9\u03bc\u03ad\u03b3\u03b1', '\u4e2d\u6587', '\u0645\u0631\u062d\u0628\u0627']) {
        assert.equal(enforceNickname(s), s);
      }
    });

    it('rejects invisible nicknames (the issue: 🤖+U+FE0F, U+200B, "Romeo"+U+200B)', () => {
      fails(enforceNickname, '\u{1f916}\ufe0f');
      fails(enforceNickname, '\u200b');
      fails(enforceNickname, 'Romeo\u200b');
      fails(nicknameKey, 'Romeo\u200b');
    });

    it('rejects a nickname that is empty after the rules', () => {
      for (const s of ['', ' ', '   ', '\u00a0', '\u3000\u2003']) fails(enforceNickname, s, 'empty');
    });

    it('rejects control characters', () => {
      fails(enforceNickname, 'a\tb');
      fails(enforceNickname, 'a\u0085b');
    });
  });

  describe('the derived property (RFC 8264 §8, §9)', () => {
    it('disallows PrecisIgnorableProperties: default-ignorable and noncharacter code points (M)', () => {
      for (const c of [
        '\u00ad',
        '\u034f',
        '\u115f',
        '\u17b4',
        '\u180b',
        '\u200b',
        '\u2060',
        '\u2064',
        '\ufe00',
        '\ufe0f',
        '\ufeff',
        '\u{e0001}',
        '\u{e0100}',
        '\ufdd0',
        '\ufffe',
        '\u{10ffff}',
      ]) {
        fails(enforceOpaqueString, `a${c}b`);
      }
    });

    it('disallows old Hangul jamo (I), controls (L), unassigned (J), private use, surrogates', () => {
      for (const c of [
        '\u1100',
        '\u11a8',
        '\ua960',
        '\ud7b0',
        '\u0000',
        '\u009f',
        '\u0378',
        '\u{e0080}',
        '\ue000',
        '\u{f0000}',
        '\udc00',
      ]) {
        fails(enforceOpaqueString, `a${c}b`);
      }
    });

    it('applies the Exceptions (F) first', () => {
      assert.equal(enforceUsernameCaseMapped('\u00df'), '\u00df'); // PVALID
      assert.equal(enforceUsernameCaseMapped('\u3007'), '\u3007'); // PVALID although Nl
      fails(enforceOpaqueString, 'a\u0640b'); // ARABIC TATWEEL: DISALLOWED although Lm
      fails(enforceOpaqueString, '\u3031'); // VERTICAL KANA REPEAT MARK
    });

    it('checks the CONTEXTO rules of RFC 5892 Appendix A', () => {
      assert.equal(enforceUsernameCaseMapped('l\u00b7l'), 'l\u00b7l');
      fails(enforceOpaqueString, 'a\u00b7b');
      assert.equal(enforceOpaqueString('\u0375\u03b1'), '\u0375\u03b1');
      fails(enforceOpaqueString, '\u0375a');
      assert.equal(enforceOpaqueString('\u05d0\u05f3'), '\u05d0\u05f3');
      fails(enforceOpaqueString, 'a\u05f4');
      assert.equal(enforceOpaqueString('\u30ab\u30fb\u30ab'), '\u30ab\u30fb\u30ab');
      fails(enforceOpaqueString, 'a\u30fbb');
      assert.equal(enforceOpaqueString('\u0661\u0662'), '\u0661\u0662');
      fails(enforceOpaqueString, '\u0661\u06f2');
    });

    it('checks the CONTEXTJ rules: ZWNJ between joining letters or after a virama, ZWJ after a virama', () => {
      assert.ok(enforceOpaqueString('\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645')); // Persian
      assert.ok(enforceOpaqueString('\u0628\u064e\u200c\u0628')); // a transparent mark between
      fails(enforceOpaqueString, '\u0627\u200c\u0628'); // ALEF joins only to the right
      assert.ok(enforceOpaqueString('\u0915\u094d\u200c\u0937'));
      assert.ok(enforceOpaqueString('\u0915\u094d\u200d\u0937'));
      fails(enforceOpaqueString, 'a\u200db');
      fails(enforceOpaqueString, '\u200c');
    });

    it('leaves the IdentifierClass only letters, digits and ASCII (Table 1)', () => {
      for (const ok of ['a', '\u00e9', '\u4e2d', '\u0663', '\u02c6', '\u0301', '\u0903']) assert.ok(enforceUsernameCaseMapped(`x${ok}`));
      for (const no of [' ', '\u00a0', '\u2666', '\u00a7', '\u2150', '\u20dd', '\u01c5']) fails(enforceUsernameCaseMapped, `x${no}`);
      for (const ok of [' ', '\u2666', '\u00a7', '\u2150', '\u20dd', '\u01c5']) assert.ok(enforceOpaqueString(`x${ok}`));
    });
  });
});
