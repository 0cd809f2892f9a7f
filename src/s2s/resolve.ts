// Where a remote domain's server listens (RFC 6120 §3.2, XEP-0368): a configured
// host:port (s2s.hosts, §3.2.3; `xmpps://host:port` for direct TLS), else the SRV
// records of _xmpps-server._tcp (direct TLS) and _xmpp-server._tcp (STARTTLS) as one
// list by priority and weight (XEP-0368 §3), else the domain itself on 5269 when
// neither has an answer.
import { Resolver, lookup } from 'node:dns/promises';

export interface Target {
  host: string;
  port: number;
  /** direct TLS (XEP-0368): TLS from the first byte, ALPN "xmpp-server" */
  tls: boolean;
}

export class NoSuchDomain extends Error {}

interface Srv {
  name: string;
  port: number;
  priority: number;
  weight: number;
  tls: boolean;
}

/** A configured `host`, `host:port`, `[v6]:port` or `xmpps://host:port` (direct TLS, port 5270 by default). */
export function parseHostOverride(value: string): Target | undefined {
  const direct = value.startsWith('xmpps://');
  const m = /^(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(direct ? value.slice(8) : value);
  if (!m) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : direct ? 5270 : 5269, tls: direct };
}

export async function resolveServer(
  domain: string,
  hosts: Record<string, string>,
  resolver = new Resolver({ timeout: 3000, tries: 2 }),
): Promise<Target[]> {
  const fixed = hosts[domain];
  if (fixed) {
    const t = parseHostOverride(fixed);
    if (!t) throw new NoSuchDomain(`s2s.hosts: "${fixed}" is not host[:port] or xmpps://host[:port]`);
    return [t];
  }
  const srv = async (service: string, tls: boolean): Promise<Srv[] | undefined> =>
    resolver.resolveSrv(`_${service}._tcp.${domain}`).then(
      (rs) => rs.map((r) => ({ ...r, tls })),
      () => undefined,
    );
  const [direct, starttls] = await Promise.all([srv('xmpps-server', true), srv('xmpp-server', false)]);
  if (!direct && !starttls) {
    // no SRV answer (or the resolver failed, where Prosody and ejabberd also fall back):
    // the domain itself on 5269, if it has an address at all (§3.2.2); none: not found
    try {
      await lookup(domain);
    } catch {
      throw new NoSuchDomain(`${domain} does not resolve`);
    }
    return [{ host: domain, port: 5269, tls: false }];
  }
  // a single "." target: no service of that kind (§3.2.1); both so: none at all
  const usable = (rs: Srv[] | undefined): Srv[] => (rs && !(rs.length === 1 && rs[0]!.name === '') ? rs : []);
  const records = [...usable(direct), ...usable(starttls)];
  if (!records.length) throw new NoSuchDomain(`${domain} offers no server-to-server service`);
  return bySrvOrder(records);
}

/** RFC 2782: by priority; within one, weighted at random. */
function bySrvOrder(records: Srv[]): Target[] {
  const byPriority = new Map<number, Srv[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: Target[] = [];
  for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
    const group = [...byPriority.get(p)!];
    while (group.length) {
      const total = group.reduce((a, r) => a + r.weight, 0);
      let pick = Math.random() * total;
      let i = group.findIndex((r) => (pick -= r.weight) < 0);
      if (i === -1) i = 0;
      out.push({ host: group[i]!.name, port: group[i]!.port, tls: group[i]!.tls });
      group.splice(i, 1);
    }
  }
  return out;
}
