// XEP-0359 Unique and Stable Stanza IDs for one-to-one messages: the
// recipient's server stamps <stanza-id by='recipient@domain'/> once, before
// delivery, offline storage or a stream-management queue, so a retransmission
// after resumption carries the same id (and the archive never sees a second one).
// A <stanza-id/> claiming to be by the recipient's account is removed first (§4).
// A message that bounces loses the id again before the error goes back.
// Rooms stamp their own (xeps/0045-muc).
import { tryJid, x, type ArchiveStore, type Element, type StanzaEvent, type XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:sid:0';

function stamp(archive: ArchiveStore, ev: StanzaEvent): false {
  const { stanza, to } = ev;
  const by = to.bare;
  // §4: a stanza-id claiming to be ours is removed from every message, stamped or not
  if (stanza.getChild('stanza-id', NS))
    stanza.children = stanza.children.filter(
      (c) =>
        typeof c === 'string' ||
        !(c.name === 'stanza-id' && c.attrs.xmlns === NS && (c.attrs.by === by || tryJid(c.attrs.by)?.bare === by)),
    );
  const type = stanza.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  if (!stanza.getChild('body')) return false;
  // an archive id: the archive (xeps/0313-mam) keeps the message under it, and finds it again without an index
  stanza.children.push(x('stanza-id', { xmlns: NS, id: archive.newId(by), by }) as Element);
  return false;
}

/** Nobody kept the message (last of 'message/undelivered'): the id we added is not the sender's business. */
function unstamp(ev: StanzaEvent): false {
  const by = ev.to.bare;
  ev.stanza.children = ev.stanza.children.filter(
    (c) => typeof c === 'string' || c.name !== 'stanza-id' || c.attrs.xmlns !== NS || c.attrs.by !== by,
  );
  return false;
}

const sid: XepModule = {
  name: 'sid',
  xeps: [{ n: 359, version: '0.7.0', status: 'complete', note: 'stanza-id on one-to-one messages with a body, and on every room message' }],
  setup(m) {
    m.feature(NS, 'bare');
    // first, so that every later hook (carbons, offline) sees the id
    const stampIt = (ev: StanzaEvent): false => stamp(m.storage.archive, ev);
    m.hook('message/bare', stampIt, 10_000);
    m.hook('message/full', stampIt, 10_000);
    // last, after offline storage had its chance (a stored message keeps its id); then the router bounces it
    m.hook('message/undelivered', unstamp, -10_000);
  },
};

export default sid;
