// Stream management (XEP-0198), liveness checks, slow consumers and client
// state indication (XEP-0352), over raw sockets for precise control of the
// transport, with @xmpp/client on the other end.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Server } from '../../src/server.js';
import { startServer } from '../helpers/server.js';
import {
  barrier,
  connect,
  dropConnection,
  expectNothing,
  expectStanza,
  stopAll,
  trustTestCa,
  until,
  xml,
  type XmppClient,
} from '../helpers/clients.js';
import { authenticated, rawSession, type RawClient } from '../helpers/raw.js';

const SM = "xmlns='urn:xmpp:sm:3'";
const USERS = { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret' };

const count = (s: string, re: RegExp): number => (s.match(re) ?? []).length;
const bodies = (s: string): string[] => [...s.matchAll(/<body>([^<]*)<\/body>/g)].map((m) => m[1]!);

async function enable(c: RawClient, resume: boolean): Promise<string> {
  c.send(`<enable ${SM}${resume ? " resume='true'" : ''}/>`);
  const enabled = await c.waitFor(/<enabled[^>]*\/>/);
  c.data = c.data.replace(enabled, '');
  return /id=['"]([^'"]+)['"]/.exec(enabled)?.[1] ?? '';
}

let pings = 0;
/**
 * A ping round trip on a raw stream: once the answer is in, the server has handled
 * everything c sent before, and everything it sent c before is in c.data. The answer
 * is taken out of c.data (the ping still counts as a stanza for stream management).
 */
async function rawBarrier(c: RawClient): Promise<void> {
  const id = `barrier${++pings}`;
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  const answer = await c.waitFor(new RegExp(`<iq[^>]*id=['"]${id}['"][^>]*/>|<iq[^>]*id=['"]${id}['"][\\s\\S]*?</iq>`));
  c.data = c.data.replace(answer, '');
}

describe('stream management (XEP-0198)', function () {
  this.timeout(30_000);
  let server: Server;
  const clients: XmppClient[] = [];
  const raws: RawClient[] = [];
  const raw = async (user: string, resource = 'raw'): Promise<RawClient> => {
    const c = await rawSession(server.ports.c2s, user, 'secret', resource);
    raws.push(c);
    return c;
  };
  beforeEach(async () => {
    server = await startServer({ users: USERS, config: { sm: { resume_timeout: 60, ack_every: 1000, ack_interval: 60 } } });
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) r.socket.destroy();
    await stopAll(...clients.splice(0));
    await server.stop();
  });

  it('advertises sm and csi, refuses enable before bind and a second enable with <failed/>, acks with h counting handled stanzas', async () => {
    const pre = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(pre);
    assert.match(pre.data, /<sm xmlns='urn:xmpp:sm:3'\/>/);
    assert.match(pre.data, /<csi xmlns='urn:xmpp:csi:0'\/>/);
    pre.send(`<enable ${SM}/>`);
    await pre.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request/);
    const a = await raw('alice');
    assert.equal(await enable(a, false), '', 'no id without resumption');
    a.send(`<r ${SM}/>`);
    await a.waitFor(`<a xmlns='urn:xmpp:sm:3' h='0'/>`);
    a.send(`<presence/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await a.waitFor(/id=['"]p2['"]/);
    a.send(`<r ${SM}/>`);
    await a.waitFor(`<a xmlns='urn:xmpp:sm:3' h='3'/>`);
    // a second <enable/> is answered with <failed/> (XEP-0198 §6) and the stream goes on
    a.data = '';
    a.send(`<enable ${SM}/>`);
    await a.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/failed>/);
    a.send(`<r ${SM}/>`);
    await a.waitFor(`<a xmlns='urn:xmpp:sm:3' h='3'/>`);
    assert.ok(!a.closed && !a.data.includes('stream:error'), 'the stream stays open');
  });

  it('asks for acks after ack_every stanzas and drops acknowledged ones; a too-high h is a stream error', async () => {
    server.config.sm.ack_every = 3;
    const a = await raw('alice');
    await enable(a, false);
    const bob = await connect(server, 'bob');
    clients.push(bob);
    for (let i = 1; i <= 3; i++) await bob.send(xml('message', { to: 'alice@localhost/raw', type: 'chat' }, xml('body', {}, `m${i}`)));
    await a.waitFor(`<r xmlns='urn:xmpp:sm:3'/>`);
    const session = [...server.sessions.resources('alice@localhost')][0] as unknown as { sm: { queue: unknown[] } };
    assert.equal(session.sm.queue.length, 3);
    a.send(`<a ${SM} h='2'/>`);
    await until(() => session.sm.queue.length === 1, 'two acknowledged');
    a.send(`<a ${SM} h='9'/>`);
    await a.waitFor(/<handled-count-too-high xmlns='urn:xmpp:sm:3' h='9' send-count='3'\/>/);
    await a.waitClosed();
  });

  it('counts h modulo 2^32 in both directions', async () => {
    const a = await raw('alice');
    await enable(a, false);
    const session = [...server.sessions.resources('alice@localhost')][0] as unknown as {
      sm: { inH: number; acked: number; queue: unknown[] };
    };
    session.sm.inH = 0xffffffff;
    session.sm.acked = 0xffffffff;
    a.send("<iq type='get' id='w1'><ping xmlns='urn:xmpp:ping'/></iq>");
    await a.waitFor(/id=['"]w1['"]/);
    a.send(`<r ${SM}/>`);
    await a.waitFor(`<a xmlns='urn:xmpp:sm:3' h='0'/>`);
    // the ping result was the one stanza sent: acknowledging it wraps 4294967295 → 0
    assert.equal(session.sm.queue.length, 1);
    a.send(`<a ${SM} h='0'/>`);
    await until(() => session.sm.queue.length === 0, 'the wrapped ack applied');
    assert.equal(session.sm.acked, 0);
  });

  it('resumes after an abrupt drop: the gap is delivered exactly once, in order, nothing goes offline', async () => {
    const a = await raw('alice');
    a.send('<presence/>');
    const id = await enable(a, true);
    assert.ok(id.length >= 16);
    const bob = await connect(server, 'bob');
    clients.push(bob);
    await bob.send(xml('message', { to: 'alice@localhost/raw', type: 'chat' }, xml('body', {}, 'before')));
    await a.waitFor('</message>');
    const firstCopy = a.data;
    a.socket.destroy(); // no stream close: a phone leaving coverage
    await until(() => a.closed, 'socket gone');
    for (let i = 1; i <= 5; i++) await bob.send(xml('message', { to: 'alice@localhost/raw', type: 'chat' }, xml('body', {}, `gap ${i}`)));
    // nothing bounced (bob's messages are routed once his own ping is answered), and still online for contacts
    await expectNothing(bob, (s) => s.attrs.type === 'error', { after: [bob] });
    assert.equal(server.sessions.countOf('alice@localhost'), 1);
    const b = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(b);
    b.data = '';
    b.send(`<resume ${SM} previd='${id}' h='0'/>`);
    // h: alice sent nothing after <enable/> (her presence came before it)
    await b.waitFor(/<resumed xmlns='urn:xmpp:sm:3' previd='[^']+' h='0'\/>/);
    await b.waitFor('<body>gap 5</body>');
    await rawBarrier(b); // no copy after the last one
    assert.deepEqual(bodies(b.data), ['before', 'gap 1', 'gap 2', 'gap 3', 'gap 4', 'gap 5']);
    assert.equal(
      count(b.data, /<delay xmlns='urn:xmpp:delay' from='localhost' stamp='[^']+'>Resent<\/delay>/g),
      6,
      'each carries its first send time',
    );
    // XEP-0359: the retransmitted copy carries the stanza-id the first one had
    const sid = (d: string): string | undefined =>
      /<body>before<\/body><stanza-id xmlns="urn:xmpp:sid:0" id="([^"]+)" by="alice@localhost"\/>/.exec(d)?.[1];
    assert.ok(sid(firstCopy), firstCopy);
    assert.equal(sid(b.data), sid(firstCopy));
    assert.equal(await server.storage.offline.count('alice'), 0);
    // acknowledge everything (six messages and the barrier's ping result), then the stream carries on
    b.send(`<a ${SM} h='7'/>`);
    await bob.send(xml('message', { to: 'alice@localhost/raw', type: 'chat' }, xml('body', {}, 'after')));
    await b.waitFor('<body>after</body>');
    // a second resume of the same id while this stream is open replaces it (conflict)
    const c = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(c);
    c.data = '';
    c.send(`<resume ${SM} previd='${id}' h='7'/>`);
    // h: the barrier's ping is the one stanza alice sent
    await c.waitFor(/<resumed [^>]*h='1'\/>/);
    await b.waitFor('<conflict');
    await b.waitClosed();
    await c.waitFor('<body>after</body>');
    assert.equal(count(c.data, /<body>/g), 1, 'only the unacknowledged one is resent');
  });

  it('after the window: item-not-found with the old h, and the messages wait in offline storage', async () => {
    server.config.sm.resume_timeout = 1;
    const a = await raw('alice');
    a.send('<presence/>');
    const id = await enable(a, true);
    a.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    await a.waitFor(/id=['"]p1['"]/);
    const bob = await connect(server, 'bob');
    clients.push(bob);
    a.socket.destroy();
    await until(() => a.closed, 'socket gone');
    for (let i = 1; i <= 5; i++) await bob.send(xml('message', { to: 'alice@localhost/raw', type: 'chat' }, xml('body', {}, `late ${i}`)));
    await until(async () => (await server.storage.offline.count('alice')) === 5, 'five messages in offline storage', 4000);
    const b = await authenticated(server.ports.c2s, 'alice', 'secret');
    raws.push(b);
    b.send(`<resume ${SM} previd='${id}' h='0'/>`);
    await b.waitFor(/<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found/);
    // §5: the client may bind now, and gets its messages from offline storage
    b.data = '';
    b.send(`<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>again</resource></bind></iq><presence/>`);
    await b.waitFor('<body>late 5</body>');
    assert.deepEqual(bodies(b.data), ['late 1', 'late 2', 'late 3', 'late 4', 'late 5']);
  });

  it('an overflowing unacknowledged queue goes to offline storage, then the stream closes with policy-violation', async () => {
    server.config.sm.max_queue = 5;
    const a = await raw('alice');
    await enable(a, true);
    const bob = await connect(server, 'bob');
    clients.push(bob);
    for (let i = 1; i <= 6; i++) await bob.send(xml('message', { to: 'alice@localhost/raw', type: 'chat' }, xml('body', {}, `q${i}`)));
    await a.waitFor('<policy-violation');
    await a.waitClosed();
    await until(async () => (await server.storage.offline.count('alice')) === 6, 'all six stored');
  });
});

/** A TCP proxy that can silently stop forwarding (a half-open connection). */
function proxy(target: number): Promise<{ port: number; freeze(): void; close(): void }> {
  let frozen = false;
  const sockets: net.Socket[] = [];
  const srv = net.createServer((client) => {
    const up = net.connect(target, '127.0.0.1');
    sockets.push(client, up);
    client.on('data', (d) => frozen || up.write(d));
    up.on('data', (d) => frozen || client.write(d));
    client.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        port: (srv.address() as net.AddressInfo).port,
        freeze: () => void (frozen = true),
        close: () => {
          for (const s of sockets) s.destroy();
          srv.close();
        },
      }),
    ),
  );
}

describe('stream management with @xmpp/client', function () {
  this.timeout(30_000);
  it('an @xmpp/client session dropped mid-conversation resumes by itself and gets every message once', async () => {
    const server = await startServer({ users: USERS });
    const { client } = await import('@xmpp/client');
    const alice = client({
      service: `xmpp://127.0.0.1:${server.ports.c2s}`,
      domain: 'localhost',
      resource: 'phone',
      credentials: (auth: (c: { username: string; password: string }, m: string) => Promise<void>) =>
        auth({ username: 'alice', password: 'secret' }, 'SCRAM-SHA-1'),
    }) as unknown as XmppClient & { streamManagement: { id: string; on(e: string, f: () => void): void } };
    await trustTestCa(alice); // verify the server against the test CA, for this client only
    const got: string[] = [];
    alice.received = []; // for barrier()
    alice.on('error', () => undefined);
    alice.on('stanza', (st) => {
      alice.received.push(st);
      const b = st.getChildText('body');
      if (st.is('message') && b) got.push(b);
    });
    const bob = await connect(server, 'bob');
    try {
      await alice.start();
      await alice.send(xml('presence'));
      await until(() => !!alice.streamManagement.id, 'stream management enabled with resumption');
      const resumed = new Promise<void>((r) => alice.streamManagement.on('resumed', r));
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'one')));
      await until(() => got.includes('one'), 'first message');
      dropConnection(alice);
      for (const b of ['two', 'three', 'four'])
        await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, b)));
      await resumed; // @xmpp/client reconnects and sends <resume/>
      await until(() => got.length >= 4, 'the gap delivered', 10_000);
      await barrier(bob, alice); // no copy after the last one
      assert.deepEqual(got, ['one', 'two', 'three', 'four']);
      assert.equal(await server.storage.offline.count('alice'), 0);
    } finally {
      await alice.stop().catch(() => undefined);
      await stopAll(bob);
      await server.stop();
    }
  });
});

