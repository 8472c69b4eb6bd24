/**
 * Request bodies as JSON, parsed so that no body holds the event loop: a large body (up to the configured limit) is
 * parsed and checked for `__proto__` keys on a worker thread, and only the result comes back. `JSON.parse` of a
 * 1 MB body with tens of thousands of values takes 30–60 ms on this kind of machine, and the garbage it leaves
 * more, during which /healthz and every other request would wait.
 */
import { Worker } from 'node:worker_threads';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { InputError, UnsupportedMediaTypeError } from '@consortium/core';
import { assertNoProtoKeys } from './shared.js';

/** Bodies up to this many bytes are parsed inline: cheaper than a round trip to the worker. */
export const INLINE_PARSE_BYTES = 32 * 1024;

/**
 * The worker's code, run with `eval` so that it needs no file of its own (the server runs from `dist` and its tests
 * from TypeScript sources). It answers `{id, value}` or `{id, error, proto}` for each `{id, text}`.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
function protoKey(body) {
  const pending = typeof body === 'object' && body !== null ? [body] : [];
  while (pending.length > 0) {
    const value = pending.pop();
    if (!Array.isArray(value) && Object.hasOwn(value, '__proto__')) return true;
    for (const item of Object.values(value)) {
      if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
  return false;
}
parentPort.on('message', ({ id, bytes }) => {
  let value;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message) });
    return;
  }
  if (protoKey(value)) parentPort.postMessage({ id, proto: true });
  else parentPort.postMessage({ id, value });
});
`;

type WorkerAnswer = { id: number; value?: unknown; error?: string; proto?: true };

/** One worker thread, started on first use, that parses JSON bodies off the event loop. */
export class BodyParserWorker {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  /**
   * Parses `bytes` (UTF-8 JSON) on the worker; throws `InputError` for invalid JSON or a `__proto__` key. `bytes` may
   * be detached afterwards.
   */
  parse(bytes: Uint8Array): Promise<unknown> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      // A body that owns its memory is handed over rather than copied (the caller no longer reads it).
      const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      const buffer = bytes.buffer;
      if (owned && buffer instanceof ArrayBuffer) worker.postMessage({ id, bytes }, [buffer]);
      else worker.postMessage({ id, bytes });
    });
  }

  /** Starts the worker and has it parse once, so that the first large body does not pay for its start. */
  async warm(): Promise<void> {
    await this.parse(new TextEncoder().encode('[]'));
  }

  /** Stops the worker; pending parses fail. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => {
      const waiting = this.pending.get(answer.id);
      if (waiting === undefined) return;
      this.pending.delete(answer.id);
      // An idle worker must not keep the process alive.
      if (this.pending.size === 0) worker.unref();
      if (answer.proto === true) waiting.reject(new InputError('the key "__proto__" is not allowed'));
      else if (answer.error !== undefined) {
        waiting.reject(new InputError(`request body is not valid JSON: ${answer.error}`));
      } else waiting.resolve(answer.value);
    });
    // A worker that dies fails what it held; the next body starts a new one.
    const fail = (error: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      fail(new Error(`the body parser's worker exited with code ${code}`));
    });
    this.worker = worker;
    return worker;
  }
}

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)"?/i;

/**
 * Middleware reading bodies of the given media types up to `limit` and parsing them as JSON into `req.body`: small
 * ones inline, large ones on `worker`. Like body-parser's JSON parser, only an object or array is accepted at the top,
 * only UTF-8, and a request without a body keeps `req.body` undefined.
 */
export function jsonBody(options: {
  readonly types: readonly string[];
  readonly limit: string;
  readonly worker: BodyParserWorker;
}): RequestHandler[] {
  const raw = express.raw({ type: [...options.types], limit: options.limit });
  const parse = (req: Request, _res: Response, next: NextFunction): void => {
    const bytes: unknown = req.body;
    if (!Buffer.isBuffer(bytes)) {
      next();
      return;
    }
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      next(new UnsupportedMediaTypeError(`request body must be UTF-8, not ${charset}`));
      return;
    }
    const first = firstSignificant(bytes);
    if (first !== 0x7b && first !== 0x5b) {
      next(new InputError('request body is not valid JSON: it must be an object or an array'));
      return;
    }
    if (bytes.byteLength <= INLINE_PARSE_BYTES) {
      try {
        req.body = JSON.parse(bytes.toString('utf8')) as unknown;
        assertNoProtoKeys(req.body);
        next();
      } catch (error) {
        next(
          error instanceof SyntaxError
            ? new InputError(`request body is not valid JSON: ${error.message}`)
            : error,
        );
      }
      return;
    }
    options.worker.parse(bytes).then(
      (value) => {
        req.body = value;
        next();
      },
      (error: unknown) => {
        next(error);
      },
    );
  };
  return [raw, parse];
}

/** The first byte that is not JSON whitespace, or -1. */
function firstSignificant(bytes: Buffer): number {
  for (const byte of bytes) {
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return byte;
  }
  return -1;
}
