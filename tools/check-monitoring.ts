// Checks docs/monitoring/ against the metrics a real server exports: every metric
// name in a PromQL expression of the Grafana dashboard and the alerting rules
// must be one that GET /metrics returns, and the README's metric table must list
// exactly the uzzap_* metrics. Run it again whenever metrics change:
//
//   npx tsx tools/check-monitoring.ts          start a server in-process and scrape it
//   npx tsx tools/check-monitoring.ts --url http://node:5280/metrics   check against a running node
//   npx tsx tools/check-monitoring.ts --list   also print the scraped metric names
//
// Exits 1 listing every unknown name (and where it is used).
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

const DIR = 'docs/monitoring';
const DASHBOARD = `${DIR}/grafana-dashboard.json`;
const ALERTS = `${DIR}/alerts.yml`;
const README = `${DIR}/README.md`;

/** Series Prometheus records itself for every target, not exported by Uzzap. */
const PROMETHEUS_SERIES = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
]);

const FUNCTIONS = new Set(
  // aggregation operators
  (
    'sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio ' +
    // functions
    'abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week day_of_year ' +
    'days_in_month delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile ' +
    'histogram_stddev histogram_stdvar histogram_sum holt_winters double_exponential_smoothing hour idelta increase ' +
    'irate label_join label_replace ln log2 log10 minute month predict_linear rate resets round scalar sgn sort ' +
    'sort_desc sort_by_label sort_by_label_desc sqrt time timestamp vector year avg_over_time min_over_time ' +
    'max_over_time sum_over_time count_over_time quantile_over_time stddev_over_time stdvar_over_time ' +
    'last_over_time present_over_time mad_over_time acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh ' +
    'deg rad pi info start end'
  ).split(' '),
);
const KEYWORDS = new Set('by without on ignoring group_left group_right offset bool and or unless atan2 inf nan'.split(' '));

interface Use {
  name: string;
  where: string;
}

/** Metric names in one PromQL expression (Grafana variables allowed); unknown functions are reported as `name(`. */
function metricNames(expr: string): string[] {
  // Grafana template queries: label_values(selector, label) and query_result(expr)
  // (label_values(label) alone names no metric)
  const lv = /^\s*label_values\(\s*(?:(.*?)\s*,\s*)?[A-Za-z_]\w*\s*\)\s*$/s.exec(expr);
  if (lv) return lv[1] ? metricNames(lv[1]) : [];
  const qr = /^\s*query_result\((.*)\)\s*$/s.exec(expr);
  if (qr) return metricNames(qr[1]!);

  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/#[^\n]*/g, ' ') // comments
    .replace(/\$\{[^}]*\}|\$\w+/g, ' '); // Grafana variables outside selectors
  // label matchers and ranges / subqueries (no nesting in PromQL)
  s = s.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  // label lists of grouping and vector-matching clauses
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const out: string[] = [];
  for (const m of s.matchAll(/(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (KEYWORDS.has(name!.toLowerCase())) continue;
    if (call) {
      if (!FUNCTIONS.has(name!)) out.push(`${name}(`);
      continue;
    }
    out.push(name!);
  }
  return out;
}

/** Every `expr` in the dashboard (panels, rows' panels) and every query variable. */
function dashboardUses(): Use[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, unknown>;
  const uses: Use[] = [];
  const walk = (v: unknown, where: string): void => {
    if (Array.isArray(v)) return v.forEach((x) => walk(x, where));
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const here = typeof o.title === 'string' ? `${DASHBOARD}: panel "${o.title}"` : where;
    if (typeof o.expr === 'string') for (const name of metricNames(o.expr)) uses.push({ name, where: here });
    for (const [k, x] of Object.entries(o)) if (k !== 'templating') walk(x, here);
  };
  walk(dash.panels, DASHBOARD);
  const vars = ((dash.templating as { list?: Record<string, unknown>[] } | undefined)?.list ?? []).filter((v) => v.type === 'query');
  for (const v of vars) {
    const q = typeof v.query === 'string' ? v.query : ((v.query as { query?: string } | undefined)?.query ?? '');
    for (const text of new Set([q, typeof v.definition === 'string' ? v.definition : ''])) {
      for (const name of metricNames(text)) uses.push({ name, where: `${DASHBOARD}: variable $${String(v.name)}` });
    }
  }
  return uses;
}

/** Every rule's expr in the alerting rules, plus the names recording rules define. */
function alertUses(): { uses: Use[]; recorded: Set<string> } {
  const doc = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups?: { rules?: { alert?: string; record?: string; expr?: string }[] }[] };
  const uses: Use[] = [];
  const recorded = new Set<string>();
  for (const g of doc.groups ?? []) {
    for (const r of g.rules ?? []) {
      if (r.record) recorded.add(r.record);
      for (const name of metricNames(String(r.expr ?? ''))) uses.push({ name, where: `${ALERTS}: ${r.alert ?? r.record}` });
    }
  }
  return { uses, recorded };
}

