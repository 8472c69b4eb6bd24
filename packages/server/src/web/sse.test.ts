/** The hand-written event stream: field encoding, the first write, keep-alives, nothing after the end. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStream, sseEvent } from './sse.js';
import type { EventStream } from './sse.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A server whose every request gets an event stream handed to `handle`. */
async function serve(handle: (stream: EventStream, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((req, res) => {
    handle(openEventStream(req, res, { retryMs: 1500, keepAliveMs: 20 }), res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`;
}

describe('sseEvent', () => {
  it('writes event, id and data fields, each on one line', () => {
    expect(sseEvent('state', '7', { text: 'a\nb' })).toBe('event:state\nid:7\ndata:{"text":"a\\nb"}\n\n');
    expect(sseEvent('two\r\nlines', '1\n2', null)).toBe('event:two lines\nid:1 2\ndata:null\n\n');
  });
});

describe('openEventStream', () => {
  it('sends the headers and the retry hint with the first chunk, then keep-alive comments until the end', async () => {
    let stream: EventStream | undefined;
    const url = await serve((s) => {
      stream = s;
      s.send('');
    });
    const response = await fetch(url, { headers: { 'last-event-id': '41' } });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(stream?.lastEventId).toBe('41');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let body = '';
    // Two keep-alives (20 ms apart) after the retry hint.
    while (!body.includes(':\n\n:\n\n')) body += decoder.decode((await reader.read()).value);
    expect(body.startsWith('retry:1500\n\n:\n\n')).toBe(true);
    stream?.end(sseEvent('ended', '1', {}));
    stream?.send('event:late\n\n');
    stream?.end('event:late\n\n');
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      body += decoder.decode(chunk.value);
    }
    expect(body.endsWith(':\n\nevent:ended\nid:1\ndata:{}\n\n')).toBe(true);
  });

  it('writes nothing before the first send, so that the request can still be answered otherwise', async () => {
    const url = await serve(() => undefined);
    const controller = new AbortController();
    const answer = await Promise.race([
      fetch(url, { signal: controller.signal }).then(() => 'answered'),
      new Promise((resolve) => setTimeout(resolve, 200, 'nothing written')),
    ]);
    controller.abort();
    expect(answer).toBe('nothing written');
  });

  it('starts nothing for a client that left before the first send (no headers, no keep-alive timer)', async () => {
    let closed: (() => void) | undefined;
    const gone = new Promise<void>((resolve) => (closed = resolve));
    let handled: { stream: EventStream; res: ServerResponse } | undefined;
    const url = await serve((stream, res) => {
      handled = { stream, res };
      res.once('close', () => closed?.());
    });
    const controller = new AbortController();
    const request = fetch(url, { signal: controller.signal }).catch(() => 'aborted');
    while (handled === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    expect(await request).toBe('aborted');
    await gone;
    handled.stream.send('event:late\n\n');
    expect(handled.res.headersSent).toBe(false);
  });
});
