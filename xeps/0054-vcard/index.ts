// XEP-0054 vcard-temp: each user stores their own vCard; anyone may read it.
import { Element, x, parseXml, StanzaError, type XepModule } from '../../src/api/index.js';

const NS = 'vcard-temp';

const vcard: XepModule = {
  name: 'vcard',
  xeps: [{ n: 54, version: '1.3.0', status: 'complete' }],
  setup(m) {
    // the server's JID too (XEP-0054 §5), where Gajim and others look for it
    m.feature(NS);
    m.feature(NS, 'bare');

    m.iq({ type: 'get', ns: NS, name: 'vCard', to: ['bare'] }, async (req) => {
      const user = req.to.local;
      const stored = await m.storage.userData.get(user, 'vcard', '');
      let card = stored !== undefined ? parseXml(stored) : undefined;
      if (!card?.getChild('PHOTO')) {
        // XEP-0398: a PEP avatar the requester may see is the vCard's photo
        const photo = await m.use('avatars')?.photo(user, req.from);
        if (photo) {
          card ??= x('vCard', { xmlns: NS });
          card.children.push(x('PHOTO', null, x('TYPE', null, photo.type), x('BINVAL', null, photo.data)));
        }
      }
      if (card) return card;
      // XEP-0054 §3.3: another user's missing vCard and a missing account look the same
      if (!req.self) throw new StanzaError('service-unavailable');
      return x('vCard', { xmlns: NS }); // §3.1: one's own, not yet published: empty
    });

    m.iq({ type: 'set', ns: NS, name: 'vCard', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'you can only publish your own vCard');
      const card = new Element('vCard', { xmlns: NS });
      for (const c of req.payload.children) card.children.push(c);
      await m.storage.userData.set(req.from.local, 'vcard', '', card.toString());
      await m.run('vcard/changed', req.from.local, card);
    });
  },
};

export default vcard;
