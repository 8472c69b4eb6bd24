/**
 * Hooks and their deliveries on ArangoDB: one document each (`_key` a digest of the id), the record under
 * `record`; read-modify-writes run in a stream transaction and compare the document's revision, so that a
 * concurrent write makes a conflict the store retries rather than a lost update.
 */
import type { Database } from 'arangojs';
import { aql } from 'arangojs/aql';
import type { AqlQuery } from 'arangojs/aql';
import type { Transaction, TransactionCollectionOptions } from 'arangojs/transactions';
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
import { isUniqueViolation } from './errors.js';
import { Collections } from './migrations.js';
import { digest } from './references.js';

/** What the hook operations borrow from the store: its queries, transactions, conflict retries and translation. */
export interface ArangoRunner {
  readonly db: Database;
  all<T>(query: AqlQuery, trx?: Transaction): Promise<T[]>;
  inTransaction<T>(
    collections: TransactionCollectionOptions,
    fn: (trx: Transaction) => Promise<T>,
  ): Promise<T>;
  /** Translates errors (`run`) and retries write conflicts (`retrying`) around `fn`. */
  write<T>(fn: () => Promise<T>): Promise<T>;
  read<T>(fn: () => Promise<T>): Promise<T>;
}

interface RecordDocument<T> {
  readonly _key: string;
  readonly record: T;
}

/** The hook operations of the ArangoDB store. */
export class ArangoHooks {
  private readonly hooks;
  private readonly deliveries;

  /** Runs every operation through `db`. */
  constructor(private readonly db: ArangoRunner) {
    this.hooks = db.db.collection(Collections.hooks);
    this.deliveries = db.db.collection(Collections.deliveries);
  }

  createHook(hook: HookRecord): Promise<void> {
    const doc = { _key: digest(hook.id), id: hook.id, createdAt: hook.createdAt, record: hook };
    return this.db.write(async () => {
      try {
        await this.db.all(aql`INSERT ${doc} INTO ${this.hooks}`);
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError(`Hook ${hook.id} already exists`);
        throw error;
      }
    });
  }

  getHook(id: string): Promise<HookRecord | undefined> {
    return this.db.read(async () => (await this.readHook(id))?.record);
  }

  listHooks(): Promise<readonly HookRecord[]> {
    return this.db.read(() =>
      this.db.all<HookRecord>(aql`FOR h IN ${this.hooks} SORT h.createdAt, h.id RETURN h.record`),
    );
  }

  deleteHook(id: string): Promise<void> {
    return this.db.write(() =>
      this.db.inTransaction({ write: [this.hooks, this.deliveries] }, async (trx) => {
        const removed = await this.db.all(
          aql`FOR h IN ${this.hooks} FILTER h._key == ${digest(id)} REMOVE h IN ${this.hooks} RETURN 1`,
          trx,
        );
        if (removed.length === 0) throw new NotFoundError(`Hook ${id} not found`);
        await this.db.all(
          aql`FOR d IN ${this.deliveries} FILTER d.hookId == ${id} REMOVE d IN ${this.deliveries}`,
          trx,
        );
      }),
    );
  }

  recordHookAttempt(
    id: string,
    succeeded: boolean,
    maxFailures: number,
  ): Promise<{ readonly hook: HookRecord; readonly disabled: boolean }> {
    return this.changeHook(id, (hook) => hookAfterAttempt(hook, succeeded, maxFailures));
  }

  async setHookEnabled(id: string, enabled: boolean): Promise<HookRecord> {
    const { hook } = await this.changeHook(id, (current) => ({
      hook: { ...current, enabled, ...(enabled ? { consecutiveFailures: 0 } : {}) },
      disabled: false,
    }));
    return hook;
  }