describe('stanza ids on one-to-one messages (XEP-0359)', function () {
  it('the recipient’s server stamps one stanza-id by the recipient and removes a forged one', async () => {
    const server = await startServer({ users: USERS });
    const alice = await connect(server, 'alice');
    const bob = await connect(server, 'bob');
    try {
      await bob.send(
        xml(
          'message',
          { to: 'alice@localhost', type: 'chat' },
          xml('body', {}, 'hi'),
          xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'forged', by: 'Alice@localhost' }),
          xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: 'other', by: 'elsewhere.example' }),
        ),
      );
      const m = await expectStanza(alice, (s) => s.getChildText('body') === 'hi');
      const ids = m.getChildren('stanza-id', 'urn:xmpp:sid:0');
      const mine = ids.filter((i) => i.attrs.by === 'alice@localhost');
      assert.equal(mine.length, 1);
      assert.notEqual(mine[0]!.attrs.id, 'forged');
      assert.ok(
        ids.some((i) => i.attrs.id === 'other'),
        'ids by others are left alone',
      );
    } finally {
      await stopAll(alice, bob);
      await server.stop();
    }
  });
});

describe('liveness and slow consumers', function () {
  this.timeout(60_000);

  it('a half-open client (proxy stops forwarding) is seen unavailable within ping_interval + ping_timeout', async () => {
    const server = await startServer({ users: USERS, config: { ping_interval: 1, ping_timeout: 1 } });
    const p = await proxy(server.ports.c2s);
    // rosters first: they are cached at login
    await server.storage.roster.put('bob', { jid: 'alice@localhost', subscription: 'both', ask: false, approved: false, groups: [] });
    await server.storage.roster.put('alice', { jid: 'bob@localhost', subscription: 'both', ask: false, approved: false, groups: [] });
    const watcher = await connect(server, 'bob');
    try {
      await watcher.send(xml('presence'));
      const a = await rawSession(p.port, 'alice', 'secret', 'phone');
      a.send('<presence/>');
      await expectStanza(watcher, (s) => s.is('presence') && s.attrs.from === 'alice@localhost/phone' && s.attrs.type === undefined);
      const t0 = Date.now();
      p.freeze();
      await expectStanza(
        watcher,
        (s) => s.is('presence') && s.attrs.from === 'alice@localhost/phone' && s.attrs.type === 'unavailable',
        6000,
      );
      const took = Date.now() - t0;
      assert.ok(took <= 3000, `unavailable after ${took} ms (bound: 1 s + 1 s, checked every 250 ms)`);
      assert.ok(took >= 1000, 'not before the ping interval');
      a.socket.destroy();
    } finally {
      p.close();
      await stopAll(watcher);
      await server.stop();
    }
  });

  it('a client that stops reading is cut at the buffer bound; memory stays bounded and another pair stays fast', async () => {
    // the archive is off here: this measures the slow consumer's bound, not archiving 40,000 copies
    const server = await startServer({ users: USERS, config: { limits: { outbound_buffer: 262144 }, modules: { disabled: ['mam'] } } });
    const sender = await rawSession(server.ports.c2s, 'bob', 'secret', 'firehose');
    const slow = await rawSession(server.ports.c2s, 'alice', 'secret', 'sleepy');
    const carol = await connect(server, 'carol');
    const dave = await connect(server, 'dave');
    let deadlineTimer: NodeJS.Timeout | undefined;
    try {
      slow.socket.pause(); // TCP zero window: the client stops reading
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      const body = 'x'.repeat(1000);
      const latencies: number[] = [];
      let sent = 0;
      // should it stall (it once took over 60 s in CI), say where rather than time out blind
      const deadline = new Promise<never>((_, reject) => {
        deadlineTimer = setTimeout(
          () =>
            reject(
              new Error(
                `stalled: ${sent} of 20,000 sent, ${latencies.length} of 100 pings answered, the sender's socket ` +
                  (sender.socket.destroyed ? 'closed' : `open with ${sender.socket.writableLength} B unsent`),
              ),
            ),
          50_000,
        );
      });
      deadline.catch(() => undefined);
      const pingPong = (async () => {
        for (let i = 0; i < 100; i++) {
          const t = performance.now();
          const got = expectStanza(dave, (s) => s.getChildText('body') === `ping ${i}`, 5000);
          await carol.send(xml('message', { to: 'dave@localhost', type: 'chat' }, xml('body', {}, `ping ${i}`)));
          await got;
          latencies.push(performance.now() - t);
          dave.received.length = 0;
        }
      })();
      pingPong.catch(() => undefined); // awaited below
      let peak = rss0;
      const slowCloses = async (): Promise<number> => (await server.metrics.slowConsumers.get()).values[0]?.value ?? 0;
      for (let i = 0; i < 20_000; i++) {
        // paced by TCP like a real sender, so this process's own buffers stay small. Headlines:
        // once alice's session is gone they are dropped (RFC 6121 §8.5.3.2.1), where chat
        // messages came back as 1 KB bounces (her offline store full) as fast as the server
        // read them, and this sender, sharing one event loop with the server, could not read
        // them as fast: it went over this server's 256 KiB bound itself and was cut in turn.
        if (!sender.socket.write(`<message to='alice@localhost/sleepy' type='headline'><body>${i} ${body}</body></message>`)) {
          const drained = new Promise<void>((resolve, reject) => {
            sender.socket.once('drain', resolve);
            sender.socket.once('close', () => reject(new Error(`the server closed the sender's stream after ${i} messages`)));
          });
          await Promise.race([drained, deadline]);
        }
        sent = i + 1;
        if (i % 500 === 0) {
          sender.data = '';
          await new Promise((r) => setImmediate(r));
          peak = Math.max(peak, process.memoryUsage().rss);
        }
      }
      await Promise.race([pingPong, deadline]);
      await Promise.race([until(async () => (await slowCloses()) === 1, 'the slow consumer was closed', 20_000), deadline]);
      peak = Math.max(peak, process.memoryUsage().rss);
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.floor(latencies.length * 0.99) - 1]!;
      if (process.env.UZZAP_TEST_VERBOSE)
        console.log(`slow consumer: RSS +${((peak - rss0) / 1048576).toFixed(1)} MiB, other pair p99 ${p99.toFixed(1)} ms`);
      assert.ok(p99 < 100, `other pair p99 ${p99.toFixed(1)} ms`);
      const growth = (peak - rss0) / 1048576;
      assert.ok(growth < 48, `RSS grew ${growth.toFixed(1)} MiB while 20 MB were sent to a client that does not read`);
    } finally {
      clearTimeout(deadlineTimer);
      sender.socket.destroy();
      slow.socket.destroy();
      await stopAll(carol, dave);
      await server.stop();
    }
  });
});

