// Invitations and onboarding:
//   XEP-0401  ad-hoc commands that make invitations (urn:xmpp:invite#invite for every
//             user: a contact invitation; urn:xmpp:invite#create-account for admins)
//             and the landing page (page.ts) at <web base>/invite/TOKEN;
//   XEP-0445  pre-authenticated in-band registration: <preauth/> with a valid token
//             lets this stream register while registration is otherwise closed
//             (xeps/0077-register asks this module through `invites`);
//   XEP-0379  pre-authenticated roster subscription: a subscribe with the token of
//             a contact invitation of its addressee, or a registration with one, makes
//             the subscription mutual at once.
// Tokens and URIs: invites.ts (also used by `uzzap invite`).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z, dataForm, dateTime, Jid, JidError, StanzaError, type Element, type StoredInvite, type XepModule } from '../../src/api/index.js';
import { NS_PARS, createInvite, inviteId, inviteUri, landingUrl, parseDuration, plausibleToken } from './invites.js';
import { invalidPage, invitePage } from './page.js';

const FORM_TYPE = 'urn:xmpp:invite#invitation';
/** streams that gave a valid token and may register (bounded; a grant lasts as long as a registration takes) */
const MAX_GRANTS = 10_000;
const GRANT_MS = 10 * 60_000;
const MAX_GRANTS_PER_ADDRESS = 20;

const Config = z.object({
  /** seconds an invitation is valid (default 7 days) */
  ttl: z.number().int().positive().default(604_800),
  /** a user's contact invitation also lets the invitee create an account here (admins' always do) */
  users_invite_accounts: z.boolean().default(false),
  /** invitations one user may have open at once (Invite a contact); one more gets resource-constraint */
  max_per_user: z.number().int().positive().default(50),
  /** the public base of the landing page (behind a reverse proxy); empty: the server's own HTTP address */
  landing_base: z.string().default(''),
});

