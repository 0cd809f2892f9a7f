// Server certificate: configured files, else certs/<domain>.{crt,key}, else one
// freshly issued by a local CA that Uzzap creates next to it (as mkcert does): trust
// that CA once on a machine and every client there verifies the server normally.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from 'pino';

export interface CertFiles {
  cert: string;
  key: string;
  generated: boolean;
}

export interface GeneratedCert extends CertFiles {
  /** the local CA's certificate file, and whether this call created it */
  ca: string;
  caCreated: boolean;
  /** subjectAltNames of the server certificate */
  names: string[];
}

export const CERTS_DIR = 'certs';
export const CA_CERT_FILE = 'uzzap-local-ca.pem';
export const CA_KEY_FILE = 'uzzap-local-ca-key.pem';
const DAY = 86400_000;
const CA_DAYS = 3650;
// Apple platforms reject server certificates valid longer than 825 days; mkcert uses the same.
const SERVER_DAYS = 825;
// reissue (at start) or replace the CA (when issuing) this close to expiry
const RENEW_DAYS = 30;
const EC = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' };

/**
 * Issue a server certificate for domain into dir, signed by the local CA in dir
 * (created when absent, expiring, or when newCa is set). The server's key is kept
 * unless newKey is set: clients that pin it (Poezio) then take the new certificate silently.
 */
export async function generateCert(
  domain: string,
  dir = CERTS_DIR,
  opts: { newCa?: boolean; newKey?: boolean } = {},
): Promise<GeneratedCert> {
  const x509 = await import('@peculiar/x509'); // only needed when generating
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  mkdirSync(dir, { recursive: true });
  const caCertFile = join(dir, CA_CERT_FILE);
  const caKeyFile = join(dir, CA_KEY_FILE);
  const now = new Date();
  const notBefore = new Date(now.getTime() - 3600_000); // tolerate a client clock an hour behind

  let caCreated = false;
  let ca: { cert: InstanceType<typeof x509.X509Certificate>; key: CryptoKey };
  const reuseCa =
    !opts.newCa &&
    existsSync(caCertFile) &&
    existsSync(caKeyFile) &&
    new x509.X509Certificate(readFileSync(caCertFile, 'utf8')).notAfter.getTime() > now.getTime() + RENEW_DAYS * DAY;
  if (reuseCa) {
    const { keys } = await ecKey(readFileSync(caKeyFile, 'utf8'));
    ca = { cert: new x509.X509Certificate(readFileSync(caCertFile, 'utf8')), key: keys.privateKey };
  } else {
    const { pem, keys } = await ecKey();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: [{ O: ['Uzzap local CA'] }, { CN: [`Uzzap local CA (${hostname()}) ${now.toISOString().slice(0, 10)}`] }],
      notBefore,
      notAfter: new Date(now.getTime() + CA_DAYS * DAY),
      signingAlgorithm: SIGNING,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true), // issues server certificates only
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writePrivate(caKeyFile, pem);
    writeFileSync(caCertFile, cert.toString('pem') + '\n');
    ca = { cert, key: keys.privateKey };
    caCreated = true;
  }

  // Clients verify the JID's domain (RFC 6125/7590); *.domain serves the same certificate
  // on subdomains (HTTP upload, a host named by SRV); loopback names are for tools.
  const names = [...new Set(isIP(domain) ? [domain] : [domain, `*.${domain}`, 'localhost', '127.0.0.1', '::1'])];
  const certFile = join(dir, `${domain}.crt`);
  const keyFile = join(dir, `${domain}.key`);
  const oldKey = opts.newKey || !existsSync(keyFile) ? undefined : readFileSync(keyFile, 'utf8');
  const server = await ecKey(oldKey && isP256(oldKey) ? oldKey : undefined);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: [{ CN: [domain] }],
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter: new Date(Math.min(notBefore.getTime() + SERVER_DAYS * DAY, ca.cert.notAfter.getTime())),
    signingAlgorithm: SIGNING,
    publicKey: server.keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      // clientAuth too: a server presents the same certificate when it connects to
      // another server (XEP-0178), and verifiers check the purpose
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      // OpenSSL's strict mode (Python 3.13's default) requires both key identifiers
      await x509.SubjectKeyIdentifierExtension.create(server.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  writePrivate(keyFile, server.pem);
  writeFileSync(certFile, cert.toString('pem') + '\n');
  return { cert: certFile, key: keyFile, generated: true, ca: caCertFile, caCreated, names };
}

function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f; // positive (RFC 5280 §4.1.2.2)
  return b.toString('hex');
}

