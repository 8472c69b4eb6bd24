/** Hooks and their deliveries on PostgreSQL: one JSONB record per row; read-modify-writes lock the row first. */
import type { PoolClient, QueryResultRow } from 'pg';
import type {
  DeliveryPatch,
  DeliveryRecord,
  HookRecord,
  ListDeliveriesOptions,
  Page,
} from '@consortium/core';
import {
  ConflictError,
  NotFoundError,
  applyDeliveryPatch,
  checkPageLimit,
  decodeJobCursor,
  encodeJobCursor,
  hookAfterAttempt,
} from '@consortium/core';

/** How the hook operations reach the database: the store's statement and transaction runners. */
export interface PostgresRunner {
  query<R extends QueryResultRow>(sql: string, params: readonly unknown[]): Promise<R[]>;
  transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T>;
}

/** The hook operations of the PostgreSQL store. */
export class PostgresHooks {
  /** Runs every operation through `db`, so that errors are translated as the store's own. */
  constructor(private readonly db: PostgresRunner) {}

  async createHook(hook: HookRecord): Promise<void> {
    const rows = await this.db.query(
      'INSERT INTO hooks (id, created_at, record) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING 1',
      [hook.id, hook.createdAt, JSON.stringify(hook)],
    );
    if (rows.length === 0) throw new ConflictError(`Hook ${hook.id} already exists`);
  }

  async getHook(id: string): Promise<HookRecord | undefined> {
    const rows = await this.db.query<{ record: HookRecord }>('SELECT record FROM hooks WHERE id = $1', [id]);
    return rows[0]?.record;
  }

  async listHooks(): Promise<readonly HookRecord[]> {
    const rows = await this.db.query<{ record: HookRecord }>(
      'SELECT record FROM hooks ORDER BY created_at, id',
      [],
    );
    return rows.map((row) => row.record);
  }

  async deleteHook(id: string): Promise<void> {
    const rows = await this.db.query('DELETE FROM hooks WHERE id = $1 RETURNING 1', [id]);
    if (rows.length === 0) throw new NotFoundError(`Hook ${id} not found`);
  }

  recordHookAttempt(
    id: string,
    succeeded: boolean,
    maxFailures: number,
  ): Promise<{ readonly hook: HookRecord; readonly disabled: boolean }> {
    return this.db.transaction(async (client) => {
      const outcome = hookAfterAttempt(await lockedHook(client, id), succeeded, maxFailures);
      await client.query('UPDATE hooks SET record = $1 WHERE id = $2', [JSON.stringify(outcome.hook), id]);
      return outcome;
    });
  }

  setHookEnabled(id: string, enabled: boolean): Promise<HookRecord> {
    return this.db.transaction(async (client) => {
      const hook = await lockedHook(client, id);
      const next = { ...hook, enabled, ...(enabled ? { consecutiveFailures: 0 } : {}) };
      await client.query('UPDATE hooks SET record = $1 WHERE id = $2', [JSON.stringify(next), id]);
      return next;
    });
  }

  createDelivery(delivery: DeliveryRecord): Promise<boolean> {
    return this.db.transaction(async (client) => {
      // A share lock: the hook cannot be deleted until the delivery is in (or refused).
      const hook = await client.query('SELECT 1 FROM hooks WHERE id = $1 FOR SHARE', [delivery.hookId]);
      if (hook.rows.length === 0) throw new NotFoundError(`Hook ${delivery.hookId} not found`);
      const inserted = await client.query(
        'INSERT INTO deliveries (id, hook_id, created_at, record) VALUES ($1, $2, $3, $4) ' +
          'ON CONFLICT (id) DO NOTHING RETURNING 1',
        [delivery.id, delivery.hookId, delivery.createdAt, JSON.stringify(delivery)],
      );
      return inserted.rows.length > 0;
    });
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const rows = await this.db.query<{ record: DeliveryRecord }>(
      'SELECT record FROM deliveries WHERE id = $1',
      [id],
    );
    return rows[0]?.record;
  }

  updateDelivery(id: string, patch: DeliveryPatch): Promise<DeliveryRecord> {
    return this.db.transaction(async (client) => {
      const found = await client.query<{ record: DeliveryRecord }>(
        'SELECT record FROM deliveries WHERE id = $1 FOR UPDATE',
        [id],
      );
      const current = found.rows[0]?.record;
      if (current === undefined) throw new NotFoundError(`Delivery ${id} not found`);
      const next = applyDeliveryPatch(current, patch);
      await client.query('UPDATE deliveries SET record = $1 WHERE id = $2', [JSON.stringify(next), id]);
      return next;
    });
  }

  async listDeliveries(hookId: string, options: ListDeliveriesOptions): Promise<Page<DeliveryRecord>> {
    const limit = checkPageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeJobCursor(options.cursor);
    const rows = await this.db.query<{ record: DeliveryRecord }>(
      after === undefined
        ? 'SELECT record FROM deliveries WHERE hook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2'
        : 'SELECT record FROM deliveries WHERE hook_id = $1 AND (created_at, id) < ($3, $4) ' +
            'ORDER BY created_at DESC, id DESC LIMIT $2',
      after === undefined ? [hookId, limit + 1] : [hookId, limit + 1, after.createdAt, after.id],
    );
    const items = rows.slice(0, limit).map((row) => row.record);
    const last = items[items.length - 1];
    return rows.length > limit && last !== undefined
      ? { items, next: encodeJobCursor({ createdAt: last.createdAt, id: last.id }) }
      : { items };
  }
}

/** The hook `id`, its row locked until the transaction ends; throws `NotFoundError`. */
async function lockedHook(client: PoolClient, id: string): Promise<HookRecord> {
  const rows = await client.query<{ record: HookRecord }>(
    'SELECT record FROM hooks WHERE id = $1 FOR UPDATE',
    [id],
  );
  const hook = rows.rows[0]?.record;
  if (hook === undefined) throw new NotFoundError(`Hook ${id} not found`);
  return hook;
}
