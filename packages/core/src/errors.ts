/**
 * Consortium's one error taxonomy: every error carries a stable `code`, says whether retrying can help, and maps
 * to exactly one HTTP status. Adapters translate foreign errors into these at the edge.
 */

/** Stable machine-readable error codes; clients and scripts may rely on them. */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_NAME'
  | 'SCHEMA_VIOLATION'
  | 'UNKNOWN_ATTRIBUTE'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'IN_USE'
  | 'PRECONDITION_FAILED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'CLAIM_CONFLICT'
  | 'INVALID_CLAIM'
  | 'PROVIDER_CONTRACT'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_ERROR'
  | 'LEASE_LOST'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'INTERNAL';

/**
 * The HTTP status for every code. Declared as a total record so that adding a code without a status fails the
 * type check.
 */
export const httpStatusByCode: Readonly<Record<ErrorCode, number>> = {
  INVALID_INPUT: 400,
  INVALID_NAME: 400,
  SCHEMA_VIOLATION: 422,
  UNKNOWN_ATTRIBUTE: 422,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IN_USE: 409,
  PRECONDITION_FAILED: 412,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  CLAIM_CONFLICT: 500,
  INVALID_CLAIM: 500,
  PROVIDER_CONTRACT: 502,
  BACKEND_UNAVAILABLE: 503,
  BACKEND_ERROR: 502,
  LEASE_LOST: 503,
  TIMEOUT: 504,
  CANCELLED: 409,
  INTERNAL: 500,
};

/** Options shared by every Consortium error. */
export interface ConsortiumErrorOptions {
  /** The error that caused this one, kept for logs; never shown to API clients. */
  readonly cause?: unknown;
  /** Structured detail safe to show to clients (field paths, provider names, ...). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Base class of every error Consortium raises on purpose. */
export abstract class ConsortiumError extends Error {
  /** The stable code of this error. */
  abstract readonly code: ErrorCode;
  /** Whether the same operation may succeed if retried later. */
  readonly retryable: boolean = false;
  /** Structured detail safe to show to clients. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(message: string, options: ConsortiumErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? {};
  }

  /** The HTTP status this error maps to. */
  get httpStatus(): number {
    return httpStatusByCode[this.code];
  }
}

/** A request or value is malformed. */
export class InputError extends ConsortiumError {
  override readonly code = 'INVALID_INPUT';
}

/** A node or kind name is not a lowercase DNS name. */
export class InvalidNameError extends ConsortiumError {
  override readonly code = 'INVALID_NAME';
}

/** A value does not satisfy the attribute's JSON Schema. */
export class SchemaViolationError extends ConsortiumError {
  override readonly code = 'SCHEMA_VIOLATION';
}

/** An update names an attribute path that no provider of the kind provides. */
export class UnknownAttributeError extends ConsortiumError {
  override readonly code = 'UNKNOWN_ATTRIBUTE';
}

/** The addressed thing does not exist. */
export class NotFoundError extends ConsortiumError {
  override readonly code = 'NOT_FOUND';
}

/** The request conflicts with the current state (a running job, an existing node, a contradiction). */
export class ConflictError extends ConsortiumError {
  override readonly code = 'CONFLICT';
}

/** The node is named by others (hosts in a subnet) and the change would delete it or strand them. */
export class InUseError extends ConsortiumError {
  override readonly code = 'IN_USE';
}

/** A revision precondition (If-Match, JSON Patch `test`) does not hold. */
export class PreconditionFailedError extends ConsortiumError {
  override readonly code = 'PRECONDITION_FAILED';
}

/** No valid credentials were presented. */
export class UnauthenticatedError extends ConsortiumError {
  override readonly code = 'UNAUTHENTICATED';
}

/** The caller is known but its role does not allow the operation. */
export class ForbiddenError extends ConsortiumError {
  override readonly code = 'FORBIDDEN';
}

/** Two providers claim authority over the same path; a start-up error. */
export class ClaimConflictError extends ConsortiumError {
  override readonly code = 'CLAIM_CONFLICT';
}

/** A provider's claim or watch is invalid (bad schema, unknown parent, watch on nothing); a start-up error. */
export class InvalidClaimError extends ConsortiumError {
  override readonly code = 'INVALID_CLAIM';
}

/** A provider broke the provider contract (answered for updates it was not given, set a path it does not own). */
export class ProviderContractError extends ConsortiumError {
  override readonly code = 'PROVIDER_CONTRACT';
}

/** A backend could not be reached or is overloaded; retrying later may succeed. */
export class BackendUnavailableError extends ConsortiumError {
  override readonly code = 'BACKEND_UNAVAILABLE';
  override readonly retryable = true;
}

/** A backend refused or failed an operation for a reason retrying will not fix. */
export class BackendError extends ConsortiumError {
  override readonly code = 'BACKEND_ERROR';
}

/** A lease (leadership, lock, task claim) was lost; the holder must stop acting on it. */
export class LeaseLostError extends ConsortiumError {
  override readonly code = 'LEASE_LOST';
  override readonly retryable = true;
}

/** An operation did not finish in time. */
export class TimeoutError extends ConsortiumError {
  override readonly code = 'TIMEOUT';
  override readonly retryable = true;
}

/** The operation was cancelled by a user or by shutdown. */
export class CancelledError extends ConsortiumError {
  override readonly code = 'CANCELLED';
}

/** A request body is larger than the server accepts. */
export class PayloadTooLargeError extends ConsortiumError {
  override readonly code = 'PAYLOAD_TOO_LARGE';
}

/** A request body has a content type the endpoint does not take. */
export class UnsupportedMediaTypeError extends ConsortiumError {
  override readonly code = 'UNSUPPORTED_MEDIA_TYPE';
}

/** A bug: something that should not happen did. */
export class InternalError extends ConsortiumError {
  override readonly code = 'INTERNAL';
}

/** A plain, serialisable description of an error, as stored in jobs and sent over the wire. */
export interface ErrorInfo {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** True when `value` is a Consortium error. */
export function isConsortiumError(value: unknown): value is ConsortiumError {
  return value instanceof ConsortiumError;
}

/** Describes any thrown value as `ErrorInfo`; foreign errors become non-retryable `INTERNAL`. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (isConsortiumError(error)) {
    const info = { code: error.code, message: error.message, retryable: error.retryable };
    return Object.keys(error.details).length > 0 ? { ...info, details: error.details } : info;
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message, retryable: false };
}
