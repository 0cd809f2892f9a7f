// XEP-0215 External Service Discovery: tells clients where the STUN/TURN server is, so
// that calls (Jingle) get through carrier NAT, and gives each user short-lived TURN
// credentials in the TURN REST API scheme that coturn implements (`use-auth-secret`):
// username `<expiry unix time>:<bare JID>`, password base64(HMAC-SHA1(secret, username)).
// The secret never leaves the server; a credential stops working at its expiry.
//
// Public contract: UZZAP_TURN_HOST (host[:port], default port 3478) and UZZAP_TURN_SECRET
// (modules.turn.host / .secret); UZZAP_TURN_TTL sets the credentials' lifetime.
import { createHmac } from 'node:crypto';
import { x, z, dateTime, StanzaError, type Element, type XepModule } from '../../src/api/index.js';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

const Config = z.object({
  /** host[:port] of a STUN/TURN server ('' = none announced) */
  host: z.coerce.string().default(''),
  /** the TURN REST API shared secret (coturn's static-auth-secret); '' = STUN only */
  secret: z.coerce.string().default(''),
  /** seconds a TURN credential is valid */
  ttl: z.number().int().positive().default(86400),
});

interface Service {
  type: 'stun' | 'turn';
  transport: 'udp' | 'tcp';
  host: string;
  port: number;
}

/** 'host', 'host:port', '[v6]:port' */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`modules.turn.host: "${s}" is not host[:port]`);
  const port = m[2] ? Number(m[2]) : 3478;
  if (!(port > 0 && port < 65536)) throw new Error(`modules.turn.host: bad port in "${s}"`);
  return { host: m[1]!, port };
}

/** A TURN REST API credential for `user`, valid until `expires` (seconds since the epoch). */
export function turnCredential(secret: string, user: string, expires: number): { username: string; password: string } {
  const username = `${expires}:${user}`;
  return { username, password: createHmac('sha1', secret).update(username).digest('base64') };
}

const extdisco: XepModule<z.infer<typeof Config>> = {
  name: 'turn',
  config: Config,
  xeps: [{ n: 215, version: '1.0.0', status: 'complete', note: 'STUN/TURN from UZZAP_TURN_HOST, TURN REST API credentials from UZZAP_TURN_SECRET' }],
  setup(m) {
    if (!m.config.host) return; // nothing to announce: the feature is not advertised
    const { host, port } = parseHostPort(m.config.host);
    const services: Service[] = [];
    for (const type of m.config.secret ? (['stun', 'turn'] as const) : (['stun'] as const))
      for (const transport of ['udp', 'tcp'] as const) services.push({ type, transport, host, port });
    m.feature(NS_EXTDISCO);

    const element = (s: Service, user: string): Element => {
      if (s.type === 'stun') return x('service', { type: s.type, transport: s.transport, host: s.host, port: String(s.port) });
      const expires = Math.floor(Date.now() / 1000) + m.config.ttl;
      const cred = turnCredential(m.config.secret, user, expires);
      return x('service', {
        type: s.type,
        transport: s.transport,
        host: s.host,
        port: String(s.port),
        restricted: '1',
        username: cred.username,
        password: cred.password,
        expires: dateTime(expires * 1000),
      });
    };
    const local = (from: { local: string; domain: string }): boolean => from.domain === m.host && from.local !== '';

    // §3.1, §3.2: all services, or those of one type
    m.iq({ type: 'get', ns: NS_EXTDISCO, name: 'services', to: ['host'] }, (req) => {
      if (!local(req.from)) throw new StanzaError('forbidden', 'services are for users of this server');
      const type = req.payload.attrs.type;
      const list = services.filter((s) => !type || s.type === type);
      return x('services', { xmlns: NS_EXTDISCO, type }, list.map((s) => element(s, req.from.bare)));
    });

    // §3.3: fresh credentials for one service (a client whose credentials expired)
    m.iq({ type: 'get', ns: NS_EXTDISCO, name: 'credentials', to: ['host'] }, (req) => {
      if (!local(req.from)) throw new StanzaError('forbidden', 'credentials are for users of this server');
      const asked = req.payload.getChild('service');
      const match = services.find(
        (s) =>
          s.type === asked?.attrs.type &&
          s.host === asked?.attrs.host &&
          (!asked?.attrs.port || Number(asked.attrs.port) === s.port) &&
          (!asked?.attrs.transport || asked.attrs.transport === s.transport),
      );
      if (!match) throw new StanzaError('item-not-found', 'no such service here');
      return x('credentials', { xmlns: NS_EXTDISCO }, element(match, req.from.bare));
    });
  },
};

export default extdisco;
