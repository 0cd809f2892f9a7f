// One contract suite for the storage interfaces, run against the backend the
// test run selected (SQLite, or Postgres with UZZAP_TEST_POSTGRES_URL).
import assert from 'node:assert/strict';
import { openStorage, AccountExistsError, type Storage } from '../../src/storage/index.js';
import { deriveCredentials, verifyPassword } from '../../src/stream/sasl/credentials.js';
import { BACKEND, newStorageSlot, type StorageSlot } from '../helpers/server.js';
import type { StoredInvite } from '../../src/storage/types.js';

describe(`storage contract (${BACKEND === 'postgres' ? 'Postgres' : 'SQLite'})`, () => {
  let slot: StorageSlot;
  let s: Storage;
  const open = () => openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });

  before(async () => {
    slot = await newStorageSlot();
    s = await open();
  });
  after(() => s.close());

  it('reports its kind', () => {
    assert.equal(s.kind, BACKEND === 'postgres' ? 'postgres' : 'sqlite');
  });

  describe('accounts', () => {
    it('creates, reads, refuses duplicates', async () => {
      const creds = await deriveCredentials('pw', 16);
      await s.accounts.create('alice', creds);
      const a = await s.accounts.get('alice');
      assert.equal(a?.username, 'alice');
      assert.equal(a?.disabled, false);
      assert.deepEqual(a?.credentials, creds);
      assert.ok(Math.abs(a!.createdAt - Date.now()) < 60_000);
      await assert.rejects(s.accounts.create('alice', creds), AccountExistsError);
      assert.equal(await s.accounts.get('nobody'), undefined);
    });

    it('stores only SCRAM keys, never the password', async () => {
      const creds = await deriveCredentials('hunter2-secret', 16);
      await s.accounts.create('pwcheck', creds);
      const a = await s.accounts.get('pwcheck');
      assert.ok(!JSON.stringify(a).includes('hunter2'));
      assert.ok(await verifyPassword(a!.credentials, 'hunter2-secret'));
      assert.ok(!(await verifyPassword(a!.credentials, 'wrong')));
      assert.deepEqual(Object.keys(a!.credentials).sort(), ['SHA-1', 'SHA-256']);
    });

    it('changes credentials and the disabled flag', async () => {
      const next = await deriveCredentials('new', 16);
      assert.equal(await s.accounts.setCredentials('alice', next), true);
      assert.deepEqual((await s.accounts.get('alice'))?.credentials, next);
      assert.equal(await s.accounts.setCredentials('nobody', next), false);
      assert.equal(await s.accounts.setDisabled('alice', true), true);
      assert.equal((await s.accounts.get('alice'))?.disabled, true);
      await s.accounts.setDisabled('alice', false);
    });

    it('creates many in one go, skipping existing ones', async () => {
      const creds = await deriveCredentials('pw', 16);
      const skipped = await s.accounts.createMany([
        { username: 'bulk1', credentials: creds },
        { username: 'alice', credentials: creds },
        { username: 'bulk2', credentials: creds },
      ]);
      assert.deepEqual(skipped, ['alice']);
      assert.ok(await s.accounts.get('bulk2'));
    });

    it('lists in order with paging, counts, deletes', async () => {
      const all = await s.accounts.list();
      assert.deepEqual(all, [...all].sort());
      assert.ok(all.includes('bulk1'));
      const page = await s.accounts.list({ after: 'bulk1', limit: 1 });
      assert.deepEqual(page, ['bulk2']);
      assert.equal(await s.accounts.count(), all.length);
      assert.equal(await s.accounts.delete('bulk1'), true);
      assert.equal(await s.accounts.delete('bulk1'), false);
      assert.equal(await s.accounts.count(), all.length - 1);
    });

    it('keeps the admin flag, disabled filters and login times (batched)', async () => {
      const creds = await deriveCredentials('pw', 16);
      await s.accounts.createMany(['adm1', 'adm2', 'dis1'].map((username) => ({ username, credentials: creds })));
      assert.equal((await s.accounts.get('adm1'))!.admin, false);
      assert.equal((await s.accounts.get('adm1'))!.lastLogin, undefined);
      assert.equal(await s.accounts.setAdmin('adm1', true), true);
      assert.equal(await s.accounts.setAdmin('nobody', true), false);
      assert.deepEqual(await s.accounts.admins(), ['adm1']);
      assert.equal((await s.accounts.get('adm1'))!.admin, true);
      await s.accounts.setDisabled('dis1', true);
      assert.deepEqual(await s.accounts.list({ disabled: true }), ['dis1']);
      assert.ok(!(await s.accounts.list({ disabled: false })).includes('dis1'));
      assert.equal(await s.accounts.count({ disabled: true }), 1);
      assert.equal(await s.accounts.count({ disabled: false }), (await s.accounts.count()) - 1);
      await s.accounts.recordLogins([
        { username: 'adm1', at: 1_700_000_000_000 },
        { username: 'adm2', at: 1_700_000_001_000 },
        { username: 'ghost', at: 1 },
      ]);
      assert.equal((await s.accounts.get('adm1'))!.lastLogin, 1_700_000_000_000);
      assert.equal((await s.accounts.get('adm2'))!.lastLogin, 1_700_000_001_000);
      await s.accounts.recordLogins([]);
    });
  });

  describe('per-user data', () => {
    it('sets, overwrites, reads, removes, deletes all of a user', async () => {
      await s.userData.set('alice', 'vcard', '', '<vCard xmlns="vcard-temp"/>');
      await s.userData.set('alice', 'vcard', '', '<vCard xmlns="vcard-temp"><FN>A</FN></vCard>');
      await s.userData.set('alice', 'private', 'a ns', '<a xmlns="ns"/>');
      await s.userData.set('bob', 'private', 'a ns', '<a xmlns="ns">bob</a>');
      assert.equal(await s.userData.get('alice', 'vcard', ''), '<vCard xmlns="vcard-temp"><FN>A</FN></vCard>');
      assert.equal(await s.userData.get('alice', 'private', 'missing'), undefined);
      assert.equal(await s.userData.remove('alice', 'private', 'a ns'), true);
      assert.equal(await s.userData.remove('alice', 'private', 'a ns'), false);
      assert.equal(await s.userData.deleteAll('alice'), 1);
      assert.equal(await s.userData.get('alice', 'vcard', ''), undefined);
      assert.equal(await s.userData.get('bob', 'private', 'a ns'), '<a xmlns="ns">bob</a>');
    });

    it('keeps unicode and large values intact', async () => {
      const v = `<x xmlns="u">${'€ 漢字 🙂'.repeat(5000)}</x>`;
      await s.userData.set('bob', 'private', 'big', v);
      assert.equal(await s.userData.get('bob', 'private', 'big'), v);
    });
  });

  describe('roster', () => {
    const item = (jid: string, extra: Partial<import('../../src/storage/types.js').RosterItem> = {}) => ({
      jid,
      subscription: 'none' as const,
      ask: false,
      approved: false,
      groups: [],
      ...extra,
    });

    it('starts empty at version 0', async () => {
      assert.deepEqual(await s.roster.get('rosterless'), { version: 0, items: [] });
    });

    it('puts, updates and removes items, bumping the version each time', async () => {
      const v1 = await s.roster.put('alice', item('bob@localhost', { name: 'Bob', groups: ['Friends', 'Ünïcode'] }));
      const v2 = await s.roster.put('alice', item('carol@localhost', { subscription: 'to', ask: true }));
      assert.ok(v2 > v1);
      const v3 = await s.roster.put('alice', item('bob@localhost', { name: 'Robert', subscription: 'both', approved: true, groups: [] }));
      const r = await s.roster.get('alice');
      assert.equal(r.version, v3);
      assert.deepEqual(r.items, [
        { jid: 'bob@localhost', name: 'Robert', subscription: 'both', ask: false, approved: true, groups: [] },
        { jid: 'carol@localhost', subscription: 'to', ask: true, approved: false, groups: [] },
      ]);
      assert.deepEqual(await s.roster.getItem('alice', 'carol@localhost'), r.items[1]);
      assert.equal(await s.roster.count('alice'), 2);
      assert.equal(await s.roster.remove('alice', 'nobody@localhost'), undefined);
      const v4 = await s.roster.remove('alice', 'carol@localhost');
      assert.ok(v4! > v3);
      assert.equal(await s.roster.getItem('alice', 'carol@localhost'), undefined);
    });

    it('finds who holds a contact, keeps pending requests, deletes a user’s roster', async () => {
      await s.roster.put('dave', item('bob@localhost'));
      assert.deepEqual((await s.roster.holders('bob@localhost')).sort(), ['alice', 'dave']);
      await s.roster.addPending('bob', 'eve@localhost', '<presence type="subscribe"/>');
      await s.roster.addPending('bob', 'eve@localhost', '<presence type="subscribe"><status>hi</status></presence>');
      await s.roster.addPending('bob', 'frank@localhost', '<presence type="subscribe"/>');
      assert.deepEqual(
        (await s.roster.pending('bob')).map((p) => p.jid),
        ['eve@localhost', 'frank@localhost'],
      );
      assert.match((await s.roster.pending('bob'))[0]!.stanza, /hi/);
      assert.equal(await s.roster.removePending('bob', 'frank@localhost'), true);
      assert.equal(await s.roster.removePending('bob', 'frank@localhost'), false);
      await s.roster.deleteAll('dave');
      assert.deepEqual(await s.roster.get('dave'), { version: 0, items: [] });
      await s.roster.deleteAll('bob');
      assert.deepEqual(await s.roster.pending('bob'), []);
    });

    it('serialises concurrent writers without losing a version', async () => {
      const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => s.roster.put('grace', item(`c${i}@localhost`))));
      assert.equal(new Set(versions).size, 20);
      assert.equal((await s.roster.get('grace')).items.length, 20);
    });
  });

  describe('offline', () => {
    it('keeps messages in order, bounded, and knows who has some', async () => {
      assert.equal(await s.offline.push('olga', '<message id="1"/>', 2), true);
      assert.equal(await s.offline.push('olga', '<message id="2"/>', 2), true);
      assert.equal(await s.offline.push('olga', '<message id="3"/>', 2), false);
      assert.equal(await s.offline.push('pete', '<message id="p"/>', 2), true);
      assert.deepEqual((await s.offline.users()).sort(), ['olga', 'pete']);
      const list = await s.offline.list('olga');
      assert.deepEqual(
        list.map((r) => r.stanza),
        ['<message id="1"/>', '<message id="2"/>'],
      );
      await s.offline.remove(
        'olga',
        list.map((r) => r.id),
      );
      assert.equal(await s.offline.count('olga'), 0);
      assert.equal(await s.offline.deleteAll('pete'), 1);
      assert.deepEqual(await s.offline.users(), []);
    });
  });

  describe('rooms', () => {
    it('saves rooms with affiliations per service, updates, removes', async () => {
      await s.rooms.save('conference.localhost', 'lobby', '{"name":"Lobby"}', '');
      await s.rooms.save('conference.localhost', 'den', '{}', '{"text":"hi"}');
      await s.rooms.save('other.localhost', 'lobby', '{}', '');
      await s.rooms.setAffiliation('conference.localhost', 'lobby', { jid: 'alice@localhost', affiliation: 'owner' });
      await s.rooms.setAffiliation('conference.localhost', 'lobby', { jid: 'bob@localhost', affiliation: 'member', nick: 'bobby' });
      await s.rooms.setAffiliation('conference.localhost', 'lobby', { jid: 'eve@localhost', affiliation: 'outcast', reason: 'spam' });
      await s.rooms.save('conference.localhost', 'lobby', '{"name":"Lobby 2"}', '{"text":"topic"}');
      await s.rooms.setAffiliation('conference.localhost', 'lobby', { jid: 'bob@localhost', affiliation: 'admin' });
      await s.rooms.setAffiliation('conference.localhost', 'lobby', { jid: 'eve@localhost', affiliation: 'none' });
      const rooms = await s.rooms.all('conference.localhost');
      assert.deepEqual(
        rooms.map((r) => r.name),
        ['den', 'lobby'],
      );
      const lobby = rooms.find((r) => r.name === 'lobby')!;
      assert.equal(lobby.config, '{"name":"Lobby 2"}');
      assert.equal(lobby.subject, '{"text":"topic"}');
      assert.deepEqual(
        lobby.affiliations.sort((a, b) => a.jid.localeCompare(b.jid)),
        [
          { jid: 'alice@localhost', affiliation: 'owner' },
          { jid: 'bob@localhost', affiliation: 'admin' },
        ],
      );
      assert.equal(await s.rooms.remove('conference.localhost', 'lobby'), true);
      assert.equal(await s.rooms.remove('conference.localhost', 'lobby'), false);
      assert.deepEqual(
        (await s.rooms.all('conference.localhost')).map((r) => r.name),
        ['den'],
      );
      assert.equal((await s.rooms.all('other.localhost')).length, 1);
    });
  });

  describe('publish-subscribe (PEP)', () => {
    const svc = 'pep@localhost';
    const node = (name: string) => ({ node: name, config: '{"max_items":2}', affiliations: '{}', subscriptions: '{}', createdAt: 1000 });
    const item = (n: string, id: string, payload = `<p xmlns='x'>${id}</p>`) => ({ node: n, id, publisher: svc, payload, publishedAt: 2000 });

    it('keeps nodes, newest items first, and only the `keep` newest', async () => {
      await s.pubsub.saveNode(svc, node('a'));
      await s.pubsub.saveNode(svc, { ...node('a'), config: '{"max_items":3}' });
      await s.pubsub.saveNode(svc, node('b'));
      assert.deepEqual((await s.pubsub.nodes(svc)).map((n) => [n.node, n.config]), [['a', '{"max_items":3}'], ['b', '{"max_items":2}']]);
      for (const id of ['1', '2', '3', '4']) await s.pubsub.publish(svc, item('a', id), 3);
      assert.deepEqual((await s.pubsub.items(svc, 'a')).map((i) => i.id), ['4', '3', '2']);
      // a re-published id becomes the newest and keeps no second copy
      await s.pubsub.publish(svc, item('a', '2', "<p xmlns='x'>again</p>"), 3);
      const all = await s.pubsub.items(svc, 'a');
      assert.deepEqual(all.map((i) => i.id), ['2', '4', '3']);
      assert.equal(all[0]!.payload, "<p xmlns='x'>again</p>");
      assert.deepEqual((await s.pubsub.items(svc, 'a', { max: 1 })).map((i) => i.id), ['2']);
      assert.deepEqual((await s.pubsub.items(svc, 'a', { ids: ['3', 'nope'] })).map((i) => i.id), ['3']);
      await s.pubsub.publish(svc, item('b', 'x'), 1);
      assert.deepEqual((await s.pubsub.lastItems(svc)).map((i) => [i.node, i.id]).sort(), [['a', '2'], ['b', 'x']]);
    });

    it('retracts, purges, deletes a node with its items, and everything of a service', async () => {
      assert.equal(await s.pubsub.retract(svc, 'a', '4'), true);
      assert.equal(await s.pubsub.retract(svc, 'a', '4'), false);
      assert.equal(await s.pubsub.purge(svc, 'a'), 2);
      assert.deepEqual(await s.pubsub.items(svc, 'a'), []);
      assert.equal(await s.pubsub.deleteNode(svc, 'b'), true);
      assert.deepEqual(await s.pubsub.items(svc, 'b'), []);
      assert.deepEqual((await s.pubsub.nodes(svc)).map((n) => n.node), ['a']);
      await s.pubsub.publish(svc, item('a', 'z'), 5);
      assert.equal(await s.pubsub.deleteAll(svc), 2);
      assert.deepEqual(await s.pubsub.nodes(svc), []);
    });

    it('keeps verified caps strings', async () => {
      assert.equal(await s.caps.get('sha-1 abc='), undefined);
      await s.caps.put('sha-1 abc=', '["a","b"]');
      await s.caps.put('sha-1 abc=', '["other"]'); // the first answer stays
      assert.equal(await s.caps.get('sha-1 abc='), '["a","b"]');
    });
  });

  describe('archive', () => {
    const row = (owner: string, i: number, withJid: string, ts: number) => ({
      owner,
      id: `id-${owner}-${i}`,
      ts,
      with: withJid,
      withFull: `${withJid}/res`,
      stanza: `<message><body>${i}</body></message>`,
    });
    it('batches writes, pages forwards and backwards with keyset bounds, filters, and knows missing ids', async () => {
      const base = 1_700_000_000_000;
      for (let i = 1; i <= 30; i++) s.archive.add(row('ann@localhost', i, i % 2 ? 'bob@localhost' : 'cat@localhost', base + i * 1000));
      s.archive.add(row('zed@localhost', 1, 'bob@localhost', base));
      s.archive.add(row('ann@localhost', 1, 'dup@localhost', base)); // same id again: ignored
      const q = (over: Partial<Parameters<typeof s.archive.query>[0]>) =>
        s.archive.query({ owner: 'ann@localhost', max: 10, fromEnd: false, ...over });
      const first = await q({});
      assert.deepEqual(
        first.items.map((m) => m.id),
        Array.from({ length: 10 }, (_, k) => `id-ann@localhost-${k + 1}`),
      );
      assert.equal(first.complete, false);
      assert.equal(first.count, 30);
      assert.equal(first.items[0]!.with, 'bob@localhost');
      const next = await q({ after: first.items.at(-1)!.id });
      assert.equal(next.items[0]!.id, 'id-ann@localhost-11');
      const last = await q({ fromEnd: true });
      assert.deepEqual(
        last.items.map((m) => m.id.split('-').pop()),
        ['21', '22', '23', '24', '25', '26', '27', '28', '29', '30'],
      );
      assert.equal((await q({ fromEnd: true, before: 'id-ann@localhost-3' })).complete, true);
      const withCat = await q({ with: 'cat@localhost', max: 100 });
      assert.equal(withCat.items.length, 15);
      assert.equal(withCat.complete, true);
      assert.equal((await q({ with: 'cat@localhost/res', max: 100 })).items.length, 15);
      const range = await q({ start: base + 5000, end: base + 7000, max: 100 });
      assert.deepEqual(
        range.items.map((m) => m.id.split('-').pop()),
        ['5', '6', '7'],
      );
      assert.equal((await q({ ids: ['id-ann@localhost-4', 'id-ann@localhost-9'] })).items.length, 2);
      assert.equal((await q({ countLimit: 5 })).count, undefined, 'more matches than the count limit: no count');
      assert.equal((await q({ countLimit: 30 })).count, 30);
      assert.equal(s.archive.pressure(), undefined, 'no backpressure with a short queue');
      await assert.rejects(q({ after: 'nope' }), /no archived message nope/);
      await assert.rejects(q({ ids: ['id-ann@localhost-4', 'nope'] }), /no archived message nope/);
      const b = await s.archive.bounds('ann@localhost');
      assert.equal(b.first!.id, 'id-ann@localhost-1');
      assert.equal(b.last!.id, 'id-ann@localhost-30');
      assert.equal(await s.archive.purge(base + 10_500, 'ann@localhost'), 10);
      assert.equal((await q({ max: 0 })).count, 20);
      assert.equal(await s.archive.deleteAll('ann@localhost'), 20);
      assert.deepEqual(await s.archive.bounds('ann@localhost'), { first: undefined, last: undefined });
      assert.equal((await s.archive.query({ owner: 'zed@localhost', max: 5, fromEnd: false })).items.length, 1);
    });
  });

  describe('archive: replacing one message (moderation tombstones)', () => {
    const owner = 'room@conference.localhost';
    const msg = (i: number) => ({
      owner,
      id: `r-${i}`,
      ts: 1_700_000_100_000 + i,
      with: `${owner}/nick${i}`,
      withFull: `${owner}/nick${i}`,
      stanza: `<message><body>${i}</body></message>`,
    });
    const tomb = (i: number) => `<message><retracted id='${i}'/></message>`;

    it('replaces by archive id for one owner, written or still waiting in the batch, and says when there is none', async () => {
      s.archive.add(msg(1));
      await s.archive.flush();
      s.archive.add(msg(2)); // waits in the batch (up to batch_ms)
      assert.equal(await s.archive.replace(owner, 'r-2', tomb(2)), true, 'a row still waiting in the batch');
      assert.equal(await s.archive.replace(owner, 'r-1', tomb(1)), true, 'a written row');
      s.archive.add(msg(3));
      const writing = s.archive.flush(); // a batch on its way to the database
      await Promise.resolve(); // the flush has taken the row out of the queue
      assert.equal(await s.archive.replace(owner, 'r-3', tomb(3)), true, 'a row being written');
      await writing;
      s.archive.add(msg(4));
      assert.equal(await s.archive.replace(owner, 'nope', tomb(0)), false);
      assert.equal(await s.archive.replace('other@conference.localhost', 'r-1', tomb(0)), false, "another owner's archive");
      const page = await s.archive.query({ owner, max: 10, fromEnd: false });
      assert.deepEqual(
        page.items.map((m) => [m.id, m.stanza, m.with, m.ts]),
        [1, 2, 3, 4].map((i) => [`r-${i}`, i === 4 ? msg(4).stanza : tomb(i), msg(i).with, msg(i).ts]),
        'only the stanza changes: id, order, sender and time stay',
      );
      assert.equal(await s.archive.deleteAll(owner), 4);
    });
  });

  describe('invitations', () => {
    it('keeps invitations by id, spends their uses atomically, sweeps the spent and expired ones', async () => {
      const now = Date.now();
      const inv = (id: string, over: Partial<StoredInvite> = {}): StoredInvite => ({
        id,
        kind: 'account',
        inviter: '',
        username: '',
        admin: false,
        register: true,
        uses: 1,
        createdAt: now,
        expiresAt: now + 60_000,
        ...over,
      });
      await s.invites.create(inv('one'));
      await s.invites.create(inv('two', { kind: 'contact', inviter: 'alice', register: false, uses: 3, admin: true, username: 'x' }));
      await s.invites.create(inv('old', { expiresAt: now - 1 }));
      assert.deepEqual(await s.invites.get('two'), inv('two', { kind: 'contact', inviter: 'alice', register: false, uses: 3, admin: true, username: 'x' }));
      assert.equal(await s.invites.get('old'), undefined, 'expired');
      // the last use goes to one of two concurrent takers
      const takes = await Promise.all([s.invites.use('one'), s.invites.use('one')]);
      assert.deepEqual(takes.sort(), [false, true]);
      assert.equal(await s.invites.use('old'), false);
      await s.invites.unuse('one'); // a registration that failed gives its use back
      assert.equal((await s.invites.get('one'))?.uses, 1);
      assert.equal(await s.invites.use('one'), true);
      assert.deepEqual((await s.invites.list('alice')).map((i) => i.id), ['two']);
      assert.equal(await s.invites.reserved('x'), true, 'named by an open invitation');
      assert.equal(await s.invites.reserved('y'), false);
      assert.equal(await s.invites.sweep(), 2, 'the spent one and the expired one');
      assert.equal(await s.invites.deleteAll('alice'), 1);
      assert.equal(await s.invites.get('two'), undefined);
    });
  });

  describe('lifecycle', () => {
    it('data survives closing and reopening (migrations are idempotent)', async () => {
      await s.close();
      s = await open();
      assert.ok(await s.accounts.get('alice'));
      assert.ok(await s.userData.get('bob', 'private', 'a ns'));
    });

    it('measures a round trip', async () => {
      const ms = await s.ping();
      assert.ok(ms >= 0 && ms < 1000);
    });
  });
});
