import { describe, expect, it } from 'vitest';
import type { ConsortiumError, ConsortiumErrorOptions, ErrorCode } from './errors.js';
import {
  BackendError,
  BackendUnavailableError,
  CancelledError,
  ClaimConflictError,
  ConflictError,
  ForbiddenError,
  httpStatusByCode,
  InputError,
  InUseError,
  InternalError,
  InvalidClaimError,
  InvalidNameError,
  isConsortiumError,
  LeaseLostError,
  NotFoundError,
  PayloadTooLargeError,
  PreconditionFailedError,
  ProviderContractError,
  SchemaViolationError,
  TimeoutError,
  toErrorInfo,
  UnauthenticatedError,
  UnknownAttributeError,
  UnsupportedMediaTypeError,
} from './errors.js';

type ErrorClass = new (message: string, options?: ConsortiumErrorOptions) => ConsortiumError;

/** Every error class with the code, HTTP status and retryability it must have. */
const classes: readonly [ErrorClass, ErrorCode, number, boolean][] = [
  [InputError, 'INVALID_INPUT', 400, false],
  [InvalidNameError, 'INVALID_NAME', 400, false],
  [SchemaViolationError, 'SCHEMA_VIOLATION', 422, false],
  [UnknownAttributeError, 'UNKNOWN_ATTRIBUTE', 422, false],
  [NotFoundError, 'NOT_FOUND', 404, false],
  [ConflictError, 'CONFLICT', 409, false],
  [InUseError, 'IN_USE', 409, false],
  [PreconditionFailedError, 'PRECONDITION_FAILED', 412, false],
  [UnauthenticatedError, 'UNAUTHENTICATED', 401, false],
  [ForbiddenError, 'FORBIDDEN', 403, false],
  [ClaimConflictError, 'CLAIM_CONFLICT', 500, false],
  [InvalidClaimError, 'INVALID_CLAIM', 500, false],
  [ProviderContractError, 'PROVIDER_CONTRACT', 502, false],
  [BackendUnavailableError, 'BACKEND_UNAVAILABLE', 503, true],
  [BackendError, 'BACKEND_ERROR', 502, false],
  [LeaseLostError, 'LEASE_LOST', 503, true],
  [TimeoutError, 'TIMEOUT', 504, true],
  [CancelledError, 'CANCELLED', 409, false],
  [PayloadTooLargeError, 'PAYLOAD_TOO_LARGE', 413, false],
  [UnsupportedMediaTypeError, 'UNSUPPORTED_MEDIA_TYPE', 415, false],
  [InternalError, 'INTERNAL', 500, false],
];

/** Every code there is; the `satisfies` keeps this list total when codes are added. */
const allCodes = Object.keys({
  INVALID_INPUT: true,
  INVALID_NAME: true,
  SCHEMA_VIOLATION: true,
  UNKNOWN_ATTRIBUTE: true,
  NOT_FOUND: true,
  CONFLICT: true,
  IN_USE: true,
  PRECONDITION_FAILED: true,
  UNAUTHENTICATED: true,
  FORBIDDEN: true,
  PAYLOAD_TOO_LARGE: true,
  UNSUPPORTED_MEDIA_TYPE: true,
  CLAIM_CONFLICT: true,
  INVALID_CLAIM: true,
  PROVIDER_CONTRACT: true,
  BACKEND_UNAVAILABLE: true,
  BACKEND_ERROR: true,
  LEASE_LOST: true,
  TIMEOUT: true,
  CANCELLED: true,
  INTERNAL: true,
} satisfies Record<ErrorCode, true>) as ErrorCode[];

