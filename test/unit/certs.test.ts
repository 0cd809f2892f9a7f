// The generated local CA and server certificate (src/tls.ts): what they contain,
// what `uzzap cert` keeps, and that a client trusting only the CA verifies a real
// server on direct TLS and on STARTTLS, by name and by loopback address.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import pino from 'pino';
import type { Server } from '../../src/server.js';
import { CA_CERT_FILE, CA_KEY_FILE, generateCert, loadOrCreateCert, trustCommand, type GeneratedCert } from '../../src/tls.js';
import { HEADER } from '../helpers/raw.js';
import { startServer } from '../helpers/server.js';

const DAY = 86400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
/** the same certificate authenticates the server when it connects to another one (XEP-0178) */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const spki = (keyFile: string): string => createPublicKey(readFileSync(keyFile)).export({ type: 'spki', format: 'der' }).toString('hex');
const modeOf = (file: string): number => statSync(file).mode & 0o777;

/** Open a TLS connection that trusts only `ca`, and report whether it verified. */
function verifyDirect(port: number, host: string, ca: Buffer, servername?: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca, servername, rejectUnauthorized: true, ALPNProtocols: ['xmpp-client'] }, () => resolve(s));
    s.once('error', reject);
  });
}

/** RFC 6120 STARTTLS, then the same verification as above on the upgraded socket. */
function verifyStartTls(port: number, ca: Buffer): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port }, () => raw.write(HEADER('localhost')));
    raw.once('error', reject);
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('utf8');
      if (got.includes('<starttls') && !got.includes('<proceed')) {
        if (!got.includes('</stream:features>')) return;
        raw.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        got = got.replace('<starttls', '<sent-starttls');
      }
      if (!got.includes('<proceed')) return;
      raw.off('data', onData);
      const s = tls.connect({ socket: raw, ca, servername: 'localhost', rejectUnauthorized: true }, () => resolve(s));
      s.once('error', reject);
    };
    raw.on('data', onData);
  });
}

/** A logger whose messages land in an array. */
function recordingLog(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push((JSON.parse(l) as { msg: string }).msg) });
  return { log, lines };
}

/** Re-sign certs/localhost.crt in dir so that it expires in `days` (same key, same CA). */
async function shortenValidity(dir: string, days: number): Promise<void> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const ec = { name: 'ECDSA', namedCurve: 'P-256' };
  const pkcs8 = (f: string) => createPrivateKey(readFileSync(join(dir, f))).export({ type: 'pkcs8', format: 'der' });
  const ca = new x509.X509Certificate(readFileSync(join(dir, CA_CERT_FILE), 'utf8'));
  const old = new x509.X509Certificate(readFileSync(join(dir, 'localhost.crt'), 'utf8'));
  const cert = await x509.X509CertificateGenerator.create({
    subject: old.subjectName,
    issuer: ca.subjectName,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + days * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: old.publicKey,
    signingKey: await webcrypto.subtle.importKey('pkcs8', pkcs8(CA_KEY_FILE), ec, false, ['sign']),
  });
  writeFileSync(join(dir, 'localhost.crt'), cert.toString('pem'));
}

