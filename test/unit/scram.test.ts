// Unit tests for SASL: SCRAM credential derivation (src/stream/sasl/credentials.ts)
// and the server side of PLAIN and SCRAM-SHA-1/-256[-PLUS] (src/stream/sasl/mechanisms.ts).
// The SCRAM client used here is written independently with node:crypto.
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import {
  deriveCredentials,
  keysFromSalted,
  prepPassword,
  saltedPassword,
  verifyPassword,
  type ScramHash,
} from '../../src/stream/sasl/credentials.js';
import { PlainMechanism, ScramMechanism, type SaslContext, type SaslStep } from '../../src/stream/sasl/mechanisms.js';
import type { Account, StoredCredentials } from '../../src/storage/types.js';

const DOMAIN = 'localhost';
const ALG: Record<ScramHash, { node: string; len: number }> = {
  'SHA-1': { node: 'sha1', len: 20 },
  'SHA-256': { node: 'sha256', len: 32 },
};

// RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256).
const RFC = {
  'SHA-1': {
    clientNonce: 'fyko+d2lbbFgONRv9qkxdawL',
    serverNonceSuffix: '3rfcNHYJY1ZVvWVs7j',
    salt: 'QSXCR+Q6sek8bf92',
    iterations: 4096,
    proof: 'v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    serverSignature: 'rmF9pqV8S7suAoZWja4dJRkFsKQ=',
    // derived from the above (published alongside the vector by many implementations)
    storedKey: '6dlGYMOdZcOPutkcNY8U2g7vK9Y=',
    serverKey: 'D+CSWLOshSulAsxiupA+qs2/fTE=',
  },
  'SHA-256': {
    clientNonce: 'rOprNGfwEbeRWgbNEkqO',
    serverNonceSuffix: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
    iterations: 4096,
    proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    storedKey: 'WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=',
    serverKey: 'wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
  },
} as const;

function rfcAuthMessage(h: ScramHash): string {
  const v = RFC[h];
  const nonce = v.clientNonce + v.serverNonceSuffix;
  return `n=user,r=${v.clientNonce},r=${nonce},s=${v.salt},i=${v.iterations},c=biws,r=${nonce}`;
}

function rfcCredentials(): StoredCredentials {
  const c = (h: ScramHash) => ({
    salt: RFC[h].salt,
    iterations: RFC[h].iterations,
    storedKey: RFC[h].storedKey,
    serverKey: RFC[h].serverKey,
  });
  return { 'SHA-1': c('SHA-1'), 'SHA-256': c('SHA-256') };
}

const account = (username: string, credentials: StoredCredentials, disabled = false): Account => ({
  username,
  credentials,
  createdAt: 0,
  disabled,
  admin: false,
});

interface TestCtx extends SaslContext {
  lookups: string[];
}

function makeCtx(accounts: Account[], extra: Partial<SaslContext> = {}): TestCtx {
  const byName = new Map(accounts.map((a) => [a.username, a]));
  const lookups: string[] = [];
  return {
    domain: DOMAIN,
    lookups,
    async lookup(username: string) {
      lookups.push(username);
      return byName.get(username);
    },
    cbTypes: [],
    cbData: () => undefined,
    fakeSaltKey: Buffer.alloc(32, 7),
    iterations: 16,
    ...extra,
  };
}

// ---------------------------------------------------------------------------
// A small, independent SCRAM client (RFC 5802 §3).

const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64');
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((x, i) => x ^ b[i]!));

function parseServerFirst(s: string): { r: string; s: string; i: number } {
  const m = /^r=([^,]+),s=([^,]+),i=(\d+)$/.exec(s);
  assert.ok(m, `server-first-message has the RFC 5802 form: ${s}`);
  return { r: m[1]!, s: m[2]!, i: Number(m[3]) };
}

interface ClientOptions {
  hash: ScramHash;
  /** saslname as sent on the wire (already escaped) */
  user: string;
  password: string;
  clientNonce?: string;
  gs2?: string;
  /** bytes appended to the gs2 header in c= (channel-binding data) */
  cbData?: Buffer;
  /** gs2 header to put in c= instead of the one sent in client-first */
  cHeader?: string;
  /** replace the nonce sent in the client-final-message */
  finalNonce?: (nonce: string) => string;
}

interface Exchange {
  serverFirst: string;
  parsed: { r: string; s: string; i: number };
  result: SaslStep;
  expectedServerSignature: string;
}