describe('client state indication (XEP-0352)', function () {
  this.timeout(30_000);
  it('holds presence and chat states while inactive (latest per contact), sends messages at once, flushes on active', async () => {
    const server = await startServer({ users: USERS });
    await server.storage.roster.put('bob', { jid: 'alice@localhost', subscription: 'both', ask: false, approved: false, groups: [] });
    await server.storage.roster.put('alice', { jid: 'bob@localhost', subscription: 'both', ask: false, approved: false, groups: [] });
    const bob = await connect(server, 'bob');
    try {
      const a = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
      a.send('<presence/>');
      await a.waitFor(/<presence[^>]*from=['"]bob@localhost/);
      a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
      await rawBarrier(a);
      a.data = '';
      await bob.send(xml('presence', {}, xml('show', {}, 'away')));
      await bob.send(xml('presence', {}, xml('show', {}, 'dnd')));
      await bob.send(
        xml('message', { to: 'alice@localhost', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })),
      );
      // bob's stanzas are routed once his ping is answered; a ping to alice would flush what is
      // held (it goes out in order), so the server's hold is checked instead
      await barrier(bob);
      const phone = [...server.sessions.resources('alice@localhost')][0] as unknown as { held?: Map<string, unknown> };
      assert.equal(phone.held?.size, 2, 'the latest presence and the chat state are held');
      assert.equal(a.data, '', 'nothing while inactive');
      a.send("<active xmlns='urn:xmpp:csi:0'/>");
      await a.waitFor('<composing');
      assert.equal(count(a.data, /<presence/g), 1, 'only the latest presence');
      assert.match(a.data, /<show>dnd<\/show>/);
      a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
      await rawBarrier(a);
      a.data = '';
      await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'wake up')));
      await a.waitFor('<body>wake up</body>', 1000);
      a.socket.destroy();
    } finally {
      await stopAll(bob);
      await server.stop();
    }
  });
});

