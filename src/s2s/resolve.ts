// Where a remote domain's server listens (RFC 6120 §3.2): a configured host:port
// (s2s.hosts, §3.2.3), else the SRV records of _xmpp-server._tcp by priority and
// weight, else the domain itself on 5269 when there is no SRV answer.
import { Resolver, lookup } from 'node:dns/promises';

export interface Target {
  host: string;
  port: number;
}

export class NoSuchDomain extends Error {}

export async function resolveServer(
  domain: string,
  hosts: Record<string, string>,
  resolver = new Resolver({ timeout: 3000, tries: 2 }),
): Promise<Target[]> {
  const fixed = hosts[domain];
  if (fixed) {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(fixed);
    if (!m) throw new NoSuchDomain(`s2s.hosts: "${fixed}" is not host[:port]`);
    return [{ host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 5269 }];
  }
  let records: { name: string; port: number; priority: number; weight: number }[];
  try {
    records = await resolver.resolveSrv(`_xmpp-server._tcp.${domain}`);
  } catch {
    // no SRV answer (or the resolver failed, where Prosody and ejabberd also fall back):
    // the domain itself on 5269, if it has an address at all (§3.2.2); none: not found
    try {
      await lookup(domain);
    } catch {
      throw new NoSuchDomain(`${domain} does not resolve`);
    }
    return [{ host: domain, port: 5269 }];
  }
  // a single "." target: the domain offers no XMPP service (§3.2.1)
  if (records.length === 1 && records[0]!.name === '') throw new NoSuchDomain(`${domain} offers no server-to-server service`);
  // RFC 2782: by priority; within one, weighted at random
  const byPriority = new Map<number, typeof records>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: Target[] = [];
  for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
    const group = [...byPriority.get(p)!];
    while (group.length) {
      const total = group.reduce((a, r) => a + r.weight, 0);
      let pick = Math.random() * total;
      let i = group.findIndex((r) => (pick -= r.weight) < 0);
      if (i === -1) i = 0;
      out.push({ host: group[i]!.name, port: group[i]!.port });
      group.splice(i, 1);
    }
  }
  return out;
}
