// External components (XEP-0114): which domains may connect with which secret,
// and the service entry each domain has in the router while its component is
// connected (the component's stream) or not (service-unavailable). The
// listener is in listeners.ts; the stream itself in src/stream/component.ts.
import type { Core } from '../core.js';
import type { ComponentHost, ComponentStream } from '../stream/component.js';
import type { ServiceHandler } from '../api/module.js';
import { StanzaError } from '../api/errors.js';

export class Components implements ComponentHost {
  /** connected external components by domain */
  readonly connected = new Map<string, ComponentStream>();
  /** domains whose service entry is a component's (connected or waiting for it) */
  private readonly domains = new Set<string>();
  /** each connected component's entry in the service disco items, by domain (its removal) */
  private readonly items = new Map<string, () => void>();

  constructor(
    private readonly core: Core,
    /** lists a domain in the server's disco items; returns the removal */
    private readonly discoItem: (domain: string) => () => void,
  ) {}

  get config(): Core['config'] {
    return this.core.config;
  }
  get log(): Core['log'] {
    return this.core.log;
  }
  get metrics(): Core['metrics'] {
    return this.core.metrics;
  }
  get router(): Core['router'] {
    return this.core.router;
  }
  get streams(): Core['streams'] {
    return this.core.streams;
  }

  /** Configured component domains answer "not connected" until their component comes. */
  expectConfigured(): void {
    const c = this.core.config.component;
    for (const d of [...c.allowed, ...Object.keys(c.secrets)]) this.componentDown(d);
  }

  componentSecret(domain: string): string | undefined {
    const c = this.core.config.component;
    const own = this.core.config.domain;
    // never the server's own domain or a parent of it: a component there could speak for local users
    if (domain === own || own.endsWith('.' + domain)) return undefined;
    if (c.allowed.length ? !c.allowed.includes(domain) : !domain.endsWith('.' + own)) {
      // outside the allowed list (or not a subdomain), only an explicit secret lets it in
      return c.secrets[domain];
    }
    const secret = c.secrets[domain] ?? c.secret;
    return secret === '' ? undefined : secret;
  }

  componentUp(domain: string, stream: ComponentStream): boolean {
    const services = this.core.router.services;
    // one connection per domain in the whole cluster, as on one node: the domain served
    // by a component on another live node refuses a second one (<conflict/>), so every
    // node routes it the same way (two connecting at the same instant can both get in)
    if (this.remoteDomains.has(domain)) return false;
    if (this.connected.has(domain) || (services.has(domain) && !this.domains.has(domain)) || domain === this.core.config.domain)
      return false;
    this.connected.set(domain, stream);
    this.domains.add(domain);
    const handler: ServiceHandler = (stanza, from, to) => stream.deliver(stanza, from, to);
    services.set(domain, handler);
    this.items.set(domain, this.discoItem(domain));
    this.core.cluster?.announceComponent(domain, true);
    return true;
  }

  /**
   * A component of another node of the cluster: its domain's stanzas go to that node
   * (`node`), or, when it left, are answered service-unavailable.
   */
  remote(domain: string, node: string | undefined): void {
    if (this.connected.has(domain)) return;
    const cluster = this.core.cluster;
    if (node === undefined || !cluster) {
      if (this.remoteDomains.delete(domain)) {
        this.core.router.services.delete(domain);
        this.componentDown(domain);
      }
      return;
    }
    if (this.core.router.services.has(domain) && !this.domains.has(domain)) return; // a module's service
    this.remoteDomains.add(domain);
    this.domains.add(domain);
    this.core.router.services.set(domain, (stanza) => cluster.routeOn(node, stanza.toString()));
    if (!this.items.has(domain)) this.items.set(domain, this.discoItem(domain));
  }
  private readonly remoteDomains = new Set<string>();

  componentOwns(stream: ComponentStream, domain: string): boolean {
    // walk up from the domain: the first served domain met must be this component's
    for (let d = domain; ; d = d.slice(d.indexOf('.') + 1)) {
      if (this.connected.get(d) === stream) return true;
      if (d === this.core.config.domain || this.core.router.services.has(d) || !d.includes('.')) return false;
    }
  }

  /** The component went away (or was never here): its domain answers service-unavailable. */
  componentDown(domain: string, stream?: ComponentStream): void {
    if (stream && this.connected.get(domain) !== stream) return;
    if (!stream && this.core.router.services.has(domain)) return;
    if (stream) this.core.cluster?.announceComponent(domain, false);
    const router = this.core.router;
    this.connected.delete(domain);
    this.items.get(domain)?.();
    this.items.delete(domain);
    this.domains.add(domain);
    router.services.set(domain, (stanza) => {
      // presence to a contact whose bridge is down is dropped, as for an unreachable server; the rest is answered
      if (stanza.name === 'presence') return;
      router.bounce(stanza, new StanzaError('service-unavailable', `the component ${domain} is not connected`));
    });
  }
}
