// Publish-subscribe nodes and items (xeps/0060-pubsub, PEP) and XEP-0115 caps, on SQLite
// and Postgres alike. Items are ordered by `seq`, one more than the node's newest at
// each publish: a re-published id takes a new seq and so becomes the newest.
import type { Sql } from './sql.js';
import type { CapsStore, PubSubStore, StoredPubSubItem, StoredPubSubNode } from '../types.js';

interface NodeRow {
  node: string;
  config: string;
  affiliations: string;
  subscriptions: string;
  created_at: number | string;
}

interface ItemRow {
  node: string;
  id: string;
  publisher: string;
  payload: string;
  published_at: number | string;
}

const item = (r: ItemRow): StoredPubSubItem => ({
  node: r.node,
  id: r.id,
  publisher: r.publisher,
  payload: r.payload,
  publishedAt: Number(r.published_at),
});

const ITEM_COLUMNS = 'node, id, publisher, payload, published_at';

export class SqlPubSubStore implements PubSubStore {
  constructor(private readonly sql: Sql) {}

  async nodes(service: string): Promise<StoredPubSubNode[]> {
    const rows = await this.sql.query<NodeRow>(
      'SELECT node, config, affiliations, subscriptions, created_at FROM pubsub_nodes WHERE service = $1 ORDER BY node',
      [service],
    );
    return rows.map((r) => ({ ...r, createdAt: Number(r.created_at) }));
  }

  async lastItems(service: string): Promise<StoredPubSubItem[]> {
    const rows = await this.sql.query<ItemRow>(
      `SELECT i.node, i.id, i.publisher, i.payload, i.published_at FROM pubsub_items i
       JOIN (SELECT node, MAX(seq) AS seq FROM pubsub_items WHERE service = $1 GROUP BY node) m ON i.node = m.node AND i.seq = m.seq
       WHERE i.service = $1`,
      [service],
    );
    return rows.map(item);
  }

  async saveNode(service: string, n: StoredPubSubNode): Promise<void> {
    await this.sql.exec(
      `INSERT INTO pubsub_nodes (service, node, config, affiliations, subscriptions, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (service, node) DO UPDATE SET config = excluded.config, affiliations = excluded.affiliations, subscriptions = excluded.subscriptions`,
      [service, n.node, n.config, n.affiliations, n.subscriptions, n.createdAt],
    );
  }

  deleteNode(service: string, node: string): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      await tx.exec('DELETE FROM pubsub_items WHERE service = $1 AND node = $2', [service, node]);
      return (await tx.exec('DELETE FROM pubsub_nodes WHERE service = $1 AND node = $2', [service, node])) > 0;
    });
  }

  async items(service: string, node: string, opts: { ids?: string[]; max?: number } = {}): Promise<StoredPubSubItem[]> {
    if (opts.ids) {
      if (!opts.ids.length) return [];
      const marks = opts.ids.map((_, i) => `$${i + 3}`).join(', ');
      const rows = await this.sql.query<ItemRow>(
        `SELECT ${ITEM_COLUMNS} FROM pubsub_items WHERE service = $1 AND node = $2 AND id IN (${marks}) ORDER BY seq DESC`,
        [service, node, ...opts.ids],
      );
      return rows.map(item);
    }
    const limit = opts.max !== undefined ? ' LIMIT $3' : '';
    const rows = await this.sql.query<ItemRow>(
      `SELECT ${ITEM_COLUMNS} FROM pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC${limit}`,
      opts.max !== undefined ? [service, node, opts.max] : [service, node],
    );
    return rows.map(item);
  }

  publish(service: string, it: StoredPubSubItem, keep: number): Promise<void> {
    return this.sql.transaction(async (tx) => {
      await tx.exec(
        `INSERT INTO pubsub_items (service, node, id, seq, publisher, payload, published_at)
         VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM pubsub_items WHERE service = $1 AND node = $2), $4, $5, $6)
         ON CONFLICT (service, node, id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher,
           payload = excluded.payload, published_at = excluded.published_at`,
        [service, it.node, it.id, it.publisher, it.payload, it.publishedAt],
      );
      // keep the `keep` newest (by id too: two nodes of a cluster publishing at once may take
      // one seq, and a tie must not delete both)
      await tx.exec(
        `DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND id NOT IN (
           SELECT id FROM pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC, id DESC LIMIT $3)`,
        [service, it.node, keep],
      );
    });
  }

  async retract(service: string, node: string, id: string): Promise<boolean> {
    return (await this.sql.exec('DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND id = $3', [service, node, id])) > 0;
  }

  purge(service: string, node: string): Promise<number> {
    return this.sql.exec('DELETE FROM pubsub_items WHERE service = $1 AND node = $2', [service, node]);
  }

  deleteAll(service: string): Promise<number> {
    return this.sql.transaction(async (tx) => {
      const items = await tx.exec('DELETE FROM pubsub_items WHERE service = $1', [service]);
      return items + (await tx.exec('DELETE FROM pubsub_nodes WHERE service = $1', [service]));
    });
  }
}

export class SqlCapsStore implements CapsStore {
  constructor(private readonly sql: Sql) {}

  async get(ver: string): Promise<string | undefined> {
    const [row] = await this.sql.query<{ info: string }>('SELECT info FROM entity_caps WHERE ver = $1', [ver]);
    return row?.info;
  }

  async put(ver: string, info: string): Promise<void> {
    await this.sql.exec('INSERT INTO entity_caps (ver, info, created_at) VALUES ($1, $2, $3) ON CONFLICT (ver) DO NOTHING', [
      ver,
      info,
      Date.now(),
    ]);
  }
}
