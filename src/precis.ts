// PRECIS (RFC 8264): the two string classes and the three profiles XMPP uses.
//   - UsernameCaseMapped (RFC 8265 §3.3): JID localparts (RFC 7622 §3.3)
//   - OpaqueString (RFC 8265 §4.2): JID resourceparts (RFC 7622 §3.4)
//   - Nickname (RFC 8266): MUC room nicknames
//
// Written by hand because npm has no maintained implementation: precis-js implements
// the obsoleted RFC 7564 and is no longer on the registry, and @xmpp/jid only
// lowercases. The derived property (RFC 8264 §8) is computed per code point from the
// Unicode properties the regex engine knows (General_Category, Script,
// Default_Ignorable_Code_Point, Noncharacter_Code_Point) and its NFKC, so it follows
// the Unicode version of the running Node. The three properties it lacks are tables
// below, from the Unicode 15.0 UCD: Hangul_Syllable_Type (HangulSyllableType.txt),
// Canonical_Combining_Class=Virama (UnicodeData.txt, ccc 9) and Joining_Type
// (ArabicShaping.txt). Not implemented: the Bidi Rule (RFC 5893) that
// UsernameCaseMapped asks for in right-to-left localparts (the engine has no Bidi_Class).

export type PrecisFailure = 'disallowed' | 'empty' | 'unstable';

export class PrecisError extends Error {
  constructor(
    message: string,
    /** empty: nothing left after the rules; unstable: RFC 8264 §7 repeated application did not settle */
    readonly reason: PrecisFailure = 'disallowed',
  ) {
    super(message);
    this.name = 'PrecisError';
  }
}

/** Builds a one-code-point character class from "hex hex-hex ..." ranges. */
function table(spec: string): RegExp {
  const ranges = spec.trim().split(/\s+/);
  return new RegExp(`[${ranges.map((r) => r.replace(/[0-9A-F]+/g, (h) => `\\u{${h}}`)).join('')}]`, 'u');
}

// RFC 5892 §2.9 OldHangulJamo: Hangul_Syllable_Type L, V or T.
const OLD_HANGUL_JAMO = table('1100-115F A960-A97C 1160-11A7 D7B0-D7C6 11A8-11FF D7CB-D7FB');
// Canonical_Combining_Class = Virama (9): a ZWJ/ZWNJ after one of these is allowed (RFC 5892 A.1, A.2).
const VIRAMA = table(`94D 9CD A4D ACD B4D BCD C4D CCD D3B-D3C D4D DCA E3A EBA F84 1039-103A 1714-1715 1734 17D2 1A60 1B44
  1BAA-1BAB 1BF2-1BF3 2D7F A806 A82C A8C4 A953 A9C0 AAF6 ABED 10A3F 11046 11070 1107F 110B9 11133-11134 111C0 11235 112EA
  1134D 11442 114C2 115BF 1163F 116B6 1172B 11839 1193D-1193E 119E0 11A34 11A47 11A99 11C3F 11D44-11D45 11D97 11F41-11F42`);
// Joining_Type L or D (may join to the following letter), and R or D (to the preceding one).
const JOINS_AFTER = table(`620 626 628 62A-62E 633-63F 641-647 649-64A 66E-66F 678-687 69A-6BF 6C1-6C2 6CC 6CE 6D0-6D1 6FA-6FC
  6FF 712-714 71A-71D 71F-727 729 72B 72D-72E 74E-758 75C-76A 76D-770 772 775-777 77A-77F 7CA-7EA 841-845 848 84A-853 855 860
  862-865 868 886 889-88D 8A0-8A9 8AF-8B0 8B3-8B8 8BA-8C8 1807 1820-1878 1887-18A8 18AA A840-A872 10AC0-10AC4 10ACD
  10AD3-10ADC 10ADE-10AE0 10AEB-10AEE 10B80 10B82 10B86-10B88 10B8A-10B8B 10B8D 10B90 10BAD-10BAE 10D00-10D21 10D23
  10F30-10F32 10F34-10F44 10F51-10F53 10F70-10F73 10F76-10F81 10FB0 10FB2-10FB3 10FB8 10FBB-10FBC 10FBE-10FBF 10FC1 10FC4
  10FCA-10FCB 1E900-1E943`);
const JOINS_BEFORE = table(`620 622-63F 641-64A 66E-66F 671-673 675-6D3 6D5 6EE-6EF 6FA-6FC 6FF 710 712-72F 74D-77F 7CA-7EA
  840-858 860 862-865 867-86A 870-882 886 889-88E 8A0-8AC 8AE-8C8 1807 1820-1878 1887-18A8 18AA A840-A871 10AC0-10AC5 10AC7
  10AC9-10ACA 10ACE-10AD6 10AD8-10AE1 10AE4 10AEB-10AEF 10B80-10B91 10BA9-10BAE 10D01-10D23 10F30-10F44 10F51-10F54
  10F70-10F81 10FB0 10FB2-10FB6 10FB8-10FBF 10FC1-10FC4 10FC9-10FCA 1E900-1E943`);
