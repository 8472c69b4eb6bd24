/**
 * The cost of job event streams (SSE) in the web process, apart from running jobs: a child process serves the jobs
 * router on a SQLite store and appends events to 200 running jobs itself, announcing each as the master does; the
 * same appends run once with nobody watching and once with a client streaming each job. The difference in the
 * child's CPU time, per streamed event, is the streams' cost (CPU time hardly moves with the machine's load, unlike
 * latencies); connecting the 200 clients is measured on its own. Three rounds, the median printed.
 * BENCH_SSE_EVENTS sets the events per job (default 20).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Router } from 'express';

/** The built jobs router's module (imported by path, so that a build of another revision can stand in). */
interface JobsModule {
  readonly jobsRouter: (deps: {
    readonly store: unknown;
    readonly coordinator: unknown;
    readonly clock: unknown;
    readonly logger: unknown;
  }) => Router;
}

const STREAMS = 200;
const EVENTS = Number(process.env['BENCH_SSE_EVENTS'] ?? 20);
const ROUNDS = 3;

type Request =
  | { readonly op: 'setup'; readonly prefix: string }
  | { readonly op: 'cpu' }
  | { readonly op: 'append'; readonly prefix: string };

/** The child: the jobs router on a real store, and the appends a master would make. */
async function serve(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'consortium-sse-bench-'));
  const express = (await import('express')).default;
  const winston = (await import('winston')).default;
  const { systemClock } = await import('@consortium/core');
  const { MemoryCluster, MemoryCoordinator } = await import('@consortium/coord-memory');
  const { openSqliteStore } = await import('@consortium/store-sqlite');
  const { encodeJobNotice, jobTopic } = await import('@consortium/server');
  const { jobsRouter } = (await import(
    new URL('../packages/server/dist/web/routes/jobs.js', import.meta.url).href
  )) as JobsModule;
  const store = await openSqliteStore({ path: join(dir, 'sse.db') });
  const coordinator = new MemoryCoordinator(new MemoryCluster());
  const app = express();
  app.use((_req, res, next) => {
    res.locals['caller'] = { id: 'bench', role: 'admin' };
    next();
  });
  app.use(
    '/api',
    jobsRouter({ store, coordinator, clock: systemClock, logger: winston.createLogger({ silent: true }) }),
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const ids = (prefix: string) => Array.from({ length: STREAMS }, (_, i) => `${prefix}-${String(i)}`);
  const announce = async (id: string, seq: number, type: string): Promise<void> => {
    await coordinator.notify(jobTopic(id), encodeJobNotice({ kind: 'event', seq, type }));
  };
  const cpu = (): number => {
    const used = process.cpuUsage();
    return (used.user + used.system) / 1000;
  };
  const send = (message: unknown): void => {
    process.send?.(message);
  };
  process.on('message', (request: Request) => {
    void (async () => {
      if (request.op === 'cpu') {
        send({ cpu: cpu() });
        return;
      }
      if (request.op === 'setup') {
        for (const id of ids(request.prefix)) {
          const at = Date.now();
          await store.createJob({
            id,
            kind: 'hold',
            name: id,
            action: 'create',
            updates: [],
            state: 'running',
            actor: 'bench',
            before: null,
            createdAt: at,
            updatedAt: at,
          });
          await store.appendEvent(id, 'state', { state: 'running' }, at);
        }
        send({ ready: true });
        return;
      }
      // A round of one event per job at a time, as jobs running side by side make them; then every job ends.
      for (let round = 0; round < EVENTS; round++) {
        for (const id of ids(request.prefix)) {
          const event = await store.appendEvent(id, 'step', { round, note: 'a step of the job' }, Date.now());
          await announce(id, event.seq, event.type);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      for (const id of ids(request.prefix)) {
        const at = Date.now();
        const { event } = await store.endJob(id, { state: 'succeeded', endedAt: at }, at, {
          event: { type: 'ended', data: { state: 'succeeded' } },
        });
        await announce(id, event.seq, event.type);
      }
      send({ appended: true });
    })();
  });
  send({ port: (server.address() as AddressInfo).port });
  process.on('disconnect', () => {
    server.closeAllConnections();
    server.close();
    void store.close().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
}

/** Asks the child and waits for its answer. */
function ask<T>(child: ChildProcess, request: Request): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (answer) => {
      resolve(answer as T);
    });
    child.send(request);
  });
}

