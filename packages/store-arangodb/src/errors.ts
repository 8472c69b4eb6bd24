/**
 * Translation of what arangojs throws into core's error taxonomy, at the adapter's edge: nothing above the store
 * sees an arangojs error type. Error numbers are ArangoDB's (`site/data/3.12/errors.yaml` of arangodb/docs-hugo).
 */
import { isArangoError, isNetworkError, isSystemError, HttpError } from 'arangojs/errors';
import {
  BackendError,
  BackendUnavailableError,
  ConflictError,
  InternalError,
  isConsortiumError,
} from '@consortium/core';

/** ArangoDB error numbers the store reacts to. */
export const ArangoErrorNum = {
  LOCK_TIMEOUT: 18,
  SHUTTING_DOWN: 30,
  HTTP_UNAUTHORIZED: 401,
  HTTP_SERVICE_UNAVAILABLE: 503,
  FORBIDDEN: 11,
  READ_ONLY: 1004,
  /** A write-write conflict on a document or a unique index entry: retry the whole operation. */
  CONFLICT: 1200,
  DOCUMENT_NOT_FOUND: 1202,
  DATA_SOURCE_NOT_FOUND: 1203,
  DUPLICATE_NAME: 1207,
  UNIQUE_CONSTRAINT_VIOLATED: 1210,
  DATABASE_NOT_FOUND: 1228,
  INDEX_CREATION_FAILED: 1235,
  CLUSTER_TIMEOUT: 1457,
  CLUSTER_CONNECTION_LOST: 1465,
  CLUSTER_BACKEND_UNAVAILABLE: 1478,
  CLUSTER_LEADERSHIP_CHALLENGE_ONGOING: 1495,
  CLUSTER_NOT_LEADER: 1496,
  TRANSACTION_ABORTED: 1654,
  TRANSACTION_NOT_FOUND: 1655,
} as const;

/** Errors after which the same request may well succeed a little later (server busy, restarting, failing over). */
const UNAVAILABLE = new Set<number>([
  ArangoErrorNum.LOCK_TIMEOUT,
  ArangoErrorNum.SHUTTING_DOWN,
  ArangoErrorNum.HTTP_SERVICE_UNAVAILABLE,
  ArangoErrorNum.CLUSTER_TIMEOUT,
  ArangoErrorNum.CLUSTER_CONNECTION_LOST,
  ArangoErrorNum.CLUSTER_BACKEND_UNAVAILABLE,
  ArangoErrorNum.CLUSTER_LEADERSHIP_CHALLENGE_ONGOING,
  ArangoErrorNum.CLUSTER_NOT_LEADER,
  // A stream transaction that the server aborted or forgot (idle timeout, coordinator restart): run it again.
  ArangoErrorNum.TRANSACTION_ABORTED,
  ArangoErrorNum.TRANSACTION_NOT_FOUND,
]);

/** HTTP statuses of a proxy or server that cannot answer now. */
const UNAVAILABLE_STATUS = new Set([502, 503, 504]);

/** ArangoDB's error number of `error`, if it is an ArangoDB error response. */
export function arangoErrorNum(error: unknown): number | undefined {
  return isArangoError(error) ? error.errorNum : undefined;
}

/** True for a write-write conflict (1200), which the store retries. */
export function isWriteConflict(error: unknown): boolean {
  return arangoErrorNum(error) === ArangoErrorNum.CONFLICT;
}

/** True for a unique constraint violation (1210): the primary key or a unique index already has the value. */
export function isUniqueViolation(error: unknown): boolean {
  return arangoErrorNum(error) === ArangoErrorNum.UNIQUE_CONSTRAINT_VIOLATED;
}

/**
 * Turns anything thrown below into a Consortium error; `endpoint` (the server URL without credentials) and
 * `database` name the store in the message. Unreachable servers, 503 and cluster failover are retryable
 * `BackendUnavailableError`s; a write-write conflict that got this far is a `ConflictError`.
 */
export function translateError(error: unknown, endpoint: string, database: string): Error {
  if (isConsortiumError(error)) return error;
  const where = `ArangoDB at ${endpoint} (database ${database})`;
  if (isArangoError(error)) {
    const num = error.errorNum;
    const detail = `${error.message} (error ${num})`;
    if (UNAVAILABLE.has(num) || error.code === 503) {
      return new BackendUnavailableError(`${where} is unavailable: ${detail}`, { cause: error });
    }
    if (num === ArangoErrorNum.CONFLICT) {
      return new ConflictError(`${where}: a concurrent write changed the same data: ${detail}`, {
        cause: error,
      });
    }
    if (num === ArangoErrorNum.HTTP_UNAUTHORIZED || error.code === 401) {
      return new BackendError(`${where} refused the credentials: ${detail}`, { cause: error });
    }
    if (num === ArangoErrorNum.DATABASE_NOT_FOUND) {
      return new BackendError(`${where} does not exist: ${detail}`, { cause: error });
    }
    return new BackendError(`${where} failed: ${detail}`, { cause: error });
  }
  if (error instanceof HttpError) {
    if (UNAVAILABLE_STATUS.has(error.code)) {
      return new BackendUnavailableError(`${where} is unavailable: HTTP ${error.code} ${error.message}`, {
        cause: error,
      });
    }
    return new BackendError(`${where} answered HTTP ${error.code}: ${error.message}`, { cause: error });
  }
  if (isNetworkError(error) || isSystemError(error)) {
    return new BackendUnavailableError(`${where} is unreachable: ${error.message}`, { cause: error });
  }
  return new InternalError(error instanceof Error ? error.message : String(error), { cause: error });
}
