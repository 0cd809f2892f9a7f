// Bad input gets its exact stream error, closes only that stream, and the
// other users keep chatting undisturbed (RFC 6120 §4.9.3, §11).
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { connect, expectNothing, expectStanza, isMessage, stopAll, xml, type XmppClient } from '../helpers/clients.js';
import { HEADER, RawClient, rawSession } from '../helpers/raw.js';

const streamError = (cond: string) => new RegExp(`<stream:error><${cond} xmlns=.urn:ietf:params:xml:ns:xmpp-streams.\\/>`);

describe('bad input (e2e)', () => {
  let server: Server;
  let alice: XmppClient, bob: XmppClient;
  let n = 0;

  before(async () => {
    server = await startServer({
      users: { alice: 'secret', bob: 'secret', mallory: 'secret' },
      config: { max_stanza_size: 65536, c2s: { preauth_timeout: 1 } },
    });
    alice = await connect(server, 'alice', { resource: 'a' });
    bob = await connect(server, 'bob', { resource: 'b' });
  });
  after(async () => {
    await stopAll(alice, bob);
    await server.stop();
  });

  /** alice and bob still talk, both ways, after each probe */
  async function stillChatting(): Promise<void> {
    const body = `still here ${++n}`;
    await alice.send(xml('message', { to: 'bob@localhost/b', type: 'chat' }, xml('body', {}, body)));
    await expectStanza(bob, isMessage(body));
    await bob.send(xml('message', { to: 'alice@localhost/a', type: 'chat' }, xml('body', {}, body)));
    await expectStanza(alice, isMessage(body));
  }

  async function probePreAuth(payload: string, cond: string, header = HEADER()): Promise<string> {
    const c = await RawClient.connect(server.ports.c2s);
    c.send(header + payload);
    await c.waitFor(streamError(cond));
    await c.waitFor('</stream:stream>');
    await c.waitClosed();
    await stillChatting();
    return c.data;
  }

  async function probeBound(payload: string, cond: string): Promise<void> {
    const c = await rawSession(server.ports.c2s, 'mallory', 'secret', `m${++n}`);
    c.send(payload);
    await c.waitFor(streamError(cond));
    await c.waitClosed();
    await stillChatting();
  }

  it('malformed XML -> <not-well-formed/>', async () => {
    await probePreAuth('<message><body>x</message>', 'not-well-formed');
    await probePreAuth('<<<>>>', 'not-well-formed');
    await probeBound("<message to='bob@localhost'><body>unclosed</bodyy></message>", 'not-well-formed');
  });

  it('DOCTYPE / entity declarations -> <restricted-xml/> without expansion', async () => {
    const c = await RawClient.connect(server.ports.c2s);
    c.send(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>`);
    await c.waitFor(streamError('restricted-xml'));
    await c.waitClosed();
    await stillChatting();
    await probeBound("<message to='bob@localhost'><body>&lol2;</body></message>", 'restricted-xml');
  });

  it('comments and processing instructions -> <restricted-xml/>', async () => {
    await probePreAuth('<!-- hello -->', 'restricted-xml');
    await probeBound('<?php echo 1; ?>', 'restricted-xml');
  });

  it('oversized stanza -> <policy-violation/>, streamed or in one piece', async () => {
    const big = 'x'.repeat(70_000);
    await probeBound(`<message to='bob@localhost/b' type='chat'><body>${big}</body></message>`, 'policy-violation');
    // a stanza that never ends is cut off once it passes the limit, not buffered forever
    const c = await rawSession(server.ports.c2s, 'mallory', 'secret', 'endless');
    c.send("<message to='bob@localhost/b'><body>");
    const chunk = 'y'.repeat(8192);
    for (let i = 0; i < 20 && !c.closed; i++) {
      // each piece handed to the socket before the next (the server reads it in pieces)
      await new Promise<void>((r) => c.socket.write(chunk, () => r()));
    }
    await c.waitFor(streamError('policy-violation'));
    await stillChatting();
  });

  it('a stanza just under the limit is delivered', async () => {
    const body = 'z'.repeat(60_000);
    await alice.send(xml('message', { to: 'bob@localhost/b', type: 'chat' }, xml('body', {}, body)));
    await expectStanza(bob, isMessage(body));
  });

  it('wrong stream namespace / content namespace -> <invalid-namespace/>', async () => {
    await probePreAuth(
      '',
      'invalid-namespace',
      `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>`,
    );
    await probePreAuth(
      '',
      'invalid-namespace',
      `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`,
    );
  });

  it('unknown host -> <host-unknown/>; no version -> <unsupported-version/>', async () => {
    const data = await probePreAuth('', 'host-unknown', HEADER('example.net'));
    assert.ok(data.startsWith("<?xml version='1.0'?><stream:stream"), 'error comes after our stream header');
    await probePreAuth(
      '',
      'unsupported-version',
      `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>`,
    );
  });

  it('stanzas before authentication -> <not-authorized/>', async () => {
    await probePreAuth("<message to='bob@localhost/b'><body>sneaky</body></message>", 'not-authorized');
    // the server answered it with the stream error: anything it routed to bob came before
    await expectNothing(bob, isMessage('sneaky'), { after: [] });
  });

  it('unknown top-level element after bind -> <unsupported-stanza-type/>', async () => {
    await probeBound("<foo xmlns='urn:example:foo'/>", 'unsupported-stanza-type');
  });

  it('a spoofed from -> <invalid-from/>', async () => {
    await probeBound("<message from='alice@localhost/a' to='bob@localhost/b'><body>spoof</body></message>", 'invalid-from');
    await expectNothing(bob, isMessage('spoof'), { after: [] });
  });

  it('an idle unauthenticated connection times out with <connection-timeout/>', async () => {
    const c = await RawClient.connect(server.ports.c2s);
    c.send(HEADER());
    await c.waitFor(streamError('connection-timeout'), 4000);
    await c.waitClosed();
    await stillChatting();
  });

  it('garbage on the direct TLS port closes only that connection', async () => {
    const c = await RawClient.connect(server.ports.c2sTls);
    c.send('GET / HTTP/1.1\r\n\r\n');
    await c.waitClosed();
    await stillChatting();
  });

  it('a client closing its stream gets </stream:stream> back', async () => {
    const c = await rawSession(server.ports.c2s, 'mallory', 'secret', 'closer');
    c.send('</stream:stream>');
    await c.waitFor('</stream:stream>');
    await c.waitClosed();
  });
});