function challengeText(step: SaslStep): string {
  assert.equal(step.kind, 'challenge', `expected a challenge, got ${JSON.stringify(step)}`);
  return (step as { data: Buffer }).data.toString('utf8');
}

async function runScram(mech: ScramMechanism, o: ClientOptions): Promise<Exchange> {
  const { node, len } = ALG[o.hash];
  const gs2 = o.gs2 ?? 'n,,';
  const clientNonce = o.clientNonce ?? randomBytes(12).toString('base64');
  const bare = `n=${o.user},r=${clientNonce}`;
  const serverFirst = challengeText(await mech.step(Buffer.from(gs2 + bare)));
  const parsed = parseServerFirst(serverFirst);
  assert.ok(parsed.r.startsWith(clientNonce), 'server nonce starts with the client nonce');
  assert.ok(parsed.r.length > clientNonce.length, 'server appends its own nonce');

  const salted = pbkdf2Sync(o.password, Buffer.from(parsed.s, 'base64'), parsed.i, len, node);
  const clientKey = createHmac(node, salted).update('Client Key').digest();
  const storedKey = createHash(node).update(clientKey).digest();
  const serverKey = createHmac(node, salted).update('Server Key').digest();
  const nonce = o.finalNonce ? o.finalNonce(parsed.r) : parsed.r;
  const cbind = Buffer.concat([Buffer.from(o.cHeader ?? gs2), o.cbData ?? Buffer.alloc(0)]);
  const finalWithoutProof = `c=${b64(cbind)},r=${nonce}`;
  const authMessage = `${bare},${serverFirst},${finalWithoutProof}`;
  const proof = xor(clientKey, createHmac(node, storedKey).update(authMessage).digest());
  const result = await mech.step(Buffer.from(`${finalWithoutProof},p=${b64(proof)}`));
  return {
    serverFirst,
    parsed,
    result,
    expectedServerSignature: createHmac(node, serverKey).update(authMessage).digest('base64'),
  };
}

function assertSuccess(ex: Exchange, username: string): void {
  assert.equal(ex.result.kind, 'success', `expected success, got ${JSON.stringify(ex.result)}`);
  const r = ex.result as Extract<SaslStep, { kind: 'success' }>;
  assert.equal(r.username, username);
  assert.ok(r.data, 'success carries server-final-message');
  assert.equal(r.data.toString('utf8'), `v=${ex.expectedServerSignature}`);
}

function assertFailure(step: SaslStep, condition?: string): void {
  assert.equal(step.kind, 'failure', `expected failure, got ${JSON.stringify(step)}`);
  if (condition) assert.equal((step as { condition: string }).condition, condition);
}

async function firstStep(mech: ScramMechanism, msg: string): Promise<SaslStep> {
  return mech.step(Buffer.from(msg));
}

// ---------------------------------------------------------------------------

