// Conformance fixes found by running other projects' test suites and real
// clients against Uzzap (RFC 6120/6121 and XEP details), each over real sockets.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';

const NS_NICK = 'http://jabber.org/protocol/nick';
const NS_PARS = 'urn:xmpp:pars:0';

const rosterPush = (jid: string) => (s: Element) =>
  s.is('iq') && s.attrs.type === 'set' && s.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.jid === jid;
const subPresence = (type: string, from: string) => (s: Element) => s.is('presence') && s.attrs.type === type && s.attrs.from === from;

/** A resource that requested the roster (interested) and/or sent initial presence (available). */
async function resource(server: Server, user: string, resource: string, opts: { interested: boolean; available: boolean }): Promise<XmppClient> {
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
      await expectNothing(d2, subPresence('subscribed', 'carol@localhost'));
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
});

