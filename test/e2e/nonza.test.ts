// Stream-level elements (nonzas) reach the module that registered their
// namespace: a disabled or unloaded module's protocol is gone, not only its
// advertisement. XEP-0198 §2 lets a client negotiate only an offered feature;
// a server that does not offer one does not know its elements, and RFC 6120
// §4.9.3.21 answers an unknown first-level element with <unsupported-stanza-type/>.
import assert from 'node:assert/strict';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import { authenticated, rawSession, type RawClient } from '../helpers/raw.js';

const SM = "xmlns='urn:xmpp:sm:3'";
const CSI = "xmlns='urn:xmpp:csi:0'";
const UNSUPPORTED = /<stream:error><unsupported-stanza-type xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/;
const PING = "<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>";
const PONG = /<iq[^>]*id=['"]ping1['"][^>]*\/>|<iq[^>]*id=['"]ping1['"][\s\S]*?<\/iq>/;

describe('stream-level elements go to the module of their namespace', function () {
  this.timeout(20_000);
  let server: Server;
  const raws: RawClient[] = [];
  const session = async (): Promise<RawClient> => {
    const c = await rawSession(server.ports.c2s, 'alice', 'secret');
    raws.push(c);
    c.data = '';
    return c;
  };
  const start = async (disabled: string[]): Promise<void> => {
    server = await startServer({ users: { alice: 'secret' }, config: { modules: { disabled } } });
  };
  afterEach(async () => {
    for (const r of raws.splice(0)) r.socket.destroy();
    await server.stop();
  });

  it('with sm disabled: no <sm/> feature, and <enable/> is an unknown element (the stream ends)', async () => {
    await start(['sm']);
    const pre = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(pre);
    assert.doesNotMatch(pre.data, /urn:xmpp:sm:3/);
    assert.match(pre.data, /<csi xmlns='urn:xmpp:csi:0'\/>/);
    const a = await session();
    a.send(`<enable ${SM} resume='true'/>`);
    await a.waitFor(UNSUPPORTED);
    await a.waitClosed();
    assert.doesNotMatch(a.data, /<enabled|<failed/);
  });

  it('with sm disabled: <resume/> before binding is refused like any other element (bind first)', async () => {
    await start(['sm']);
    const pre = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(pre);
    pre.data = '';
    pre.send(`<resume ${SM} previd='x' h='0'/>`);
    await pre.waitFor(/<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await pre.waitClosed();
  });

  it('with sm disabled, csi still works: <inactive/>/<active/> keep the stream going', async () => {
    await start(['sm']);
    const a = await session();
    a.send(`<inactive ${CSI}/>`);
    a.send(`<active ${CSI}/>`);
    a.send(PING);
    await a.waitFor(PONG);
    assert.ok(!a.closed && !a.data.includes('stream:error'));
  });

  it('with csi disabled: no <csi/> feature, and <inactive/> is an unknown element; nothing is held', async () => {
    await start(['csi']);
    const pre = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(pre);
    assert.doesNotMatch(pre.data, /urn:xmpp:csi:0/);
    assert.match(pre.data, /<sm xmlns='urn:xmpp:sm:3'\/>/);
    const a = await session();
    a.send(`<inactive ${CSI}/>`);
    await a.waitFor(UNSUPPORTED);
    await a.waitClosed();
    assert.equal(server.sessions.size, 0, 'the session ended with its stream: nothing was held for it');
  });

  it('a module unloaded at run time takes its elements with it; stream management keeps working', async () => {
    await start([]);
    await server.modules.unload('csi');
    const a = await session();
    a.send(`<enable ${SM}/>`);
    await a.waitFor(`<enabled ${SM}/>`);
    a.send(`<r ${SM}/>`);
    await a.waitFor(`<a ${SM} h='0'/>`);
    a.send(`<inactive ${CSI}/>`);
    await a.waitFor(UNSUPPORTED);
  });

  it('an element of a namespace nobody registered ends the stream as before', async () => {
    await start([]);
    const a = await session();
    a.send(`<foo xmlns='urn:example:unknown'/>`);
    await a.waitFor(UNSUPPORTED);
    await a.waitClosed();
  });
});
