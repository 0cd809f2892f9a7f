// XEP-0377 Blocking Command Reports (formerly Spam Reporting): a <report/> in an item
// of a XEP-0191 block. The block is done as always (xeps/0191-blocking, which runs
// 'blocking/blocked' for each item); the report is logged, counted by reason, and the
// newest are kept for admins, who read them with the Recent Abuse Reports command.
// Processing opt-ins (<report-origin/>, <third-party/>) are not acted on (§5 allows it).
import { randomBytes } from 'node:crypto';
import { dataForm, dateTime, type AdhocNote, type Element, type XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:reporting:1';
const NS_SID = 'urn:xmpp:sid:0';
const REASONS: Record<string, 'spam' | 'abuse'> = { 'urn:xmpp:reporting:spam': 'spam', 'urn:xmpp:reporting:abuse': 'abuse' };
/** the longest report text kept (characters); stanza IDs kept per report */
const MAX_TEXT = 1000;
const MAX_IDS = 20;
/** reports kept for admins (the oldest go first), and shown at once */
const KEEP = 500;
const SHOWN = 50;
/** userData of the owner '' (no account has an empty name) */
const STORE = { owner: '', kind: 'abuse-reports' };

interface AbuseReport {
  at: string;
  reporter: string;
  jid: string;
  /** spam, abuse, or other (a reason this server does not know, or none) */
  reason: 'spam' | 'abuse' | 'other';
  text?: string;
  /** XEP-0359 stanza IDs of the reported messages */
  ids?: string[];
}

const bounded = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/** What a <report/> says, bounded: a report is user input kept and logged. */
function readReport(report: Element, reporter: string, jid: string): AbuseReport {
  const text = report.getChildText('text')?.replace(/\s+/g, ' ').trim();
  const ids = report
    .getChildren('stanza-id', NS_SID)
    .slice(0, MAX_IDS)
    .map((s) => bounded(String(s.attrs.id ?? ''), 100))
    .filter(Boolean);
  return {
    at: dateTime(),
    reporter,
    jid,
    reason: REASONS[report.attrs.reason ?? ''] ?? 'other',
    ...(text ? { text: bounded(text, MAX_TEXT) } : {}),
    ...(ids.length ? { ids } : {}),
  };
}

const reporting: XepModule = {
  name: 'reporting',
  xeps: [
    {
      n: 377,
      version: '0.4.1',
      status: 'partial',
      note: 'reports with a block are logged, counted and listed to admins; processing opt-ins are not acted on',
    },
  ],
  depends: ['blocking'],
  setup(m) {
    m.feature(NS);
    const counted = m.metrics.labelledCounter('abuse_reports_total', 'XEP-0377 reports sent with a block, by reason', ['reason']);

    let seq = 0;
    const keep = async (r: AbuseReport): Promise<void> => {
      // ordered by time, then by arrival here (two reports of one block share a millisecond)
      const key = `${new Date().toISOString()} ${String(++seq).padStart(9, '0')} ${randomBytes(3).toString('hex')}`;
      await m.storage.userData.set(STORE.owner, STORE.kind, key, JSON.stringify(r));
      const rows = await m.storage.userData.list(STORE.owner, STORE.kind);
      for (const row of rows.slice(0, Math.max(0, rows.length - KEEP))) await m.storage.userData.remove(STORE.owner, STORE.kind, row.key);
    };

    m.hook('blocking/blocked', async ({ user, jid, item }) => {
      const report = item.getChild('report', NS);
      if (!report) return;
      const r = readReport(report, `${user}@${m.host}`, jid);
      counted.inc({ reason: r.reason });
      m.log.warn({ reporter: r.reporter, reported: r.jid, reason: r.reason, text: r.text, ids: r.ids }, 'abuse report');
      await keep(r);
    });

    m.command({
      node: 'urn:uzzap:admin#abuse-reports',
      name: 'Recent Abuse Reports',
      stages: [],
      async finish() {
        const rows = await m.storage.userData.list(STORE.owner, STORE.kind);
        const newest = rows.slice(-SHOWN).reverse();
        const lines = newest.map((row) => {
          const r = JSON.parse(row.value) as AbuseReport;
          return `${r.at} ${r.reporter} reported ${r.jid} (${r.reason})${r.text ? `: ${r.text}` : ''}`;
        });
        const notes: AdhocNote[] = [{ type: 'info', text: `${rows.length} report(s) kept, the newest ${newest.length} shown` }];
        const form = dataForm('result', 'urn:uzzap:admin', [{ var: 'reports', type: 'text-multi', label: 'Newest first', values: lines }], {
          title: 'Recent Abuse Reports',
        });
        return { form, notes };
      },
    });
  },
};

export default reporting;