describe('SCRAM credentials (credentials.ts)', () => {
  for (const h of ['SHA-1', 'SHA-256'] as const) {
    const rfc = h === 'SHA-1' ? 'RFC 5802 §5' : 'RFC 7677 §3';
    it(`derives the ${rfc} StoredKey/ServerKey for SCRAM-${h}`, async () => {
      const v = RFC[h];
      const salted = await saltedPassword(h, 'pencil', Buffer.from(v.salt, 'base64'), v.iterations);
      assert.equal(salted.length, ALG[h].len);
      const { storedKey, serverKey } = keysFromSalted(h, salted);
      assert.equal(storedKey.toString('base64'), v.storedKey);
      assert.equal(serverKey.toString('base64'), v.serverKey);

      // Check the derived keys against the proof and signature printed in the RFC.
      const { node } = ALG[h];
      const authMessage = rfcAuthMessage(h);
      const clientSignature = createHmac(node, storedKey).update(authMessage).digest();
      const clientKey = xor(Buffer.from(v.proof, 'base64'), clientSignature);
      assert.deepEqual(createHash(node).update(clientKey).digest(), storedKey, 'H(ClientProof XOR ClientSignature) = StoredKey');
      assert.equal(createHmac(node, serverKey).update(authMessage).digest('base64'), v.serverSignature);
    });
  }

  it('SASLprep-s the password (RFC 4013 mappings)', async () => {
    const salt = Buffer.from('0123456789abcdef');
    const plain = await saltedPassword('SHA-256', 'pencil', salt, 16);
    // U+00AD SOFT HYPHEN is mapped to nothing
    assert.deepEqual(await saltedPassword('SHA-256', 'pen\u00ADcil', salt, 16), plain);
    // U+00A0 NO-BREAK SPACE is mapped to SPACE
    assert.deepEqual(await saltedPassword('SHA-256', 'pen\u00A0cil', salt, 16), await saltedPassword('SHA-256', 'pen cil', salt, 16));
    assert.notDeepEqual(await saltedPassword('SHA-256', 'Pencil', salt, 16), plain);
    assert.equal(prepPassword('I\u00ADX'), 'IX');
    assert.throws(() => prepPassword('pen\u0007cil'), 'prohibited control character');
  });

  it('deriveCredentials produces verifiable credentials for both hashes with the requested iterations', async () => {
    const creds = await deriveCredentials('pencil', 16);
    for (const h of ['SHA-1', 'SHA-256'] as const) {
      const c = creds[h];
      assert.equal(c.iterations, 16);
      const salt = Buffer.from(c.salt, 'base64');
      assert.equal(salt.length, 16);
      const { node, len } = ALG[h];
      const salted = pbkdf2Sync('pencil', salt, 16, len, node);
      const clientKey = createHmac(node, salted).update('Client Key').digest();
      assert.equal(c.storedKey, createHash(node).update(clientKey).digest('base64'));
      assert.equal(c.serverKey, createHmac(node, salted).update('Server Key').digest('base64'));
    }
    assert.notEqual(creds['SHA-1'].salt, creds['SHA-256'].salt);
    const again = await deriveCredentials('pencil', 16);
    assert.notEqual(again['SHA-256'].salt, creds['SHA-256'].salt, 'a fresh random salt each time');
  });

  it('verifyPassword accepts the right password only', async () => {
    const creds = await deriveCredentials('pencil', 16);
    assert.equal(await verifyPassword(creds, 'pencil'), true);
    assert.equal(await verifyPassword(creds, 'pencil '), false);
    assert.equal(await verifyPassword(creds, 'Pencil'), false);
    assert.equal(await verifyPassword(creds, ''), false);
    assert.equal(await verifyPassword(rfcCredentials(), 'pencil'), true);
  });
});

