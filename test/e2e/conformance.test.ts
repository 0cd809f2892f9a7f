// Conformance fixes found by running other projects' test suites and real
// clients against Uzzap (RFC 6120/6121 and XEP details), each over real sockets.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { rawSession } from '../helpers/raw.js';

const NS_NICK = 'http://jabber.org/protocol/nick';
const NS_PARS = 'urn:xmpp:pars:0';

const rosterPush = (jid: string) => (s: Element) =>
  s.is('iq') && s.attrs.type === 'set' && s.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.jid === jid;
const subPresence = (type: string, from: string) => (s: Element) => s.is('presence') && s.attrs.type === type && s.attrs.from === from;

/** A resource that requested the roster (interested) and/or sent initial presence (available). */
async function resource(
  server: Server,
  user: string,
  resource: string,
  opts: { interested: boolean; available: boolean },
): Promise<XmppClient> {
  const c = await connect(server, user, { resource, presence: false });
  if (opts.interested) await iq(c, xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  if (opts.available) {
    await c.send(xml('presence'));
    // its own presence comes back once the server has processed it
    await expectStanza(c, (s) => s.is('presence') && s.attrs.from === `${user}@localhost/${resource}` && !s.attrs.type);
  }
  return c;
}

/** Position of the first stanza matching pred in what the client received so far. */
const indexOf = (c: XmppClient, pred: (s: Element) => boolean): number => c.received.findIndex(pred);

describe('conformance (e2e)', () => {
  let server: Server;
  before(async () => {
    server = await startServer({
      users: { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret', erin: 'secret', frank: 'secret' },
    });
  });
  after(() => server.stop());

  describe('RFC 6121 subscriptions', () => {
    it('a subscription request sent while the contact is offline is replayed whole at their next login (§3.1.3)', async () => {
      const alice = await connect(server, 'alice');
      await alice.send(
        xml(
          'presence',
          { to: 'bob@localhost', type: 'subscribe', id: 'sub-offline-1' },
          xml('nick', { xmlns: NS_NICK }, 'Alice A.'),
          xml('preauth', { xmlns: NS_PARS, token: 'invite-token-42' }),
        ),
      );
      await until(async () => (await server.storage.roster.pending('bob')).length === 1, 'the request is stored');
      const bob = await connect(server, 'bob');
      const req = await expectStanza(bob, subPresence('subscribe', 'alice@localhost'));
      assert.equal(req.getChildText('nick', NS_NICK), 'Alice A.', 'the XEP-0172 nick is kept');
      assert.equal(req.getChild('preauth', NS_PARS)?.attrs.token, 'invite-token-42', 'the XEP-0379 token is kept');
      assert.equal(req.attrs.id, 'sub-offline-1');
      await stopAll(alice, bob);
    });

    it('an approval reaches the interested resources before its roster push, and not the uninterested ones (§3.1.6)', async () => {
      const carol = await connect(server, 'carol');
      const d1 = await resource(server, 'dave', 'both', { interested: true, available: true });
      const d2 = await resource(server, 'dave', 'available-only', { interested: false, available: true });
      const d3 = await resource(server, 'dave', 'interested-only', { interested: true, available: false });
      await d1.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
      await expectStanza(carol, subPresence('subscribe', 'dave@localhost'));
      await expectStanza(d1, rosterPush('carol@localhost')); // the ask='subscribe' push
      await expectStanza(d3, rosterPush('carol@localhost'));
      await carol.send(xml('presence', { to: 'dave@localhost', type: 'subscribed' }));
      for (const d of [d1, d3]) {
        await expectStanza(d, rosterPush('carol@localhost'));
        const presence = indexOf(d, subPresence('subscribed', 'carol@localhost'));
        assert.ok(presence >= 0, 'the interested resource got the approval');
        // the push was already taken out of received: anything left before it would be out of order
        assert.ok(presence < indexOf(d, rosterPush('carol@localhost')) || indexOf(d, rosterPush('carol@localhost')) < 0);
      }
      await expectNothing(d2, subPresence('subscribed', 'carol@localhost'), { after: [carol] });
      await stopAll(carol, d1, d2, d3);
    });

    it('approval, cancellation and unsubscription each arrive before their roster push', async () => {
      const erin = await resource(server, 'erin', 'r', { interested: true, available: true });
      const frank = await resource(server, 'frank', 'r', { interested: true, available: true });
      const pushed = (c: XmppClient, jid: string, sub: string, ask?: string) =>
        expectStanza(c, (s) => {
          const item = rosterPush(jid)(s) ? s.getChild('query')!.getChild('item')! : undefined;
          return !!item && item.attrs.subscription === sub && item.attrs.ask === ask;
        });
      /** the next subscription presence of `type` arrives before the next push about `jid` */
      const inOrder = async (c: XmppClient, type: string, from: string, jid: string): Promise<void> => {
        const first = await expectStanza(c, (s) => subPresence(type, from)(s) || rosterPush(jid)(s), 3000, `${type} or push`);
        assert.ok(first.is('presence'), `${type} came after its roster push: ${first.toString()}`);
        await expectStanza(c, rosterPush(jid));
      };
      await erin.send(xml('presence', { to: 'frank@localhost', type: 'subscribe' }));
      await pushed(erin, 'frank@localhost', 'none', 'subscribe');
      await expectStanza(frank, subPresence('subscribe', 'erin@localhost'));
      await frank.send(xml('presence', { to: 'erin@localhost', type: 'subscribed' }));
      await inOrder(erin, 'subscribed', 'frank@localhost', 'frank@localhost');
      await pushed(frank, 'erin@localhost', 'from');
      // frank cancels erin's subscription: erin is told before her roster changes (§3.2.3)
      await frank.send(xml('presence', { to: 'erin@localhost', type: 'unsubscribed' }));
      await inOrder(erin, 'unsubscribed', 'frank@localhost', 'frank@localhost');
      await pushed(frank, 'erin@localhost', 'none');
      // erin subscribes again, then unsubscribes: frank is told before his roster changes (§3.3.3)
      await erin.send(xml('presence', { to: 'frank@localhost', type: 'subscribe' }));
      await expectStanza(frank, subPresence('subscribe', 'erin@localhost'));
      await frank.send(xml('presence', { to: 'erin@localhost', type: 'subscribed' }));
      await pushed(frank, 'erin@localhost', 'from');
      await erin.send(xml('presence', { to: 'frank@localhost', type: 'unsubscribe' }));
      await inOrder(frank, 'unsubscribe', 'erin@localhost', 'erin@localhost');
      await stopAll(erin, frank);
    });
  });
  describe('what clients look for on the server', () => {
    const info = async (c: XmppClient, to: string): Promise<Set<string>> => {
      const r = await iq(c, xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      assert.equal(r.attrs.type, 'result');
      return new Set(
        r
          .getChild('query')!
          .getChildren('feature')
          .map((f: Element) => f.attrs.var as string),
      );
    };

    it("the server's disco#info lists vcard-temp, private storage and MAM, as its accounts' do (XEP-0054 §5)", async () => {
      const alice = await connect(server, 'alice');
      for (const jid of ['localhost', 'alice@localhost']) {
        const features = await info(alice, jid);
        for (const f of ['vcard-temp', 'jabber:iq:private', 'urn:xmpp:mam:2']) assert.ok(features.has(f), `${jid} lacks ${f}`);
      }
      await stopAll(alice);
    });

    it("the server answers Gajim's server-info queries: software version and uptime", async () => {
      const alice = await connect(server, 'alice');
      const version = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal(version.attrs.type, 'result');
      assert.equal(version.getChild('query')!.getChildText('name'), 'Uzzap');
      assert.match(version.getChild('query')!.getChildText('version') ?? '', /^\d+\.\d+/);
      const uptime = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
      assert.equal(uptime.attrs.type, 'result');
      assert.match(uptime.getChild('query')!.attrs.seconds, /^\d+$/);
      await stopAll(alice);
    });
  });

  describe('XEP-0012 last activity', () => {
    it("one's own account while connected but unavailable is active now: seconds='0' (§3)", async () => {
      const alice = await connect(server, 'alice', { presence: false });
      const r = await iq(alice, xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'jabber:iq:last' })));
      assert.equal(r.attrs.type, 'result', r.toString());
      assert.equal(r.getChild('query')!.attrs.seconds, '0');
      await stopAll(alice);
    });

    it('a query to a full JID reaches that client, which answers it (§4), whoever asks', async () => {
      const alice = await connect(server, 'alice', { resource: 'laptop' });
      const carol = await connect(server, 'carol'); // not subscribed to alice
      alice.iqCallee.get('jabber:iq:last', 'query', () => xml('query', { xmlns: 'jabber:iq:last', seconds: '42' }));
      const r = await iq(carol, xml('iq', { type: 'get', to: 'alice@localhost/laptop' }, xml('query', { xmlns: 'jabber:iq:last' })));
      assert.equal(r.attrs.type, 'result', r.toString());
      assert.equal(r.attrs.from, 'alice@localhost/laptop');
      assert.equal(r.getChild('query')!.attrs.seconds, '42', "the client's own answer");
      await stopAll(alice, carol);
    });
  });

  describe("the stream's xml:lang (RFC 6120 §4.7.4)", () => {
    it('is stamped on stanzas that lack one, in delivery and in the archive; an explicit one is kept', async () => {
      const alice = await connect(server, 'alice', { lang: 'de' });
      const bob = await connect(server, 'bob');
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'lang-1' }, xml('body', {}, 'Guten Tag')));
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'lang-2', 'xml:lang': 'fr' }, xml('body', {}, 'Bonjour')));
      const de = await expectStanza(bob, (s) => s.is('message') && s.getChildText('body') === 'Guten Tag');
      assert.equal(de.attrs['xml:lang'], 'de');
      const fr = await expectStanza(bob, (s) => s.is('message') && s.getChildText('body') === 'Bonjour');
      assert.equal(fr.attrs['xml:lang'], 'fr');
      // bob's archive keeps the language too
      const MAM = 'urn:xmpp:mam:2';
      let archived: Element | undefined;
      await until(async () => {
        bob.received.length = 0;
        const r = await iq(bob, xml('iq', { type: 'set' }, xml('query', { xmlns: MAM, queryid: 'lq' })));
        assert.equal(r.attrs.type, 'result');
        archived = bob.received
          .map((m) => m.getChild('result', MAM)?.getChild('forwarded')?.getChild('message'))
          .find((m) => m?.getChildText('body') === 'Guten Tag');
        return archived !== undefined;
      }, 'the message is archived');
      assert.equal(archived!.attrs['xml:lang'], 'de');
      await stopAll(alice, bob);
    });
  });
  describe('metrics', () => {
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    const gauge = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

    it('uzzap_sessions stays equal to the bound sessions when a dropped client logs in again with the same resource', async () => {
      const before = server.sessions.size;
      const phone = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
      phone.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`);
      await phone.waitFor(/<enabled[^>]*\/>/);
      phone.socket.destroy(); // the phone leaves coverage: its session waits, detached
      await until(() => [...server.sessions.all()].some((s) => s.jid.resource === 'phone' && s.detached), 'the session is detached');
      const again = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone'); // a fresh login, same resource
      await until(() => server.sessions.size === before + 1, 'one session for alice/phone');
      assert.equal(gauge(await scrape(), 'uzzap_sessions'), server.sessions.size);
      again.socket.destroy();
      await until(
        () => server.sessions.size === before || [...server.sessions.all()].every((s) => s.jid.resource !== 'phone' || s.detached),
        'gone',
      );
      assert.equal(gauge(await scrape(), 'uzzap_sessions'), server.sessions.size);
    });

    it('event-loop lag reads the lag, not the 20 ms sampling interval', async () => {
      await scrape(); // starts a fresh measurement
      await new Promise((r) => setTimeout(r, 300)); // an idle stretch to measure (not a wait for a condition)
      const mean = Number(/^uzzap_event_loop_lag_seconds\{stat="mean"\} (\S+)$/m.exec(await scrape())?.[1]);
      assert.ok(mean >= 0 && mean < 0.015, `idle mean lag ${mean} s`);
      const stats = await server.stats();
      assert.ok(stats.eventLoopLagMs.mean < 15, `idle mean lag in /status ${stats.eventLoopLagMs.mean} ms`);
    });
  });
});
