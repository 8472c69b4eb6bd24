/**
 * A job's event stream: its bytes on the wire, Last-Event-ID, no event skipped or sent twice, one subscription for
 * all streams, and the end of a job seen without its notice (the master sends notices without waiting, and one may
 * be lost).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import winston from 'winston';
import { createParser } from 'eventsource-parser';
import { systemClock } from '@consortium/core';
import type { JobRecord, JsonValue, Store } from '@consortium/core';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import { openSqliteStore } from '@consortium/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeJobNotice, jobTopic } from '../../protocol.js';
import { jobsRouter } from './jobs.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const AT = Date.UTC(2026, 11, 2, 12, 0, 0);

/** A coordinator that counts its subscriptions. */
class CountingCoordinator extends MemoryCoordinator {
  subscriptions = 0;
  override subscribe(prefix: string, listener: (topic: string, message: JsonValue) => void): () => void {
    this.subscriptions += 1;
    return super.subscribe(prefix, listener);
  }
}

/** The jobs router on a real SQLite store, served on a free port, with a running job `id`. */
async function serve(id: string): Promise<{
  url: string;
  store: Store;
  coordinator: CountingCoordinator;
  event: (type: string, data: Record<string, JsonValue>) => Promise<number>;
}> {
  const store = await openSqliteStore({ path: ':memory:' });
  const coordinator = new CountingCoordinator(new MemoryCluster());
  closers.push(
    () => store.close(),
    () => coordinator.close(),
  );
  const job: JobRecord = {
    id,
    kind: 'vlan',
    name: 'v1',
    action: 'create',
    updates: [],
    state: 'running',
    actor: 'test',
    before: null,
    createdAt: AT,
    updatedAt: AT,
  };
  await store.createJob(job);
  const app = express();
  app.use((_req, res, next) => {
    res.locals['caller'] = { id: 'test', role: 'admin' };
    next();
  });
  app.use(
    '/api',
    jobsRouter({ store, coordinator, clock: systemClock, logger: winston.createLogger({ silent: true }) }),
  );
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => {
      resolve(listening);
    });
  });
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  const { port } = server.address() as AddressInfo;
  /** Appends an event as the master does (ended ends the job) and announces it; returns its seq. */
  const event = async (type: string, data: Record<string, JsonValue>): Promise<number> => {
    const appended =
      type === 'ended'
        ? (
            await store.endJob(id, { state: 'succeeded', endedAt: AT }, AT, {
              event: { type: 'ended', data },
            })
          ).event
        : await store.appendEvent(id, type, data, AT);
    const { seq } = appended;
    await coordinator.notify(jobTopic(id), encodeJobNotice({ kind: 'event', seq, type }));
    return seq;
  };
  return { url: `http://127.0.0.1:${String(port)}/api/jobs/${id}/events`, store, coordinator, event };
}

/** The whole body of a stream that ends. */
async function readAll(response: Response): Promise<string> {
  return new TextDecoder().decode(await response.arrayBuffer());
}

/** The ids of the events in an SSE body. */
function ids(body: string): string[] {
  const seen: string[] = [];
  const parser = createParser({
    onEvent: (event) => {
      seen.push(`${event.event ?? ''}:${event.id ?? ''}`);
    },
  });
  parser.feed(body);
  return seen;
}

describe('GET /api/jobs/:id/events', () => {
  it('sends the headers, the retry hint and each event in the bytes better-sse sent', async () => {
    const { url, event } = await serve('j-bytes');
    await event('state', { state: 'running' });
    await event('ended', { state: 'succeeded' });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('cache-control')).toBe(
      'private, no-cache, no-store, no-transform, must-revalidate, max-age=0',
    );
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    expect(await readAll(response)).toBe(
      'retry:2000\n\n' +
        'event:state\nid:1\ndata:{"jobId":"j-bytes","seq":1,"at":"2026-12-02T12:00:00.000Z","type":"state","data":{"state":"running"}}\n\n' +
        'event:ended\nid:2\ndata:{"jobId":"j-bytes","seq":2,"at":"2026-12-02T12:00:00.000Z","type":"ended","data":{"state":"succeeded"}}\n\n',
    );
  });

  it('resumes after Last-Event-ID (header or lastEventId parameter) and sends every later event once', async () => {
    const { url, event } = await serve('j-resume');
    for (let i = 0; i < 3; i++) await event('step', { i });
    await event('ended', { state: 'succeeded' });
    const header = await fetch(url, { headers: { 'last-event-id': '2' } });
    expect(ids(await readAll(header))).toEqual(['step:3', 'ended:4']);
    const parameter = await fetch(`${url}?lastEventId=3`);
    expect(ids(await readAll(parameter))).toEqual(['ended:4']);
    // Not a decimal event number: from the beginning.
    const junk = await fetch(url, { headers: { 'last-event-id': 'x1' } });
    expect(ids(await readAll(junk))).toEqual(['step:1', 'step:2', 'step:3', 'ended:4']);
  });

  it('gives every stream of a job each event exactly once, through one subscription of the process', async () => {
    const { url, event, coordinator } = await serve('j-many');
    await event('state', { state: 'running' });
    const before = coordinator.subscriptions;
    const streams = await Promise.all(Array.from({ length: 20 }, () => fetch(url)));
    const bodies = Promise.all(streams.map(readAll));
    // Events appended while the streams read: each notice may find several events, or none already sent.
    for (let i = 0; i < 50; i++) await event('step', { i });
    await event('ended', { state: 'succeeded' });
    const expected = [
      'state:1',
      ...Array.from({ length: 50 }, (_, i) => `step:${String(i + 2)}`),
      'ended:52',
    ];
    for (const body of await bodies) expect(ids(body)).toEqual(expected);
    // The streams share the process's subscription to job topics (at most the one opened by the first stream).
    expect(coordinator.subscriptions - before).toBeLessThanOrEqual(1);
    const again = await fetch(url);
    expect(ids(await readAll(again))).toEqual(expected);
    expect(coordinator.subscriptions - before).toBeLessThanOrEqual(1);
  });

  it('ends the stream with `ended` although no notice of the end ever came', async () => {
    const { url, store, event } = await serve('j-quiet');
    await event('state', { state: 'running' });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const types: string[] = [];
    const parser = createParser({
      onEvent: (e) => {
        types.push(e.event ?? '');
      },
    });
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    while (types.length === 0) {
      const chunk = await reader.read();
      parser.feed(decoder.decode(chunk.value, { stream: true }));
    }
    expect(types).toEqual(['state']);
    // The job ends in the store, and nobody tells the web process: the stream must still see it.
    await store.endJob('j-quiet', { state: 'succeeded', endedAt: Date.now() }, Date.now(), {
      event: { type: 'ended', data: { state: 'succeeded' } },
    });
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      parser.feed(decoder.decode(chunk.value, { stream: true }));
    }
    expect(types).toEqual(['state', 'ended']);
  }, 30_000);

  it('ends with `ended` when Last-Event-ID lies beyond the events and the job ends later without a notice', async () => {
    const { url, store, event } = await serve('j-beyond');
    await event('state', { state: 'running' });
    const response = await fetch(url, { headers: { 'last-event-id': '999999999999' } });
    expect(response.status).toBe(200);
    const body = readAll(response);
    await store.endJob('j-beyond', { state: 'succeeded', endedAt: AT }, AT, {
      event: { type: 'ended', data: { state: 'succeeded' } },
    });
    expect(ids(await body)).toEqual(['ended:2']);
  }, 30_000);
});