describe('ScramMechanism', () => {
  let creds: StoredCredentials;
  before(async () => {
    creds = await deriveCredentials('pencil', 16);
  });

  describe('RFC test vectors, end to end', () => {
    for (const h of ['SHA-1', 'SHA-256'] as const) {
      it(`SCRAM-${h}: user/pencil with the RFC salt, iteration count and client nonce`, async () => {
        const ctx = makeCtx([account('user', rfcCredentials())]);
        const mech = new ScramMechanism(ctx, h, false, false);
        const ex = await runScram(mech, { hash: h, user: 'user', password: 'pencil', clientNonce: RFC[h].clientNonce });
        assert.equal(ex.parsed.s, RFC[h].salt);
        assert.equal(ex.parsed.i, RFC[h].iterations);
        assertSuccess(ex, 'user');
        assert.deepEqual(ctx.lookups, ['user']);
      });
    }

    it('a first step without data gets an empty challenge', async () => {
      const mech = new ScramMechanism(makeCtx([account('user', rfcCredentials())]), 'SHA-1', false, false);
      const step = await mech.step(null);
      assert.equal(step.kind, 'challenge');
      assert.equal((step as { data: Buffer }).data.length, 0);
      assertSuccess(await runScram(mech, { hash: 'SHA-1', user: 'user', password: 'pencil' }), 'user');
    });

    it('a step after the exchange has finished fails', async () => {
      const mech = new ScramMechanism(makeCtx([account('user', creds)]), 'SHA-256', false, false);
      assertSuccess(await runScram(mech, { hash: 'SHA-256', user: 'user', password: 'pencil' }), 'user');
      assertFailure(await mech.step(Buffer.from('c=biws,r=x,p=AAAA')));
    });
  });

  describe('authentication', () => {
    it('wrong password → not-authorized', async () => {
      for (const h of ['SHA-1', 'SHA-256'] as const) {
        const mech = new ScramMechanism(makeCtx([account('user', creds)]), h, false, false);
        const ex = await runScram(mech, { hash: h, user: 'user', password: 'pencil2' });
        assertFailure(ex.result, 'not-authorized');
      }
    });

    it('the username is prepared (case-mapped) before lookup', async () => {
      const ctx = makeCtx([account('user', creds)]);
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), { hash: 'SHA-256', user: 'USER', password: 'pencil' });
      assertSuccess(ex, 'user');
      assert.deepEqual(ctx.lookups, ['user']);
    });

    it('unknown user → a normal-looking challenge with salt and iteration count, then not-authorized', async () => {
      const ctx = makeCtx([account('user', creds)]);
      const known = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), { hash: 'SHA-256', user: 'user', password: 'pencil' });
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), { hash: 'SHA-256', user: 'ghost', password: 'pencil' });
      assert.equal(
        Buffer.from(ex.parsed.s, 'base64').length,
        Buffer.from(known.parsed.s, 'base64').length,
        'fake salt as long as a real one',
      );
      assert.equal(ex.parsed.i, ctx.iterations);
      assert.equal(ex.parsed.r.length, known.parsed.r.length, 'same nonce length');
      assert.notEqual(ex.parsed.s, known.parsed.s);
      assertFailure(ex.result, 'not-authorized');
      assert.ok(ctx.lookups.includes('ghost'));
    });

    it('unknown user → the same fake salt in every exchange (and a different one per user)', async () => {
      const ctx = makeCtx([]);
      const a = await runScram(new ScramMechanism(ctx, 'SHA-1', false, false), { hash: 'SHA-1', user: 'ghost', password: 'x' });
      const b = await runScram(new ScramMechanism(ctx, 'SHA-1', false, false), { hash: 'SHA-1', user: 'ghost', password: 'y' });
      const c = await runScram(new ScramMechanism(ctx, 'SHA-1', false, false), { hash: 'SHA-1', user: 'Ghost', password: 'y' });
      const d = await runScram(new ScramMechanism(ctx, 'SHA-1', false, false), { hash: 'SHA-1', user: 'phantom', password: 'y' });
      assert.equal(a.parsed.s, b.parsed.s);
      assert.equal(a.parsed.s, c.parsed.s, 'same prepared username, same salt');
      assert.notEqual(a.parsed.s, d.parsed.s);
      assert.notEqual(a.parsed.r, b.parsed.r, 'nonces still differ');
      for (const ex of [a, b, c, d]) assertFailure(ex.result, 'not-authorized');
      // a different server secret gives a different fake salt
      const other = makeCtx([], { fakeSaltKey: Buffer.alloc(32, 8) });
      const e = await runScram(new ScramMechanism(other, 'SHA-1', false, false), { hash: 'SHA-1', user: 'ghost', password: 'x' });
      assert.notEqual(e.parsed.s, a.parsed.s);
    });

    it('disabled account with the right password → account-disabled; wrong password → not-authorized', async () => {
      const ctx = makeCtx([account('user', creds, true)]);
      const ok = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), { hash: 'SHA-256', user: 'user', password: 'pencil' });
      assertFailure(ok.result, 'account-disabled');
      const bad = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), { hash: 'SHA-256', user: 'user', password: 'nope' });
      assertFailure(bad.result, 'not-authorized');
    });

    it('nonce mismatch in client-final-message → failure', async () => {
      const ctx = makeCtx([account('user', creds)]);
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        finalNonce: (n) => n + 'x',
      });
      assertFailure(ex.result);
      const ex2 = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        finalNonce: (n) => n.slice(0, -1),
      });
      assertFailure(ex2.result);
    });

    it('a proof that is not valid base64 → failure', async () => {
      const mech = new ScramMechanism(makeCtx([account('user', creds)]), 'SHA-256', false, false);
      const sf = parseServerFirst(challengeText(await firstStep(mech, 'n,,n=user,r=abcdef')));
      assertFailure(await mech.step(Buffer.from(`c=biws,r=${sf.r},p=!!notbase64!!`)));
    });

    it('c= that does not repeat the gs2 header → not-authorized', async () => {
      // client-first says 'n,,' but c= carries 'y,,' (proof otherwise valid)
      const mech = new ScramMechanism(makeCtx([account('user', creds)]), 'SHA-256', false, false);
      const ex = await runScram(mech, { hash: 'SHA-256', user: 'user', password: 'pencil', gs2: 'n,,', cHeader: 'y,,' });
      assertFailure(ex.result, 'not-authorized');
    });
  });

  describe('malformed client-first-message', () => {
    const bad: [string, string][] = [
      ['garbage', 'garbage'],
      ['no gs2 header', 'n=user,r=abc'],
      ['missing n=', 'n,,r=abcdef'],
      ['missing r=', 'n,,n=user'],
      ['empty nonce', 'n,,n=user,r='],
      ['mandatory extension m=', 'n,,m=ext,n=user,r=abcdef'],
      ['attribute without a value', 'n,,n=user,r=abc,x'],
      ['unknown cbflag', 'q,,n=user,r=abc'],
    ];
    for (const [label, msg] of bad) {
      it(`${label} → malformed-request`, async () => {
        const ctx = makeCtx([account('user', creds)]);
        const step = await firstStep(new ScramMechanism(ctx, 'SHA-256', false, false), msg);
        assertFailure(step, 'malformed-request');
      });
    }
  });

  describe('saslname escaping (RFC 5802 §5.1)', () => {
    it("'=2C' and '=3D' are decoded to ',' and '='", async () => {
      const ctx = makeCtx([account('a,b=c', creds)]);
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), {
        hash: 'SHA-256',
        user: 'a=2Cb=3Dc',
        password: 'pencil',
      });
      assertSuccess(ex, 'a,b=c');
      assert.deepEqual(ctx.lookups, ['a,b=c']);
    });

    it("'=3D2C' decodes to '=2C' (no double decoding)", async () => {
      const ctx = makeCtx([account('x=2c', creds)]);
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), { hash: 'SHA-256', user: 'x=3D2C', password: 'pencil' });
      assert.deepEqual(ctx.lookups, ['x=2c']);
      assertSuccess(ex, 'x=2c');
    });

    for (const name of ['a=2Xb', 'a=', 'a=3', '=', 'a=2cb']) {
      it(`a bad '=' escape (${name}) → malformed-request`, async () => {
        const ctx = makeCtx([account('user', creds)]);
        assertFailure(await firstStep(new ScramMechanism(ctx, 'SHA-256', false, false), `n,,n=${name},r=abcdef`), 'malformed-request');
        assert.deepEqual(ctx.lookups, []);
      });
    }
  });

  describe('authzid', () => {
    it('an authzid equal to user@domain is accepted', async () => {
      const ctx = makeCtx([account('user', creds)]);
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', false, false), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        gs2: `n,a=user@${DOMAIN},`,
      });
      assertSuccess(ex, 'user');
    });

    for (const authzid of [`other@${DOMAIN}`, 'user@example.org', `user@${DOMAIN}/res`, 'user', DOMAIN]) {
      it(`a different authzid (${authzid}) → invalid-authzid`, async () => {
        const ctx = makeCtx([account('user', creds), account('other', creds)]);
        assertFailure(
          await firstStep(new ScramMechanism(ctx, 'SHA-256', false, false), `n,a=${authzid},n=user,r=abcdef`),
          'invalid-authzid',
        );
      });
    }
  });

  describe('channel binding', () => {
    const cb = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    const plusCtx = (): TestCtx =>
      makeCtx([account('user', creds)], {
        cbTypes: ['tls-exporter'],
        cbData: (type: string) => (type === 'tls-exporter' ? cb : undefined),
      });

    it("gs2 'y' (client supports binding, thinks the server does not) when -PLUS was offered → not-authorized", async () => {
      const step = await firstStep(new ScramMechanism(plusCtx(), 'SHA-256', false, true), 'y,,n=user,r=abcdef');
      assertFailure(step, 'not-authorized');
    });

    it("gs2 'y' when -PLUS was not offered is fine", async () => {
      const ex = await runScram(new ScramMechanism(makeCtx([account('user', creds)]), 'SHA-256', false, false), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        gs2: 'y,,',
      });
      assertSuccess(ex, 'user');
    });

    it("'p=tls-exporter' with a non-PLUS mechanism → malformed-request", async () => {
      assertFailure(
        await firstStep(new ScramMechanism(plusCtx(), 'SHA-256', false, true), 'p=tls-exporter,,n=user,r=abcdef'),
        'malformed-request',
      );
    });

    it('a -PLUS mechanism without p= → malformed-request', async () => {
      assertFailure(await firstStep(new ScramMechanism(plusCtx(), 'SHA-256', true, true), 'n,,n=user,r=abcdef'), 'malformed-request');
      assertFailure(await firstStep(new ScramMechanism(plusCtx(), 'SHA-256', true, true), 'y,,n=user,r=abcdef'), 'malformed-request');
    });

    it('a -PLUS mechanism with an unsupported binding type → malformed-request', async () => {
      assertFailure(
        await firstStep(new ScramMechanism(plusCtx(), 'SHA-256', true, true), 'p=tls-unique,,n=user,r=abcdef'),
        'malformed-request',
      );
    });

    for (const h of ['SHA-1', 'SHA-256'] as const) {
      it(`SCRAM-${h}-PLUS succeeds when c= carries the tls-exporter data`, async () => {
        const ex = await runScram(new ScramMechanism(plusCtx(), h, true, true), {
          hash: h,
          user: 'user',
          password: 'pencil',
          gs2: 'p=tls-exporter,,',
          cbData: cb,
        });
        assertSuccess(ex, 'user');
      });
    }

    it('SCRAM-SHA-256-PLUS fails when c= lacks or changes the binding data', async () => {
      const without = await runScram(new ScramMechanism(plusCtx(), 'SHA-256', true, true), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        gs2: 'p=tls-exporter,,',
      });
      assertFailure(without.result, 'not-authorized');
      const other = Buffer.from(cb);
      other[31] ^= 1;
      const wrong = await runScram(new ScramMechanism(plusCtx(), 'SHA-256', true, true), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        gs2: 'p=tls-exporter,,',
        cbData: other,
      });
      assertFailure(wrong.result, 'not-authorized');
    });

    it('SCRAM-SHA-256-PLUS fails when the binding data is unavailable on the connection', async () => {
      const ctx = makeCtx([account('user', creds)], { cbTypes: ['tls-exporter'], cbData: () => undefined });
      const ex = await runScram(new ScramMechanism(ctx, 'SHA-256', true, true), {
        hash: 'SHA-256',
        user: 'user',
        password: 'pencil',
        gs2: 'p=tls-exporter,,',
        cbData: cb,
      });
      assertFailure(ex.result);
    });
  });
});

