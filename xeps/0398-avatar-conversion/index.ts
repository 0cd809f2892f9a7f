// XEP-0398 User Avatar to vCard-Based Avatars Conversion, and the XEP-0153 hash in presence.
// - A PEP avatar (XEP-0084) published with an open data node becomes the vCard's PHOTO
//   (§3.1; not when the data node is restricted: a vCard is readable by anyone, §7).
// - A vCard stored with a PHOTO is published as a PEP avatar (§3.2), open like the vCard.
// - Every available presence a client sends (broadcast or directed: room joins too) carries
//   <x xmlns='vcard-temp:x:update'><photo>SHA-1</photo></x> of the current avatar, unless the
//   client said it has none (an explicit empty <photo/>) (§4).
import { createHash } from 'node:crypto';
import { x, z, parseXml, type Element, type XepModule } from '../../src/api/index.js';

const NS_DATA = 'urn:xmpp:avatar:data';
const NS_META = 'urn:xmpp:avatar:metadata';
const NS_UPDATE = 'vcard-temp:x:update';
const NS_VCARD = 'vcard-temp';
const OPEN = { access_model: 'open' };

const Config = z.object({
  /** users whose avatar hash is kept in memory for presence stamping */
  cache_users: z.number().int().positive().default(100_000),
});

interface Avatar {
  hash: string;
  public: boolean;
}

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

