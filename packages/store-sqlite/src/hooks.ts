/** Hooks and their deliveries on SQLite: one JSON record per row, every read-modify-write in one transaction. */
import type BetterSqlite3 from 'better-sqlite3';
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

interface RecordRow {
  readonly record: string;
}

/** The hook operations of the SQLite store, synchronous; the store wraps each in its error translation. */
export class SqliteHooks {
  private readonly stmt;

  /** Prepares the statements on a migrated database. */
  constructor(private readonly db: BetterSqlite3.Database) {
    this.stmt = {
      insertHook: db.prepare<[string, number, string]>(
        'INSERT INTO hooks (id, created_at, record) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING',
      ),
      getHook: db.prepare<[string], RecordRow>('SELECT record FROM hooks WHERE id = ?'),
      listHooks: db.prepare<[], RecordRow>('SELECT record FROM hooks ORDER BY created_at, id'),
      putHook: db.prepare<[string, string]>('UPDATE hooks SET record = ? WHERE id = ?'),
      deleteHook: db.prepare<[string]>('DELETE FROM hooks WHERE id = ?'),
      insertDelivery: db.prepare<[string, string, number, string]>(
        'INSERT INTO deliveries (id, hook_id, created_at, record) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      ),
      getDelivery: db.prepare<[string], RecordRow>('SELECT record FROM deliveries WHERE id = ?'),
      putDelivery: db.prepare<[string, string]>('UPDATE deliveries SET record = ? WHERE id = ?'),
      listDeliveries: db.prepare<[string, number], RecordRow>(
        'SELECT record FROM deliveries WHERE hook_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
      ),
      listDeliveriesAfter: db.prepare<[string, number, number, string, number], RecordRow>(
        'SELECT record FROM deliveries WHERE hook_id = ? AND (created_at < ? OR (created_at = ? AND id < ?)) ' +
          'ORDER BY created_at DESC, id DESC LIMIT ?',
      ),
    };
  }

  createHook(hook: HookRecord): void {
    if (this.stmt.insertHook.run(hook.id, hook.createdAt, JSON.stringify(hook)).changes === 0) {
      throw new ConflictError(`Hook ${hook.id} already exists`);
    }
  }

  getHook(id: string): HookRecord | undefined {
    const row = this.stmt.getHook.get(id);
    return row === undefined ? undefined : (JSON.parse(row.record) as HookRecord);
  }

  listHooks(): HookRecord[] {
    return this.stmt.listHooks.all().map((row) => JSON.parse(row.record) as HookRecord);
  }

  deleteHook(id: string): void {
    if (this.stmt.deleteHook.run(id).changes === 0) throw new NotFoundError(`Hook ${id} not found`);
  }

  recordHookAttempt(
    id: string,
    succeeded: boolean,
    maxFailures: number,
  ): { hook: HookRecord; disabled: boolean } {
    return this.immediate(() => {
      const outcome = hookAfterAttempt(this.requireHook(id), succeeded, maxFailures);
      this.stmt.putHook.run(JSON.stringify(outcome.hook), id);
      return outcome;
    });
  }

  setHookEnabled(id: string, enabled: boolean): HookRecord {
    return this.immediate(() => {
      const hook = this.requireHook(id);
      const next = { ...hook, enabled, ...(enabled ? { consecutiveFailures: 0 } : {}) };
      this.stmt.putHook.run(JSON.stringify(next), id);
      return next;
    });
  }

  createDelivery(delivery: DeliveryRecord): boolean {
    return this.immediate(() => {
      this.requireHook(delivery.hookId);
      const { changes } = this.stmt.insertDelivery.run(
        delivery.id,
        delivery.hookId,
        delivery.createdAt,
        JSON.stringify(delivery),
      );
      return changes > 0;
    });
  }

  getDelivery(id: string): DeliveryRecord | undefined {
    const row = this.stmt.getDelivery.get(id);
    return row === undefined ? undefined : (JSON.parse(row.record) as DeliveryRecord);
  }

  updateDelivery(id: string, patch: DeliveryPatch): DeliveryRecord {
    return this.immediate(() => {
      const current = this.getDelivery(id);
      if (current === undefined) throw new NotFoundError(`Delivery ${id} not found`);
      const next = applyDeliveryPatch(current, patch);
      this.stmt.putDelivery.run(JSON.stringify(next), id);
      return next;
    });
  }

  listDeliveries(hookId: string, options: ListDeliveriesOptions): Page<DeliveryRecord> {
    const limit = checkPageLimit(options.limit);
    const rows =
      options.cursor === undefined
        ? this.stmt.listDeliveries.all(hookId, limit + 1)
        : (() => {
            const after = decodeJobCursor(options.cursor);
            return this.stmt.listDeliveriesAfter.all(
              hookId,
              after.createdAt,
              after.createdAt,
              after.id,
              limit + 1,
            );
          })();
    const items = rows.slice(0, limit).map((row) => JSON.parse(row.record) as DeliveryRecord);
    const last = items[items.length - 1];
    return rows.length > limit && last !== undefined
      ? { items, next: encodeJobCursor({ createdAt: last.createdAt, id: last.id }) }
      : { items };
  }

  private requireHook(id: string): HookRecord {
    const hook = this.getHook(id);
    if (hook === undefined) throw new NotFoundError(`Hook ${id} not found`);
    return hook;
  }

  private immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}
