/** A job's event stream without its notices: the master sends them without waiting, and one may be lost. */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import winston from 'winston';
import { createParser } from 'eventsource-parser';
import { systemClock } from '@consortium/core';
import type { JobRecord } from '@consortium/core';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import { openSqliteStore } from '@consortium/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { jobsRouter } from './jobs.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('GET /api/jobs/:id/events', () => {
  it('ends the stream with `ended` although no notice of the end ever came', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    const coordinator = new MemoryCoordinator(new MemoryCluster());
    closers.push(
      () => store.close(),
      () => coordinator.close(),
    );
    const now = Date.now();
    const job: JobRecord = {
      id: 'j-quiet',
      kind: 'vlan',
      name: 'v1',
      action: 'create',
      updates: [],
      state: 'running',
      actor: 'test',
      before: null,
      createdAt: now,
      updatedAt: now,
    };
    await store.createJob(job);
    await store.appendEvent(job.id, 'state', { state: 'running' }, now);
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
    const response = await fetch(`http://127.0.0.1:${String(port)}/api/jobs/${job.id}/events`);
    expect(response.status).toBe(200);
    const types: string[] = [];
    const parser = createParser({
      onEvent: (event) => {
        types.push(event.event ?? '');
      },
    });
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    const first = await reader.read();
    parser.feed(decoder.decode(first.value, { stream: true }));
    expect(types).toEqual(['state']);
    // The job ends in the store, and nobody tells the web process: the stream must still see it.
    await store.endJob(job.id, { state: 'succeeded', endedAt: Date.now() }, Date.now(), {
      event: { type: 'ended', data: { state: 'succeeded' } },
    });
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      parser.feed(decoder.decode(chunk.value, { stream: true }));
    }
    expect(types).toEqual(['state', 'ended']);
  }, 30_000);
});