const avatars: XepModule<z.infer<typeof Config>> = {
  name: 'avatars',
  config: Config,
  depends: ['pep', 'vcard'],
  xeps: [
    { n: 398, version: '1.0.0', status: 'complete' },
    { n: 153, version: '1.1.1', status: 'complete', note: 'the server adds the hash to presence (XEP-0398 §4)' },
  ],
  setup(m) {
    m.feature('urn:xmpp:pep-vcard-conversion:0', 'bare');
    /** user -> SHA-1 of the current avatar ('' for none), and whether anyone may fetch it (the vCard has it) */
    const hashes = new Map<string, Promise<Avatar>>();

    const readVcard = async (user: string): Promise<Element | undefined> => {
      const stored = await m.storage.userData.get(user, 'vcard', '');
      return stored ? parseXml(stored) : undefined;
    };

    /** The current avatar's hash: the PEP metadata's newest item, else the vCard's PHOTO. */
    const load = async (user: string): Promise<Avatar> => {
      const meta = (await m.use('pep')?.items(user, NS_META))?.[0];
      const bin = (await readVcard(user))?.getChild('PHOTO')?.getChildText('BINVAL');
      const inCard = bin ? sha1(Buffer.from(bin.replace(/\s+/g, ''), 'base64')) : '';
      if (meta) {
        const hash = meta.payload.getChild('info') ? meta.id : '';
        return { hash, public: hash !== '' && hash === inCard };
      }
      return { hash: inCard, public: true };
    };
    /** the same, once loaded (read synchronously on every presence) */
    const resolved = new Map<string, Avatar>();
    const hashOf = (user: string): Promise<Avatar> => {
      let h = hashes.get(user);
      if (!h) {
        h = load(user);
        hashes.set(user, h);
        h.then(
          (v) => {
            if (hashes.get(user) === h) resolved.set(user, v);
          },
          () => hashes.delete(user),
        );
        while (resolved.size > m.config.cache_users) resolved.delete(resolved.keys().next().value!);
        while (hashes.size > m.config.cache_users) hashes.delete(hashes.keys().next().value!);
      }
      return h;
    };
    const changed = (user: string): void => {
      hashes.delete(user);
      resolved.delete(user);
      m.invalidate('hash', user);
    };
    m.onInvalidate('hash', (user) => {
      hashes.delete(user);
      resolved.delete(user);
    });

    // §3.1, the other way the XEP allows: a PEP avatar the vCard does not hold is given as
    // its PHOTO to whoever may read the PEP data node (a contact, for a presence-access avatar)
    m.provide('avatars', {
      photo: async (owner, requester) => {
        const pep = m.use('pep');
        const meta = (await pep?.items(owner, NS_META))?.[0];
        const info = meta?.payload.getChildren('info').find((i) => !i.attrs.url && i.attrs.id === meta.id);
        if (!pep || !info) return undefined;
        const data = (await pep.readable(owner, NS_DATA, requester))?.find((i) => i.id === info.attrs.id);
        if (!data) return undefined;
        return { type: info.attrs.type ?? 'image/png', data: data.payload.getText().replace(/\s+/g, '') };
      },
    });

    /** Write the vCard's PHOTO (or remove it), keeping the rest of the card. */
    const setPhoto = async (user: string, photo: { type: string; data: string } | undefined): Promise<void> => {
      const card = (await readVcard(user)) ?? x('vCard', { xmlns: NS_VCARD });
      card.children = card.children.filter((c) => typeof c === 'string' || c.name !== 'PHOTO');
      if (photo) card.children.push(x('PHOTO', null, x('TYPE', null, photo.type), x('BINVAL', null, photo.data)));
      await m.storage.userData.set(user, 'vcard', '', card.toString());
    };

    // §3.1: PEP to vCard
    m.hook('pep/changed', async (user, node, id, payload) => {
      if (node !== NS_META) return;
      changed(user);
      const pep = m.use('pep');
      if (!pep) return;
      if (!payload) return;
      const info = payload.getChildren('info').find((i) => !i.attrs.url && i.attrs.id === id) ?? payload.getChildren('info').find((i) => !i.attrs.url);
      if (!info) return setPhoto(user, undefined); // an empty <metadata/>: avatar disabled
      const data = (await pep.items(user, NS_DATA)).find((i) => i.id === info.attrs.id);
      if (!data) return;
      const b64 = data.payload.getText().replace(/\s+/g, '');
      if (sha1(Buffer.from(b64, 'base64')) !== info.attrs.id) return m.log.debug({ user }, 'avatar: data does not match its id, not converted');
      if ((await m.storage.pubsub.nodes(`${user}@${m.host}`)).some((n) => n.node === NS_DATA && JSON.parse(n.config).access_model !== 'open')) return;
      await setPhoto(user, { type: info.attrs.type ?? 'image/png', data: b64 });
      m.log.debug({ user, id }, 'avatar: PEP avatar stored as the vCard photo');
      changed(user); // now public

    });

    // §3.2: vCard to PEP
    m.hook('vcard/changed', async (user, card) => {
      changed(user);
      const pep = m.use('pep');
      const photo = card.getChild('PHOTO');
      const b64 = photo?.getChildText('BINVAL')?.replace(/\s+/g, '');
      if (!pep || !b64) return;
      const bytes = Buffer.from(b64, 'base64');
      const id = sha1(bytes);
      try {
        await pep.publish(user, NS_DATA, id, x('data', { xmlns: NS_DATA }, b64), OPEN);
        const info = x('info', { id, bytes: String(bytes.length), type: photo!.getChildText('TYPE') || 'image/png' });
        await pep.publish(user, NS_META, id, x('metadata', { xmlns: NS_META }, info), OPEN);
        m.log.debug({ user, id }, 'avatar: vCard photo published on PEP');
      } catch (err) {
        m.log.warn({ err, user }, 'avatar: publishing the vCard photo on PEP failed');
      }
    });

    // §4: the hash in every available presence
    const stamp = (stanza: Element, update: Element | undefined, a: Avatar): false => {
      // a directed presence (a room join) may reach people who cannot fetch a PEP avatar
      // restricted to contacts: they get a hash only for a picture in the public vCard
      const hash = stanza.attrs.to !== undefined && !a.public ? '' : a.hash;
      if (!hash) return false;
      if (update) update.children = [x('photo', null, hash)];
      else stanza.children.push(x('x', { xmlns: NS_UPDATE }, x('photo', null, hash)));
      return false;
    };
    m.hook('presence/sent', (ev) => {
      if (ev.stanza.attrs.type !== undefined || !ev.origin) return false;
      const update = ev.stanza.getChild('x', NS_UPDATE);
      const photo = update?.getChild('photo');
      if (photo && !photo.getText()) return false; // the client says: no avatar
      const user = ev.from.local;
      // synchronous once the hash is known (the common case)
      const known = resolved.get(user);
      if (known !== undefined) return stamp(ev.stanza, update, known);
      return hashOf(user).then((h) => stamp(ev.stanza, update, h));
    });
  },
};

export default avatars;