describe('httpStatusByCode', () => {
  it('has an HTTP error status for every code and nothing else', () => {
    expect(Object.keys(httpStatusByCode).sort()).toEqual([...allCodes].sort());
    for (const code of allCodes) {
      const status = httpStatusByCode[code];
      expect(Number.isInteger(status), code).toBe(true);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
  });

  it('maps client faults to 4xx and Consortium or backend faults to 5xx', () => {
    expect(httpStatusByCode.PAYLOAD_TOO_LARGE).toBe(413);
    expect(httpStatusByCode.UNSUPPORTED_MEDIA_TYPE).toBe(415);
    for (const code of [
      'CLAIM_CONFLICT',
      'INVALID_CLAIM',
      'INTERNAL',
      'BACKEND_ERROR',
      'BACKEND_UNAVAILABLE',
    ] as const) {
      expect(httpStatusByCode[code], code).toBeGreaterThanOrEqual(500);
    }
  });
});

describe('error classes', () => {
  it('give every class its own code', () => {
    const codes = classes.map(([, code]) => code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it.each(classes)('%o has code %s, status %i, retryable %s', (Type, code, status, retryable) => {
    const error = new Type('something went wrong');
    expect(error).toBeInstanceOf(Error);
    expect(isConsortiumError(error)).toBe(true);
    expect(error.name).toBe(Type.name);
    expect(error.message).toBe('something went wrong');
    expect(error.code).toBe(code);
    expect(error.httpStatus).toBe(status);
    expect(error.httpStatus).toBe(httpStatusByCode[code]);
    expect(error.retryable).toBe(retryable);
    expect(error.details).toEqual({});
    expect(error.cause).toBeUndefined();
    expect(error.stack).toContain('something went wrong');
  });

  it('keeps the cause and the details', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new BackendUnavailableError('cobbler is down', { cause, details: { provider: 'cobbler' } });
    expect(error.cause).toBe(cause);
    expect(error.details).toEqual({ provider: 'cobbler' });
  });

  it('keeps a falsy cause', () => {
    expect(new InternalError('x', { cause: 0 }).cause).toBe(0);
    expect(Object.hasOwn(new InternalError('x'), 'cause')).toBe(false);
  });
});

describe('isConsortiumError', () => {
  it('tells Consortium errors from everything else', () => {
    expect(isConsortiumError(new NotFoundError('gone'))).toBe(true);
    expect(isConsortiumError(new Error('plain'))).toBe(false);
    expect(isConsortiumError(new TypeError('type'))).toBe(false);
    expect(isConsortiumError({ code: 'NOT_FOUND', message: 'gone', retryable: false })).toBe(false);
    expect(isConsortiumError('NOT_FOUND')).toBe(false);
    expect(isConsortiumError(undefined)).toBe(false);
  });
});

describe('toErrorInfo', () => {
  it('describes a Consortium error without details', () => {
    expect(toErrorInfo(new ConflictError('host/web-01 has a running job'))).toStrictEqual({
      code: 'CONFLICT',
      message: 'host/web-01 has a running job',
      retryable: false,
    });
  });

  it('includes details when there are some', () => {
    const error = new ClaimConflictError('two owners', { details: { providers: ['cmdb', 'libvirt'] } });
    expect(toErrorInfo(error)).toStrictEqual({
      code: 'CLAIM_CONFLICT',
      message: 'two owners',
      retryable: false,
      details: { providers: ['cmdb', 'libvirt'] },
    });
  });

  it('keeps the retryable flag', () => {
    expect(toErrorInfo(new TimeoutError('slow'))).toStrictEqual({
      code: 'TIMEOUT',
      message: 'slow',
      retryable: true,
    });
    expect(toErrorInfo(new LeaseLostError('lost'))).toStrictEqual({
      code: 'LEASE_LOST',
      message: 'lost',
      retryable: true,
    });
  });

  it('never exposes the cause', () => {
    const info = toErrorInfo(new BackendError('cobbler refused', { cause: new Error('password=hunter2') }));
    expect(JSON.stringify(info)).not.toContain('hunter2');
    expect(info).toStrictEqual({ code: 'BACKEND_ERROR', message: 'cobbler refused', retryable: false });
  });

  it.each<[unknown, string]>([
    [new Error('boom'), 'boom'],
    [new TypeError('x is not a function'), 'x is not a function'],
    ['a thrown string', 'a thrown string'],
    [42, '42'],
    [undefined, 'undefined'],
    [null, 'null'],
    [{ code: 'NOT_FOUND', message: 'looks like ours' }, '[object Object]'],
  ])('describes the foreign value %o as a non-retryable INTERNAL error', (thrown, message) => {
    expect(toErrorInfo(thrown)).toStrictEqual({ code: 'INTERNAL', message, retryable: false });
  });
});