// Joining_Type T (transparent) is every Mn, Me and Cf except these, plus U+1E94B.
const NOT_TRANSPARENT = table('600-605 6DD 890-891 8E2 180E 200C-200D 2066-2069 110BD 110CD');
const MAYBE_TRANSPARENT = /[\p{Mn}\p{Me}\p{Cf}\u{1E94B}]/u;
const isTransparent = (c: string): boolean => MAYBE_TRANSPARENT.test(c) && !NOT_TRANSPARENT.test(c);

// RFC 8264 §9 categories (the ones not tested inline)
const UNASSIGNED = /\p{Cn}/u;
const NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
const IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u; // (M)
const CONTROL = /\p{Cc}/u; // (L)
const LETTER_DIGITS = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u; // (A)
// (R) OtherLetterDigits, (N) Spaces, (O) Symbols, (P) Punctuation: valid in the FreeformClass only
const FREEFORM_ONLY = /[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{Pc}\p{Pd}\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Po}]/u;
// RFC 5892 §2.6 Exceptions (F)
const EXCEPTION_PVALID = new Set([0xdf, 0x3c2, 0x6fd, 0x6fe, 0xf0b, 0x3007]);
const EXCEPTION_DISALLOWED = new Set([0x640, 0x7fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);
const EXCEPTION_CONTEXTO = /[\u00b7\u0375\u05f3\u05f4\u30fb\u0660-\u0669\u06f0-\u06f9]/u;

// Derived property values (RFC 8264 §8); FREE_PVAL stands for "ID_DIS or FREE_PVAL".
const PVALID = 0;
const FREE_PVAL = 1;
const CONTEXTJ = 2;
const CONTEXTO = 3;
const DISALLOWED = 4;
const UNASSIGNED_CP = 5;
const WHY = ['', 'not allowed in an identifier', 'not allowed here', 'not allowed here', 'not allowed', 'unassigned'];

/** RFC 8264 §8, in its order (which "implementations MUST NOT modify"). */
function derive(c: string, cp: number): number {
  if (EXCEPTION_PVALID.has(cp)) return PVALID;
  if (EXCEPTION_DISALLOWED.has(cp)) return DISALLOWED;
  if (EXCEPTION_CONTEXTO.test(c)) return CONTEXTO;
  // BackwardCompatible (G) is empty
  if (UNASSIGNED.test(c) && !NONCHARACTER.test(c)) return UNASSIGNED_CP; // RFC 5892 §2.10
  if (cp >= 0x21 && cp <= 0x7e) return PVALID;
  if (cp === 0x200c || cp === 0x200d) return CONTEXTJ;
  if (OLD_HANGUL_JAMO.test(c) || IGNORABLE.test(c) || CONTROL.test(c)) return DISALLOWED;
  if (c.normalize('NFKC') !== c) return FREE_PVAL; // HasCompat (Q)
  if (LETTER_DIGITS.test(c)) return PVALID;
  if (FREEFORM_ONLY.test(c)) return FREE_PVAL;
  return DISALLOWED; // Cs, Co, Zl, Zp, Cf that is not ignorable
}

// Every stanza address goes through here when it is not ASCII: remember the answers
// (bounded; a cache of a pure function of the code point, so servers in one process may share it).
const derived = new Map<number, number>();
function property(c: string, cp: number): number {
  let p = derived.get(cp);
  if (p === undefined) {
    if (derived.size >= 8192) derived.clear();
    derived.set(cp, (p = derive(c, cp)));
  }
  return p;
}

/** RFC 5892 Appendix A.1 (ZERO WIDTH NON-JOINER) and A.2 (ZERO WIDTH JOINER). */
function contextJ(cps: string[], i: number): boolean {
  if (i > 0 && VIRAMA.test(cps[i - 1]!)) return true;
  if (cps[i] === '\u200d') return false;
  // (Joining_Type:{L,D})(Joining_Type:T)*\u200C(Joining_Type:T)*(Joining_Type:{R,D})
  let before = i - 1;
  while (before >= 0 && isTransparent(cps[before]!)) before--;
  let after = i + 1;
  while (after < cps.length && isTransparent(cps[after]!)) after++;
  return before >= 0 && JOINS_AFTER.test(cps[before]!) && after < cps.length && JOINS_BEFORE.test(cps[after]!);
}

const GREEK = /\p{Script=Greek}/u;
const HEBREW = /\p{Script=Hebrew}/u;
const KANA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;
const ARABIC_INDIC = /[\u0660-\u0669]/u;
const EXTENDED_ARABIC_INDIC = /[\u06f0-\u06f9]/u;

/** RFC 5892 Appendix A.3 to A.9. */
function contextO(cps: string[], i: number): boolean {
  const prev = cps[i - 1];
  const next = cps[i + 1];
  switch (cps[i]) {
    case '\u00b7': // MIDDLE DOT: only between two 'l' (Catalan)
      return prev === 'l' && next === 'l';
    case '\u0375': // GREEK LOWER NUMERAL SIGN (KERAIA): before a Greek character
      return next !== undefined && GREEK.test(next);
    case '\u05f3': // HEBREW PUNCTUATION GERESH and GERSHAYIM: after a Hebrew character
    case '\u05f4':
      return prev !== undefined && HEBREW.test(prev);
    case '\u30fb': // KATAKANA MIDDLE DOT: somewhere with Hiragana, Katakana or Han
      return cps.some((c) => KANA_HAN.test(c));
    default: // the two sets of Arabic-Indic digits must not be mixed
      return ARABIC_INDIC.test(cps[i]!) ? !cps.some((c) => EXTENDED_ARABIC_INDIC.test(c)) : !cps.some((c) => ARABIC_INDIC.test(c));
  }
}

/** Throws unless every code point of s is valid in the class (RFC 8264 §4.2, §4.3). */
function ensureClass(s: string, identifier: boolean): void {
  const cps = Array.from(s);
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    const cp = c.codePointAt(0)!;
    if (cp >= 0x21 && cp <= 0x7e) continue;
    const p = property(c, cp);
    if (p === PVALID || (p === FREE_PVAL && !identifier)) continue;
    if (p === CONTEXTJ && contextJ(cps, i)) continue;
    if (p === CONTEXTO && contextO(cps, i)) continue;
    throw new PrecisError(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} is ${WHY[p]}`);
  }
}

/**
 * Applies the profile's rules until the result no longer changes: RFC 8264 §7 (and RFC
 * 8266 §4) ask for up to three more applications after the first, then rejection.
 */
function untilStable(s: string, rules: (s: string) => string): string {
  let out = rules(s);
  for (let i = 0; i < 3; i++) {
    const again = rules(out);
    if (again === out) return out;
    out = again;
  }
  throw new PrecisError('the string does not settle under the profile rules', 'unstable');
}

// Width mapping (RFC 8265 §3.3.1): code points whose decomposition type is <wide> or <narrow>.
const WIDE_OR_NARROW = /[\u3000\uff01-\uffef]/gu;
const widthMap = (s: string): string => s.replace(WIDE_OR_NARROW, (c) => c.normalize('NFKC'));
// Additional mapping shared by OpaqueString and Nickname: any Zs to SPACE.
const NON_ASCII_SPACE = /[^\P{Zs} ]/gu;

/**
 * UsernameCaseMapped (RFC 8265 §3.3): width mapping, IdentifierClass, lowercase, NFC.
 * Callers keep their own fast path for ASCII.
 */
export function enforceUsernameCaseMapped(s: string): string {
  const prepared = widthMap(s);
  ensureClass(prepared, true); // §3.3.2 preparation
  const out = untilStable(prepared, (x) => widthMap(x).toLowerCase().normalize('NFC')); // §3.3.3
  ensureClass(out, true); // RFC 8264 §7: the behavioural rules apply to the result
  if (out === '') throw new PrecisError('nothing is left after preparation', 'empty');
  return out;
}

/** OpaqueString (RFC 8265 §4.2): FreeformClass, non-ASCII spaces to SPACE, NFC; case kept. */
export function enforceOpaqueString(s: string): string {
  ensureClass(s, false);
  const out = untilStable(s, (x) => x.replace(NON_ASCII_SPACE, ' ').normalize('NFC'));
  ensureClass(out, false);
  if (out === '') throw new PrecisError('nothing is left after preparation', 'empty');
  return out;
}

const ASCII_TEXT = /^[\x20-\x7e]*$/;
const nicknameSpaces = (s: string): string =>
  s
    .replace(NON_ASCII_SPACE, ' ')
    .replace(/^ +| +$/g, '')
    .replace(/ {2,}/g, ' ');

/**
 * Nickname enforcement (RFC 8266 §2.3): FreeformClass; non-ASCII spaces to SPACE, no
 * leading or trailing space, no run of spaces; NFKC; not empty. Case is kept (it is
 * folded only to compare, see nicknameKey).
 */
export function enforceNickname(s: string): string {
  let out: string;
  if (ASCII_TEXT.test(s)) out = nicknameSpaces(s);
  else {
    ensureClass(s, false);
    out = untilStable(s, (x) => nicknameSpaces(x).normalize('NFKC'));
    ensureClass(out, false);
  }
  if (out === '') throw new PrecisError('a nickname cannot be empty or invisible', 'empty');
  return out;
}

/** Nickname comparison (RFC 8266 §2.4): two nicknames are the same when their keys are equal. */
export function nicknameKey(s: string): string {
  if (!ASCII_TEXT.test(s)) ensureClass(s, false);
  const out = untilStable(s, (x) => nicknameSpaces(x).toLowerCase().normalize('NFKC'));
  if (out === '') throw new PrecisError('a nickname cannot be empty or invisible', 'empty');
  return out;
}
