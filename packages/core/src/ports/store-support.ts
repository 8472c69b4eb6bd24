/**
 * What every store adapter shares: opaque page cursors (base64url of the last node's name, or of the last job's
 * creation time and id) and how a job patch is applied under a fencing token. Pure: no I/O.
 */
import { InputError, LeaseLostError, PreconditionFailedError } from '../errors.js';
import type { JsonValue } from '../model.js';
import type { AuditEntry, JobPatch, JobRecord } from './store.js';

/** The cursor after the node named `name`. */
export function encodeNodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

/** The node name inside a cursor; throws `InputError` for anything `encodeNodeCursor` did not make. */
export function decodeNodeCursor(cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (name === '' || encodeNodeCursor(name) !== cursor) throw new InputError('Invalid cursor');
  return name;
}

/** The position of a job in the newest-first order. */
export interface JobPosition {
  readonly createdAt: number;
  readonly id: string;
}

/** The cursor after the job at `position`. */
export function encodeJobCursor(position: JobPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), 'utf8').toString('base64url');
}

/** The job position inside a cursor; throws `InputError` for anything `encodeJobCursor` did not make. */
export function decodeJobCursor(cursor: string): JobPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InputError('Invalid cursor');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw new InputError('Invalid cursor');
  const [createdAt, id] = parsed as unknown[];
  if (typeof createdAt !== 'number' || typeof id !== 'string') throw new InputError('Invalid cursor');
  const position = { createdAt, id };
  if (encodeJobCursor(position) !== cursor) throw new InputError('Invalid cursor');
  return position;
}

/** The position of an audit entry in the newest-first order: its time and the adapter's key of its row. */
export interface AuditPosition {
  readonly at: number;
  /** The adapter's own key of the entry (a row id, a document key), as a string that orders as the entries do. */
  readonly key: string;
}

/** The cursor after the audit entry at `position`. */
export function encodeAuditCursor(position: AuditPosition): string {
  return encodeJobCursor({ createdAt: position.at, id: position.key });
}

/** The audit position inside a cursor; throws `InputError` for anything `encodeAuditCursor` did not make. */
export function decodeAuditCursor(cursor: string): AuditPosition {
  const { createdAt, id } = decodeJobCursor(cursor);
  return { at: createdAt, key: id };
}

/**
 * The job after `patch`, as every adapter writes it inside its transaction: throws `InputError` for a malformed
 * fencing token and `LeaseLostError` when `fence` is older than the one that last wrote the job; a fenced write
 * records its token. Keys whose value is `undefined` leave the field as it is, as absent keys do.
 */
export function applyJobPatch(
  current: JobRecord,
  patch: JobPatch,
  at: number,
  fence: string | undefined,
): JobRecord {
  if (fence !== undefined) {
    if (!/^\d+$/.test(fence))
      throw new InputError(`A fencing token must be a decimal integer, not "${fence}"`);
    if (current.fence !== undefined && BigInt(fence) < BigInt(current.fence)) {
      throw new LeaseLostError(
        `Job ${current.id} belongs to a newer master (fence ${current.fence} > ${fence})`,
        {
          details: { job: current.id, fence: current.fence, stale: fence },
        },
      );
    }
  }
  const defined = Object.entries(patch as Readonly<Record<string, unknown>>).filter(
    ([, v]) => v !== undefined,
  );
  return {
    ...current,
    ...Object.fromEntries(defined),
    ...(fence === undefined ? {} : { fence }),
    updatedAt: at,
  };
}

/** An audit entry as a SQL row: at, actor, action, kind, name, job id, before and after (JSON), in that order. */
export function auditRow(
  entry: AuditEntry,
): [number, string, string, string, string, string | null, string | null, string | null] {
  return [
    entry.at,
    entry.actor,
    entry.action,
    entry.kind,
    entry.name,
    entry.jobId ?? null,
    entry.before === null ? null : JSON.stringify(entry.before),
    entry.after === null ? null : JSON.stringify(entry.after),
  ];
}

/** The error of a node write that expected another revision, worded as the store contract pins it. */
export function staleRevision(
  kind: string,
  name: string,
  actual: number,
  expected: number,
): PreconditionFailedError {
  return new PreconditionFailedError(`Node ${kind}/${name} is at revision ${actual}, not ${expected}`, {
    details: { kind, name, revision: actual, expectedRevision: expected },
  });
}

/** A page size as the store contract wants it; throws `InputError` for anything but a positive integer. */
export function checkPageLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new InputError(`limit must be a positive integer, got ${limit}`);
  return limit;
}

/** A value a filter compares with: JSON without lists and objects. */
export type FilterScalar = string | number | boolean | null;

/** The value of a comparison in a filter; throws `InputError` (worded as the store contract pins it) for any other. */
export function filterScalar(field: string, value: JsonValue | undefined): FilterScalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new InputError(`Filter value for "${field}" must be a string, number, boolean or null`);
}
