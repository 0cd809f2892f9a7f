// Operating the running server: XEP-0133 §4.29 (the admin list) and §4.31
// (shutdown), and Uzzap's own server-stats, reload and set-setting. What only
// the core can do reaches us through m.admin (AdminApi).
import { dataForm, tryJid, StanzaError, type AdhocNote, type FormField } from '../../src/api/index.js';
import { NS_UZZAP_ADMIN, ask, first, jids, text, type AdminCommands, type State } from './commands.js';

export function operatorCommands({ m, host, command, announce }: AdminCommands): void {
  // ---- shutting down ----

  let shutdownTimer: NodeJS.Timeout | undefined;
  m.onClose(() => clearTimeout(shutdownTimer));
  command(
    'shutdown',
    'Shut Down Service',
    [
      ask(
        () => [
          {
            var: 'delay',
            type: 'list-single',
            label: 'Time delay before shutting down',
            options: [
              ['30', '30 seconds'],
              ['60', '60 seconds'],
              ['90', '90 seconds'],
              ['120', '2 minutes'],
              ['180', '3 minutes'],
              ['240', '4 minutes'],
              ['300', '5 minutes'],
            ].map(([value, label]) => ({ value: value!, label })),
          },
          { var: 'announcement', type: 'text-multi', label: 'Announcement' },
        ],
        { title: 'Shutting Down the Service', instructions: 'Fill out this form to shut down the service.' },
      ),
    ],
    async (st) => {
      const raw = first(st, 'delay') || '30';
      // the XEP's options, or any other number of seconds up to a day
      if (!/^\d{1,5}$/.test(raw) || Number(raw) > 86_400)
        throw new StanzaError('bad-request', 'delay must be a number of seconds (at most 86400)');
      const delay = Number(raw);
      const body = text(st, 'announcement');
      const n = body ? announce(body) : 0;
      clearTimeout(shutdownTimer);
      shutdownTimer = setTimeout(() => m.admin.shutdown(), delay * 1000);
      m.log.warn({ delay }, 'shutdown requested by an administrator');
      return {
        notes: [{ type: 'info', text: `shutting down in ${delay} s${body ? `; announcement sent to ${n} session(s)` : ''}` }],
      };
    },
  );

  // ---- the admin list ----

  command(
    'edit-admin',
    'Edit Admin List',
    [
      ask(() => [{ var: 'adminjids', type: 'jid-multi', label: 'The admin list', values: m.admin.admins() }], {
        title: 'Editing the Admin List',
        instructions: 'Fill out this form to edit the list of entities who have administrative privileges.',
      }),
    ],
    async (st) => {
      // an empty list is a choice; a missing field is a mistake, not "remove everyone"
      if (st.adminjids === undefined) throw new StanzaError('bad-request', 'the adminjids field is missing');
      const wanted = new Set(
        jids(st, 'adminjids').map((s) => {
          const j = tryJid(s);
          if (!j || !j.local || j.resource) throw new StanzaError('bad-request', `"${s}" is not a bare JID`);
          return j.bare;
        }),
      );
      const notes: AdhocNote[] = [];
      const before = new Set(m.admin.admins());
      for (const b of wanted) {
        if (before.has(b)) continue;
        if (!(await m.admin.setAdmin(b, true))) notes.push({ type: 'warn', text: `${b}: not an account of ${host}; not added` });
        else notes.push({ type: 'info', text: `${b} is now an admin` });
      }
      for (const b of before) {
        if (wanted.has(b)) continue;
        await m.admin.setAdmin(b, false);
        // admins from the configuration (UZZAP_ADMINS) stay until the configuration changes
        if (m.admin.admins().includes(b))
          notes.push({ type: 'warn', text: `${b} is an admin by configuration (admins / UZZAP_ADMINS); not removed` });
        else notes.push({ type: 'info', text: `${b} is no longer an admin` });
      }
      if (!notes.length) notes.push({ type: 'info', text: 'no change' });
      return { notes };
    },
  );

  // ---- Uzzap: statistics, reload, live settings ----

  m.command<State>({
    node: `${NS_UZZAP_ADMIN}#server-stats`,
    name: 'Server Statistics',
    stages: [],
    async finish() {
      const s = await m.admin.stats();
      const f = (v: string, label: string, value: string | number): FormField => ({ var: v, type: 'text-single', label, value });
      return {
        form: dataForm('result', `${NS_UZZAP_ADMIN}#server-stats`, [
          f('version', 'Version', s.version),
          f('node', 'Node', s.node),
          f('uptime', 'Uptime (seconds)', s.uptimeSeconds),
          f('sessions', 'Sessions', s.sessions),
          f('detached', 'Sessions waiting for resumption', s.detachedSessions),
          f('connections', 'Connections', s.connections),
          { var: 'components', type: 'jid-multi', label: 'Components connected', values: s.components },
          f('stanzas-in', 'Stanzas in per second (last 10 s)', s.stanzasInPerSecond),
          f('stanzas-out', 'Stanzas out per second (last 10 s)', s.stanzasOutPerSecond),
          f('rss', 'Memory (RSS, MB)', (s.rssBytes / 1048576).toFixed(1)),
          f('heap', 'Heap used (MB)', (s.heapUsedBytes / 1048576).toFixed(1)),
          f('lag-mean', 'Event-loop lag, mean (ms)', s.eventLoopLagMs.mean),
          f('lag-p99', 'Event-loop lag, p99 (ms)', s.eventLoopLagMs.p99),
          f('storage', `Storage (${s.storage.kind}) round-trip (ms)`, s.storage.latencyMs ?? 'not responding'),
          f('registry', `Registry (${s.registry.kind}) round-trip (ms)`, s.registry.latencyMs ?? 'not responding'),
          ...Object.entries(s.extra).map(([k, v]) => f(k, k, v)),
          // in a cluster: every node, and the sessions of all of them
          ...(s.cluster
            ? [
                f('cluster-nodes', 'Cluster nodes', s.cluster.length),
                f('cluster-sessions', 'Sessions on every node', s.cluster.reduce((n, c) => n + c.sessions, 0)),
                {
                  var: 'cluster',
                  type: 'text-multi' as const,
                  label: 'Nodes (name, host, sessions, stanzas in/s, lag p99 ms)',
                  values: s.cluster.map((c) => `${c.name} ${c.host} ${c.sessions} ${c.stanzasInPerSecond} ${c.eventLoopLagMs.p99}`),
                },
              ]
            : []),
        ]),
      };
    },
  });

  const reportNotes = (r: Awaited<ReturnType<typeof m.admin.reload>>): AdhocNote[] => {
    const notes: AdhocNote[] = [];
    if (r.applied.length) notes.push({ type: 'info', text: `applied: ${r.applied.join(', ')}` });
    if (r.modulesLoaded.length) notes.push({ type: 'info', text: `modules enabled: ${r.modulesLoaded.join(', ')}` });
    if (r.modulesUnloaded.length) notes.push({ type: 'info', text: `modules disabled: ${r.modulesUnloaded.join(', ')}` });
    if (r.modulesReloaded.length) notes.push({ type: 'info', text: `modules re-configured: ${r.modulesReloaded.join(', ')}` });
    if (r.needsRestart.length) notes.push({ type: 'warn', text: `need a restart to take effect: ${r.needsRestart.join(', ')}` });
    for (const e of r.errors) notes.push({ type: 'error', text: e });
    if (!notes.length) notes.push({ type: 'info', text: 'nothing changed' });
    return notes;
  };

  m.command<State>({
    node: `${NS_UZZAP_ADMIN}#reload`,
    name: 'Reload Configuration',
    stages: [],
    async finish() {
      try {
        return { notes: reportNotes(await m.admin.reload()) };
      } catch (e) {
        throw new StanzaError('not-acceptable', `the configuration was not reloaded: ${(e as Error).message}`);
      }
    },
  });

  // secrets and tokens are never shown, only whether they are set
  const secret = (path: string): boolean => /secret|token|password/.test(path);
  const valueText = (path: string, v: unknown): string => {
    if (secret(path)) return v === '' || (typeof v === 'object' && v !== null && Object.keys(v).length === 0) ? '(not set)' : '(set)';
    return Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
  const SETTING_FORM = `${NS_UZZAP_ADMIN}#set-setting`;
  m.command<State>({
    node: `${NS_UZZAP_ADMIN}#set-setting`,
    name: 'Change a Live Setting',
    stages: [
      ask(
        () => [
          {
            var: 'setting',
            type: 'list-single',
            label: 'Setting',
            required: true,
            options: m.admin.liveSettings().map((s) => ({ value: s.path, label: `${s.path} (now: ${valueText(s.path, s.value)})` })),
          },
        ],
        {
          title: 'Change a Live Setting',
          instructions: 'Choose the setting to change. The change lasts until the next reload or restart.',
          formType: SETTING_FORM,
        },
      ),
      ask(
        (st) => {
          const path = first(st, 'setting');
          const cur = m.admin.liveSettings().find((s) => s.path === path);
          return [
            { var: 'setting', type: 'fixed', value: path },
            secret(path)
              ? {
                  var: 'value',
                  type: 'text-private',
                  label: `New value of ${path} (now ${cur ? valueText(path, cur.value) : 'unknown'})`,
                  required: true,
                }
              : {
                  var: 'value',
                  type: 'text-single',
                  label: `New value of ${path}`,
                  required: true,
                  value: cur ? valueText(path, cur.value) : '',
                },
          ];
        },
        { title: 'Change a Live Setting', formType: SETTING_FORM },
      ),
    ],
    async finish(st) {
      const path = first(st, 'setting');
      if (!m.admin.liveSettings().some((s) => s.path === path)) throw new StanzaError('bad-request', `${path} cannot change while running`);
      try {
        return { notes: reportNotes(await m.admin.setLive(path, first(st, 'value'))) };
      } catch (e) {
        throw new StanzaError('bad-request', (e as Error).message);
      }
    },
  });
}
