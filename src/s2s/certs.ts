// Peer certificates between servers (RFC 6120 §13.7.2, RFC 6125, XEP-0178): which CAs
// are trusted (the system's, plus s2s.ca_file), and whether a stream's peer
// certificate verifies for a domain. Node checks the chain during the handshake and
// the names with checkServerIdentity (DNS names of the subjectAltName, else the CN);
// the XMPP-specific SRV-ID and XmppAddr forms are not read (Node does not decode them).
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { TlsMaterial } from '../tls.js';

export class PeerTrust {
  /** undefined: Node's bundled roots (the system's store) */
  readonly ca: string[] | undefined;
  private readonly contexts = new WeakMap<TlsMaterial, TlsMaterial>();

  constructor(caFile: string) {
    this.ca = caFile ? [...tls.rootCertificates, readFileSync(caFile, 'utf8')] : undefined;
  }

  /** Our certificate, asking the peer for its own and trusting these CAs (incoming STARTTLS). */
  serverMaterial(m: TlsMaterial): TlsMaterial {
    if (!this.ca) return m;
    let out = this.contexts.get(m);
    if (!out) {
      out = { ...m, context: tls.createSecureContext({ ...m.options, ca: this.ca }) };
      this.contexts.set(m, out);
    }
    return out;
  }
}

/** Does the peer's certificate on this TLS socket chain to a trusted CA and name `domain`? */
export function certifies(sock: tls.TLSSocket | undefined, domain: string): boolean {
  if (!sock) return false;
  const cert = sock.getPeerCertificate();
  if (!cert || !cert.raw) return false;
  return chainVerified(sock) && tls.checkServerIdentity(domain, cert) === undefined;
}

function chainVerified(sock: tls.TLSSocket): boolean {
  if (sock.authorized) return true;
  // A server-side TLSSocket made outside tls.Server (STARTTLS on a plain connection)
  // never sets `authorized`: Node's tls.Server reads the handshake's result from the
  // handle (onServerSocketSecure in lib/_tls_wrap.js), and there is no public API for
  // it. Checked by test/e2e/s2s-tls.test.ts, so a Node that changes it fails there.
  const h = (sock as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  return typeof h?.verifyError === 'function' && h.verifyError() === null;
}
