// The archive never drops a row (issue 14): while the database is stalled (SQLite:
// another connection holds the write lock, so the writer's batches fail and are
// retried; Postgres: another connection holds a lock on the table, so the batch
// waits), the queue grows to storage.archive_queue_rows and then the senders wait,
// their streams unread (TCP backpressure). Once the database is back, everything
// is delivered and every message is in both archives.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Server } from '../../src/server.js';
import { BACKEND, newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { barrier, connect, iq, stopAll, until, xml, type XmppClient } from '../helpers/clients.js';

const QUEUE_ROWS = 20;
const MESSAGES = 60;

/** Stall the server's database from outside; returns the release. */
async function stallDatabase(slot: StorageSlot): Promise<() => Promise<void>> {
  if (BACKEND === 'postgres') {
    const c = new pg.Client({ connectionString: slot.postgresUrl });
    await c.connect();
    await c.query('BEGIN');
    await c.query('LOCK TABLE mam_chunks IN ACCESS EXCLUSIVE MODE');
    return async () => {
      await c.query('COMMIT');
      await c.end();
    };
  }
  const db = new Database(join(slot.dataDir, 'uzzap.sqlite'));
  db.exec('BEGIN EXCLUSIVE');
  return async () => {
    db.exec('COMMIT');
    db.close();
  };
}

describe('archive backpressure: a stalled database slows senders and loses nothing', function () {
  this.timeout(60_000);
  let server: Server;
  let slot: StorageSlot;
  const open: XmppClient[] = [];
  afterEach(async () => {
    await stopAll(...open.splice(0));
    await server.stop();
  });

  it('the queue stays bounded, the sender waits, and after the stall every message arrives and is archived twice', async () => {
    slot = await newStorageSlot();
    server = await startServer({
      slot,
      users: { alice: 'secret', bob: 'secret' },
      // a short busy timeout: on SQLite the writer's batches fail and are retried while the lock is held
      config: { storage: { archive_queue_rows: QUEUE_ROWS, archive_batch_ms: 10, sqlite_busy_timeout: 50 } },
    });
    const alice = await connect(server, 'alice');
    const bob = await connect(server, 'bob');
    open.push(alice, bob);
    const release = await stallDatabase(slot);
    let released = false;
    try {
      const bodies = Array.from({ length: MESSAGES }, (_, i) => `m${i}`);
      for (const body of bodies) await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, body)));
      await until(
        async () => ((await server.metrics.archiveBackpressure.get()).values[0]?.value ?? 0) > 0,
        'the server reports backpressure',
        10_000,
      );
      // the server went on serving others (bob's ping is answered) while alice waits
      await barrier(bob);
      const got = bob.received.filter((s) => s.is('message')).length;
      assert.ok(got < MESSAGES, `alice was slowed: bob has ${got} of ${MESSAGES} while the database is stalled`);
      assert.ok(
        server.storage.archive.queued <= QUEUE_ROWS + 2,
        `the queue stays bounded: ${server.storage.archive.queued} rows for a bound of ${QUEUE_ROWS}`,
      );
      await release();
      released = true;
      await until(() => bob.received.filter((s) => s.is('message')).length === MESSAGES, 'every message reached bob', 30_000);
      assert.deepEqual(
        bob.received.filter((s) => s.is('message')).map((s) => s.getChildText('body')),
        bodies,
        'all of them, in order',
      );
      // alice's stream is read again: her ping is answered
      const pong = await iq(alice, xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(pong.attrs.type, 'result');
      for (const owner of ['alice@localhost', 'bob@localhost']) {
        const r = await server.storage.archive.query({ owner, max: 0, fromEnd: false });
        assert.equal(r.count, MESSAGES, `${owner}'s archive holds every message`);
      }
    } finally {
      if (!released) await release();
    }
  });

  it('a sender over its share (storage.archive_source_rows) waits alone: others are delivered meanwhile', async () => {
    slot = await newStorageSlot();
    server = await startServer({
      slot,
      users: { alice: 'secret', bob: 'secret', carol: 'secret', dave: 'secret' },
      config: { storage: { archive_queue_rows: 100_000, archive_source_rows: 10, archive_batch_ms: 10, sqlite_busy_timeout: 50 } },
    });
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((u) => connect(server, u)));
    open.push(alice!, bob!, carol!, dave!);
    const release = await stallDatabase(slot);
    let released = false;
    try {
      for (let i = 0; i < MESSAGES; i++) await alice!.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, `a${i}`)));
      // alice's share is 10 rows, two per message: the 5th message reaches it and still goes out
      // at once (the wire never waits for the archive); her 6th waits, and the stall goes on
      await until(() => bob!.received.filter((s) => s.is('message')).length >= 5, 'bob has alice\'s first five messages', 10_000);
      await carol!.send(xml('message', { to: 'dave@localhost', type: 'chat' }, xml('body', {}, 'from carol')));
      await until(() => dave!.received.some((s) => s.getChildText('body') === 'from carol'), 'carol is not held up by alice', 10_000);
      const got = bob!.received.filter((s) => s.is('message')).length;
      assert.ok(got < MESSAGES, `alice waits for her rows: bob has ${got} of ${MESSAGES}`);
      await release();
      released = true;
      await until(() => bob!.received.filter((s) => s.is('message')).length === MESSAGES, 'every message reached bob', 30_000);
      const r = await server.storage.archive.query({ owner: 'alice@localhost', max: 0, fromEnd: false });
      assert.equal(r.count, MESSAGES, "alice's archive holds every message");
    } finally {
      if (!released) await release();
    }
  });
});
