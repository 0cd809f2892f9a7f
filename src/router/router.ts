// Routing per RFC 6120 §10 and RFC 6121 §8: classify the destination (remote,
// service, host, bare, full), give hooks a chance, then deliver or answer with
// the right error. Synchronous unless a hook or IQ handler is asynchronous;
// the returned promise (if any) lets the origin session keep its stanzas in order.
import type { Logger } from 'pino';
import { Element, serialize } from '../xml/index.js';
import { Jid, tryJid } from '../jid.js';
import { StanzaError, errorReply } from '../api/errors.js';
import type { DeliveryMeta, Hooks, IqRequest, IqTarget, ServiceHandler, StanzaEvent } from '../api/module.js';
import type { HookBus } from './hooks.js';
import type { IqTable } from './iq-table.js';
import type { SessionTable } from '../session/table.js';
import type { LocalSession } from '../session/types.js';
import type { Metrics } from '../metrics.js';
import { Fanout, type RemoteFanout } from './fanout.js';
import { ServerRequests } from './requests.js';

export type Pending = void | Promise<void>;

/** IQs the server may wait on at once (XEP-0115 queries), and how long each may wait */
const SERVER_REQUESTS_MAX = 10_000;
const SERVER_REQUEST_TIMEOUT_MS = 10_000;

const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

export class Router {
  readonly services = new Map<string, ServiceHandler>();

  constructor(
    private readonly host: string,
    private readonly sessions: SessionTable<LocalSession>,
    private readonly hooks: HookBus,
    private readonly iqs: IqTable,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.fan = new Fanout(host, sessions, hooks, log, this);
    this.requests = new ServerRequests((iq) => this.settle(this.send(iq)), { max: SERVER_REQUESTS_MAX, timeoutMs: SERVER_REQUEST_TIMEOUT_MS });
  }

  /** IQs the server sent and waits on (answers come back here, addressed to the server) */
  readonly requests: ServerRequests;

  private readonly fan: Fanout;

  /**
   * A stanza from a bound local client; 'from' has been stamped with its full JID.
   * `to` is its 'to' attribute parsed, when the stream had it at hand (c2s.ts keeps the
   * last one per stream: a chat goes to the same address stanza after stanza).
   */
  fromClient(stanza: Element, from: Jid, origin: LocalSession, to?: Jid): Pending {
    if (stanza.name === 'presence' && this.hooks.has('presence/sent'))
      return this.hooked('presence/sent', [{ stanza, from, to: to ?? tryJid(stanza.attrs.to) ?? from.toBare(), origin }], () =>
        this.fromClientRouted(stanza, from, origin, to),
      );
    return this.fromClientRouted(stanza, from, origin, to);
  }

  private fromClientRouted(stanza: Element, from: Jid, origin: LocalSession, parsed: Jid | undefined): Pending {
    const toAttr = stanza.attrs.to;
    if (toAttr === undefined || toAttr === '') {
      if (stanza.name === 'presence') return this.broadcastPresence(stanza, from, origin);
      // RFC 6120 §10.3.3: no 'to' means the user's own account.
      return this.route(stanza, from, from.toBare(), origin);
    }
    const to = parsed ?? tryJid(toAttr);
    if (!to) {
      // the error cannot come from an address that is not a JID (clients fail to parse
      // it: slixmpp drops its connection): it comes from the nearest valid one
      stanza.attrs.to = nearestJid(toAttr, this.host);
      return this.bounce(stanza, new StanzaError('jid-malformed', 'invalid "to" address'));
    }
    if (stanza.name !== 'message') return this.route(stanza, from, to, origin);
    return this.hooked('message/sent', [{ stanza, from, to, origin }], () => this.route(stanza, from, to, origin));
  }

  /**
   * Run `event`'s hooks, then, unless one of them claimed the stanza, `next`:
   * synchronously when every hook was (no promise on the common path).
   */
  private hooked<E extends keyof Hooks>(event: E, args: Parameters<Hooks[E]>, next: () => Pending): Pending {
    if (!this.hooks.has(event)) return next();
    const h = this.hooks.run(event, ...args);
    if (h === true) return;
    return h instanceof Promise ? h.then((done) => (done ? undefined : next())) : next();
  }

