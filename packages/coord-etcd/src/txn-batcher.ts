/**
 * Combines small guarded writes that arrive together into one etcd transaction (DESIGN.md §5: every queue write
 * is one transaction whose compares make it apply at most once). One batcher serves a whole coordinator: queue
 * writes, lock and election stands and withdrawals, and notifications of every topic share its transactions. Each
 * write brings its compares, its operations (reads among them see the writes before them) and the reads that tell,
 * when the combined transaction fails, whether its own compares held. The writes made in one turn of the event loop
 * go together, and while a transaction is in flight the next writes gather, so a busy process pays one consensus
 * round for many writes; an idle one sends a write after the current turn. A failed combination is told apart by
 * those reads (taken atomically with the compares): the writes whose guard failed answer false, the others go again
 * together, alone after a few rounds. A combination refused for a lost lease (one write's lease expired) is run
 * again one write at a time, so that only the write on that lease fails.
 */
import { LeaseLostError } from '@consortium/core';
import type { ICompare, IRequestOp } from 'etcd3';
import type { EtcdKv, RangeResult } from './etcd-kv.js';

/** One guarded write. */
export interface GuardedWrite {
  /** Names the write in errors when it runs alone. */
  readonly what: string;
  /** The keys it writes: two writes of one key never share a transaction (etcd refuses it). */
  readonly keys: readonly string[];
  readonly compares: readonly ICompare[];
  readonly success: readonly IRequestOp[];
  /** Reads whose results tell whether `compares` held. */
  readonly checks: readonly IRequestOp[];
  /** From the results of `checks`: true when this write's compares held. */
  held(ranges: readonly RangeResult[]): boolean;
}

/** What became of a write: applied at `revision` with the results of its own reads, or not (a compare failed). */
export type WriteOutcome =
  | { readonly applied: true; readonly revision: bigint; readonly ranges: readonly RangeResult[] }
  | { readonly applied: false };

interface Pending {
  readonly write: GuardedWrite;
  rounds: number;
  readonly resolve: (outcome: WriteOutcome) => void;
  readonly reject: (error: unknown) => void;
}

/** etcd's default limit of operations in each part of a transaction. */
const maxTxnOps = 128;
/** Bytes of values combined into one transaction, well under etcd's 1.5 MiB request limit; a bigger write goes alone. */
const maxTxnBytes = 512 * 1024;
/** Combined rounds a write goes through before it runs alone. */
const maxRounds = 3;

/** A queue of guarded writes sent as few transactions as the load allows. */
export class TxnBatcher {
  readonly #kv: EtcdKv;
  readonly #what: string;
  readonly #pending: Pending[] = [];
  #running = false;

  constructor(kv: EtcdKv, what: string) {
    this.#kv = kv;
    this.#what = what;
  }

  /** Resolves true when the write applied, false when its compares failed; rejects with the transaction's error. */
  async submit(write: GuardedWrite): Promise<boolean> {
    return (await this.run(write)).applied;
  }

  /** Like `submit`, with the revision the write applied at and the results of the reads among its operations. */
  run(write: GuardedWrite): Promise<WriteOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ write, rounds: 0, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        // The writes of this turn (a release, a result and an ack made together) go in one transaction.
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) await this.#runBatch(this.#take());
    } finally {
      this.#running = false;
    }
  }

  /** The next writes that fit one transaction, oldest first; a write of a key already taken waits for the next. */
  #take(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    let compares = 0;
    let success = 0;
    let checks = 0;
    let bytes = 0;
    for (let i = 0; i < this.#pending.length;) {
      const entry = this.#pending[i] as Pending;
      const { write } = entry;
      const size = sizeOf(write);
      const fits =
        batch.length === 0 ||
        (bytes + size <= maxTxnBytes &&
          compares + write.compares.length <= maxTxnOps &&
          success + write.success.length <= maxTxnOps &&
          checks + write.checks.length <= maxTxnOps);
      if (!fits) break;
      const alone = entry.rounds >= maxRounds;
      if ((alone && batch.length > 0) || write.keys.some((key) => keys.has(key))) {
        i++;
        continue;
      }
      this.#pending.splice(i, 1);
      batch.push(entry);
      for (const key of write.keys) keys.add(key);
      compares += write.compares.length;
      success += write.success.length;
      checks += write.checks.length;
      bytes += size;
      if (alone) break;
    }
    return batch;
  }

  async #runBatch(batch: readonly Pending[]): Promise<void> {
    const only = batch.length === 1 ? batch[0] : undefined;
    try {
      const result = await this.#kv.txn(
        only?.write.what ?? `${this.#what} (${batch.length} at once)`,
        batch.flatMap((entry) => entry.write.compares),
        batch.flatMap((entry) => entry.write.success),
        only === undefined ? batch.flatMap((entry) => entry.write.checks) : [],
      );
      if (result.succeeded) {
        let offset = 0;
        for (const entry of batch) {
          const reads = entry.write.success.filter((op) => op.request_range !== undefined).length;
          entry.resolve({
            applied: true,
            revision: result.revision,
            ranges: result.ranges.slice(offset, offset + reads),
          });
          offset += reads;
        }
        return;
      }
      if (only !== undefined) {
        only.resolve({ applied: false });
        return;
      }
      let offset = 0;
      const again: Pending[] = [];
      for (const entry of batch) {
        const count = entry.write.checks.length;
        const ranges = result.ranges.slice(offset, offset + count);
        offset += count;
        if (entry.write.held(ranges)) {
          entry.rounds += 1;
          again.push(entry);
        } else entry.resolve({ applied: false });
      }
      // Those whose guards held go first in the next transaction.
      this.#pending.unshift(...again);
    } catch (error) {
      if (error instanceof LeaseLostError && batch.length > 1) {
        // etcd refuses the whole transaction when one put names a lease that is gone; nothing applied. Each write
        // goes again alone, so that only the one on the lost lease fails.
        for (const entry of batch) entry.rounds = maxRounds;
        this.#pending.unshift(...batch);
        return;
      }
      for (const entry of batch) entry.reject(error);
    }
  }
}

/** The bytes a write puts: keys and values. */
function sizeOf(write: GuardedWrite): number {
  let size = 0;
  for (const op of write.success) {
    const put = op.request_put;
    if (put !== undefined) size += (put.key?.length ?? 0) + (put.value?.length ?? 0);
  }
  return size;
}
