// XEP-0045 Multi-User Chat as a service at conference.<domain>, with the
// extensions modern clients expect: stable stanza ids (XEP-0359), occupant ids
// (XEP-0421), self-ping (XEP-0410), moderated retraction (XEP-0425), directory
// paging (XEP-0059). Rooms: room.ts (its parts are listed at its top); the
// service, its routing and IQ forwarding: service.ts, forwarding.ts.
import { Jid, x, z, type XepModule } from '../../src/api/index.js';
import { MucService, type MucSettings } from './service.js';
import { NS_MUC } from './ns.js';
import { roomAdmin } from './admin.js';

const settings = z.object({
  domain: z.string().default(''),
  name: z.string().default('Chatrooms'),
  creation: z.enum(['anyone', 'admins']).default('anyone'),
  max_rooms: z.number().int().positive().default(100_000),
  max_occupants: z.number().int().positive().default(10_000),
  history: z.number().int().min(0).default(20),
  max_history: z.number().int().min(0).max(10_000).default(100),
  max_affiliations: z.number().int().positive().default(10_000),
  message_rate: z.number().min(0).default(10),
  message_burst: z.number().min(1).default(30),
  presence_rate: z.number().min(0).default(2),
  presence_burst: z.number().min(1).default(10),
  presence_threshold: z.number().int().min(0).default(0),
  persistent: z.boolean().default(false),
  public: z.boolean().default(true),
  max_pending_iqs: z.number().int().positive().default(10_000),
  directory_page: z.number().int().positive().default(1000),
  archive: z.boolean().default(true),
  /** XEP-0045 §10.1.1: a new room stays locked until its owner configures it; false: instant rooms */
  lock_new_rooms: z.boolean().default(true),
});

/** How long a room waits for a departed session's own unavailable before it lets the session go itself. */
const LEFT_GRACE_MS = 1000;

const muc: XepModule<MucSettings> = {
  name: 'muc',
  xeps: [
    {
      n: 45,
      version: '1.35.5',
      status: 'complete',
      note: 'service at conference.<domain>; history in memory; nicks per RFC 8266; multi-session nicks; ghosts removed on delivery errors (§18.1.2)',
    },
    { n: 249, version: '1.2', status: 'complete', note: 'direct invitations pass through' },
    { n: 410, version: '1.1.0', status: 'complete', note: 'self-ping answered by the room' },
    { n: 421, version: '0.1.0', status: 'complete' },
    { n: 486, version: '0.1.0', status: 'complete', note: 'room vCard set by owners, hash in disco#info, status 104' },
    {
      n: 425,
      version: '0.3.0',
      status: 'complete',
      note: 'moderate:1, and :0 inside XEP-0422 apply-to (slixmpp and older clients); the message becomes a tombstone in the history and the room archive',
    },
  ],
  config: settings as unknown as z.ZodType<MucSettings>,
  async setup(m) {
    const domain = m.config.domain || `conference.${m.host}`;
    const service = new MucService(domain, m);
    await service.load();
    // In a cluster each room is served by one node (the first to claim it). The node of
    // an occupant's session remembers the rooms it joined elsewhere, so that when the
    // session ends (or goes unavailable) those rooms hear it too.
    const elsewhere = new Map<string, Map<string, string>>(); // session full JID -> room -> occupant JID
    const leaveElsewhere = (session: Jid): void => {
      const rooms = elsewhere.get(session.full);
      if (!rooms) return;
      elsewhere.delete(session.full);
      for (const occupant of rooms.values()) m.send(x('presence', { type: 'unavailable', from: session.full, to: occupant }));
    };
    m.service(domain, (stanza, from, to) => service.handle(stanza, from, to), {
      acquired: (name, state) => service.acquired(name, state),
      changed: () => service.changed(),
      release: (name) => {
        // this node's occupant sessions stay in the room, served elsewhere now: when one ends, it is told there
        const room = service.rooms.get(name);
        for (const o of room?.occupants.values() ?? [])
          for (const full of o.sessions.keys()) {
            if (!m.sessions.here(Jid.parse(full).bare).some((s) => s.jid.full === full)) continue;
            let rooms = elsewhere.get(full);
            if (!rooms) elsewhere.set(full, (rooms = new Map()));
            rooms.set(room!.jid.bare, o.jid.full);
          }
        return service.release(name);
      },
      dropped: (name) => service.dropped(name),
      listing: (name) => service.listing(name),
      attach: (cluster) => service.attach(cluster),
      forwarded: (stanza, from, to) => {
        if (stanza.name !== 'presence' || !to.resource || !m.sessions.here(from.bare).some((s) => s.jid.full === from.full)) return;
        const type = stanza.attrs.type;
        let rooms = elsewhere.get(from.full);
        if (type === undefined) {
          if (!rooms) elsewhere.set(from.full, (rooms = new Map()));
          rooms.set(to.bare, to.full);
        } else if (type === 'unavailable' && rooms) {
          rooms.delete(to.bare);
          if (!rooms.size) elsewhere.delete(from.full);
        }
      },
    });
    m.discoItem(domain, m.config.name);
    roomAdmin(m, service);
    // ghosts: a session that went away (or announced unavailable) leaves its rooms
    // a node of the cluster died: its sessions' occupants leave every room served here (333)
    m.hook('session/lost', (sessions) => {
      for (const s of sessions) service.lost(s.jid);
    });
    // a session of another node ended or went unavailable: rooms served here let it go,
    // whether or not its node knew it was in them (it may have moved there: a resume, a
    // drain). A moment later: its node's own unavailable to the room (with the client's
    // status text) usually comes first, and a session back meanwhile is left alone.
    m.hook('session/left', (s) => {
      const jid = s.jid;
      setTimeout(() => {
        if (m.sessions.of(jid.bare).some((x) => x.jid.full === jid.full && x.available)) return;
        service.leaveAll(jid);
      }, LEFT_GRACE_MS).unref();
    });
    m.hook('session/closed', (s) => {
      service.leaveAll(s.jid);
      leaveElsewhere(s.jid);
    });
    m.hook('presence/broadcast', (ev) => {
      if (ev.stanza.attrs.type === 'unavailable') {
        service.leaveAll(ev.from, ev.stanza.getChildren('status'));
        leaveElsewhere(ev.from);
      }
      return false;
    });
    m.hook('server/stopping', () => {
      for (const room of service.rooms.values()) room.shutdownNotice();
    });
    m.hook('user/deleted', (user) => {
      const bare = `${user}@${m.host}`;
      for (const room of service.rooms.values()) if (room.affiliations.has(bare)) room.setAffiliation(bare, 'none', undefined, undefined);
    });
    const timer = setInterval(() => service.sweep(Date.now()), 10_000);
    timer.unref();
    m.onClose(async () => {
      clearInterval(timer);
      await service.close();
    });
    m.feature(NS_MUC, 'host');
  },
};

export default muc;
