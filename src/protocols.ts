// Protocols implemented by the core rather than by a module in xeps/
// (listed in the README table, the DOAP file and nowhere else).
import type { XepInfo } from './api/module.js';

export const CORE_PROTOCOLS: XepInfo[] = [
  { n: 368, version: '1.1.0', status: 'complete', note: 'direct TLS on c2s.tls_port (ALPN xmpp-client) and s2s.tls_port (ALPN xmpp-server); _xmpps-server SRV records for outgoing federation' },
  {
    n: 178,
    version: '1.0',
    status: 'complete',
    note: 'SASL EXTERNAL between servers, both ways (src/s2s/): offered when the peer certificate verifies for its header domain; dialback answered from the certificate too (XEP-0344)',
  },
  {
    n: 288,
    version: '0.4',
    status: 'complete',
    note: 'bidirectional server-to-server streams both ways (src/s2s/): our stanzas back on a peer stream for the inverse of the pairs it proved',
  },
  { n: 440, version: '1.0.0', status: 'complete', note: 'advertises tls-exporter (TLS 1.3) and tls-server-end-point for SCRAM-*-PLUS' },
  {
    n: 388,
    version: '1.0.4',
    status: 'complete',
    note: 'SASL2 on encrypted streams (src/stream/sasl/exchange.ts, c2s.ts): SCRAM-*(-PLUS), PLAIN, FAST; no tasks (2FA)',
  },
  {
    n: 386,
    version: '1.1.0',
    status: 'complete',
    note: 'Bind 2 (src/stream/bind2.ts) with inline stream management, carbons and client state; offline messages still delivered',
  },
  {
    n: 484,
    version: '0.2.0',
    status: 'complete',
    note: 'FAST (src/stream/sasl/fast.ts): HT-SHA-256-NONE/-ENDP/-EXPR/-UNIQ, tokens derived from a server key, rotated, ended by a password change; no 0-RTT',
  },
  {
    n: 220,
    version: '1.1.1',
    status: 'partial',
    note: 'federation (src/s2s/): dialback over TLS with dialback errors, keys per XEP-0185, several sending domains per stream',
  },
  { n: 474, version: '0.5.0', status: 'complete', note: "SCRAM downgrade protection: 'h' in the server-first-message (SASL and SASL2)" },
];
