// Two Uzzap servers federating on loopback: a.test and b.test, each the other's peer
// through s2s.hosts (their rooms' domains too), dialback without verified certificates
// (the test certificate names localhost), on free ports.
import type { Server } from '../../src/server.js';
import { startServer } from './server.js';
import { freePort } from './nodes.js';

export { freePort };

/** A counter or gauge of `s`'s /metrics with exactly these labels (`name{labels}`); 0 when absent. */
export async function metricValue(s: Server, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.ports.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

export interface FederationOptions {
  usersA?: Record<string, string>;
  usersB?: Record<string, string>;
  /** more configuration for a.test / b.test (merged into the defaults here) */
  configA?: Record<string, unknown>;
  configB?: Record<string, unknown>;
}

export interface Federation {
  a: Server;
  b: Server;
  stop(): Promise<void>;
}

/** a.test and b.test, each reaching the other (and the other's conference service) on loopback. */
export async function startFederation(opts: FederationOptions = {}): Promise<Federation> {
  const [pa, pb] = [await freePort(), await freePort()];
  const peer = (domain: string, port: number): Record<string, string> => ({
    [domain]: `127.0.0.1:${port}`,
    [`conference.${domain}`]: `127.0.0.1:${port}`,
  });
  // tls_port 0: no direct-TLS listener on the default 5270 (shared by every test server)
  const s2s = (port: number, hosts: Record<string, string>) => ({
    port,
    tls_port: 0,
    hosts,
    require_valid_certs: false,
    connect_timeout: 2,
  });
  const a = await startServer({
    users: opts.usersA,
    config: { domain: 'a.test', s2s: s2s(pa, peer('b.test', pb)), ...opts.configA },
  });
  let b: Server;
  try {
    b = await startServer({
      users: opts.usersB,
      config: { domain: 'b.test', s2s: s2s(pb, peer('a.test', pa)), ...opts.configB },
    });
  } catch (err) {
    await a.stop();
    throw err;
  }
  return {
    a,
    b,
    async stop() {
      await a.stop();
      await b.stop();
    },
  };
}