  /** Route a stanza whose addresses are known (from a client, a module or a service). */
  route(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    if (to.domain !== this.host) {
      if (origin && stanza.name === 'presence') {
        const type = stanza.attrs.type ?? '';
        if (SUBSCRIPTION_TYPES.has(type))
          // a user's subscription stanza to a contact elsewhere: roster state first (RFC 6121 §3), which sends it on
          return this.hooked('presence/bare', [{ stanza, from, to: to.toBare(), origin }], () => this.toService(stanza, from, to));
        if ((type === '' || type === 'unavailable') && !this.isLocal(to.domain))
          // directed presence to an entity of another server (a contact, a room there): remembered
          // by the IM module (RFC 6121 §4.6), so that it gets the user's unavailable at the end
          return this.hooked(to.resource ? 'presence/full' : 'presence/bare', [{ stanza, from, to, origin }], () =>
            this.toService(stanza, from, to),
          );
      }
      return this.toService(stanza, from, to);
    }
    if (to.local !== '' && this.hooks.has('route/user')) {
      let h: boolean | Promise<boolean>;
      try {
        h = this.hooks.run('route/user', { stanza, from, to, origin });
      } catch {
        return this.undecided(stanza, origin);
      }
      if (h === true) return;
      if (h instanceof Promise)
        return h.then(
          (done) => (done ? undefined : this.dispatch(stanza, from, to, origin)),
          () => this.undecided(stanza, origin),
        );
    }
    return this.dispatch(stanza, from, to, origin);
  }

  /**
   * 'route/user' (blocking) failed: the stanza is refused, not delivered unchecked (fail
   * closed). The error goes straight to the sending session: routed, it would meet the
   * same failing check.
   */
  private undecided(stanza: Element, origin?: LocalSession): void {
    const type = stanza.attrs.type;
    if (!origin || type === 'error' || (stanza.name === 'iq' && type === 'result')) return;
    const err = new StanzaError('internal-server-error', 'could not check whether this may be delivered; try again later', 'wait');
    this.deliver(errorReply(stanza, err), [origin]);
  }

  /** where a stanza for another server goes (federation, src/s2s/); unset: it is bounced */
  remote: ((stanza: Element, from: Jid, to: Jid) => void) | undefined;

  private toService(stanza: Element, from: Jid, to: Jid): Pending {
    const service = this.services.get(to.domain) ?? this.parentService(to.domain);
    if (service) return service(stanza, from, to);
    // another server's: federation, unless the sender is not ours (no relaying, RFC 6120 §10.4)
    if (this.remote && this.isLocal(from.domain)) return this.remote(stanza, from, to);
    return this.bounce(stanza, new StanzaError('remote-server-not-found', `no route to ${to.domain}`));
  }

  /** our domain, or one of our services' */
  isLocal(domain: string): boolean {
    return domain === this.host || this.services.has(domain) || this.parentService(domain) !== undefined;
  }

  private dispatch(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    switch (stanza.name) {
      case 'message':
        return to.local === ''
          ? this.messageToHost(stanza, from, to, origin)
          : to.resource
            ? this.messageToFull(stanza, from, to, origin)
            : this.messageToBare(stanza, from, to, origin);
      case 'presence':
        return to.local === ''
          ? this.presenceToHost(stanza, from, to, origin)
          : to.resource
            ? this.presenceToFull(stanza, from, to, origin)
            : this.presenceToBare(stanza, from, to, origin);
      case 'iq':
        return this.iq(stanza, from, to, origin);
      default:
        return;
    }
  }

  /** Route a server- or module-originated stanza by its attributes. */
  send(stanza: Element): Pending {
    const from = tryJid(stanza.attrs.from) ?? Jid.parse(this.host);
    const to = tryJid(stanza.attrs.to);
    if (!to) return void this.log.warn({ to: stanza.attrs.to }, 'dropping stanza from a module with a bad "to"');
    return this.route(stanza, from, to);
  }

  // ---- messages (RFC 6121 §8.5) ----

  private messageToBare(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    const ev: StanzaEvent = { stanza, from, to, origin };
    return this.hooked('message/bare', [ev], () => this.deliverToBare(ev));
  }