describe('PlainMechanism', () => {
  let ctx: TestCtx;
  before(async () => {
    const creds = await deriveCredentials('pencil', 16);
    ctx = makeCtx([account('user', creds), account('off', creds, true)]);
  });
  const plain = (s: string) => new PlainMechanism(ctx).step(Buffer.from(s, 'utf8'));

  it('asks for the initial response when there was none', async () => {
    const step = await new PlainMechanism(ctx).step(null);
    assert.equal(step.kind, 'challenge');
    assert.equal((step as { data: Buffer }).data.length, 0);
  });

  it('correct password → success', async () => {
    const step = await plain('\0user\0pencil');
    assert.equal(step.kind, 'success');
    assert.equal((step as { username: string }).username, 'user');
  });

  it('the authcid is case-mapped', async () => {
    const step = await plain('\0User\0pencil');
    assert.equal(step.kind, 'success');
    assert.equal((step as { username: string }).username, 'user');
  });

  it('wrong password → not-authorized', async () => {
    assertFailure(await plain('\0user\0pencil2'), 'not-authorized');
    assertFailure(await plain('\0user\0'), 'not-authorized');
  });

  it('unknown user → not-authorized', async () => {
    assertFailure(await plain('\0ghost\0pencil'), 'not-authorized');
  });

  it('disabled account → account-disabled (right password only)', async () => {
    assertFailure(await plain('\0off\0pencil'), 'account-disabled');
    assertFailure(await plain('\0off\0wrong'), 'not-authorized');
  });

  it('malformed message → malformed-request', async () => {
    assertFailure(await plain('userpencil'), 'malformed-request');
    assertFailure(await plain('user\0pencil'), 'malformed-request');
    assertFailure(await plain('\0user\0pencil\0extra'), 'malformed-request');
  });

  it('authzid equal to user@domain → success; a different authzid → invalid-authzid', async () => {
    assert.equal((await plain(`user@${DOMAIN}\0user\0pencil`)).kind, 'success');
    assertFailure(await plain(`off@${DOMAIN}\0user\0pencil`), 'invalid-authzid');
    assertFailure(await plain(`user@example.org\0user\0pencil`), 'invalid-authzid');
    assertFailure(await plain(`user@${DOMAIN}/res\0user\0pencil`), 'invalid-authzid');
  });
});
