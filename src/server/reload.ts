// Configuration at run time: a reload (SIGHUP, the admin command) re-reads the
// file and environment and applies what can change live, modules included;
// one live setting can also be changed alone. What cannot change live is
// reported as needing a restart, never half-applied.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ConfigSchema, LIVE_KEYS } from '../config/schema.js';
import { configLeaves, fromEnv } from '../config/load.js';
import type { ReloadReport, XepModule } from '../api/module.js';
import type { Metrics } from '../metrics.js';
import type { ModuleHost } from '../modules/host.js';
import type { AuthThrottle } from '../stream/sasl/throttle.js';
import type { AdminFlags } from './admins.js';
import { applyModules } from './modules.js';

/** The server as a reload sees it: `config` is replaced by each reload. */
export interface Reconfigurable {
  config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly throttle: AuthThrottle;
  readonly modules: ModuleHost;
}

export class ConfigReload {
  constructor(
    private readonly server: Reconfigurable,
    /** where a reload reads the next configuration */
    private readonly loadNext: () => Config,
    /** every module the server knows, in load order */
    private readonly allModules: XepModule<never>[],
    private readonly adminFlags: AdminFlags,
  ) {}

  private isLive(path: string): boolean {
    return LIVE_KEYS.some((k) => path === k || path.startsWith(k + '.'));
  }

  liveSettings(): { path: string; value: unknown }[] {
    const out: { path: string; value: unknown }[] = [];
    for (const leaf of configLeaves()) {
      const path = leaf.path.join('.');
      if (!this.isLive(path)) continue;
      out.push({ path, value: leaf.path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], this.server.config) });
    }
    return out;
  }

  /** Change one live setting (until the next reload or restart). */
  async setLive(path: string, raw: string): Promise<ReloadReport> {
    const leaf = configLeaves().find((l) => l.path.join('.') === path);
    if (!leaf || !this.isLive(path)) throw new Error(`${path} is not a setting that can change while running`);
    const problems: string[] = [];
    const value = fromEnv(raw, leaf.def, path, problems);
    if (problems.length) throw new Error(problems.join('; '));
    const next = structuredClone(this.server.config) as unknown as Record<string, unknown>;
    let o = next;
    for (const k of leaf.path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    o[leaf.path[leaf.path.length - 1]!] = value;
    const r = ConfigSchema.safeParse(next);
    if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    return this.apply(r.data as Config);
  }

  /** Re-read configuration; apply what can change live (modules included), report what needs a restart. */
  async reload(): Promise<ReloadReport> {
    let next: Config;
    try {
      next = this.loadNext();
    } catch (e) {
      this.server.metrics.reloads.inc({ outcome: 'invalid' });
      throw e;
    }
    return this.apply(next);
  }

  private async apply(next: Config): Promise<ReloadReport> {
    const s = this.server;
    const report: ReloadReport = { applied: [], needsRestart: [], modulesLoaded: [], modulesUnloaded: [], modulesReloaded: [], errors: [] };
    const cur = s.config as unknown as Record<string, unknown>;
    const nxt = next as unknown as Record<string, unknown>;
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    // leaf by leaf: a section may be partly live (component.secret is, component.port is not)
    for (const leaf of configLeaves()) {
      const path = leaf.path.join('.');
      if (leaf.path[0] === 'modules') continue;
      const get = (o: Record<string, unknown>): unknown => leaf.path.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o);
      if (same(get(cur), get(nxt))) continue;
      if (this.isLive(path)) report.applied.push(path);
      else report.needsRestart.push(path);
    }
    // new objects for every changed live section: caches keyed on identity see the change
    const live = new Set(report.applied.map((p) => p.split('.')[0]!));
    const updated = { ...s.config } as unknown as Record<string, unknown>;
    for (const key of live) {
      const section = nxt[key];
      if (section && typeof section === 'object' && !Array.isArray(section)) {
        const merged = { ...(cur[key] as Record<string, unknown>) };
        for (const p of report.applied.filter((a) => a.split('.')[0] === key)) {
          const parts = p.split('.').slice(1);
          let o = merged;
          let n = section as Record<string, unknown>;
          for (const k of parts.slice(0, -1)) {
            o = o[k] = { ...(o[k] as Record<string, unknown>) };
            n = n[k] as Record<string, unknown>;
          }
          o[parts[parts.length - 1]!] = n[parts[parts.length - 1]!];
        }
        updated[key] = merged;
      } else updated[key] = section;
    }
    updated.modules = await applyModules(s.modules, this.allModules, s.config.modules, next.modules, report);
    // accounts flagged as admin by `uzzap user admin` while the server ran
    if (await this.adminFlags.load()) report.applied.push('admin flags on accounts');
    s.config = updated as unknown as Config;
    s.log.level = s.config.log_level;
    s.throttle.settings = s.config.auth;
    s.metrics.reloads.inc({ outcome: report.errors.length ? 'partial' : 'ok' });
    s.log.info(report, 'configuration reloaded');
    return report;
  }
}
