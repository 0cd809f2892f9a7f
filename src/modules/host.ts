// Loads XEP modules, gives each a ModuleContext, and records every
// registration so that unloading a module (or reloading the server's modules)
// undoes exactly what it did.
import type { Logger } from 'pino';
import type { Element } from '../xml/index.js';
import type { Jid } from '../jid.js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ServicePlacement,
  AccountItemsResolver,
  HttpHandler,
  Provided,
  AccountsApi,
  AdhocCommand,
  AdminApi,
  Commands,
  FederationApi,
  DiscoNodeInfo,
  DiscoNodeResolver,
  ServiceHandler,
  Disco,
  Hooks,
  ModuleContext,
  PreAuthIqRequest,
  FeatureContext,
  InlineHandlers,
  ServerInfo,
  SessionDirectory,
  SessionRecord,
  DeliveryMeta,
  XepModule,
} from '../api/module.js';
import type { HookBus } from '../router/hooks.js';
import type { IqTable } from '../router/iq-table.js';
import type { Storage } from '../storage/types.js';

type Scope = 'host' | 'bare';
type Undo = () => void | Promise<void>;

export interface ModuleHostDeps {
  host: string;
  log: Logger;
  storage: Storage;
  hooks: HookBus;
  iqs: IqTable;
  server: ServerInfo;
  accounts: AccountsApi;
  send(stanza: Element): void;
  sessions: SessionDirectory;
  /** cache invalidation across the nodes of a cluster (no-ops on one node) */
  cluster: {
    invalidate(topic: string, key: string): void;
    onInvalidate(topic: string, fn: (key: string) => void): Undo;
    /** a service whose entities each live on one node (the handler as is on one node) */
    place(domain: string, handle: ServiceHandler, placement: ServicePlacement): ServiceHandler;
  };
  deliver(stanza: Element, targets: readonly SessionRecord[], meta?: DeliveryMeta): void;
  /** an IQ from the server, answered to the server (src/router/requests.ts) */
  request(iq: Element): Promise<Element>;
  fanout(stanza: Element, targets: readonly Jid[]): void;
  services: Map<string, ServiceHandler>;
  admin: Omit<AdminApi, 'statistic'>;
  /** the federation lists admins edit (absent: no federation, e.g. unit tests) */
  federation?: FederationApi;
  /** a module's figure for the statistics; returns its removal */
  addStatistic(name: string, read: () => number): Undo;
  metrics: Registry;
}

interface Loaded {
  mod: XepModule<unknown>;
  undo: Undo[];
}

/** Counted registrations: two modules may advertise the same feature. */
class Bag<T> {
  private readonly items = new Map<string, { value: T; n: number }>();
  add(key: string, value: T): Undo {
    const e = this.items.get(key);
    if (e) e.n++;
    else this.items.set(key, { value, n: 1 });
    return () => {
      const cur = this.items.get(key);
      if (cur && --cur.n === 0) this.items.delete(key);
    };
  }
  values(): T[] {
    return [...this.items.values()].map((e) => e.value);
  }
}

export class ModuleHost implements Disco, Commands {
  private readonly loaded = new Map<string, Loaded>();
  private readonly featureBags = { host: new Bag<string>(), bare: new Bag<string>() };
  private readonly identityBags = {
    host: new Bag<{ category: string; type: string; name?: string }>(),
    bare: new Bag<{ category: string; type: string; name?: string }>(),
  };
  private readonly formBags = { host: new Bag<Element>(), bare: new Bag<Element>() };
  private readonly itemBag = new Bag<{ jid: string; name?: string }>();
  private readonly featureXml = new Bag<{
    xml: string;
    order: number;
    phase: 'pre-auth' | 'post-auth';
    when?: (s: FeatureContext) => boolean;
  }>();
  private readonly commandMap = new Map<string, AdhocCommand<object>>();
  private readonly nodeResolvers = new Set<DiscoNodeResolver>();
  /** namespaces with a nonza handler (one module each) */
  private readonly nonzaNs = new Set<string>();
  /** HTTP paths modules serve, by prefix */
  private readonly httpRoutes = new Map<string, HttpHandler>();
  /** APIs modules offer each other (ctx.provide / ctx.use) */
  private readonly provided = new Map<keyof Provided, unknown>();
  private readonly accountItemLists = new Set<AccountItemsResolver>();
  private readonly accountNodes = new Set<(owner: string, node: string, from: Jid) => Promise<DiscoNodeInfo | undefined>>();
  /** modules' parts in SASL2 and Bind 2 requests, by namespace (one module each) */
  readonly inlines = new Map<string, InlineHandlers>();
  readonly preAuthIqs = new Map<string, (req: PreAuthIqRequest) => Element | void | Promise<Element | void>>();

