// Protocols implemented by the core rather than by a module in xeps/
// (listed in the README table, the DOAP file and nowhere else).
import type { XepInfo } from './api/module.js';

export const CORE_PROTOCOLS: XepInfo[] = [
  { n: 368, version: '1.1.0', status: 'complete', note: 'direct TLS on c2s.tls_port, ALPN xmpp-client' },
  { n: 440, version: '1.0.0', status: 'complete', note: 'advertises tls-exporter (TLS 1.3) and tls-server-end-point for SCRAM-*-PLUS' },
];
