/**
 * `consortium store copy`: moves every record (nodes with their observations, jobs, events, audit, tokens,
 * reservations) from one store to another, batch by batch, then verifies the counts and a checksum of both sides.
 * Copy with every writer stopped: records written to the source meanwhile may or may not be copied.
 */
import { createHash } from 'node:crypto';
import type { Store, StoreRecordType, StoreTransfer } from '@consortium/core';
import { ConflictError, InputError, STORE_RECORD_TYPES } from '@consortium/core';

/** A store that can be copied from and to. */
export type TransferableStore = Store & StoreTransfer;

/** Narrows a store to one that supports bulk export and import; throws `InputError` naming the store. */
export function transferable(store: Store, what: string): TransferableStore {
  const candidate = store as Partial<StoreTransfer> & Store;
  if (
    typeof candidate.exportRecords !== 'function' ||
    typeof candidate.importRecords !== 'function' ||
    typeof candidate.countRecords !== 'function'
  ) {
    throw new InputError(`the ${what} store cannot export or import records`);
  }
  return candidate as TransferableStore;
}

/** Counts per record type. */
export type RecordCounts = Readonly<Record<StoreRecordType, number>>;

/** How a copy reports its progress (a progress bar on a terminal, lines otherwise). */
export interface CopyProgress {
  start(total: number): void;
  advance(copied: number, type: StoreRecordType): void;
  stop(): void;
}

/** What a copy did and found. */
export interface CopyReport {
  readonly copied: RecordCounts;
  /** SHA-256 over every record of the source, independent of order; equal on both sides after an exact copy. */
  readonly checksum: string;
  /** True when the target held nothing before, so that its checksum could be compared whole. */
  readonly checksumVerified: boolean;
}

/** JSON with object keys sorted, so that equal records serialise equally whatever the adapter. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** An order-independent checksum of a store's records: the sorted record digests, hashed per type, then whole. */
export async function storeChecksum(store: TransferableStore): Promise<string> {
  const whole = createHash('sha256');
  for (const type of STORE_RECORD_TYPES) {
    const digests: string[] = [];
    for await (const batch of store.exportRecords(type)) {
      for (const record of batch)
        digests.push(createHash('sha256').update(canonicalJson(record)).digest('hex'));
    }
    digests.sort();
    whole.update(`${type}:${createHash('sha256').update(digests.join('\n')).digest('hex')}\n`);
  }
  return whole.digest('hex');
}

function total(counts: RecordCounts): number {
  return STORE_RECORD_TYPES.reduce((sum, type) => sum + counts[type], 0);
}

function describe(counts: RecordCounts): string {
  return STORE_RECORD_TYPES.map((type) => `${counts[type]} ${type}s`).join(', ');
}

/**
 * Copies every record of `from` into `to`. Refuses a target that holds anything unless `force` (then records that
 * exist already fail their batch with `ConflictError`). Throws `ConflictError` when the counts or the checksum of
 * the target do not match the source afterwards.
 */
export async function copyStore(
  from: TransferableStore,
  to: TransferableStore,
  options: { readonly force?: boolean; readonly progress?: CopyProgress } = {},
): Promise<CopyReport> {
  const source = await from.countRecords();
  const before = await to.countRecords();
  if (total(before) > 0 && options.force !== true) {
    throw new ConflictError(
      `the target store is not empty (${describe(before)}); pass --force to copy into it anyway`,
    );
  }
  const progress = options.progress;
  progress?.start(total(source));
  const copied: Record<StoreRecordType, number> = {
    node: 0,
    job: 0,
    event: 0,
    audit: 0,
    token: 0,
    reservation: 0,
  };
  let done = 0;
  try {
    for (const type of STORE_RECORD_TYPES) {
      for await (const batch of from.exportRecords(type)) {
        await to.importRecords(batch);
        copied[type] += batch.length;
        done += batch.length;
        progress?.advance(done, type);
      }
    }
  } finally {
    progress?.stop();
  }
  const after = await to.countRecords();
  const wrong = STORE_RECORD_TYPES.filter((type) => after[type] !== before[type] + source[type]);
  if (wrong.length > 0) {
    throw new ConflictError(
      `the copy does not add up: ${wrong
        .map((type) => `${type}s: source ${source[type]}, target ${after[type]} (had ${before[type]})`)
        .join('; ')}`,
    );
  }
  const checksum = await storeChecksum(from);
  const checksumVerified = total(before) === 0;
  if (checksumVerified) {
    const target = await storeChecksum(to);
    if (target !== checksum) {
      throw new ConflictError(`the copy's checksum differs: source ${checksum}, target ${target}`);
    }
  }
  return { copied, checksum, checksumVerified };
}
