// Invisible and look-alike room nicks and resources (RFC 7622 §3.4, RFC 8264, RFC 8266,
// XEP-0045 §17.1) over real sockets with @xmpp/client.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { authenticated } from '../helpers/raw.js';
import { connect, expectStanza, iq, stopAll, xml, type XmppClient } from '../helpers/clients.js';
import { MUC, OWNER, SERVICE, codes, errorOf } from '../helpers/muc.js';

let seq = 0;
/** Sends presence to room/nick; resolves with the self-presence or the error that answers it. */
async function enter(c: XmppClient, room: string, nick: string): Promise<Element> {
  const id = `p${++seq}`;
  await c.send(xml('presence', { id, to: `${room}@${SERVICE}/${nick}` }, xml('x', { xmlns: MUC })));
  return expectStanza(
    c,
    (s) => s.is('presence') && (s.attrs.type === 'error' ? s.attrs.id === id : codes(s).includes(110)),
    3000,
    `an answer to ${JSON.stringify(nick)}`,
  );
}

describe('PRECIS: invisible and look-alike nicks and resources', function () {
  let server: Server;
  let alice: XmppClient;
  let bob: XmppClient;

  before(async () => {
    server = await startServer({ users: { alice: 'secret', bob: 'secret', carol: 'secret' } });
    alice = await connect(server, 'alice');
    bob = await connect(server, 'bob');
    const created = await enter(alice, 'masque', 'alice');
    assert.ok(codes(created).includes(201), created.toString());
    const r = await iq(
      alice,
      xml(
        'iq',
        { type: 'set', to: `masque@${SERVICE}` },
        xml('query', { xmlns: OWNER }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      ),
    );
    assert.equal(r.attrs.type, 'result', r.toString());
  });
  after(async () => {
    await stopAll(alice, bob);
    await server?.stop();
  });

  describe('room nicks (XEP-0045 §17.1, RFC 8266)', () => {
    for (const [nick, what] of [
      ['\u{1f916}\ufe0f', 'an emoji with VARIATION SELECTOR-16'],
      ['\u200b', 'a lone ZERO WIDTH SPACE'],
      ['Romeo\u200b', '"Romeo" with a ZERO WIDTH SPACE'],
      ['\u00adalice', '"alice" behind a SOFT HYPHEN'],
    ]) {
      it(`refuses ${what} with jid-malformed (not a valid resourcepart)`, async () => {
        const answer = await enter(bob, 'masque', nick!);
        assert.equal(answer.attrs.type, 'error', answer.toString());
        assert.equal(errorOf(answer), 'jid-malformed', answer.toString());
        // the error comes from the nearest valid address: clients cannot parse the invalid one
        assert.equal(answer.attrs.from, `masque@${SERVICE}`);
      });
    }

    it('refuses a nick that is only spaces with jid-malformed', async () => {
      const answer = await enter(bob, 'masque', '\u3000 ');
      assert.equal(errorOf(answer), 'jid-malformed', answer.toString());
    });

    for (const [nick, canonical] of [
      ['\uff41\uff4c\uff49\uff43\uff45', 'alice'],
      ['alice ', 'alice'],
      ['Richard \u2163', 'Richard IV'],
    ]) {
      it(`refuses ${JSON.stringify(nick)}, which enforces to ${JSON.stringify(canonical)}, with not-acceptable`, async () => {
        const answer = await enter(bob, 'masque', nick!);
        assert.equal(errorOf(answer), 'not-acceptable', answer.toString());
      });
    }

    it('accepts Greek letters and emoji; the others see the newcomers', async () => {
      const greek = await enter(bob, 'masque', '\u03a9\u03bc\u03ad\u03b3\u03b1');
      assert.equal(greek.attrs.type, undefined, greek.toString());
      assert.equal(greek.attrs.from, `masque@${SERVICE}/\u03a9\u03bc\u03ad\u03b3\u03b1`);
      await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === `masque@${SERVICE}/\u03a9\u03bc\u03ad\u03b3\u03b1`);
      const carol = await connect(server, 'carol');
      try {
        const robot = await enter(carol, 'masque', '\u{1f916}');
        assert.equal(robot.attrs.from, `masque@${SERVICE}/\u{1f916}`, robot.toString());
        await expectStanza(alice, (s) => s.is('presence') && s.attrs.from === `masque@${SERVICE}/\u{1f916}`);
      } finally {
        await stopAll(carol);
      }
    });

    it('refuses a nick change to an invisible or look-alike nick, and the occupant stays', async () => {
      // bob is an occupant as Ωμέγα (the test before leaves him so; again is a presence update)
      const joined = await enter(bob, 'masque', '\u03a9\u03bc\u03ad\u03b3\u03b1');
      assert.equal(joined.attrs.type, undefined, joined.toString());
      const invisible = await enter(bob, 'masque', 'alice\u200b');
      assert.equal(errorOf(invisible), 'jid-malformed', invisible.toString());
      const lookalike = await enter(bob, 'masque', '\uff41\uff4c\uff49\uff43\uff45');
      assert.equal(errorOf(lookalike), 'not-acceptable', lookalike.toString());
      // still there under the old nick: a groupchat message comes back from it
      await bob.send(xml('message', { type: 'groupchat', to: `masque@${SERVICE}` }, xml('body', {}, 'still here')));
      const m = await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'still here');
      assert.equal(m.attrs.from, `masque@${SERVICE}/\u03a9\u03bc\u03ad\u03b3\u03b1`);
    });

    it('registering a nickname (§7.10) takes only the Nickname-profile form, as joining does', async () => {
      const carol = await connect(server, 'carol'); // not in the room: her registration changes no presence
      const register = (nick: string) =>
        iq(
          carol,
          xml(
            'iq',
            { type: 'set', to: `masque@${SERVICE}` },
            xml(
              'query',
              { xmlns: 'jabber:iq:register' },
              xml(
                'x',
                { xmlns: 'jabber:x:data', type: 'submit' },
                xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#register')),
                xml('field', { var: 'muc#register_roomnick' }, xml('value', {}, nick)),
              ),
            ),
          ),
        );
      for (const nick of ['\uff22\uff4f\uff42', 'Bob  Builder', 'Bob\u200b']) {
        const r = await register(nick);
        assert.equal(errorOf(r), 'not-acceptable', `${JSON.stringify(nick)}: ${r.toString()}`);
      }
      assert.equal((await register('Bob Builder')).attrs.type, 'result');
      await stopAll(carol);
    });

    it('an invisible nick does not create a room', async () => {
      const refused = await enter(bob, 'spectre', '\u200b');
      assert.equal(errorOf(refused), 'jid-malformed', refused.toString());
      const created = await enter(bob, 'spectre', 'bob');
      assert.ok(codes(created).includes(201), `the room is new: ${created.toString()}`);
    });
  });

  describe('resources (RFC 7622 §3.4, OpaqueString)', () => {
    it('binding a resource with a default-ignorable code point is refused with bad-request (RFC 6120 §7.7.2.1)', async () => {
      const raw = await authenticated(server.ports.c2s, 'alice', 'secret');
      try {
        raw.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone\u200b</resource></bind></iq>`);
        const refused = await raw.waitFor(/<iq[^>]*id=['"]b1['"][\s\S]*?<\/iq>/);
        assert.match(refused, /type=['"]error['"]/);
        assert.match(refused, /<bad-request xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]\/>/);
        // the stream stays open for a resource that is valid
        raw.send(`<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone \u{1f4f1}</resource></bind></iq>`);
        const bound = await raw.waitFor(/<iq[^>]*id=['"]b2['"][\s\S]*?<\/iq>/);
        assert.ok(bound.includes('<jid>alice@localhost/phone \u{1f4f1}</jid>'), bound);
      } finally {
        raw.end();
      }
    });

    it('binds a resource of letters and emoji', async () => {
      const c = await connect(server, 'carol', { resource: '\u03a4\u03b7\u03bb\u03ad\u03c6\u03c9\u03bd\u03bf \u{1f4f1}' });
      try {
        assert.equal(c.jid!.resource, '\u03a4\u03b7\u03bb\u03ad\u03c6\u03c9\u03bd\u03bf \u{1f4f1}');
      } finally {
        await stopAll(c);
      }
    });

    it('a stanza to a resource with an invisible code point bounces with jid-malformed', async () => {
      await alice.send(xml('message', { id: 'zw1', to: 'bob@localhost/phone\u200b' }, xml('body', {}, 'hi')));
      const bounce = await expectStanza(alice, (s) => s.is('message') && s.attrs.id === 'zw1' && s.attrs.type === 'error');
      assert.equal(errorOf(bounce), 'jid-malformed', bounce.toString());
      assert.equal(bounce.attrs.from, 'bob@localhost', 'from the nearest valid address');
    });
  });
});
