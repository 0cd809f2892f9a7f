// Core IM (RFC 6121): rosters, subscriptions and presence, on the module
// contract like every extension, loaded first and always.
import { z, type XepModule } from '../api/index.js';
import { RosterService, hasFrom, hasTo } from './roster-service.js';
import { rosterHandlers } from './roster.js';
import { Subscriptions } from './subscriptions.js';
import { PresenceService } from './presence.js';

const Config = z.object({
  /** most contacts one roster may hold; one more gets not-allowed */
  max_roster_items: z.number().int().positive().default(2000),
});

const im: XepModule<z.infer<typeof Config>> = {
  name: 'im',
  xeps: [{ n: 237, version: '1.3', status: 'complete', note: 'roster versioning: an unchanged version gets an empty result' }],
  config: Config,
  setup(m) {
    const roster = new RosterService(m);
    const presence = new PresenceService(m, roster);
    const subs = new Subscriptions(
      m,
      roster,
      (u, to) => presence.sendPresenceOf(u, to),
      (u, to) => presence.sendUnavailableOf(u, to),
    );
    presence.subs = subs;
    m.provide('roster', {
      subscribers: (user) => roster.contacts(user, hasFrom),
      subscriptions: (user) => roster.contacts(user, hasTo),
      item: (user, jid) => roster.item(user, jid),
      befriend: async (user, jid) => {
        await roster.update(user, jid, (cur) =>
          cur?.subscription === 'both' ? undefined : { jid, name: cur?.name, groups: cur?.groups ?? [], subscription: 'both', ask: false, approved: false },
        );
      },
    });

    m.streamFeature(`<ver xmlns='urn:xmpp:features:rosterver'/>`, 10);
    m.streamFeature(`<sub xmlns='urn:xmpp:features:pre-approval'/>`, 11);
    rosterHandlers(m, roster, subs, () => ({ max_items: m.config.max_roster_items }));

    m.hook('presence/broadcast', (ev) => presence.broadcast(ev), 100);
    m.hook('presence/bare', (ev) => presence.toBare(ev), 100);
    m.hook('presence/full', (ev) => presence.toFull(ev), 100);
    m.hook('session/closed', (s) => {
      if (m.sessions.here(s.jid.bare).length === 0) roster.forget(s.jid.local);
    });
    // another node of the cluster changed this user's roster: read it afresh
    m.onInvalidate('roster', (user) => roster.forget(user));
    m.hook('user/deleting', async (user) => {
      // contacts see the user go offline and lose the subscriptions both ways,
      // then the user disappears from every local roster (with pushes)
      const bare = `${user}@${m.host}`;
      for (const item of (await roster.load(user)).items.values()) await subs.onRemove(user, item);
      for (const holder of await m.storage.roster.holders(bare)) await roster.remove(holder, bare);
    });
    m.hook('user/deleted', (user) => roster.forget(user));
  },
};

export default im;
