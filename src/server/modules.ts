// Module loading: what the core gives modules (ModuleHostDeps), the core's own
// registrations, the first load, and enabling, disabling or re-configuring
// modules at reload (the module contract undoes what an unloaded one registered).
import type { Config } from '../config/schema.js';
import type { Accounts } from '../accounts.js';
import type { AdminApi, DeliveryMeta, ReloadReport, ServiceHandler, ServicePlacement, SessionRecord, XepModule } from '../api/module.js';
import type { Core } from '../core.js';
import type { Jid } from '../jid.js';
import type { IqTable } from '../router/iq-table.js';
import type { LocalSession } from '../session/types.js';
import type { Session } from '../session/session.js';
import type { Element } from '../xml/index.js';
import { ModuleHost } from '../modules/host.js';
import { sessionDirectory } from '../session/directory.js';
import { NS_SESSION } from '../stream/ns.js';
import type { PendingWork } from './pending.js';
import { VERSION } from './version.js';
import type { Ports } from './listeners.js';
import type { S2SPolicy } from '../s2s/policy.js';

/** What modules reach of the server, besides the Core every stream sees. */
export interface ModuleWiring extends Core {
  readonly iqs: IqTable;
  readonly accounts: Accounts;
  readonly startedAt: number;
  isAdmin(bare: string): boolean;
  /** what `ctx.admin` does (statistics, reload, live settings, admin flags, login times, stop) */
  readonly admin: Omit<AdminApi, 'statistic'>;
  addStatistic(name: string, read: () => number): () => void;
  /** work started for modules and not awaited by them (a stop waits for it) */
  readonly background: PendingWork;
  /** the ports listened on (after start) */
  readonly ports: Ports;
  /** federation, once started: its policy keeps the lists admins edit */
  readonly s2s: { readonly policy: S2SPolicy } | undefined;
}

export function createModuleHost(s: ModuleWiring): ModuleHost {
  const policy = (): S2SPolicy => {
    if (!s.s2s) throw new Error('federation is not running on this server');
    return s.s2s.policy;
  };
  return new ModuleHost({
    host: s.config.domain,
    log: s.log,
    storage: s.storage,
    hooks: s.hooks,
    iqs: s.iqs,
    server: {
      name: 'Uzzap',
      version: VERSION,
      startedAt: s.startedAt,
      isAdmin: (j: Jid) => s.isAdmin(j.bare),
      registrationOpen: () => s.config.registration === 'open',
      dataDir: s.config.data_dir,
      webBase: () =>
        s.config.http.tls && s.ports.https
          ? `https://${s.config.domain}:${s.ports.https}`
          : `http://${s.config.domain}:${s.ports.http}`,
    },
    accounts: s.accounts,
    send: (stanza: Element) => {
      const r = s.router.send(stanza);
      if (r) s.background.add(r.catch((err: unknown) => s.log.error({ err }, 'module stanza routing failed')));
    },
    sessions: sessionDirectory(s.sessions, (x) => s.lifecycle.changed(x as Session)),
    cluster: {
      invalidate: (topic: string, key: string) => s.cluster?.invalidate(topic, key),
      onInvalidate: (topic: string, fn: (key: string) => void) => s.cluster?.onInvalidate(topic, fn) ?? (() => undefined),
      place: (domain: string, handle: ServiceHandler, placement: ServicePlacement) => (s.cluster ? s.cluster.place(domain, handle, placement) : handle),
    },
    // the records modules hold are this node's sessions (one node today; in a
    // cluster the directory answers for other nodes' sessions and this routes to them)
    deliver: (stanza: Element, targets: readonly SessionRecord[], meta?: DeliveryMeta) =>
      s.router.deliver(stanza, targets as readonly LocalSession[], meta),
    fanout: (stanza: Element, targets: readonly Jid[]) => s.router.fanout(stanza, targets),
    request: (iq: Element) => {
      iq.attrs.from = s.config.domain;
      return s.router.requests.request(iq);
    },
    services: s.router.services,
    admin: s.admin,
    // read at each call: federation starts after the modules are loaded
    federation: {
      stored: (list) => policy().storedList(list),
      configured: (list) => s.config.s2s[list],
      setStored: (list, domains) => policy().setStored(list, domains),
    },
    addStatistic: (name: string, read: () => number) => s.addStatistic(name, read),
    metrics: s.metrics.registry,
  });
}

/** What the core answers itself: RFC 3921 session establishment, advertised as optional, answered with an empty result. */
export function registerCoreIqs(iqs: IqTable): void {
  iqs.add('set', NS_SESSION, 'session', 'bare', () => undefined, 'core');
  iqs.add('set', NS_SESSION, 'session', 'host', () => undefined, 'core');
}

type ModulesConfig = Record<string, unknown> & { disabled: string[] };

/**
 * Enable, disable or re-configure modules from `cur` to `next`; returns the modules
 * section now in force (what failed keeps its current settings).
 */
export async function applyModules(
  host: ModuleHost,
  all: XepModule<never>[],
  current: Config['modules'],
  next: Config['modules'],
  report: ReloadReport,
): Promise<ModulesConfig> {
  const byName = new Map(all.map((m) => [m.name, m]));
  const cur = current as ModulesConfig;
  const nxt = next as ModulesConfig;
  const keep: ModulesConfig = { ...cur, disabled: [...cur.disabled] };
  const wanted = (m: XepModule<never>): boolean => !nxt.disabled.includes(m.name);
  for (const n of nxt.disabled) if (!byName.has(n)) report.errors.push(`modules.disabled: unknown module ${n}`);
  // unload first (dependents before what they depend on), then load and reload in load order
  for (const m of [...all].reverse()) {
    if (!host.isLoaded(m.name) || wanted(m)) continue;
    const dependent = all.find((o) => host.isLoaded(o.name) && wanted(o) && o.depends?.includes(m.name));
    if (dependent) {
      report.errors.push(`cannot disable ${m.name}: ${dependent.name} depends on it`);
      continue;
    }
    await host.unload(m.name);
    keep.disabled.push(m.name);
    report.modulesUnloaded.push(m.name);
  }
  for (const m of all) {
    if (!wanted(m)) continue;
    const loaded = host.isLoaded(m.name);
    const changed = JSON.stringify(cur[m.name] ?? {}) !== JSON.stringify(nxt[m.name] ?? {});
    if (loaded && !changed) continue;
    const missing = (m.depends ?? []).filter((d) => !host.isLoaded(d));
    if (missing.length) {
      report.errors.push(`cannot load ${m.name}: needs ${missing.join(', ')}`);
      continue;
    }
    const parsed = host.parseConfig(m, nxt[m.name] ?? {});
    if (!parsed.ok) {
      report.errors.push(...parsed.problems);
      continue;
    }
    if (loaded) await host.unload(m.name);
    try {
      await host.load(m, parsed.value);
      keep[m.name] = nxt[m.name];
      keep.disabled = keep.disabled.filter((d) => d !== m.name);
      (loaded ? report.modulesReloaded : report.modulesLoaded).push(m.name);
    } catch (e) {
      report.errors.push((e as Error).message);
      if (loaded) report.modulesUnloaded.push(m.name);
    }
  }
  return keep;
}