  constructor(private readonly deps: ModuleHostDeps) {}

  // ---- Disco (read side) ----
  features(scope: Scope): string[] {
    return this.featureBags[scope].values().sort();
  }
  identities(scope: Scope): { category: string; type: string; name?: string }[] {
    return this.identityBags[scope].values();
  }
  items(): { jid: string; name?: string }[] {
    return this.itemBag.values();
  }
  forms(scope: Scope): Element[] {
    return this.formBags[scope].values();
  }
  async node(node: string, from: Jid): Promise<DiscoNodeInfo | undefined> {
    for (const r of this.nodeResolvers) {
      const found = await r(node, from);
      if (found) return found;
    }
    return undefined;
  }

  /** The module handler for an HTTP path, if one serves it. */
  httpRoute(path: string): HttpHandler | undefined {
    for (const [prefix, h] of this.httpRoutes) if (path.startsWith(prefix)) return h;
    return undefined;
  }

  async accountItems(owner: string, from: Jid): Promise<{ jid: string; node?: string; name?: string }[]> {
    const out: { jid: string; node?: string; name?: string }[] = [];
    for (const list of this.accountItemLists) out.push(...(await list(owner, from)));
    return out;
  }

  async accountNode(owner: string, node: string, from: Jid): Promise<DiscoNodeInfo | undefined> {
    for (const r of this.accountNodes) {
      const found = await r(owner, node, from);
      if (found) return found;
    }
    return undefined;
  }

  // ---- Commands (read side) ----
  list(): AdhocCommand<object>[] {
    return [...this.commandMap.values()];
  }
  get(node: string): AdhocCommand<object> | undefined {
    return this.commandMap.get(node);
  }

  /** Names of the modules loaded, in load order. */
  names(): string[] {
    return [...this.loaded.keys()];
  }

  /** Serialised stream features modules offer in a phase, in their order. */
  streamFeatures(phase: 'pre-auth' | 'post-auth', s: FeatureContext): string {
    return this.featureXml
      .values()
      .filter((f) => f.phase === phase && (!f.when || f.when(s)))
      .sort((a, b) => a.order - b.order)
      .map((f) => f.xml)
      .join('');
  }

  /** A disco#items entry of the core (a connected component); returns its removal. */
  coreItem(jid: string, name?: string): Undo {
    return this.itemBag.add(jid, { jid, name });
  }

  /** Validate a module's settings with its schema. */
  parseConfig(mod: XepModule<unknown>, raw: unknown): { ok: true; value: unknown } | { ok: false; problems: string[] } {
    if (!mod.config) return { ok: true, value: raw };
    const r = mod.config.safeParse(raw);
    if (r.success) return { ok: true, value: r.data };
    return { ok: false, problems: r.error.issues.map((i) => `modules.${mod.name}.${i.path.join('.')}: ${i.message}`) };
  }

  /** Core registrations that belong to no module (stream-level features). */
  coreFeature(ns: string, scope: Scope = 'host'): void {
    this.featureBags[scope].add(ns, ns);
  }

