// Message Archive Management (XEP-0313) over real sockets with @xmpp/client.
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import type { Server } from '../../src/server.js';
import pg from 'pg';
import { BACKEND, newPostgresSchema, newStorageSlot, startServer } from '../helpers/server.js';
import { connect, expectStanza, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';
import { authenticated, rawSession } from '../helpers/raw.js';

const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const USERS = { alice: 'secret', bob: 'secret', carol: 'secret' };

const form = (fields: Record<string, string | string[]>) =>
  xml(
    'x',
    { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, MAM)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, ...(Array.isArray(v) ? v : [v]).map((t) => xml('value', {}, t)))),
  );

interface Page {
  bodies: string[];
  ids: string[];
  fin: Element;
  error?: string;
  results: Element[];
}

let qn = 0;
async function query(
  c: XmppClient,
  opts: { fields?: Record<string, string | string[]>; rsm?: Element[]; flip?: boolean; to?: string } = {},
): Promise<Page> {
  const queryid = `q${++qn}`;
  const results: Element[] = [];
  const on = (s: Element) => {
    if (s.is('message') && s.getChild('result', MAM)?.attrs.queryid === queryid) results.push(s);
  };
  c.on('stanza', on);
  const r = await iq(
    c,
    xml(
      'iq',
      { type: 'set', to: opts.to },
      xml(
        'query',
        { xmlns: MAM, queryid },
        ...(opts.fields ? [form(opts.fields)] : []),
        ...(opts.rsm ? [xml('set', { xmlns: RSM }, ...opts.rsm)] : []),
        ...(opts.flip ? [xml('flip-page')] : []),
      ),
    ),
  );
  c.removeListener('stanza', on);
  c.received = c.received.filter((s) => !(s.is('message') && s.getChild('result', MAM)));
  const fin = r.getChild('fin', MAM)!;
  const error = r.attrs.type === 'error' ? r.getChild('error')!.getChildElements()[0]!.name : undefined;
  const forwarded = (s: Element) => s.getChild('result', MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!;
  return {
    bodies: results.map((s) => forwarded(s).getChild('message')!.getChildText('body')!),
    ids: results.map((s) => s.getChild('result', MAM)!.attrs.id),
    fin,
    error,
    results,
  };
}

async function chat(from: XmppClient, to: string, bodies: string[]): Promise<void> {
  for (const b of bodies) await from.send(xml('message', { to, type: 'chat' }, xml('body', {}, b)));
}

describe('message archive (XEP-0313)', function () {
  this.timeout(60_000);
  let server: Server;
  const open: XmppClient[] = [];
  const client = async (u: string) => {
    const c = await connect(server, u);
    open.push(c);
    return c;
  };
  beforeEach(async () => {
    server = await startServer({ users: USERS });
  });
  afterEach(async () => {
    await stopAll(...open.splice(0));
    await server.stop();
  });

  it('archives both sides once, pages forwards and backwards over 100 messages, filters by with, time and ids', async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    const carol = await client('carol');
    const t0 = new Date(Date.now() - 1000).toISOString();
    const sent = Array.from({ length: 100 }, (_, i) => `m${i + 1}`);
    // alternate directions so both archives hold both kinds
    for (let i = 0; i < 100; i += 2) {
      await chat(bob, 'alice@localhost', [sent[i]!]);
      await expectStanza(alice, (s) => s.getChildText('body') === sent[i]);
      await chat(alice, 'bob@localhost', [sent[i + 1]!]);
      await expectStanza(bob, (s) => s.getChildText('body') === sent[i + 1]);
    }
    await chat(carol, 'alice@localhost', ['from carol']);
    await expectStanza(alice, (s) => s.getChildText('body') === 'from carol');

    // forwards, 10 at a time
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const p = await query(alice, {
        fields: { with: 'bob@localhost' },
        rsm: [xml('max', {}, '10'), ...(after ? [xml('after', {}, after)] : [])],
      });
      seen.push(...p.bodies);
      after = p.fin.getChild('set', RSM)!.getChildText('last')!;
      assert.equal(p.fin.getChild('set', RSM)!.getChildText('count'), '100');
      assert.equal(p.fin.attrs.complete, page === 9 ? 'true' : undefined, `page ${page}`);
    }
    assert.deepEqual(seen, sent);
    // backwards from the end
    const last = await query(alice, { fields: { with: 'bob@localhost' }, rsm: [xml('max', {}, '10'), xml('before')] });
    assert.deepEqual(last.bodies, sent.slice(90));
    const prev = await query(alice, { fields: { with: 'bob@localhost' }, rsm: [xml('max', {}, '10'), xml('before', {}, last.ids[0]!)] });
    assert.deepEqual(prev.bodies, sent.slice(80, 90));
    const flipped = await query(alice, { fields: { with: 'bob@localhost' }, rsm: [xml('max', {}, '5'), xml('before')], flip: true });
    assert.deepEqual(flipped.bodies, sent.slice(95).reverse());
    // every result is forwarded with a delay, and ids match the stanza-ids delivered live
    const first = (await query(alice, { rsm: [xml('max', {}, '1')] })).results[0]!;
    const fwd = first.getChild('result', MAM)!.getChild('forwarded', 'urn:xmpp:forward:0')!;
    assert.ok(fwd.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp);
    assert.equal(fwd.getChild('message')!.attrs.from.split('/')[0], 'bob@localhost');
    assert.equal(fwd.getChild('message')!.attrs.xmlns, 'jabber:client', 'the forwarded message names its namespace (XEP-0297)');
    // with: only carol
    assert.deepEqual((await query(alice, { fields: { with: 'carol@localhost' } })).bodies, ['from carol']);
    // all, time range
    assert.equal((await query(alice, { rsm: [xml('max', {}, '0')] })).fin.getChild('set', RSM)!.getChildText('count'), '101');
    const future = new Date(Date.now() + 60_000).toISOString();
    assert.equal((await query(alice, { fields: { start: future } })).bodies.length, 0);
    assert.equal((await query(alice, { fields: { start: t0, end: future }, rsm: [xml('max', {}, '200')] })).bodies.length, 101);
    // extended: ids, after-id, before-id
    const ids = (await query(alice, { fields: { with: 'bob@localhost' }, rsm: [xml('max', {}, '3')] })).ids;
    assert.deepEqual((await query(alice, { fields: { ids: [ids[0]!, ids[2]!] } })).bodies, ['m1', 'm3']);
    assert.deepEqual((await query(alice, { fields: { 'after-id': ids[0]! }, rsm: [xml('max', {}, '2')] })).bodies, ['m2', 'm3']);
    assert.deepEqual((await query(alice, { fields: { 'before-id': ids[2]! } })).bodies, ['m1', 'm2']);
    // bob's archive holds the same conversation
    assert.equal((await query(bob, { rsm: [xml('max', {}, '0')] })).fin.getChild('set', RSM)!.getChildText('count'), '100');
  });

  it('answers errors per the XEP: unknown ids, unknown fields, bad dates, other people’s archives', async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    assert.equal((await query(alice, { rsm: [xml('after', {}, 'no-such-id')] })).error, 'item-not-found');
    assert.equal((await query(alice, { fields: { ids: ['nope'] } })).error, 'item-not-found');
    assert.equal((await query(alice, { fields: { 'x-unknown': 'v' } })).error, 'feature-not-implemented');
    assert.equal((await query(alice, { fields: { start: 'yesterday' } })).error, 'bad-request');
    assert.equal((await query(bob, { to: 'alice@localhost' })).error, 'forbidden');
    const f = await iq(alice, xml('iq', { type: 'get' }, xml('query', { xmlns: MAM })));
    const vars = f
      .getChild('query', MAM)!
      .getChild('x', 'jabber:x:data')!
      .getChildren('field')
      .map((e) => e.attrs.var);
    assert.deepEqual(vars, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
    const info = await iq(
      alice,
      xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })),
    );
    const feats = info
      .getChild('query')!
      .getChildren('feature')
      .map((e) => e.attrs.var);
    assert.ok(feats.includes(MAM) && feats.includes('urn:xmpp:mam:2#extended'));
    const empty = await iq(alice, xml('iq', { type: 'get' }, xml('metadata', { xmlns: MAM })));
    assert.equal(empty.getChild('metadata', MAM)!.children.length, 0);
  });

  it('stores preferences and follows them', async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    const carol = await client('carol');
    const set = await iq(
      alice,
      xml(
        'iq',
        { type: 'set' },
        xml('prefs', { xmlns: MAM, default: 'always' }, xml('always'), xml('never', {}, xml('jid', {}, 'carol@localhost'))),
      ),
    );
    assert.equal(set.attrs.type, 'result');
    await chat(carol, 'alice@localhost', ['not archived']);
    await chat(bob, 'alice@localhost', ['archived']);
    await expectStanza(alice, (s) => s.getChildText('body') === 'archived');
    assert.deepEqual((await query(alice)).bodies, ['archived']);
    const got = await iq(alice, xml('iq', { type: 'get' }, xml('prefs', { xmlns: MAM })));
    assert.equal(got.getChild('prefs', MAM)!.attrs.default, 'always');
    assert.deepEqual(
      got
        .getChild('prefs', MAM)!
        .getChild('never')!
        .getChildren('jid')
        .map((j) => j.getText()),
      ['carol@localhost'],
    );
    const meta = await iq(alice, xml('iq', { type: 'get' }, xml('metadata', { xmlns: MAM })));
    assert.ok(meta.getChild('metadata', MAM)!.getChild('start')!.attrs.id);
  });

  it('no duplicate archive entry after a stream-management resume with retransmission', async () => {
    const bob = await client('bob');
    const a = await rawSession(server.ports.c2s, 'alice', 'secret', 'phone');
    a.send("<presence/><enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    const enabled = await a.waitFor(/<enabled[^>]*>/);
    const id = /id='([^']+)'/.exec(enabled)![1]!;
    await chat(bob, 'alice@localhost/phone', ['r1', 'r2']);
    await a.waitFor('<body>r2</body>');
    a.socket.destroy();
    await until(() => a.closed, 'socket gone');
    await chat(bob, 'alice@localhost/phone', ['r3']);
    const b = await authenticated(server.ports.c2s, 'alice', 'secret');
    b.send(`<resume xmlns='urn:xmpp:sm:3' previd='${id}' h='0'/>`);
    await b.waitFor('<body>r3</body>');
    assert.match(b.data, /<body>r1<\/body>/, 'r1 was retransmitted');
    const alice = await client('alice');
    assert.deepEqual((await query(alice)).bodies, ['r1', 'r2', 'r3']);
    b.socket.destroy();
  });

  it('purges by retention and with the account', async () => {
    await server.stop();
    server = await startServer({ users: USERS, config: { modules: { mam: { retention_days: 1 / 86400, purge_interval: 1 } } } });
    const alice = await client('alice');
    const bob = await client('bob');
    await chat(bob, 'alice@localhost', ['old']);
    await expectStanza(alice, (s) => s.getChildText('body') === 'old');
    await until(async () => (await query(alice)).bodies.length === 0, 'the retention purge ran', 5000);
    await chat(bob, 'alice@localhost', ['new']);
    await expectStanza(alice, (s) => s.getChildText('body') === 'new');
    await server.storage.archive.flush();
    await server.accounts.delete('bob');
    const left = await server.storage.archive.query({ owner: 'bob@localhost', max: 10, fromEnd: false });
    assert.equal(left.count, 0);
  });
});

