// Seeds a Uzzap data directory for a benchmark: accounts with pre-computed
// SCRAM credentials (one salt for all bench users, as the Prosody and ejabberd
// targets do, so the generator computes PBKDF2 once), and optional rosters.
// Uses Uzzap's own storage layer (dist/), not the CLI, so it takes seconds.
// With `postgresUrl` the accounts go to that Postgres database instead of the
// data dir's SQLite file (accounts and roster items already there are kept).
import { randomBytes } from 'node:crypto';

const REPO = new URL('../../', import.meta.url);

/** Contacts of user i (1-based) among n users: the k nearest on a ring, so every relation is mutual. */
export function ringContacts(i, n, k) {
  const out = [];
  for (let d = 1; d <= k / 2; d++) {
    out.push(((i - 1 + d) % n) + 1, ((i - 1 - d + n) % n) + 1);
  }
  return [...new Set(out)].filter((j) => j !== i);
}

/** Uzzap's storage (dist/src/storage), migrations applied: SQLite in dataDir, or Postgres at postgresUrl. */
export async function openUzzapStorage({ dataDir, postgresUrl }) {
  const { openStorage } = await import(new URL('dist/src/storage/index.js', REPO).href);
  return openStorage({ dataDir, postgresUrl: postgresUrl || undefined, postgresPool: 2 });
}

export async function seedUzzap(dataDir, { users, prefix, password, domain, contacts = 0, iterations = 4096, postgresUrl }) {
  const { keysFromSalted, saltedPassword } = await import(new URL('dist/src/stream/sasl/credentials.js', REPO).href);
  const cred = async (h) => {
    const salt = randomBytes(16);
    const { storedKey, serverKey } = keysFromSalted(h, await saltedPassword(h, password, salt, iterations));
    return { salt: salt.toString('base64'), iterations, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
  };
  const credentials = { 'SHA-1': await cred('SHA-1'), 'SHA-256': await cred('SHA-256') };
  const storage = await openUzzapStorage({ dataDir, postgresUrl });
  try {
    const list = [];
    for (let i = 1; i <= users; i++) list.push({ username: `${prefix}${i}`, credentials });
    await storage.accounts.createMany(list);
    if (contacts > 0) {
      await storage.sql.transaction(async (tx) => {
        for (let i = 1; i <= users; i++) {
          for (const j of ringContacts(i, users, contacts)) {
            await tx.exec("INSERT INTO roster_items (username, jid, subscription, groups) VALUES ($1, $2, 'both', '[]') ON CONFLICT DO NOTHING", [
              `${prefix}${i}`,
              `${prefix}${j}@${domain}`,
            ]);
          }
          await tx.exec('INSERT INTO roster_versions (username, version) VALUES ($1, 1) ON CONFLICT DO NOTHING', [`${prefix}${i}`]);
        }
      });
    }
  } finally {
    await storage.close();
  }
}
