// Stopping the server loses nothing: what sessions, modules and batches still
// have to write reaches storage before storage closes, on the configured backend.
import assert from 'node:assert/strict';
import pino, { type Logger } from 'pino';
import type { Server } from '../../src/server.js';
import { openStorage } from '../../src/storage/index.js';
import { newStorageSlot, startServer, type StorageSlot } from '../helpers/server.js';
import { connect, expectStanza, stopAll, xml, type XmppClient } from '../helpers/clients.js';
import { SERVICE, createRoom, join } from '../helpers/muc.js';

/** A logger that keeps every line, to find errors logged while stopping. */
function capturedLog(): { log: Logger; errors: () => string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const errors = (): string[] =>
    lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } })
      .filter((l) => l.level >= 50)
      .map((l) => `${l.msg}: ${l.err?.message ?? ''}`);
  return { log, errors };
}

/** What the server left in storage, read by a fresh storage on the same slot. */
async function stored(slot: StorageSlot, users: string[]): Promise<{ last: Map<string, string>; lastLogin: Map<string, number> }> {
  const storage = await openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });
  try {
    const last = new Map<string, string>();
    const lastLogin = new Map<string, number>();
    for (const u of users) {
      const l = await storage.userData.get(u, 'last', '');
      if (l !== undefined) last.set(u, l);
      const at = (await storage.accounts.get(u))?.lastLogin;
      if (at !== undefined) lastLogin.set(u, at);
    }
    return { last, lastLogin };
  } finally {
    await storage.close();
  }
}

describe('server shutdown (e2e)', function () {
  this.timeout(30_000);

  it('a database slower than the stop still gets the last activity of a user who just logged out and of one the stop disconnects', async () => {
    const slot = await newStorageSlot();
    const { log, errors } = capturedLog();
    const server: Server = await startServer({ slot, log, users: { alice: 'secret', bob: 'secret' } });
    // Each last-activity write is held until storage has closed (where the writes
    // fired and forgotten by the stop used to land) or, when the stop waits for
    // it, for 300 ms: a database slower than the rest of the stop.
    let storageClosed = (): void => undefined;
    const closed = new Promise<void>((resolve) => (storageClosed = resolve));
    const close = server.storage.close.bind(server.storage);
    server.storage.close = async () => {
      await close();
      storageClosed();
    };
    const set = server.storage.userData.set.bind(server.storage.userData);
    server.storage.userData.set = async (...args) => {
      // the 300 ms is the injected slowness itself, not a wait for a condition
      if (args[1] === 'last') await Promise.race([closed, new Promise((r) => setTimeout(r, 300))]);
      return set(...args);
    };

    const alice = await connect(server, 'alice');
    const bob = await connect(server, 'bob');
    await alice.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'gone fishing')));
    await stopAll(alice); // the server has answered the close: alice's session is over
    await server.stop(); // bob is still online
    await stopAll(bob);

    const { last, lastLogin } = await stored(slot, ['alice', 'bob']);
    assert.deepEqual([...last.keys()].sort(), ['alice', 'bob'], 'both last activities are stored');
    assert.equal((JSON.parse(last.get('alice')!) as { status: string }).status, 'gone fishing');
    assert.deepEqual([...lastLogin.keys()].sort(), ['alice', 'bob'], 'both login times are stored');
    assert.deepEqual(errors(), [], 'nothing failed while stopping');
  });

  it('after a room workload, the last activity and login time of every occupant and the room archive are stored, and no write comes after the database closed', async () => {
    const slot = await newStorageSlot();
    const { log, errors } = capturedLog();
    const names = Array.from({ length: 12 }, (_, i) => `u${i}`);
    const server = await startServer({ slot, log, users: Object.fromEntries(names.map((n) => [n, 'secret'])) });
    const clients: XmppClient[] = await Promise.all(names.map((n) => connect(server, n)));
    await createRoom(clients[0]!, 'hall', 'u0', { 'muc#roomconfig_persistentroom': '1' });
    for (let i = 1; i < clients.length; i++) await join(clients[i]!, 'hall', names[i]!);
    for (let k = 0; k < 10; k++)
      await clients[k % clients.length]!.send(xml('message', { to: `hall@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `msg ${k}`)));
    await expectStanza(clients[0]!, (s) => s.getChildText('body') === 'msg 9');
    // just before the stop, some log out and some connections vanish; the rest are online when it comes
    const leaving = Promise.all([
      stopAll(...clients.slice(0, 4)),
      ...clients.slice(4, 8).map((c) => (c as unknown as { disconnect(): Promise<void> }).disconnect().catch(() => undefined)),
    ]);
    await server.stop();
    await leaving;
    await stopAll(...clients.slice(8));

    const { last, lastLogin } = await stored(slot, names);
    assert.deepEqual([...last.keys()].sort(), [...names].sort(), 'every last activity is stored');
    assert.deepEqual([...lastLogin.keys()].sort(), [...names].sort(), 'every login time is stored');
    const storage = await openStorage({ postgresUrl: slot.postgresUrl || undefined, dataDir: slot.dataDir });
    try {
      assert.ok(
        (await storage.rooms.all(SERVICE)).some((r) => r.name === 'hall'),
        'the persistent room is stored',
      );
      const archived = await storage.archive.query({ owner: `hall@${SERVICE}`, max: 100, fromEnd: false });
      assert.equal(archived.items.length, 10, 'every room message is archived');
    } finally {
      await storage.close();
    }
    assert.deepEqual(errors(), [], 'nothing failed while stopping');
  });
});
