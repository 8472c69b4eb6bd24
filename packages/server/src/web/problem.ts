/** Errors on the wire: RFC 9457 problem details with Consortium's stable code; never a stack trace. */
import type { ErrorRequestHandler, Response } from 'express';
import type { ErrorCode } from '@consortium/core';
import { ConsortiumError, httpStatusByCode } from '@consortium/core';
import type winston from 'winston';

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Sends one problem+json response. */
export function sendProblem(
  res: Response,
  code: ErrorCode,
  detail: string,
  extra: Readonly<Record<string, unknown>> = {},
  status: number = httpStatusByCode[code],
): void {
  res
    .status(status)
    .type('application/problem+json')
    .json({
      type: `https://consortium.invalid/problems/${code.toLowerCase().replace(/_/g, '-')}`,
      title: TITLES[status] ?? 'Error',
      status,
      code,
      detail,
      instance: res.req.originalUrl,
      ...extra,
    });
}

/** The last middleware: maps every error to a problem; unexpected ones are logged with their stack, never sent. */
export function problemHandler(logger: winston.Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error instanceof ConsortiumError) {
      if (error.code === 'UNAUTHENTICATED') res.setHeader('WWW-Authenticate', 'Bearer');
      const details = Object.keys(error.details).length > 0 ? { details: error.details } : {};
      sendProblem(res, error.code, error.message, details);
      return;
    }
    // body-parser's errors carry a `type` and a status.
    const parserError = error as { type?: unknown; status?: unknown; message?: unknown; limit?: unknown };
    if (parserError.type === 'entity.too.large') {
      sendProblem(
        res,
        'PAYLOAD_TOO_LARGE',
        `request body is larger than the limit of ${String(parserError.limit)} bytes`,
      );
      return;
    }
    if (parserError.type === 'entity.parse.failed') {
      sendProblem(res, 'INVALID_INPUT', `request body is not valid JSON: ${String(parserError.message)}`);
      return;
    }
    if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
      sendProblem(res, 'INVALID_INPUT', String(parserError.message), {}, parserError.status);
      return;
    }
    logger.error('unexpected error in request', {
      method: req.method,
      url: req.originalUrl,
      error: error instanceof Error ? error.stack : String(error),
    });
    sendProblem(res, 'INTERNAL', 'an internal error occurred; it has been logged');
  };
}