const invites: XepModule<z.infer<typeof Config>> = {
  name: 'invites',
  depends: ['adhoc'],
  xeps: [
    { n: 401, version: '0.6.0', status: 'complete', note: 'ad-hoc invite and create-account, landing page with a QR code, `uzzap invite`' },
    { n: 445, version: '0.2.0', status: 'complete', note: 'registration with a token while registration is closed' },
    { n: 379, version: '0.3.3', status: 'complete', note: 'local contacts: a subscribe or registration with the token makes the subscription mutual' },
  ],
  config: Config,
  setup(m) {
    const grants = new Map<string, { invite: StoredInvite; at: number; address: string }>();
    const base = (): string => m.config.landing_base || m.server.webBase();

    // both namespaces: XEP-0445's, and the older one the clients look for (Conversations, Siskin)
    m.streamFeature(`<register xmlns='urn:xmpp:invite'/><register xmlns='urn:xmpp:ibr-token:0'/>`, 1, 'pre-auth', (f) => f.secure);

    const valid = async (token: string | undefined): Promise<StoredInvite | undefined> => {
      if (!plausibleToken(token)) return undefined;
      const inv = await m.storage.invites.get(inviteId(token));
      return inv && inv.uses > 0 ? inv : undefined;
    };

    // XEP-0445 §3: the token, before registration; checked now, used when the account is made
    m.preAuthIq(NS_PARS, async (req) => {
      if (req.type !== 'set' || req.payload.name !== 'preauth') throw new StanzaError('bad-request');
      const inv = await valid(req.payload.attrs.token);
      if (!inv?.register) throw new StanzaError('item-not-found', 'The provided token is invalid or expired');
      if (!req.secure) throw new StanzaError('policy-violation', 'use TLS first');
      const now = Date.now();
      grants.delete(req.stream);
      // one address cannot crowd out the others' grants
      let fromAddress = 0;
      for (const g of grants.values()) if (g.address === req.remoteAddress && now - g.at < GRANT_MS) fromAddress++;
      if (fromAddress >= MAX_GRANTS_PER_ADDRESS) throw new StanzaError('resource-constraint', 'too many registrations under way from your address', 'wait');
      grants.set(req.stream, { invite: inv, at: now, address: req.remoteAddress });
      for (const [k, g] of grants) {
        if (grants.size <= MAX_GRANTS && now - g.at < GRANT_MS) break;
        grants.delete(k);
      }
    });

    const grantOf = (stream: string): StoredInvite | undefined => {
      const g = grants.get(stream);
      return g && Date.now() - g.at < GRANT_MS ? g.invite : undefined;
    };
    m.provide('invites', {
      granted: (stream) => {
        const inv = grantOf(stream);
        return inv ? { username: inv.username } : undefined;
      },
      reserved: (username) => m.storage.invites.reserved(username),
      take: async (stream) => {
        const inv = grantOf(stream);
        return !!inv && (await m.storage.invites.use(inv.id));
      },
      giveBack: async (stream) => {
        const inv = grantOf(stream);
        if (inv) await m.storage.invites.unuse(inv.id);
      },
      redeemed: async (stream, username) => {
        const inv = grantOf(stream);
        grants.delete(stream);
        if (!inv) return;
        if (inv.admin) await m.storage.accounts.setAdmin(username, true);
        // a contact invitation, or an account invitation whose maker asked for the subscription
        if (inv.inviter) await befriend(inv.inviter, username);
        m.log.info({ user: username, inviter: inv.inviter || undefined }, 'account registered with an invitation');
      },
    });

    const befriend = async (a: string, b: string): Promise<void> => {
      const roster = m.use('roster');
      if (!roster || !(await m.storage.accounts.get(a))) return;
      await roster.befriend(a, `${b}@${m.host}`);
      await roster.befriend(b, `${a}@${m.host}`);
    };

    // XEP-0379: a subscription request carrying the token of its addressee's contact
    // invitation: mutual at once (the request then finds the subscription in place, RFC 6121 §3.1.3)
    m.hook(
      'presence/bare',
      (ev) => {
        const s = ev.stanza;
        const token = s.attrs.type === 'subscribe' ? s.getChild('preauth', NS_PARS)?.attrs.token : undefined;
        if (!plausibleToken(token) || ev.to.domain !== m.host || ev.from.domain !== m.host) return false;
        return (async () => {
          const inv = await valid(token);
          if (inv?.kind !== 'contact' || inv.inviter !== ev.to.local || ev.from.local === ev.to.local) return false;
          if (await m.storage.invites.use(inv.id)) await befriend(inv.inviter, ev.from.local);
          return false;
        })();
      },
      // before the core's own handling (100), which then finds the subscription in place
      200,
    );

    const result = (inv: StoredInvite, token: string): Element =>
      dataForm('result', FORM_TYPE, [
        { var: 'uri', type: 'text-single', label: 'Invitation address', value: inviteUri(m.host, inv, token) },
        { var: 'landing-url', type: 'text-single', label: 'Invitation web page', value: landingUrl(base(), token) },
        { var: 'expire', type: 'text-single', label: 'Valid until', value: dateTime(inv.expiresAt) },
      ]);

    m.command({
      node: 'urn:xmpp:invite#invite',
      name: 'Invite a contact',
      access: 'user',
      stages: [],
      async finish(_s, req) {
        const admin = m.server.isAdmin(req.from);
        if (!admin && (await m.storage.invites.list(req.from.local)).length >= m.config.max_per_user)
          throw new StanzaError('resource-constraint', `you have ${m.config.max_per_user} open invitations already`, 'wait');
        const register = m.config.users_invite_accounts || admin;
        const { token, invite } = await createInvite(m.storage, { kind: 'contact', inviter: req.from.local, register, ttl: m.config.ttl });
        return { form: result(invite, token) };
      },
    });
    // XEP-0401 §3.2: one form (all optional), then the invitation
    interface CreateState {
      username?: string;
      subscribe?: boolean;
      admin?: boolean;
      uses?: number;
      ttl?: number;
    }
    m.command<CreateState>({
      node: 'urn:xmpp:invite#create-account',
      name: 'Create an account invitation',
      access: 'admin',
      stages: [
        {
          form: () =>
            dataForm(
              'form',
              'urn:xmpp:invite#create-account',
              [
                { var: 'username', type: 'text-single', label: 'Username (empty: the invitee chooses)' },
                { var: 'roster-subscription', type: 'boolean', label: 'Add the new account to my contacts', value: false },
                { var: 'admin', type: 'boolean', label: 'The new account is a server administrator', value: false },
                { var: 'uses', type: 'text-single', label: 'Accounts it can create', value: 1 },
                { var: 'expire', type: 'text-single', label: 'Valid for (30m, 12h, 7d, 2w)', value: '7d' },
              ],
              { title: 'Invite someone to create an account' },
            ),
          submit(form, state, req) {
            const username = form.text('username')?.trim();
            if (username) {
              try {
                state.username = Jid.of(username.replace(/@.*$/, ''), m.host).local;
              } catch (e) {
                if (e instanceof JidError) throw new StanzaError('bad-request', `bad username: ${e.message}`);
                throw e;
              }
            }
            state.subscribe = form.bool('roster-subscription') ?? false;
            if (state.subscribe && req.from.domain !== m.host) throw new StanzaError('bad-request', 'only a local account can be subscribed');
            state.admin = form.bool('admin') ?? false;
            const uses = Number(form.text('uses') ?? '1');
            if (!Number.isInteger(uses) || uses < 1 || uses > 10_000) throw new StanzaError('bad-request', '"uses" must be a whole number from 1 to 10000');
            state.uses = uses;
            const ttl = parseDuration(form.text('expire') ?? '7d');
            if (ttl === undefined) throw new StanzaError('bad-request', '"expire" must be a duration such as 7d, 12h or 30m');
            state.ttl = ttl;
          },
        },
      ],
      async finish(st, req) {
        const { token, invite } = await createInvite(m.storage, {
          kind: 'account',
          inviter: st.subscribe ? req.from.local : '',
          username: st.username,
          admin: st.admin,
          uses: st.uses,
          ttl: st.ttl ?? m.config.ttl,
        });
        return { form: result(invite, token) };
      },
    });

    m.http('/invite/', (req: IncomingMessage, res: ServerResponse, path: string) =>
      landing(path.slice('/invite/'.length), res).catch((err: unknown) => {
        m.log.warn({ err }, 'invitation page failed');
        if (!res.headersSent) res.writeHead(500).end();
      }),
    );
    const landing = async (token: string, res: ServerResponse): Promise<void> => {
      const headers = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'X-Content-Type-Options': 'nosniff' };
      const inv = await valid(token);
      if (!inv) {
        res.writeHead(404, { ...headers, 'Content-Type': 'text/html; charset=utf-8' }).end(invalidPage(m.host));
        return;
      }
      const uri = inviteUri(m.host, inv, token);
      const html = invitePage({ domain: m.host, inviter: inv.inviter, uri, pageUrl: landingUrl(base(), token), expiresAt: inv.expiresAt, kind: inv.kind });
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8', Link: `<${uri}>; rel="alternate"` }).end(html);
    };
  },
};

export default invites;