/** One round: the same appends unwatched and streamed; the child's CPU for each and for connecting, ms. */
async function round(
  child: ChildProcess,
  url: string,
  n: number,
): Promise<{ unwatched: number; streamed: number; connect: number; events: number }> {
  const cpu = async () => (await ask<{ cpu: number }>(child, { op: 'cpu' })).cpu;
  await ask(child, { op: 'setup', prefix: `a${String(n)}` });
  let before = await cpu();
  await ask(child, { op: 'append', prefix: `a${String(n)}` });
  const unwatched = (await cpu()) - before;

  await ask(child, { op: 'setup', prefix: `b${String(n)}` });
  before = await cpu();
  let events = 0;
  const first: Promise<void>[] = [];
  const streams = Array.from({ length: STREAMS }, async (_, i) => {
    const response = fetch(`${url}/api/jobs/b${String(n)}-${String(i)}/events`);
    let gotFirst: () => void = () => undefined;
    first.push(new Promise((resolve) => (gotFirst = resolve)));
    const reader = (await response).body?.getReader();
    const decoder = new TextDecoder();
    let body = '';
    for (;;) {
      const chunk = await reader?.read();
      if (chunk === undefined || chunk.done) break;
      body += decoder.decode(chunk.value, { stream: true });
      // Connected once the `state` event (the job's first) has come.
      if (body.includes('\n\n')) gotFirst();
    }
    const ids = [...body.matchAll(/^id:(\d+)$/gm)].map((m) => Number(m[1]));
    if (ids.length !== EVENTS + 2 || ids.some((seq, k) => seq !== k + 1) || !body.includes('event:ended'))
      throw new Error(`stream ${String(i)} sent ids ${ids.join(',')}`);
    events += ids.length;
  });
  await Promise.all(first);
  const connect = (await cpu()) - before;
  before = await cpu();
  await ask(child, { op: 'append', prefix: `b${String(n)}` });
  await Promise.all(streams);
  const streamed = (await cpu()) - before;
  return { unwatched, streamed, connect, events };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** `make bench BENCH=sse`. */
export async function sseBench(): Promise<void> {
  const child = fork(new URL(import.meta.url), ['serve'], { execArgv: ['--import', 'tsx'] });
  try {
    const { port } = await new Promise<{ port: number }>((resolve) =>
      child.once('message', (m) => {
        resolve(m as { port: number });
      }),
    );
    const url = `http://127.0.0.1:${String(port)}`;
    const rounds = [];
    for (let n = 0; n < ROUNDS; n++) rounds.push(await round(child, url, n));
    const perEvent = median(rounds.map((r) => ((r.streamed - r.unwatched) / r.events) * 1000));
    const perConnect = median(rounds.map((r) => (r.connect / STREAMS) * 1000));
    console.log(
      `\nsse: ${STREAMS} streams of ${EVENTS + 2} events each, CPU of the web process (median of ${ROUNDS} rounds)`,
    );
    console.log(
      `  appends unwatched ${median(rounds.map((r) => r.unwatched)).toFixed(0)} ms, streamed ${median(rounds.map((r) => r.streamed)).toFixed(0)} ms: ${perEvent.toFixed(1)} µs per streamed event`,
    );
    console.log(`  connecting a stream (to its first event): ${perConnect.toFixed(0)} µs`);
  } finally {
    child.disconnect();
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

if (process.argv[2] === 'serve') await serve();
