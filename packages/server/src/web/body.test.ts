import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsortiumError } from '@consortium/core';
import { BodyParserWorker, INLINE_PARSE_BYTES, jsonBody } from './body.js';

const worker = new BodyParserWorker();
let server: Server;
let url: string;

beforeAll(async () => {
  const app = express();
  app.use(jsonBody({ types: ['application/json'], limit: '2mb', worker }));
  app.post('/echo', (req: Request, res: Response) => {
    res.json({ body: req.body as unknown });
  });
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    res
      .status(400)
      .json(error instanceof ConsortiumError ? { code: error.code, message: error.message } : {});
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/echo`;
});

afterAll(async () => {
  server.close();
  await worker.close();
});

async function post(body: string, type = 'application/json'): Promise<{ status: number; json: unknown }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: response.status, json: await response.json() };
}

/** A JSON object larger than the inline limit, so that the worker parses it. */
function large(extra: string): string {
  const filler = 'x'.repeat(INLINE_PARSE_BYTES);
  return `{"filler":"${filler}"${extra}}`;
}

describe('JSON request bodies', () => {
  it('parses a small body inline and a large one on the worker, to the same value', async () => {
    expect(await post('{"a":[1,2]}')).toEqual({ status: 200, json: { body: { a: [1, 2] } } });
    const big = await post(large(',"a":[1,2]'));
    expect(big.status).toBe(200);
    expect((big.json as { body: { a: unknown; filler: string } }).body.a).toEqual([1, 2]);
    expect((big.json as { body: { filler: string } }).body.filler).toHaveLength(INLINE_PARSE_BYTES);
  });

  it('refuses invalid JSON with the parser message, inline and on the worker', async () => {
    const inline = await post('{"a":');
    expect(inline.status).toBe(400);
    expect(inline.json).toMatchObject({ code: 'INVALID_INPUT' });
    expect((inline.json as { message: string }).message).toMatch(/^request body is not valid JSON: /);
    const onWorker = await post(large(',"a":'));
    expect(onWorker.json).toMatchObject({ code: 'INVALID_INPUT' });
    expect((onWorker.json as { message: string }).message).toMatch(/^request body is not valid JSON: /);
  });

  it('refuses a __proto__ key at any depth, inline and on the worker', async () => {
    const proto = { code: 'INVALID_INPUT', message: 'the key "__proto__" is not allowed' };
    expect((await post('{"a":{"__proto__":{"x":1}}}')).json).toEqual(proto);
    expect((await post(large(',"a":[{"__proto__":1}]'))).json).toEqual(proto);
  });

  it('takes only an object or an array at the top, and only UTF-8', async () => {
    expect((await post('"text"')).json).toEqual({
      code: 'INVALID_INPUT',
      message: 'request body is not valid JSON: it must be an object or an array',
    });
    expect((await post('{}', 'application/json; charset=latin1')).json).toEqual({
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'request body must be UTF-8, not latin1',
    });
    expect(await post('{"ok":true}', 'application/json; charset=UTF-8')).toEqual({
      status: 200,
      json: { body: { ok: true } },
    });
  });

  it('parses many large bodies at once, each to its own value', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        post(large(`,"i":${i}`)).then((r) => (r.json as { body: { i: number } }).body.i),
      ),
    );
    expect(answers).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