  modules(): XepModule<unknown>[] {
    return [...this.loaded.values()].map((l) => l.mod);
  }

  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  /** Load modules in dependency order; settings come from config.modules[name]. */
  async loadAll(mods: XepModule<unknown>[], settings: Record<string, unknown>, disabled: string[]): Promise<void> {
    const byName = new Map(mods.map((m) => [m.name, m]));
    const order: XepModule<unknown>[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (m: XepModule<unknown>, path: string[]): void => {
      if (state.get(m.name) === 'done') return;
      if (state.get(m.name) === 'visiting') throw new Error(`module dependency cycle: ${[...path, m.name].join(' -> ')}`);
      state.set(m.name, 'visiting');
      for (const d of m.depends ?? []) {
        const dep = byName.get(d);
        if (!dep) throw new Error(`module ${m.name} depends on unknown module ${d}`);
        if (disabled.includes(d)) throw new Error(`module ${m.name} depends on disabled module ${d}`);
        visit(dep, [...path, m.name]);
      }
      state.set(m.name, 'done');
      order.push(m);
    };
    for (const m of mods) if (!disabled.includes(m.name)) visit(m, []);
    // validate every module's settings before setting any up, reporting all problems at once
    const problems: string[] = [];
    const configs = new Map<string, unknown>();
    for (const m of order) {
      const raw = settings[m.name] ?? {};
      if (!m.config) {
        configs.set(m.name, raw);
        continue;
      }
      const r = m.config.safeParse(raw);
      if (r.success) configs.set(m.name, r.data);
      else for (const i of r.error.issues) problems.push(`modules.${m.name}.${i.path.join('.')}: ${i.message}`);
    }
    if (problems.length) throw new Error(`invalid module configuration:\n  - ${problems.join('\n  - ')}`);
    for (const m of order) await this.load(m, configs.get(m.name));
  }

  async load(mod: XepModule<unknown>, config: unknown): Promise<void> {
    if (this.loaded.has(mod.name)) throw new Error(`module ${mod.name} is already loaded`);
    const entry: Loaded = { mod, undo: [] };
    this.loaded.set(mod.name, entry);
    const rec = (u: Undo): void => void entry.undo.push(u);
    const d = this.deps;
    const log = d.log.child({ module: mod.name });
    const ctx: ModuleContext<unknown> = {
      host: d.host,
      config: Object.freeze(config),
      log,
      storage: d.storage,
      server: d.server,
      accounts: d.accounts,
      disco: this,
      feature: (ns, scope = 'host') => rec(this.featureBags[scope].add(ns, ns)),
      identity: (category, type, name, scope = 'host') =>
        rec(this.identityBags[scope].add(`${category}/${type}/${name ?? ''}`, { category, type, name })),
      discoForm: (form, scope = 'host') => rec(this.formBags[scope].add(form.toString(), form)),
      discoItem: (jid, name) => rec(this.itemBag.add(jid, { jid, name })),
      streamFeature: (xml, order = 0, phase = 'post-auth', when) =>
        rec(this.featureXml.add(`${phase} ${xml}`, { xml, order, phase, when })),
      nonza: (ns, handle) => {
        if (this.nonzaNs.has(ns)) throw new Error(`stream elements of ${ns} already handled`);
        this.nonzaNs.add(ns);
        rec(() => void this.nonzaNs.delete(ns));
        // a crashing handler ends the stream as a crashing IQ handler ends the IQ: internal-server-error
        const fn: Hooks['stream/nonza'] = (el, stream) => {
          if (el.attrs.xmlns !== ns) return false;
          const failed = (err: unknown): void => {
            log.error({ err, element: el.name }, 'stream element handler failed');
            stream.close('internal-server-error');
          };
          try {
            const r = handle(el, stream);
            // the stream waits for it (its inbox keeps the next elements in order)
            if (r instanceof Promise) return r.then(() => true, (err: unknown) => (failed(err), true));
          } catch (err) {
            failed(err);
          }
          return true;
        };
        rec(d.hooks.add('stream/nonza', fn, 0, mod.name));
      },
      inline: (ns, handlers) => {
        if (this.inlines.has(ns)) throw new Error(`inline requests of ${ns} already handled`);
        this.inlines.set(ns, handlers);
        rec(() => void this.inlines.delete(ns));
      },
      preAuthIq: (ns, handle) => {
        if (this.preAuthIqs.has(ns)) throw new Error(`pre-auth IQ ${ns} already handled`);
        this.preAuthIqs.set(ns, handle);
        rec(() => void this.preAuthIqs.delete(ns));
      },
      iq: (m, handle) => {
        for (const target of m.to) rec(d.iqs.add(m.type, m.ns, m.name, target, handle, mod.name));
      },
      hook: <E extends keyof Hooks>(event: E, fn: Hooks[E], priority = 0) => rec(d.hooks.add(event, fn, priority, mod.name)),
      send: (stanza) => d.send(stanza),
      sessions: d.sessions,
      invalidate: (topic, key) => d.cluster.invalidate(`${mod.name}/${topic}`, key),
      onInvalidate: (topic, fn) => rec(d.cluster.onInvalidate(`${mod.name}/${topic}`, fn)),
      deliver: (stanza, targets, meta) => d.deliver(stanza, targets, meta),
      fanout: (stanza, targets) => d.fanout(stanza, targets),
      service: (domain, handle, placement) => {
        if (d.services.has(domain)) throw new Error(`domain ${domain} is already served`);
        if (domain === d.host) throw new Error("a service cannot take the server's own domain");
        d.services.set(domain, placement ? d.cluster.place(domain, handle, placement) : handle);
        rec(() => void d.services.delete(domain));
      },
      // fail closed: a blocklist that cannot be read blocks (the hook bus logged why)
      blocks: (owner, other) => {
        try {
          const r = d.hooks.run('privacy/blocks', owner, other);
          return r instanceof Promise ? r.catch(() => true) : r;
        } catch {
          return true;
        }
      },
      discoNode: (resolve) => {
        this.nodeResolvers.add(resolve);
        rec(() => void this.nodeResolvers.delete(resolve));
      },
      command: (cmd) => {
        if (this.commandMap.has(cmd.node)) throw new Error(`ad-hoc command ${cmd.node} is already registered`);
        this.commandMap.set(cmd.node, cmd as unknown as AdhocCommand<object>);
        rec(() => void this.commandMap.delete(cmd.node));
      },
      commands: this,
      admin: { ...d.admin, statistic: (name, read) => rec(d.addStatistic(name, read)) },
      federation: d.federation ?? NO_FEDERATION,
      metrics: {
        gauge: (name, help, read) => {
          const full = metricName(name);
          new Gauge({
            name: full,
            help,
            registers: [d.metrics],
            collect() {
              this.set(read());
            },
          });
          rec(() => d.metrics.removeSingleMetric(full));
        },
        counter: (name, help) => {
          const full = metricName(name);
          const c = new Counter({ name: full, help, registers: [d.metrics] });
          rec(() => d.metrics.removeSingleMetric(full));
          return { inc: (n = 1) => c.inc(n) };
        },
        labelledCounter: (name, help, labels) => {
          const full = metricName(name);
          const c = new Counter({ name: full, help, labelNames: [...labels], registers: [d.metrics] });
          rec(() => d.metrics.removeSingleMetric(full));
          return { inc: (values, n = 1) => c.inc(values, n) };
        },
        histogram: (name, help, buckets) => {
          const full = metricName(name);
          const h = new Histogram({ name: full, help, buckets, registers: [d.metrics] });
          rec(() => d.metrics.removeSingleMetric(full));
          return { observe: (v) => h.observe(v) };
        },
      },
      request: (iq) => d.request(iq),
      run: (event, ...args) => d.hooks.run(event, ...args),
      provide: (name, api) => {
        if (this.provided.has(name)) throw new Error(`${name} is already provided by another module`);
        this.provided.set(name, api);
        rec(() => void this.provided.delete(name));
      },
      use: <K extends keyof Provided>(name: K) => this.provided.get(name) as Provided[K] | undefined,
      http: (prefix, handle) => {
        if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`an HTTP prefix is /.../: ${prefix}`);
        if (this.httpRoutes.has(prefix)) throw new Error(`HTTP ${prefix} is already served`);
        this.httpRoutes.set(prefix, handle);
        rec(() => void this.httpRoutes.delete(prefix));
      },
      discoAccountItems: (list, node) => {
        this.accountItemLists.add(list);
        rec(() => void this.accountItemLists.delete(list));
        if (node) {
          this.accountNodes.add(node);
          rec(() => void this.accountNodes.delete(node));
        }
      },
      onClose: (fn) => rec(fn),
    };
    try {
      await mod.setup(ctx);
    } catch (e) {
      await this.unload(mod.name);
      throw new Error(`module ${mod.name} failed to start: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Undo everything the module registered, newest first. */
  async unload(name: string): Promise<void> {
    const entry = this.loaded.get(name);
    if (!entry) return;
    this.loaded.delete(name);
    for (const u of entry.undo.reverse()) {
      try {
        await u();
      } catch (err) {
        this.deps.log.error({ err, module: name }, 'module cleanup failed');
      }
    }
  }

  async unloadAll(): Promise<void> {
    for (const name of [...this.loaded.keys()].reverse()) await this.unload(name);
  }
}

const noFederation = (): never => {
  throw new Error('federation is not running on this server');
};
const NO_FEDERATION: FederationApi = { stored: noFederation, configured: noFederation, setStored: noFederation };

const metricName = (name: string): string => (name.startsWith('uzzap_') ? name : `uzzap_${name}`);
