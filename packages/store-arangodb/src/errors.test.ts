import { ArangoError, FetchFailedError, HttpError, ResponseTimeoutError } from 'arangojs/errors';
import type { ProcessedResponse } from 'arangojs/connection';
import { describe, expect, it } from 'vitest';
import {
  BackendError,
  BackendUnavailableError,
  ConflictError,
  InternalError,
  NotFoundError,
  isConsortiumError,
} from '@consortium/core';
import { isUniqueViolation, isWriteConflict, translateError } from './errors.js';

const ENDPOINT = 'http://10.0.0.9:8529';
const WHERE = `ArangoDB at ${ENDPOINT} (database inventory)`;
const request = new Request(`${ENDPOINT}/_db/inventory/_api/cursor`, { method: 'POST' });

function arango(errorNum: number, code: number, errorMessage: string): ArangoError {
  return new ArangoError({ errorNum, code, errorMessage });
}

function http(status: number, statusText: string): HttpError {
  return new HttpError({
    status,
    statusText,
    request,
    headers: new Headers(),
  } as unknown as ProcessedResponse);
}

type ErrorClass = abstract new (...args: never[]) => Error;

describe('translateError', () => {
  it.each<[string, unknown, ErrorClass, string, boolean]>([
    [
      'a refused connection',
      new FetchFailedError(undefined, request, {
        cause: Object.assign(new TypeError('fetch failed'), {
          cause: new Error('connect ECONNREFUSED 10.0.0.9:8529'),
        }),
      }),
      BackendUnavailableError,
      `${WHERE} is unreachable: Fetch failed: connect ECONNREFUSED 10.0.0.9:8529`,
      true,
    ],
    [
      'a response that never came',
      new ResponseTimeoutError(undefined, request),
      BackendUnavailableError,
      `${WHERE} is unreachable: Timed out while waiting for server response`,
      true,
    ],
    [
      'a server in maintenance (503)',
      arango(503, 503, 'service unavailable'),
      BackendUnavailableError,
      `${WHERE} is unavailable: service unavailable (error 503)`,
      true,
    ],
    [
      'a server shutting down',
      arango(30, 503, 'shutting down'),
      BackendUnavailableError,
      `${WHERE} is unavailable: shutting down (error 30)`,
      true,
    ],
    [
      'a cluster failing over',
      arango(1496, 503, 'not a leader'),
      BackendUnavailableError,
      `${WHERE} is unavailable: not a leader (error 1496)`,
      true,
    ],
    [
      'a stream transaction the server forgot',
      arango(1655, 404, 'transaction not found'),
      BackendUnavailableError,
      `${WHERE} is unavailable: transaction not found (error 1655)`,
      true,
    ],
    [
      'a proxy without a backend',
      http(502, 'Bad Gateway'),
      BackendUnavailableError,
      `${WHERE} is unavailable: HTTP 502 Bad Gateway`,
      true,
    ],
    [
      'a write-write conflict that outlived the retries',
      arango(1200, 409, 'write-write conflict'),
      ConflictError,
      `${WHERE}: a concurrent write changed the same data: write-write conflict (error 1200)`,
      false,
    ],
    [
      'wrong credentials',
      arango(401, 401, 'not authorized to execute this request'),
      BackendError,
      `${WHERE} refused the credentials: not authorized to execute this request (error 401)`,
      false,
    ],
    [
      'a missing database',
      arango(1228, 404, 'database not found'),
      BackendError,
      `${WHERE} does not exist: database not found (error 1228)`,
      false,
    ],
    [
      'a query ArangoDB refuses',
      arango(1501, 400, 'syntax error, unexpected identifier'),
      BackendError,
      `${WHERE} failed: syntax error, unexpected identifier (error 1501)`,
      false,
    ],
    ['anything else', new RangeError('boom'), InternalError, 'boom', false],
  ])('%s', (_title, error, type, message, retryable) => {
    const translated = translateError(error, ENDPOINT, 'inventory');
    expect(translated).toBeInstanceOf(type);
    expect(translated.message).toBe(message);
    expect(isConsortiumError(translated) && translated.retryable).toBe(retryable);
    expect(translated.cause).toBe(error);
  });

  it('passes Consortium errors through', () => {
    const error = new NotFoundError('Node host/x not found');
    expect(translateError(error, ENDPOINT, 'inventory')).toBe(error);
  });

  it('never lets an arangojs error type through', () => {
    for (const error of [
      arango(1, 500, 'failed'),
      http(418, "I'm a teapot"),
      new FetchFailedError(undefined, request),
    ]) {
      const translated = translateError(error, ENDPOINT, 'inventory');
      expect(translated.constructor.name).not.toMatch(/^(Arango|Http|Network|FetchFailed)Error$/);
      expect(isConsortiumError(translated)).toBe(true);
    }
  });
});

describe('conflict predicates', () => {
  it('tell write-write conflicts and unique violations apart', () => {
    expect(isWriteConflict(arango(1200, 409, 'conflict'))).toBe(true);
    expect(isWriteConflict(arango(1210, 409, 'unique constraint violated'))).toBe(false);
    expect(isUniqueViolation(arango(1210, 409, 'unique constraint violated'))).toBe(true);
    expect(isUniqueViolation(new Error('unique constraint violated'))).toBe(false);
  });
});
