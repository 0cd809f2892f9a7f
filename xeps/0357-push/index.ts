// XEP-0357 Push Notifications: a client registers an app server (push service
// JID + node, optional publish-options); when a message with a body reaches a
// session that cannot show it (detached after a dropped connection, or inactive
// per XEP-0352), the user's server publishes a summary notification there.
// The body and sender are left out unless the settings allow them.
//
// The app server may be anywhere (a component here, an entity of another server). Its
// answer comes back to the user's bare JID: an error disables that registration (§7.1),
// unless it is transient (type 'wait', or our own server could not reach the app server's
// now); a result, or no answer, changes nothing. The answer's id names the node, so any
// node of a cluster can act on it.
import { StanzaError, dataForm, parseXml, tryJid, x, z, type Element, type FormField, type XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:push:0';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const KIND = 'push';
/** a publish's id: `push-<counter>.<node>` */
const ID_PREFIX = 'push-';
/** errors that say nothing about the registration: the app server's server was not reached now */
const TRANSIENT = new Set(['remote-server-timeout', 'remote-server-not-found']);

interface Settings {
  max_per_user: number;
  include_sender: boolean;
  include_body: boolean;
}

interface Registration {
  jid: string;
  node: string;
  options?: Element;
}

const settings = z.object({
  max_per_user: z.number().int().positive().default(10),
  include_sender: z.boolean().default(false),
  include_body: z.boolean().default(false),
});

const push: XepModule<Settings> = {
  name: 'push',
  xeps: [{ n: 357, version: '0.4.1', status: 'complete', note: 'summary notifications; sender and body only if configured' }],
  config: settings as unknown as z.ZodType<Settings>,
  setup(m) {
    m.feature(NS, 'bare');
    /** registrations of users who have any, cached (most have none; an empty list is cached too) */
    const cache = new Map<string, Registration[]>();
    const load = async (user: string): Promise<Registration[]> => {
      const hit = cache.get(user);
      if (hit) return hit;
      const rows = await m.storage.userData.list(user, KIND);
      const regs = rows.map((r) => {
        const [jid, node] = JSON.parse(r.key) as [string, string];
        return { jid, node, options: r.value ? parseXml(r.value) : undefined };
      });
      cache.set(user, regs);
      if (cache.size > 100_000) cache.delete(cache.keys().next().value!);
      return regs;
    };
    const key = (jid: string, node: string): string => JSON.stringify([jid, node]);
    /** registrations changed: this node's cache and the other nodes' */
    const changed = (user: string): void => {
      cache.delete(user);
      m.invalidate(KIND, user);
    };
    m.onInvalidate(KIND, (user) => void cache.delete(user));

    m.iq({ type: 'set', ns: NS, name: 'enable', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'push is configured for your own account');
      const jid = tryJid(req.payload.attrs.jid);
      const node = req.payload.attrs.node ?? '';
      if (!jid) throw new StanzaError('bad-request', "enable needs the push service's 'jid'");
      if (!node) throw new StanzaError('bad-request', "enable needs a 'node'");
      const form = req.payload.getChild('x', 'jabber:x:data');
      const user = req.from.local;
      const regs = await load(user);
      if (!regs.some((r) => r.jid === jid.full && r.node === node) && regs.length >= m.config.max_per_user)
        throw new StanzaError('resource-constraint', 'too many push registrations');
      await m.storage.userData.set(user, KIND, key(jid.full, node), form ? form.toString() : '');
      changed(user);
    });

    m.iq({ type: 'set', ns: NS, name: 'disable', to: ['bare'] }, async (req) => {
      if (!req.self) throw new StanzaError('forbidden', 'push is configured for your own account');
      const jid = tryJid(req.payload.attrs.jid);
      if (!jid) throw new StanzaError('bad-request', "disable needs the push service's 'jid'");
      const node = req.payload.attrs.node;
      const user = req.from.local;
      for (const r of await load(user)) {
        if (r.jid === jid.full && (node === undefined || r.node === node)) await m.storage.userData.remove(user, KIND, key(r.jid, r.node));
      }
      changed(user);
    });

    m.hook('user/deleted', (user) => void cache.delete(user));

    /** The app server `from` answered a publish to `node` for `user` with an error. */
    const refused = async (user: string, from: string, node: string, answer: Element): Promise<void> => {
      const err = answer.getChild('error');
      const condition =
        err?.getChildElements().find((e) => e.attrs.xmlns === NS_STANZAS && e.name !== 'text')?.name ?? 'undefined-condition';
      if (err?.attrs.type === 'wait' || TRANSIENT.has(condition)) return;
      if (!(await load(user)).some((r) => r.jid === from && r.node === node)) return;
      await m.storage.userData.remove(user, KIND, key(from, node));
      changed(user);
      m.log.info({ user, jid: from, node, condition }, 'push: the app server refused a notification; registration disabled');
    };

    // answers to publishes come to the user's bare JID (where nothing else takes IQ answers)
    m.hook('route/user', (ev) => {
      const s = ev.stanza;
      if (s.name !== 'iq' || ev.origin || ev.to.resource) return false;
      const id = s.attrs.id;
      const type = s.attrs.type;
      if ((type !== 'result' && type !== 'error') || typeof id !== 'string' || !id.startsWith(ID_PREFIX)) return false;
      const dot = id.indexOf('.');
      if (dot === -1) return false;
      if (type === 'error')
        refused(ev.to.local, ev.from.full, id.slice(dot + 1), s).catch((err: unknown) =>
          m.log.warn({ err }, 'push: handling an error answer failed'),
        );
      return true;
    });

    let ids = 0;
    m.hook('push/needed', async (session, _reason, xml, unseen) => {
      const user = session.jid.local;
      const regs = await load(user);
      if (regs.length === 0) return;
      const n = Math.max(unseen, 1);
      let sender = '';
      let body = '';
      if (m.config.include_sender || m.config.include_body) {
        try {
          const msg = parseXml(xml);
          sender = tryJid(msg.attrs.from)?.bare ?? '';
          body = msg.getChildText('body') ?? '';
        } catch {
          // a notification without details is still a notification
        }
      }
      const fields: FormField[] = [{ var: 'message-count', value: n }];
      if (m.config.include_sender && sender) fields.push({ var: 'last-message-sender', value: sender });
      if (m.config.include_body && body) fields.push({ var: 'last-message-body', value: body.slice(0, 256) });
      for (const r of regs) {
        m.send(
          x(
            'iq',
            { type: 'set', from: session.jid.bare, to: r.jid, id: `${ID_PREFIX}${(++ids).toString(36)}.${r.node}` },
            x(
              'pubsub',
              { xmlns: NS_PUBSUB },
              x(
                'publish',
                { node: r.node },
                x('item', null, x('notification', { xmlns: NS }, dataForm('submit', 'urn:xmpp:push:summary', fields))),
              ),
              r.options ? x('publish-options', null, r.options) : undefined,
            ),
          ),
        );
      }
    });
  },
};

export default push;