/** A P-256 key read from PEM, or a new one: as PKCS#8 PEM and as the WebCrypto pair the generator takes. */
async function ecKey(pem?: string): Promise<{ pem: string; keys: CryptoKeyPair }> {
  const key = pem ? createPrivateKey(pem) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const subtle = webcrypto.subtle;
  return {
    pem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keys: {
      privateKey: await subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), EC, false, ['sign']),
      publicKey: await subtle.importKey('spki', createPublicKey(key).export({ type: 'spki', format: 'der' }), EC, true, ['verify']),
    },
  };
}

function isP256(pem: string): boolean {
  try {
    const key = createPrivateKey(pem);
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}

function writePrivate(file: string, pem: string): void {
  writeFileSync(file, pem, { mode: 0o600 });
  chmodSync(file, 0o600); // writeFileSync's mode applies only to a new file
}

/** The one command that makes this machine's system trust store accept the local CA. */
export function trustCommand(caFile: string): string {
  const ca = resolve(caFile);
  if (process.platform === 'darwin') {
    return `sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain '${ca}'`;
  }
  if (process.platform === 'win32') return `certutil -user -addstore Root "${ca}"`;
  if (!existsSync('/usr/local/share/ca-certificates') && existsSync('/etc/pki/ca-trust')) {
    return `sudo trust anchor '${ca}'`; // Fedora, RHEL (p11-kit)
  }
  return `sudo cp '${ca}' /usr/local/share/ca-certificates/uzzap-local-ca.crt && sudo update-ca-certificates`;
}

export async function loadOrCreateCert(
  domain: string,
  cfg: { cert: string; key: string },
  log: Logger,
  dir = CERTS_DIR,
): Promise<CertFiles> {
  if (cfg.cert || cfg.key) {
    if (!cfg.cert || !cfg.key) throw new Error('tls.cert and tls.key (UZZAP_TLS_CERT / UZZAP_TLS_KEY) must be set together');
    return { cert: resolve(cfg.cert), key: resolve(cfg.key), generated: false };
  }
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  if (existsSync(cert) && existsSync(key)) {
    const state = checkExisting(cert, join(dir, CA_CERT_FILE));
    if (state === 'self-signed') {
      log.warn(
        { cert },
        `${cert} is self-signed: clients must accept it by hand; \`npx uzzap cert\` replaces it with one from a local CA this machine can trust`,
      );
    }
    if (state !== 'expiring') return { cert, key, generated: false };
    log.warn({ cert }, `${cert} (issued by the local CA) expires within ${RENEW_DAYS} days: issuing a new one`);
  }
  const files = await generateCert(domain, dir);
  log.warn(
    { cert: files.cert, ca: files.ca, names: files.names },
    `${files.caCreated ? 'created a local CA and ' : ''}issued a certificate for ${domain} signed by it (set UZZAP_TLS_CERT/UZZAP_TLS_KEY for a real one)`,
  );
  log.warn(`to make this machine trust the local CA, run: ${trustCommand(files.ca)}`);
  return files;
}

/** Whether an existing certs/ certificate is our own one due for renewal, or a legacy self-signed one. */
function checkExisting(certFile: string, caFile: string): 'ok' | 'expiring' | 'self-signed' {
  const cert = new X509Certificate(readFileSync(certFile));
  if (!cert.ca && cert.checkIssued(cert) && cert.verify(cert.publicKey)) return 'self-signed';
  if (!existsSync(caFile)) return 'ok';
  const ca = new X509Certificate(readFileSync(caFile));
  const ours = cert.checkIssued(ca) && cert.verify(ca.publicKey);
  return ours && Date.parse(cert.validTo) < Date.now() + RENEW_DAYS * DAY ? 'expiring' : 'ok';
}

export interface TlsMaterial {
  context: tls.SecureContext;
  options: tls.TlsOptions;
  /** RFC 5929 tls-server-end-point data: hash of our certificate */
  serverEndPoint: Buffer;
}

export function tlsMaterial(files: CertFiles): TlsMaterial {
  const certPem = readFileSync(files.cert);
  const keyPem = readFileSync(files.key);
  const options: tls.TlsOptions = { cert: certPem, key: keyPem, minVersion: 'TLSv1.2' };
  const x509 = new X509Certificate(certPem);
  return { context: tls.createSecureContext(options), options, serverEndPoint: endPointHash(x509.raw) };
}

// RFC 5929 §4.1: hash the certificate with its signature's hash, SHA-256 if that is MD5/SHA-1.
function endPointHash(der: Buffer): Buffer {
  const oids: [string, string][] = [
    ['2a864886f70d01010c', 'sha384'], // sha384WithRSAEncryption
    ['2a864886f70d01010d', 'sha512'], // sha512WithRSAEncryption
    ['2a8648ce3d040303', 'sha384'], // ecdsa-with-SHA384
    ['2a8648ce3d040304', 'sha512'], // ecdsa-with-SHA512
  ];
  const hex = der.toString('hex');
  const alg = oids.find(([oid]) => hex.includes(oid))?.[1] ?? 'sha256';
  return createHash(alg).update(der).digest();
}