  createDelivery(delivery: DeliveryRecord): Promise<boolean> {
    const doc = {
      _key: digest(delivery.id),
      id: delivery.id,
      hookId: delivery.hookId,
      createdAt: delivery.createdAt,
      record: delivery,
    };
    return this.db.write(() =>
      this.db.inTransaction({ read: [this.hooks], write: [this.deliveries] }, async (trx) => {
        const [hook] = await this.db.all(
          aql`FOR h IN ${this.hooks} FILTER h._key == ${digest(delivery.hookId)} RETURN 1`,
          trx,
        );
        if (hook === undefined) throw new NotFoundError(`Hook ${delivery.hookId} not found`);
        const [found] = await this.db.all(
          aql`FOR d IN ${this.deliveries} FILTER d._key == ${doc._key} RETURN 1`,
          trx,
        );
        if (found !== undefined) return false;
        try {
          await this.db.all(aql`INSERT ${doc} INTO ${this.deliveries}`, trx);
        } catch (error) {
          // Another insert of the same delivery won the race.
          if (isUniqueViolation(error)) return false;
          throw error;
        }
        return true;
      }),
    );
  }

  getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    return this.db.read(async () => {
      const [doc] = await this.db.all<RecordDocument<DeliveryRecord>>(
        aql`FOR d IN ${this.deliveries} FILTER d._key == ${digest(id)} RETURN d`,
      );
      return doc?.record;
    });
  }

  updateDelivery(id: string, patch: DeliveryPatch): Promise<DeliveryRecord> {
    return this.db.write(() =>
      this.db.inTransaction({ write: [this.deliveries] }, async (trx) => {
        const [doc] = await this.db.all<RecordDocument<DeliveryRecord> & { _rev: string }>(
          aql`FOR d IN ${this.deliveries} FILTER d._key == ${digest(id)} RETURN d`,
          trx,
        );
        if (doc === undefined) throw new NotFoundError(`Delivery ${id} not found`);
        const next = applyDeliveryPatch(doc.record, patch);
        await this.db.all(
          aql`UPDATE { _key: ${doc._key}, _rev: ${doc._rev} } WITH { record: ${next} } IN ${this.deliveries}
          OPTIONS { ignoreRevs: false, mergeObjects: false }`,
          trx,
        );
        return next;
      }),
    );
  }

  listDeliveries(hookId: string, options: ListDeliveriesOptions): Promise<Page<DeliveryRecord>> {
    return this.db.read(async () => {
      const limit = checkPageLimit(options.limit);
      const after = options.cursor === undefined ? undefined : decodeJobCursor(options.cursor);
      const rows = await this.db.all<DeliveryRecord>(
        after === undefined
          ? aql`FOR d IN ${this.deliveries} FILTER d.hookId == ${hookId}
            SORT d.createdAt DESC, d.id DESC LIMIT ${limit + 1} RETURN d.record`
          : aql`FOR d IN ${this.deliveries} FILTER d.hookId == ${hookId}
            FILTER d.createdAt < ${after.createdAt} OR (d.createdAt == ${after.createdAt} AND d.id < ${after.id})
            SORT d.createdAt DESC, d.id DESC LIMIT ${limit + 1} RETURN d.record`,
      );
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return rows.length > limit && last !== undefined
        ? { items, next: encodeJobCursor({ createdAt: last.createdAt, id: last.id }) }
        : { items };
    });
  }

  private async readHook(
    id: string,
    trx?: Transaction,
  ): Promise<(RecordDocument<HookRecord> & { _rev: string }) | undefined> {
    const [doc] = await this.db.all<RecordDocument<HookRecord> & { _rev: string }>(
      aql`FOR h IN ${this.hooks} FILTER h._key == ${digest(id)} RETURN h`,
      trx,
    );
    return doc;
  }

  /** Replaces a hook with what `change` makes of it, in one transaction that compares the revision read. */
  private changeHook(
    id: string,
    change: (hook: HookRecord) => { readonly hook: HookRecord; readonly disabled: boolean },
  ): Promise<{ readonly hook: HookRecord; readonly disabled: boolean }> {
    return this.db.write(() =>
      this.db.inTransaction({ write: [this.hooks] }, async (trx) => {
        const doc = await this.readHook(id, trx);
        if (doc === undefined) throw new NotFoundError(`Hook ${id} not found`);
        const outcome = change(doc.record);
        await this.db.all(
          aql`UPDATE { _key: ${doc._key}, _rev: ${doc._rev} } WITH { record: ${outcome.hook} } IN ${this.hooks}
          OPTIONS { ignoreRevs: false, mergeObjects: false }`,
          trx,
        );
        return outcome;
      }),
    );
  }
}
