// XEP-0077 In-Band Registration: open with UZZAP_REGISTRATION=open (closed by
// default), rate-limited per address; password change and account removal
// for logged-in users. While closed, a stream that gave a valid invitation token
// (XEP-0445, xeps/0401-invites) may register, under the username it names if any.
import {
  x,
  z,
  StanzaError,
  Jid,
  JidError,
  AccountExistsError,
  AccountInputError,
  type Element,
  type XepModule,
} from '../../src/api/index.js';

const NS = 'jabber:iq:register';

const Config = z.object({
  /** new accounts one address may register per window */
  per_address: z.number().int().positive().default(5),
  /** seconds of that window */
  window: z.number().int().positive().default(3600),
});

const MAX_TRACKED = 100_000;

const register: XepModule<z.infer<typeof Config>> = {
  name: 'register',
  xeps: [{ n: 77, version: '2.4', status: 'complete', note: 'register, change password, cancel; closed unless UZZAP_REGISTRATION=open' }],
  config: Config,
  setup(m) {
    const recent = new Map<string, number[]>(); // address -> registration times (bounded)

    // offered with invitations too: clients register with a token only where registration is offered
    m.streamFeature(
      `<register xmlns='http://jabber.org/features/iq-register'/>`,
      0,
      'pre-auth',
      (f) => m.server.registrationOpen() || (f.secure && m.use('invites') !== undefined),
    );
    m.feature(NS);

    const form = (registered?: string): Element =>
      x(
        'query',
        { xmlns: NS },
        registered !== undefined
          ? x('registered')
          : x('instructions', null, 'Choose a username and password to register with this server.'),
        x('username', null, registered ?? undefined),
        x('password'),
      );

    /** XEP-0077 §3.3: a missing field is not-acceptable for registration, bad-request for a password change */
    const fields = (q: Element, missing: 'not-acceptable' | 'bad-request'): { username: string; password: string } => {
      const username = q.getChildText('username');
      const password = q.getChildText('password');
      if (!username || !password) throw new StanzaError(missing, 'username and password are required');
      return { username, password };
    };

    /** accounts registered from an address within the window (only successes count) */
    const recentFrom = (address: string): number[] => {
      const now = Date.now();
      return (recent.get(address) ?? []).filter((t) => now - t < m.config.window * 1000);
    };
    const record = (address: string): void => {
      const times = recentFrom(address);
      times.push(Date.now());
      recent.delete(address);
      recent.set(address, times);
      if (recent.size > MAX_TRACKED) recent.delete(recent.keys().next().value!);
    };

    /** errors never echo the request: it holds a password (XEP-0077 §3.3) */
    const quiet =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        try {
          return await fn(...a);
        } catch (e) {
          if (e instanceof StanzaError) e.echo = false;
          throw e;
        }
      };

    // before authentication: registration of a new account
    m.preAuthIq(
      NS,
      quiet(async (req) => {
        const invites = m.use('invites');
        // an invitation counts with registration open too (its username, its admin flag, its contact)
        const grant = invites?.granted(req.stream);
        if (!m.server.registrationOpen() && !grant) throw new StanzaError('service-unavailable', 'registration is closed');
        if (req.type === 'get') return grant?.username ? form().getChild('username')!.t(grant.username).up() : form();
        if (req.payload.getChild('remove')) throw new StanzaError('not-authorized', 'log in to remove your account');
        const { username, password } = fields(req.payload, 'not-acceptable');
        let local: string;
        try {
          local = Jid.of(username, m.host).local;
        } catch (e) {
          if (e instanceof JidError) throw new StanzaError('not-acceptable', `bad username: ${e.message}`);
          throw e;
        }
        // a taken name is refused before any key derivation (no CPU to burn with endless attempts)
        if (grant?.username && grant.username !== local)
          throw new StanzaError('not-acceptable', 'The chosen username is not valid with this invitation');
        if (await m.storage.accounts.get(local)) throw new StanzaError('conflict', 'that username is taken');
        if (grant?.username !== local && (await invites?.reserved(local)))
          throw new StanzaError('conflict', 'that username is kept for someone who was invited');
        if (recentFrom(req.remoteAddress).length >= m.config.per_address)
          throw new StanzaError('resource-constraint', 'too many registrations from your address; try later');
        // the invitation's use is taken first: two streams cannot both spend its last one
        if (grant && !(await invites!.take(req.stream)))
          throw new StanzaError('item-not-found', 'The provided token is invalid or expired');
        try {
          await m.accounts.create(local, password);
        } catch (e) {
          // the account was not made: the invitation keeps its use (a bad password can be retried)
          if (grant) await invites!.giveBack(req.stream);
          if (e instanceof AccountExistsError) throw new StanzaError('conflict', 'that username is taken');
          if (e instanceof AccountInputError) throw new StanzaError('not-acceptable', e.message);
          throw e;
        }
        record(req.remoteAddress);
        if (grant) {
          // the account exists whatever happens next: a failure here is logged, not answered
          await invites!.redeemed(req.stream, local).catch((err: unknown) => m.log.error({ err, user: local }, 'invitation not applied'));
        }
        m.log.info({ user: local, ip: req.remoteAddress }, 'account registered in-band');
      }),
    );

    // after authentication: form, password change, cancellation
    m.iq({ type: 'get', ns: NS, name: 'query', to: ['bare', 'host'] }, (req) => {
      if (req.to.local && !req.self) throw new StanzaError('forbidden');
      return form(req.from.local);
    });

    m.iq(
      { type: 'set', ns: NS, name: 'query', to: ['bare', 'host'] },
      quiet(async (req) => {
        if (req.to.local && !req.self) throw new StanzaError('forbidden');
        const user = req.from.local;
        if (req.payload.getChild('remove')) {
          if (req.payload.getChildElements().length > 1) throw new StanzaError('bad-request', '<remove/> stands alone');
          // the result goes out first; then the account and every session of it go
          // (sessions are closed with <not-authorized/>, XEP-0077 §3.2)
          setImmediate(() => {
            m.accounts.delete(user).then(
              () => m.log.info({ user }, 'account cancelled in-band'),
              (err: unknown) => m.log.error({ err, user }, 'account removal failed'),
            );
          });
          return;
        }
        const { username, password } = fields(req.payload, 'bad-request');
        let same = false;
        try {
          same = Jid.of(username, m.host).local === user;
        } catch {
          same = false;
        }
        if (!same) throw new StanzaError('not-allowed', 'you can only change your own password');
        try {
          await m.accounts.setPassword(user, password);
        } catch (e) {
          if (e instanceof AccountInputError) throw new StanzaError('not-acceptable', e.message);
          throw e;
        }
      }),
    );
  },
};

export default register;