describe('message archive persistence', function () {
  this.timeout(30_000);
  it('the archive survives a restart (batched writes are flushed on a clean stop)', async () => {
    const slot = await newStorageSlot();
    let server = await startServer({ slot, users: USERS });
    let alice = await connect(server, 'alice');
    const bob = await connect(server, 'bob');
    await chat(bob, 'alice@localhost', ['kept 1', 'kept 2']);
    await expectStanza(alice, (s) => s.getChildText('body') === 'kept 2');
    await stopAll(alice, bob);
    await server.stop();
    server = await startServer({ slot });
    alice = await connect(server, 'alice');
    try {
      assert.deepEqual((await query(alice)).bodies, ['kept 1', 'kept 2']);
    } finally {
      await stopAll(alice);
      await server.stop();
    }
  });
});

// Sharding needs Postgres: this suite exists only in the Postgres run of `npm test`.
if (BACKEND === 'postgres')
  describe('message archive sharded over two Postgres databases', function () {
    this.timeout(60_000);
    it('keeps each owner’s archive on one shard, and queries find it there', async () => {
      const shards = [await newPostgresSchema(), await newPostgresSchema()];
      const users: Record<string, string> = {};
      for (let i = 1; i <= 8; i++) users[`s${i}`] = 'secret';
      const server = await startServer({ users, config: { postgres_archive_urls: shards } });
      const clients: XmppClient[] = [];
      try {
        for (let i = 1; i <= 8; i++) clients.push(await connect(server, `s${i}`));
        for (let i = 0; i < 8; i++) {
          const to = `s${((i + 1) % 8) + 1}@localhost`;
          await chat(clients[i]!, to, [`hello ${to}`]);
        }
        for (let i = 0; i < 8; i++) await expectStanza(clients[i]!, (s) => s.getChildText('body')?.startsWith('hello ') === true);
        for (let i = 0; i < 8; i++) {
          const p = await query(clients[i]!);
          assert.equal(p.bodies.length, 2, `s${i + 1} sees its sent and received message`);
        }
        await server.storage.archive.flush();
        const owners: string[][] = [];
        for (const url of shards) {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          owners.push((await c.query<{ owner: string }>('SELECT DISTINCT owner FROM mam_chunks ORDER BY owner')).rows.map((r) => r.owner));
          await c.end();
        }
        assert.ok(owners[0]!.length > 0 && owners[1]!.length > 0, `both shards used: ${JSON.stringify(owners)}`);
        assert.equal(owners[0]!.filter((o) => owners[1]!.includes(o)).length, 0, 'no owner on two shards');
        assert.equal(owners[0]!.length + owners[1]!.length, 8);
        // the main database holds no archive rows
        const main = new pg.Client({ connectionString: server.config.postgres_url as string });
        await main.connect();
        assert.equal(Number((await main.query('SELECT count(*) AS n FROM mam_chunks')).rows[0].n), 0);
        await main.end();
      } finally {
        await stopAll(...clients);
        await server.stop();
      }
    });
  });