describe('push notifications (XEP-0357)', function () {
  this.timeout(30_000);
  it('publishes a summary to the push service when the session is detached or inactive, not while active', async () => {
    const server = await startServer({ users: { ...USERS, pushsvc: 'secret' } });
    const app = await connect(server, 'pushsvc', { resource: 'app' });
    // the app server accepts every notification (an error answer would disable the registration, XEP-0357 §7.1)
    app.iqCallee.set('http://jabber.org/protocol/pubsub', 'pubsub', () => true);
    const bob = await connect(server, 'bob');
    const pushes = () => app.received.filter((s) => s.is('iq') && !!s.getChild('pubsub', 'http://jabber.org/protocol/pubsub'));
    try {
      const a = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
      a.send(
        `<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='pushsvc@localhost/app' node='n1'>` +
          `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
          `<field var='secret'><value>s3cr3t</value></field></x></enable></iq>`,
      );
      await a.waitFor(/<iq[^>]*type=['"]result['"][^>]*id=['"]e1['"]|<iq[^>]*id=['"]e1['"][^>]*type=['"]result['"]/);
      a.send('<presence/>');
      await enable(a, true);
      // active and connected: no push
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'seen')));
      await a.waitFor('<body>seen</body>');
      await expectNothing(app, (s) => s.is('iq') && !!s.getChild('pubsub'), { after: [bob] });
      // inactive (CSI): a message with a body triggers a push
      a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'while asleep')));
      await until(() => pushes().length === 1, 'a push while inactive');
      // detached (the phone dropped off the network): each message triggers a push
      a.socket.destroy();
      await until(() => a.closed, 'socket gone');
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'secret plans')));
      await until(() => pushes().length >= 2, 'a push while detached');
      const p = pushes().at(-1)!;
      assert.equal(p.attrs.from, 'alice@localhost');
      const publish = p.getChild('pubsub')!.getChild('publish')!;
      assert.equal(publish.attrs.node, 'n1');
      const form = publish.getChild('item')!.getChild('notification', 'urn:xmpp:push:0')!.getChild('x', 'jabber:x:data')!;
      const fields = Object.fromEntries(form.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
      assert.equal(fields.FORM_TYPE, 'urn:xmpp:push:summary');
      assert.ok(Number(fields['message-count']) >= 1);
      assert.equal(fields['last-message-body'], undefined, 'no body unless configured');
      assert.ok(!p.toString().includes('secret plans'));
      const opts = p.getChild('pubsub')!.getChild('publish-options')!.getChild('x', 'jabber:x:data')!;
      assert.ok(opts.toString().includes('s3cr3t'), 'publish-options are passed on');
      // disabling stops them
      const b = await rawSession(server.ports.c2s, 'alice', 'secret', 'desk');
      b.send(`<iq type='set' id='d1'><disable xmlns='urn:xmpp:push:0' jid='pushsvc@localhost/app'/></iq>`);
      await b.waitFor(/id=['"]d1['"]/);
      const before = pushes().length;
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'after disable')));
      await barrier(bob, app);
      assert.equal(pushes().length, before);
      b.socket.destroy();
    } finally {
      await stopAll(app, bob);
      await server.stop();
    }
  });
});

describe('stream management edge cases (review findings)', function () {
  this.timeout(30_000);
  let server: Server;
  beforeEach(async () => {
    server = await startServer({ users: USERS, config: { sm: { resume_timeout: 1 }, modules: { offline: { max_per_user: 2 } } } });
  });
  afterEach(async () => {
    await server.stop();
  });

  it('at expiry: IQ requests get service-unavailable, refused messages bounce, carbons and bare-JID copies are not stored', async () => {
    const bob = await connect(server, 'bob');
    const laptop = await connect(server, 'alice', { resource: 'laptop' });
    const a = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
    try {
      a.send(`<presence/><iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>`);
      await a.waitFor(/id=['"]c1['"]/);
      await enable(a, true);
      a.socket.destroy();
      await until(() => a.closed, 'socket gone');
      await until(
        () => [...server.sessions.resources('alice@localhost')].some((s) => s.jid.resource === 'phone' && s.detached),
        'phone detached',
      );
      // to the laptop: the phone's queue holds a carbon of it
      await bob.send(xml('message', { to: 'alice@localhost/laptop', type: 'chat' }, xml('body', {}, 'to-laptop')));
      // to the bare JID: delivered to the laptop (and queued for the phone)
      await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'to-bare')));
      // to the phone: three, the store takes two
      for (const n of ['p1', 'p2', 'p3']) await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, n)));
      await bob.send(xml('iq', { to: 'alice@localhost/phone', type: 'get', id: 'v1' }, xml('query', { xmlns: 'jabber:iq:version' })));
      const iqErr = await expectStanza(bob, (s) => s.is('iq') && s.attrs.id === 'v1', 4000);
      assert.equal(iqErr.attrs.type, 'error');
      assert.ok(iqErr.getChild('error')!.getChild('service-unavailable'));
      const bounced = await expectStanza(bob, (s) => s.is('message') && s.attrs.type === 'error', 3000);
      assert.equal(bounced.getChildText('body'), 'p3');
      const stored = await server.storage.offline.list('alice');
      assert.deepEqual(
        stored.map((r) => /<body>([^<]*)<\/body>/.exec(r.stanza)?.[1]),
        ['p1', 'p2'],
      );
    } finally {
      a.socket.destroy();
      await stopAll(bob, laptop);
    }
  });

  it('a resume with a bad h fails without touching the live session; CSI starts active on a resumed stream', async () => {
    await server.storage.roster.put('bob', { jid: 'alice@localhost', subscription: 'both', ask: false, approved: false, groups: [] });
    await server.storage.roster.put('alice', { jid: 'bob@localhost', subscription: 'both', ask: false, approved: false, groups: [] });
    const bob = await connect(server, 'bob');
    server.config.sm.resume_timeout = 30;
    const a = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
    try {
      a.send('<presence/>');
      const id = await enable(a, true);
      const other = await authenticated(server.ports.c2s, 'alice', 'secret');
      other.send(`<resume ${SM} previd='${id}' h='7'/>`);
      await other.waitFor(/<failed xmlns='urn:xmpp:sm:3'><bad-request/);
      other.socket.destroy();
      await bob.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, 'still there?')));
      await a.waitFor('<body>still there?</body>');
      // inactive, dropped, resumed: presence is no longer held
      a.send("<inactive xmlns='urn:xmpp:csi:0'/>");
      await rawBarrier(a);
      a.socket.destroy();
      await until(() => a.closed, 'socket gone');
      await bob.send(xml('presence', {}, xml('show', {}, 'dnd')));
      const b = await authenticated(server.ports.c2s, 'alice', 'secret');
      b.send(`<resume ${SM} previd='${id}' h='0'/>`);
      await b.waitFor('<resumed');
      await b.waitFor('<show>dnd</show>', 2000);
      await bob.send(xml('presence', {}, xml('show', {}, 'xa')));
      await b.waitFor('<show>xa</show>', 2000);
      b.socket.destroy();
    } finally {
      a.socket.destroy();
      await stopAll(bob);
    }
  });

  it('CSI never holds receipts or subscription requests', async () => {
    const bob = await connect(server, 'bob');
    const a = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
    try {
      a.send("<presence/><inactive xmlns='urn:xmpp:csi:0'/>");
      await rawBarrier(a);
      a.data = '';
      await bob.send(
        xml(
          'message',
          { to: 'alice@localhost/phone', type: 'chat' },
          xml('received', { xmlns: 'urn:xmpp:receipts', id: 'orig1' }),
          xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }),
        ),
      );
      await a.waitFor('urn:xmpp:receipts', 1000);
      await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await a.waitFor(/type=["']subscribe["']/, 1000);
    } finally {
      a.socket.destroy();
      await stopAll(bob);
    }
  });
});
