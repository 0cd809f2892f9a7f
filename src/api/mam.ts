// XEP-0313 query protocol shared by the user archive (xeps/0313-mam) and room
// archives (xeps/0045-muc): the query form and RSM set in, the result messages
// and <fin/> out. Storage is the ArchiveStore (src/storage/sql/archive.ts).
import { Element, x, parseXml } from '../xml/index.js';
import { Jid } from '../jid.js';
import { StanzaError } from './errors.js';
import { SubmittedForm, dataForm } from './forms.js';
import { ArchiveIdNotFound, type ArchiveQuery, type ArchiveStore, type ArchivedMessage } from '../storage/types.js';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
const NS_RSM = 'http://jabber.org/protocol/rsm';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';

const FIELDS = new Set(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);

/** The search form a client may fill in (XEP-0313 §5.1.1). */
export function mamForm(): Element {
  const form = x(
    'query',
    { xmlns: NS_MAM },
    dataForm('form', NS_MAM, [
      { var: 'with', type: 'jid-single' },
      { var: 'start', type: 'text-single' },
      { var: 'end', type: 'text-single' },
      { var: 'before-id', type: 'text-single' },
      { var: 'after-id', type: 'text-single' },
      { var: 'ids', type: 'list-multi' },
    ]),
  );
  // XEP-0313 §5.1.1: 'ids' takes any values (an open list)
  const ids = form
    .getChild('x', 'jabber:x:data')!
    .getChildren('field')
    .find((f) => f.attrs.var === 'ids')!;
  ids.children.push(x('validate', { xmlns: 'http://jabber.org/protocol/xdata-validate', datatype: 'xs:string' }, x('open')));
  return form;
}

function time(v: string | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v))
    throw new StanzaError('bad-request', `'${field}' must be an XEP-0082 date-time`);
  return t;
}

/** Read a <query/> into an archive query (throws StanzaError for what a client got wrong). */
export function parseMamQuery(
  owner: string,
  query: Element,
  limits: { defaultMax: number; maxMax: number; countLimit?: number },
): ArchiveQuery & { flip: boolean } {
  const form = SubmittedForm.in(query);
  if (form) {
    if (form.formType !== undefined && form.formType !== NS_MAM) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS_MAM}`);
    const unknown = form.vars().find((v) => !FIELDS.has(v));
    if (unknown) throw new StanzaError('feature-not-implemented', `unknown field '${unknown}'`);
  }
  let withJid: string | undefined;
  const w = form?.text('with');
  if (w) {
    try {
      const j = Jid.parse(w);
      withJid = j.resource ? j.full : j.bare;
    } catch {
      throw new StanzaError('jid-malformed', "bad JID in 'with'");
    }
  }
  const set = query.getChild('set', NS_RSM);
  const maxText = set?.getChildText('max');
  let max = limits.defaultMax;
  if (maxText !== null && maxText !== undefined) {
    if (!/^\d+$/.test(maxText.trim())) throw new StanzaError('bad-request', '<max/> must be a number');
    max = Math.min(Number(maxText), limits.maxMax);
  }
  const before = set?.getChild('before');
  const afterRsm = set?.getChildText('after') ?? undefined;
  const ids = form?.values('ids');
  const q: ArchiveQuery & { flip: boolean } = {
    owner,
    with: withJid,
    start: time(form?.text('start'), 'start'),
    end: time(form?.text('end'), 'end'),
    after: afterRsm ?? form?.text('after-id') ?? undefined,
    before: before && before.getText() !== '' ? before.getText() : (form?.text('before-id') ?? undefined),
    ids: ids && ids.length ? ids : undefined,
    max,
    // RSM: <before/> asks for the last page (the newest messages)
    fromEnd: before !== undefined,
    countLimit: limits.countLimit,
    flip: query.getChild('flip-page') !== undefined,
  };
  return q;
}

/**
 * Run a query: each result goes to `emit` (a <message/> for the requester), and
 * the <fin/> is returned for the IQ result. `from` is the archive's JID.
 */
export async function runMamQuery(
  store: ArchiveStore,
  q: ArchiveQuery & { flip: boolean },
  queryid: string | undefined,
  emit: (message: Element) => void,
  rewrite?: (m: ArchivedMessage, stanza: Element) => Element,
): Promise<Element> {
  let page: Awaited<ReturnType<ArchiveStore['query']>>;
  try {
    page = await store.query(q);
  } catch (e) {
    if (e instanceof ArchiveIdNotFound) throw new StanzaError('item-not-found', `no archived message '${e.id}'`);
    throw e;
  }
  const items = q.flip ? [...page.items].reverse() : page.items;
  for (const m of items) {
    let stanza: Element;
    try {
      stanza = parseXml(m.stanza);
    } catch {
      continue;
    }
    // XEP-0297: the forwarded stanza names its namespace, or it would inherit urn:xmpp:forward:0
    stanza.attrs.xmlns ??= 'jabber:client';
    if (rewrite) stanza = rewrite(m, stanza);
    emit(
      x(
        'message',
        { id: `mam-${m.id}` },
        x(
          'result',
          { xmlns: NS_MAM, queryid, id: m.id },
          x('forwarded', { xmlns: NS_FORWARD }, x('delay', { xmlns: NS_DELAY, stamp: new Date(m.ts).toISOString() }), stanza),
        ),
      ),
    );
  }
  return x(
    'fin',
    { xmlns: NS_MAM, complete: page.complete ? 'true' : undefined },
    x(
      'set',
      { xmlns: NS_RSM },
      page.items.length ? x('first', null, page.items[0]!.id) : undefined,
      page.items.length ? x('last', null, page.items.at(-1)!.id) : undefined,
      page.count === undefined ? undefined : x('count', null, String(page.count)),
    ),
  );
}

/**
 * Replace one archived message with what `make` builds from it (XEP-0425: a moderated message
 * becomes its tombstone), written or still batched; false when the archive holds no such message.
 */
export async function replaceArchived(
  store: ArchiveStore,
  owner: string,
  id: string,
  make: (stanza: Element) => Element,
): Promise<boolean> {
  let page: Awaited<ReturnType<ArchiveStore['query']>>;
  try {
    page = await store.query({ owner, ids: [id], max: 1, fromEnd: false, countLimit: 1 });
  } catch (e) {
    if (e instanceof ArchiveIdNotFound) return false;
    throw e;
  }
  const m = page.items[0];
  if (!m) return false;
  return store.replace(owner, id, make(parseXml(m.stanza)).toString());
}

/** XEP-0313 §6 archive metadata. */
export async function mamMetadata(store: ArchiveStore, owner: string): Promise<Element> {
  const b = await store.bounds(owner);
  const stamp = (m: ArchivedMessage): string => new Date(m.ts).toISOString();
  return x(
    'metadata',
    { xmlns: NS_MAM },
    b.first ? x('start', { id: b.first.id, timestamp: stamp(b.first) }) : undefined,
    b.last ? x('end', { id: b.last.id, timestamp: stamp(b.last) }) : undefined,
  );
}
