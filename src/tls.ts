// Server certificate: configured files, else certs/<domain>.{crt,key}, else a
// freshly generated self-signed one (clients will have to accept it).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from 'pino';

export interface CertFiles {
  cert: string;
  key: string;
  generated: boolean;
}

export const CERTS_DIR = 'certs';

/** Generate a self-signed certificate for domain (and its subdomains) into dir. */
export async function generateCert(domain: string, dir = CERTS_DIR): Promise<CertFiles> {
  mkdirSync(dir, { recursive: true });
  const { default: selfsigned } = await import('selfsigned'); // only needed when generating
  const pems = await selfsigned.generate([{ name: 'commonName', value: domain }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 5 * 365 * 86400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: domain },
          { type: 2, value: `*.${domain}` },
        ],
      },
    ],
  });
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private, { mode: 0o600 });
  return { cert, key, generated: true };
}

export async function loadOrCreateCert(domain: string, cfg: { cert: string; key: string }, log: Logger): Promise<CertFiles> {
  if (cfg.cert || cfg.key) {
    if (!cfg.cert || !cfg.key) throw new Error('tls.cert and tls.key (UZZAP_TLS_CERT / UZZAP_TLS_KEY) must be set together');
    return { cert: resolve(cfg.cert), key: resolve(cfg.key), generated: false };
  }
  const cert = join(CERTS_DIR, `${domain}.crt`);
  const key = join(CERTS_DIR, `${domain}.key`);
  if (existsSync(cert) && existsSync(key)) return { cert, key, generated: false };
  const files = await generateCert(domain);
  log.warn(
    { cert: files.cert },
    `generated a self-signed certificate for ${domain}: clients will need to accept it (set UZZAP_TLS_CERT/UZZAP_TLS_KEY for a real one)`,
  );
  return files;
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