  private deliverToBare(ev: StanzaEvent): Pending {
    const { stanza, to } = ev;
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'error') return;
    if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
    const targets: LocalSession[] = [];
    if (type === 'headline') {
      for (const s of this.sessions.resources(to.bare)) if (s.available && s.priority >= 0) targets.push(s);
    } else {
      // chat/normal: the available resource(s) with the highest non-negative priority
      let best = 0;
      for (const s of this.sessions.resources(to.bare)) {
        if (!s.available || s.priority < best) continue;
        if (s.priority > best) {
          best = s.priority;
          targets.length = 0;
        }
        targets.push(s);
      }
    }
    if (targets.length) return this.deliverMessage(ev, targets);
    if (type === 'headline') return;
    const h = this.hooks.run('message/undelivered', ev);
    const fallback = (done: boolean): void => {
      if (!done) this.bounce(stanza, new StanzaError('service-unavailable'));
    };
    return h instanceof Promise ? h.then(fallback) : fallback(h);
  }

  private messageToFull(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    const s = this.sessions.get(to.bare, to.resource);
    if (s) {
      const ev = { stanza, from, to, origin };
      return this.hooked('message/full', [ev], () => this.deliverMessage(ev, [s]));
    }
    // RFC 6121 §8.5.3.2.1: no such resource. A chat message goes on as if to the bare JID
    // (another resource, or offline storage); normal ones get service-unavailable (the
    // sender learns it did not arrive); headline and groupchat are ignored, errors too.
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'chat') return this.messageToBare(stanza, from, to.toBare(), origin);
    if (type === 'normal') this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  private messageToHost(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    return this.hooked('message/host', [{ stanza, from, to, origin }], () => {
      const type = stanza.attrs.type ?? 'normal';
      if (type === 'normal' || type === 'chat') this.bounce(stanza, new StanzaError('service-unavailable'));
    });
  }

  // ---- presence (RFC 6121 §4, §3) ----

  private broadcastPresence(stanza: Element, from: Jid, origin: LocalSession): Pending {
    return this.hooked('presence/broadcast', [{ stanza, from, to: from.toBare(), origin }], () => {
      const type = stanza.attrs.type;
      if (type !== undefined && type !== 'unavailable') return;
      // the user's own available resources, the sender included (RFC 6121 §4.2.2)
      const targets: LocalSession[] = [];
      for (const s of this.sessions.resources(from.bare)) if (s.available || s === origin) targets.push(s);
      if (targets.length) this.deliver(stanza, targets);
    });
  }

  private presenceToBare(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    return this.hooked('presence/bare', [{ stanza, from, to, origin }], () => {
      const type = stanza.attrs.type;
      if (type === 'probe' || type === 'error') return; // probes are answered by the server (IM module)
      const targets: LocalSession[] = [];
      for (const s of this.sessions.resources(to.bare)) if (s.available) targets.push(s);
      if (targets.length) this.deliver(stanza, targets);
    });
  }

  private presenceToFull(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    const s = this.sessions.get(to.bare, to.resource);
    const type = stanza.attrs.type ?? '';
    if (!s) return SUBSCRIPTION_TYPES.has(type) ? this.presenceToBare(stanza, from, to.toBare(), origin) : undefined;
    return this.hooked('presence/full', [{ stanza, from, to, origin }], () => this.deliver(stanza, [s]));
  }

  private presenceToHost(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    return this.hooked('presence/host', [{ stanza, from, to, origin }], () => undefined);
  }

  // ---- IQ (RFC 6120 §8.2.3) ----

  private iq(stanza: Element, from: Jid, to: Jid, origin?: LocalSession): Pending {
    const type = stanza.attrs.type;
    if (type === 'result' || type === 'error') {
      // responses are delivered if addressed to a session, never bounced
      if (!to.local && !to.resource) {
        this.requests.answer(stanza, from.full);
        return;
      }
      if (to.local && to.resource) {
        const s = this.sessions.get(to.bare, to.resource);
        if (s) this.deliver(stanza, [s]);
      }
      return;
    }
    if (type !== 'get' && type !== 'set')
      return this.bounce(stanza, new StanzaError('bad-request', 'IQ type must be get, set, result or error'));
    if (!stanza.attrs.id) return this.bounce(stanza, new StanzaError('bad-request', 'IQ without id'));
    const children = stanza.getChildElements();
    if (children.length !== 1) return this.bounce(stanza, new StanzaError('bad-request', 'IQ get/set must have exactly one child'));
    const payload = children[0]!;
    const target: IqTarget = to.local === '' ? 'host' : to.resource ? 'full' : 'bare';
    if (target === 'full') {
      const s = this.sessions.get(to.bare, to.resource);
      const handler = this.iqs.find(type, payload.getNS() ?? '', payload.name, 'full');
      if (!handler) {
        if (s) return this.deliver(stanza, [s]);
        return this.bounce(stanza, new StanzaError('service-unavailable'));
      }
    }
    const entry = this.iqs.find(type, payload.getNS() ?? '', payload.name, target);
    if (!entry) return this.bounce(stanza, new StanzaError('service-unavailable'));
    const req: IqRequest = { stanza, type, payload, from, to, self: target === 'bare' && to.bare === from.bare, origin };
    let out: ReturnType<typeof entry.handle>;
    try {
      out = entry.handle(req);
    } catch (e) {
      return this.iqFailed(stanza, e, entry.owner);
    }
    if (out instanceof Promise) {
      return out.then(
        (r) => this.iqResult(stanza, r),
        (e: unknown) => this.iqFailed(stanza, e, entry.owner),
      );
    }
    return this.iqResult(stanza, out);
  }

  private iqResult(stanza: Element, payload: Element | void): void {
    // A request without 'to' went to the user's own account: the reply carries no 'from'.
    const res = new Element('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from });
    if (payload) res.children.push(payload);
    this.settle(this.reply(res));
  }

  private iqFailed(stanza: Element, e: unknown, owner: string): void {
    if (e instanceof StanzaError) return this.bounce(stanza, e);
    this.log.error({ err: e, module: owner, stanza: stanza.toString().slice(0, 2000) }, 'IQ handler failed');
    this.bounce(stanza, new StanzaError('internal-server-error'));
  }

  /** A message that reached no session (e.g. never acknowledged before its session ended): offline storage. */
  /** true when a hook (offline storage) took it */
  undeliverable(stanza: Element, from: Jid, to: Jid): Promise<boolean> {
    const h = this.hooks.run('message/undelivered', { stanza, from, to });
    return Promise.resolve(h).then(
      (done) => done === true,
      (err: unknown) => {
        this.log.error({ err }, 'storing an undelivered message failed');
        return false;
      },
    );
  }

  // ---- delivery ----

  /** Answer a stanza with an error, unless it is itself an error (or an IQ response). */
  bounce(stanza: Element, err: StanzaError): void {
    const type = stanza.attrs.type;
    if (type === 'error' || (stanza.name === 'iq' && type === 'result')) return;
    if (!stanza.attrs.from) return;
    this.settle(this.reply(errorReply(stanza, err)));
  }

  /** A reply's routing may finish later; its failure is logged, never an unhandled rejection. */
  private settle(p: Pending): void {
    if (p) p.catch((err: unknown) => this.log.error({ err }, 'routing a reply failed'));
  }

  /** Route a reply: its 'to' is a stamped sender, its 'from' may be absent (own account). */
  private reply(stanza: Element): Pending {
    if (stanza.attrs.from === undefined) delete stanza.attrs.from;
    const to = tryJid(stanza.attrs.to);
    if (!to) return;
    const from = tryJid(stanza.attrs.from) ?? to.toBare();
    return this.route(stanza, from, to);
  }

  private deliverMessage(ev: StanzaEvent, targets: LocalSession[]): Pending {
    this.deliver(ev.stanza, targets);
    if (!this.hooks.has('message/delivered')) return;
    const h = this.hooks.run('message/delivered', ev, targets);
    return h instanceof Promise ? h.then(() => undefined) : undefined;
  }

  /** Hand a stanza to local sessions, serialised once for all of them. */
  deliver(stanza: Element, targets: readonly LocalSession[], meta?: DeliveryMeta): void {
    const kind = stanza.name as 'message' | 'presence' | 'iq';
    // a message to a bare JID that several resources get: each one's unacknowledged
    // copy knows the others had it too (session end: src/session/manager.ts offline())
    const peers = kind === 'message' && targets.length > 1 && !stanza.attrs.to?.includes('/') ? targets : undefined;
    if (this.hooks.has('stanza/out')) {
      for (const session of targets) {
        const h = this.hooks.run('stanza/out', { stanza, session });
        if (h === true) continue;
        if (h instanceof Promise) void h.then((drop) => drop || session.sendSerialized(stanza.toString(), kind, peers, meta));
        else session.sendSerialized(stanza.toString(), kind, peers, meta);
      }
      return;
    }
    // the archive (xeps/0313-mam) serialised it already, unchanged since
    const xml = serialize(stanza);
    for (const s of targets) s.sendSerialized(xml, kind, peers, meta);
  }

  /** In a cluster: copies of a fan-out for other nodes go once per node (src/cluster/cluster.ts). */
  set remoteFanout(r: RemoteFanout | undefined) {
    this.fan.remote = r;
  }

  /** One stanza to many full JIDs (MUC fan-out): see fanout.ts. */
  fanout(stanza: Element, targets: readonly Jid[]): void {
    this.fan.send(stanza, targets);
  }

  private parentService(domain: string): ServiceHandler | undefined {
    // a component owns its subdomains too (XEP-0114 deployments route *.bridge.example)
    for (let i = domain.indexOf('.'); i !== -1; i = domain.indexOf('.', i + 1)) {
      const s = this.services.get(domain.slice(i + 1));
      if (s && domain.slice(i + 1) !== this.host) return s;
    }
    return undefined;
  }
}

/** The nearest valid JID to a malformed address: its bare part, its domain, else ours. */
function nearestJid(addr: string, host: string): string {
  const slash = addr.indexOf('/');
  const bare = slash === -1 ? addr : addr.slice(0, slash);
  const at = bare.lastIndexOf('@');
  return tryJid(bare)?.bare ?? (at !== -1 ? tryJid(bare.slice(at + 1))?.bare : undefined) ?? host;
}