describe('local CA and server certificate', () => {
  let dir: string;
  let files: GeneratedCert;
  let caPem: Buffer;
  let ca: X509Certificate;
  let cert: X509Certificate;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uzzap-certs-'));
    files = await generateCert('localhost', dir);
    caPem = readFileSync(files.ca);
    ca = new X509Certificate(caPem);
    cert = new X509Certificate(readFileSync(files.cert));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the CA and the server pair into the directory, private keys readable by the owner only', () => {
    assert.equal(files.ca, join(dir, CA_CERT_FILE));
    assert.equal(files.cert, join(dir, 'localhost.crt'));
    assert.equal(files.key, join(dir, 'localhost.key'));
    assert.equal(files.caCreated, true);
    assert.equal(modeOf(join(dir, CA_KEY_FILE)), 0o600);
    assert.equal(modeOf(files.key), 0o600);
  });

  it('the CA is a CA for about ten years, named after this machine and the day', () => {
    assert.equal(ca.ca, true);
    assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'self-signed');
    assert.match(ca.subject, /CN=Uzzap local CA \(.+\) \d{4}-\d\d-\d\d/);
    const years = (Date.parse(ca.validTo) - Date.parse(ca.validFrom)) / (365 * DAY);
    assert.ok(years > 9.9 && years < 10.1, `${years} years`);
    const parsed = new x509.X509Certificate(caPem.toString());
    const usage = parsed.getExtension(x509.KeyUsagesExtension);
    assert.ok(usage && usage.usages & x509.KeyUsageFlags.keyCertSign, 'keyCertSign');
    assert.ok(parsed.getExtension(x509.BasicConstraintsExtension)?.critical, 'basicConstraints critical');
    assert.ok(parsed.getExtension(x509.SubjectKeyIdentifierExtension), 'subjectKeyIdentifier (OpenSSL strict mode)');
  });

  it('the server certificate is signed by the CA for the domain, its subdomains and loopback, ≤ 825 days, serverAuth and clientAuth', () => {
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'issued by the local CA');
    assert.equal(cert.subjectAltName, 'DNS:localhost, DNS:*.localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.deepEqual(files.names, ['localhost', '*.localhost', '127.0.0.1', '::1']);
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY;
    assert.ok(days <= 825 && days > 800, `${days} days`);
    assert.ok(Date.parse(cert.validFrom) < Date.now(), 'already valid');
    assert.deepEqual(cert.keyUsage, [SERVER_AUTH, CLIENT_AUTH]);
    const parsed = new x509.X509Certificate(readFileSync(files.cert, 'utf8'));
    const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    assert.equal(aki, new x509.X509Certificate(caPem.toString()).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId, 'AKI = CA SKI');
  });

  it('names other domains with their wildcard, plus loopback', async () => {
    const other = await generateCert('chat.example.org', dir);
    assert.equal(other.caCreated, false);
    assert.equal(
      new X509Certificate(readFileSync(other.cert)).subjectAltName,
      'DNS:chat.example.org, DNS:*.chat.example.org, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
  });

  it('reissuing keeps the CA and the server key unless asked to replace them', async () => {
    const key = spki(files.key);
    const again = await generateCert('localhost', dir);
    assert.equal(again.caCreated, false);
    assert.deepEqual(readFileSync(again.ca), caPem);
    assert.equal(spki(again.key), key);
    assert.notEqual(new X509Certificate(readFileSync(again.cert)).serialNumber, cert.serialNumber, 'a new certificate');
    const newKey = await generateCert('localhost', dir, { newKey: true });
    assert.notEqual(spki(newKey.key), key);
    assert.deepEqual(readFileSync(newKey.ca), caPem);
    const newCa = await generateCert('localhost', dir, { newCa: true });
    assert.equal(newCa.caCreated, true);
    assert.notDeepEqual(readFileSync(newCa.ca), caPem);
    const issued = new X509Certificate(readFileSync(newCa.cert));
    assert.ok(issued.checkIssued(new X509Certificate(readFileSync(newCa.ca))), 'signed by the new CA');
  });

  it('the trust command names the CA file by its absolute path', () => {
    const cmd = trustCommand(join('certs', CA_CERT_FILE));
    assert.ok(cmd.includes(join(process.cwd(), 'certs', CA_CERT_FILE)), cmd);
  });

  describe('at server start (certs/ absent, then present)', () => {
    const startDir = mkdtempSync(join(tmpdir(), 'uzzap-certs-'));
    after(() => rmSync(startDir, { recursive: true, force: true }));
    const noFiles = { cert: '', key: '' };

    it('the first start creates the CA and logs the command that trusts it', async () => {
      const { log, lines } = recordingLog();
      const files = await loadOrCreateCert('localhost', noFiles, log, startDir);
      assert.equal(files.generated, true);
      assert.ok(
        lines.some((l) => l.startsWith('created a local CA')),
        lines.join('\n'),
      );
      const trust = lines.find((l) => l.startsWith('to make this machine trust the local CA, run: '));
      assert.ok(trust?.endsWith(trustCommand(join(startDir, CA_CERT_FILE))), trust);
    });

    it('later starts use the files as they are, quietly', async () => {
      const before = readFileSync(join(startDir, 'localhost.crt'), 'utf8');
      const { log, lines } = recordingLog();
      const files = await loadOrCreateCert('localhost', noFiles, log, startDir);
      assert.equal(files.generated, false);
      assert.deepEqual(lines, []);
      assert.equal(readFileSync(files.cert, 'utf8'), before);
    });

    it('a certificate from the local CA that expires within 30 days is reissued with the same key', async () => {
      await shortenValidity(startDir, 10);
      const key = spki(join(startDir, 'localhost.key'));
      const { log, lines } = recordingLog();
      const files = await loadOrCreateCert('localhost', noFiles, log, startDir);
      assert.equal(files.generated, true);
      assert.ok(
        lines.some((l) => l.includes('expires within 30 days')),
        lines.join('\n'),
      );
      const days = (Date.parse(new X509Certificate(readFileSync(files.cert)).validTo) - Date.now()) / DAY;
      assert.ok(days > 800, `${days} days left`);
      assert.equal(spki(files.key), key);
    });

    it('configured files win: nothing is generated', async () => {
      const { log } = recordingLog();
      const files = await loadOrCreateCert('localhost', { cert: 'real.crt', key: 'real.key' }, log, startDir);
      assert.equal(files.generated, false);
      assert.equal(files.cert, join(process.cwd(), 'real.crt'));
    });
  });

  describe('a client that trusts only the CA', () => {
    let server: Server;
    let pinnedCa: Buffer;
    let strangerCa: Buffer;
    const sockets: tls.TLSSocket[] = [];
    // directories of their own: the tests above replace the CA in `dir`
    const own = mkdtempSync(join(tmpdir(), 'uzzap-certs-'));
    const stranger = mkdtempSync(join(tmpdir(), 'uzzap-certs-'));

    before(async () => {
      const { cert: c, key, ca: caFile } = await generateCert('localhost', own);
      pinnedCa = readFileSync(caFile);
      strangerCa = readFileSync((await generateCert('localhost', stranger)).ca);
      server = await startServer({ config: { tls: { cert: c, key } } });
    });
    after(async () => {
      for (const s of sockets) s.destroy();
      await server.stop();
      for (const d of [own, stranger]) rmSync(d, { recursive: true, force: true });
    });

    it('verifies direct TLS for the name localhost', async () => {
      const s = await verifyDirect(server.ports.c2sTls, '127.0.0.1', pinnedCa, 'localhost');
      sockets.push(s);
      assert.equal(s.authorized, true);
      assert.equal(s.getPeerCertificate().subject.CN, 'localhost');
    });

    it('verifies direct TLS for the address 127.0.0.1 (no SNI)', async () => {
      const s = await verifyDirect(server.ports.c2sTls, '127.0.0.1', pinnedCa);
      sockets.push(s);
      assert.equal(s.authorized, true);
    });

    it('verifies after STARTTLS on the client port', async () => {
      const s = await verifyStartTls(server.ports.c2s, pinnedCa);
      sockets.push(s);
      assert.equal(s.authorized, true);
    });

    it('rejects the server when trusting another local CA', async () => {
      await assert.rejects(verifyDirect(server.ports.c2sTls, '127.0.0.1', strangerCa, 'localhost'), (e: NodeJS.ErrnoException) => {
        assert.match(String(e.code), /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_SIGNATURE_FAILURE/);
        return true;
      });
    });

    it('rejects a name the certificate does not cover', async () => {
      await assert.rejects(
        verifyDirect(server.ports.c2sTls, '127.0.0.1', pinnedCa, 'example.net'),
        /ERR_TLS_CERT_ALTNAME_INVALID|does not match/,
      );
    });
  });
});