interface Family {
  name: string;
  type: string;
  help: string;
}

/** Metric families and the names PromQL can select (histograms: _bucket/_sum/_count). */
function parseExposition(text: string): { families: Family[]; names: Set<string> } {
  const families = new Map<string, Family>();
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      const f = families.get(name!) ?? { name: name!, type: 'untyped', help: '' };
      if (kind === 'HELP') f.help = rest!;
      else f.type = rest!;
      families.set(name!, f);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  for (const f of families.values()) {
    if (f.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(f.name + s);
    else if (f.type === 'summary') for (const s of ['', '_sum', '_count']) names.add(f.name + s);
    else names.add(f.name);
  }
  return { families: [...families.values()], names };
}

/** Start a server the way the e2e monitoring test does, exercise it, scrape /metrics. */
async function scrapeTestServer(): Promise<string> {
  const { startServer } = await import('../test/helpers/server.js');
  const { connect, expectStanza, stopAll, until, xml } = await import('../test/helpers/clients.js');
  const server = await startServer({ config: { component: { port: 0, secret: 's' } }, users: { alice: 'secret', bob: 'secret' } });
  const url = `http://127.0.0.1:${server.ports.http}/metrics`;
  const alice = await connect(server, 'alice');
  try {
    // bob is offline: offline storage; the room: MUC gauges; then an archive batch
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'for later')));
    await alice.send(xml('presence', { to: 'room@conference.localhost/alice' }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === 'room@conference.localhost/alice');
    await until(async () => /uzzap_archive_batch_seconds_count [1-9]/.test(await (await fetch(url)).text()), 'an archive batch');
    await server.stats(); // samples the storage and registry round-trips
    return await (await fetch(url)).text();
  } finally {
    await stopAll(alice);
    await server.stop();
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const urlArg = args.indexOf('--url');
  const url = urlArg === -1 ? undefined : args[urlArg + 1];
  if (urlArg !== -1 && !url) throw new Error('--url needs the address of a /metrics endpoint');
  const text = url ? await (await fetch(url)).text() : await scrapeTestServer();
  const { families, names } = parseExposition(text);
  if (!names.size) throw new Error(`no metrics in the scrape of ${url ?? 'the test server'}`);
  if (args.includes('--list')) for (const n of [...names].sort()) console.log(n);

  const { uses: ruleUses, recorded } = alertUses();
  const uses = [...dashboardUses(), ...ruleUses];
  const problems: string[] = [];
  for (const u of uses) {
    if (u.name.endsWith('(')) problems.push(`${u.where}: unknown PromQL function ${u.name})`);
    else if (!names.has(u.name) && !PROMETHEUS_SERIES.has(u.name) && !recorded.has(u.name))
      problems.push(`${u.where}: unknown metric ${u.name}`);
  }

  // the README's table: one row per uzzap_* family, nothing else
  const uzzap = families.filter((f) => f.name.startsWith('uzzap_')).map((f) => f.name);
  const readme = readFileSync(README, 'utf8');
  const listed = new Set([...readme.matchAll(/^\|\s*`(uzzap_[a-z0-9_]+)`\s*\|/gm)].map((m) => m[1]!));
  for (const n of uzzap) if (!listed.has(n)) problems.push(`${README}: metric table lacks ${n}`);
  for (const n of listed) if (!uzzap.includes(n)) problems.push(`${README}: metric table lists ${n}, which the server does not export`);

  const used = new Set(uses.map((u) => u.name.replace(/_(bucket|sum|count)$/, '')));
  const unused = uzzap.filter((n) => !used.has(n));
  console.log(
    `scraped ${families.length} metric families (${uzzap.length} uzzap_*) from ${url ?? 'a test server'}; ` +
      `checked ${uses.length} metric references (${new Set(uses.map((u) => u.name)).size} distinct) in ${DASHBOARD} and ${ALERTS}, ` +
      `and ${listed.size} rows of the ${README} table`,
  );
  if (unused.length) console.log(`uzzap_* metrics used by neither the dashboard nor the alerts: ${unused.join(', ')}`);
  if (problems.length) {
    console.error(`${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    return 1;
  }
  console.log('ok: every metric name is one the server exports');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
