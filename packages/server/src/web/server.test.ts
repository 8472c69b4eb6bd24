/** The web server's request timeouts, driven over raw sockets as a careless or hostile client would. */
import { connect } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { WebServer } from './server.js';

const running: AbortController[] = [];
afterEach(() => {
  for (const stop of running.splice(0)) stop.abort();
});

/** Starts a WebServer on a free loopback port with short timeouts; returns its port. */
async function start(timeouts: { headersMs: number; requestMs: number }): Promise<number> {
  const app = express();
  app.post('/echo', express.json(), (req, res) => {
    res.json(req.body as unknown);
  });
  app.get('/slow', async (_req, res) => {
    // Answers after several request timeouts: a response that takes long is not what the timeouts limit.
    await new Promise((resolve) => setTimeout(resolve, timeouts.requestMs * 3));
    res.json({ slow: true });
  });
  const stop = new AbortController();
  running.push(stop);
  const url = await new Promise<string>((resolve, reject) => {
    new WebServer(app, '127.0.0.1', 0, resolve, 100, timeouts).run(stop.signal).catch(reject);
  });
  return Number(new URL(url).port);
}

/** Writes `text` on a raw connection and collects everything until the server closes it. */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      resolve(received);
    });
  });
}

describe('WebServer timeouts', () => {
  it('answers 408 and closes when a body is shorter than its Content-Length', async () => {
    const port = await start({ headersMs: 200, requestMs: 500 });
    const answer = await exchange(
      port,
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  }, 20_000);

  it('answers 408 and closes when the headers never end', async () => {
    const port = await start({ headersMs: 200, requestMs: 500 });
    const answer = await exchange(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  }, 20_000);

  it('does not cut a response that takes longer than the request timeout', async () => {
    const port = await start({ headersMs: 200, requestMs: 500 });
    const answer = await exchange(port, 'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(answer).toContain('{"slow":true}');
  }, 20_000);
});
