import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { DEFAULTS, ConfigSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every leaf path of DEFAULTS with its environment variable name. */
export function configLeaves(obj: Plain = DEFAULTS, prefix: string[] = []): { path: string[]; env: string; def: unknown }[] {
  const out: { path: string[]; env: string; def: unknown }[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = [...prefix, k];
    // an empty mapping (component.secrets) is a leaf: a map set as a whole
    if (isPlain(v) && Object.keys(v).length) out.push(...configLeaves(v, path));
    else out.push({ path, env: 'UZZAP_' + path.join('_').toUpperCase(), def: v });
  }
  return out;
}

function merge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(base[k]) ? merge(base[k] as Plain, v) : v;
  return out;
}

function setPath(obj: Plain, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (!isPlain(o[k])) o[k] = {};
    o = o[k] as Plain;
  }
  o[path[path.length - 1]!] = value;
}

/** Convert an environment string to the type of the key's default. */
export function fromEnv(raw: string, def: unknown, env: string, problems: string[]): unknown {
  if (typeof def === 'number') {
    const n = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(n)) problems.push(`${env}: "${raw}" is not a number`);
    return n;
  }
  if (typeof def === 'boolean') {
    const v = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    problems.push(`${env}: "${raw}" is not true/false`);
    return def;
  }
  if (isPlain(def)) {
    // "key=value,key=value" (component secrets by domain)
    const out: Record<string, string> = {};
    for (const part of raw
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const eq = part.indexOf('=');
      if (eq <= 0) problems.push(`${env}: "${part}" is not key=value`);
      else out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
    }
    return out;
  }
  if (Array.isArray(def))
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return raw;
}

/** modules whose settings UZZAP_<MODULE>_<KEY> sets too (public contract names) */
export const MODULE_ALIASES = ['pep', 'turn', 'contact', 'upload'];

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** extra overrides applied last (tests) */
  overrides?: Plain;
  cwd?: string;
}

/** Load uzzap.yaml (or --config), then UZZAP_* env, validate, report every problem at once. */
export function loadConfig(opts: LoadOptions = {}): { config: Config; file?: string } {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let file: string | undefined;
  let fromFile: Plain = {};
  if (opts.file) file = resolve(opts.cwd ?? '.', opts.file);
  else if (existsSync(resolve(opts.cwd ?? '.', 'uzzap.yaml'))) file = resolve(opts.cwd ?? '.', 'uzzap.yaml');
  if (file) {
    try {
      const parsed: unknown = YAML.parse(readFileSync(file, 'utf8'));
      if (parsed != null && !isPlain(parsed)) problems.push(`${file}: top level must be a mapping`);
      else fromFile = (parsed as Plain) ?? {};
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
    }
  }
  const merged = merge(structuredClone(DEFAULTS) as unknown as Plain, fromFile);
  for (const leaf of configLeaves()) {
    const raw = env[leaf.env];
    if (raw !== undefined) setPath(merged, leaf.path, fromEnv(raw, leaf.def, leaf.env, problems));
  }
  // module settings: UZZAP_MODULES_<MODULE>_<KEY> sets modules.<module>.<key> (keys are flat;
  // module names have no '_'). Values are typed by their look; each module's schema validates them.
  // A few modules' settings also have a short public name: UZZAP_PEP_MAX_ITEM_SIZE is
  // modules.pep.max_item_size (MODULE_ALIASES); the long form wins when both are set.
  const entries = Object.entries(env).sort(([a], [b]) => Number(a.startsWith('UZZAP_MODULES_')) - Number(b.startsWith('UZZAP_MODULES_')));
  for (const [name, raw] of entries) {
    const alias = /^UZZAP_([A-Z0-9]+)_([A-Z0-9_]+)$/.exec(name);
    const m =
      alias && MODULE_ALIASES.includes(alias[1]!.toLowerCase()) ? alias : /^UZZAP_MODULES_([A-Z0-9]+)_([A-Z0-9_]+)$/.exec(name);
    if (!m || raw === undefined || name === 'UZZAP_MODULES_DISABLED') continue;
    // a number only when that is exactly how the number is written ('007' stays a string:
    // a secret or a name of digits); string settings take numbers back (z.coerce.string())
    const value = /^-?\d+(\.\d+)?$/.test(raw) && String(Number(raw)) === raw ? Number(raw) : raw === 'true' ? true : raw === 'false' ? false : raw;
    setPath(merged, ['modules', m[1]!.toLowerCase(), m[2]!.toLowerCase()], value);
  }
  const final = opts.overrides ? merge(merged, opts.overrides) : merged;
  const result = ConfigSchema.safeParse(final);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.join('.');
      // an array entry (admins.0) is still set by the array's variable (UZZAP_ADMINS)
      const envName =
        'UZZAP_' +
        issue.path
          .filter((p) => typeof p === 'string')
          .join('_')
          .toUpperCase();
      problems.push(`${path || '(root)'} (${envName}): ${issue.message}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const config = result.data as Config;
  config.admins = config.admins.map((a) => a.toLowerCase());
  return { config, file };
}
