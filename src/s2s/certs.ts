// Peer certificates between servers (RFC 6120 §13.7.2, RFC 6125, XEP-0178): which CAs
// are trusted (the system's, plus s2s.ca_file), and whether a stream's peer
// certificate verifies for a domain. Node checks the chain during the handshake and
// the names with checkServerIdentity (DNS names of the subjectAltName, else the CN);
// the XMPP-specific SRV-ID and XmppAddr forms are not read (Node does not decode them).
// TLS renegotiation is off on every server-to-server connection: a peer could otherwise
// complete a handshake with a certificate that verifies, then renegotiate with another
// (XEP-0344 §Security); the certificate is also read from the current session only.
import { readFileSync } from 'node:fs';
import { constants } from 'node:crypto';
import tls from 'node:tls';
import type { TlsMaterial } from '../tls.js';

/** for every s2s TLS context, server and client side */
export const S2S_SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION;

export class PeerTrust {
  /** undefined: Node's bundled roots (the system's store) */
  readonly ca: string[] | undefined;
  private readonly contexts = new WeakMap<TlsMaterial, TlsMaterial>();

  constructor(caFile: string) {
    this.ca = caFile ? [...tls.rootCertificates, readFileSync(caFile, 'utf8')] : undefined;
  }

  /** Our certificate, asking the peer for its own, trusting these CAs, no renegotiation (incoming streams). */
  serverMaterial(m: TlsMaterial): TlsMaterial {
    let out = this.contexts.get(m);
    if (!out) {
      out = { ...m, context: tls.createSecureContext({ ...m.options, ca: this.ca, secureOptions: S2S_SECURE_OPTIONS }) };
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

/**
 * The current session's verification result. `authorized` is set once, at the first
 * handshake of a tls.Server socket, and never on a server-side TLSSocket made outside
 * tls.Server (STARTTLS); Node's tls.Server reads the result from the handle
 * (onServerSocketSecure in lib/_tls_wrap.js) and there is no public API for it, so it
 * is read the same way. Checked by test/e2e/s2s-tls.test.ts: a Node that changes it
 * fails there (nothing verifies, EXTERNAL is never offered).
 */
function chainVerified(sock: tls.TLSSocket): boolean {
  const h = (sock as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  if (typeof h?.verifyError === 'function') return h.verifyError() === null;
  return sock.authorized;
}
