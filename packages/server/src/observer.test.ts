/**
 * Periodic observe over a real SQLite store: a page of nodes is written in one store call, a node deleted during
 * the pass is skipped, a store that refuses the write is counted as failures, and the pass yields to the event
 * loop between pages (the embedded store answers synchronously, so without that nothing else would run until the
 * pass ended).
 */
import { Writable } from 'node:stream';
import type { NodeObservation, NodeProvider, Observation, Store } from '@consortium/core';
import { BackendUnavailableError } from '@consortium/core';
import { openSqliteStore } from '@consortium/store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import { provisioningWorld } from '@consortium/testkit';
import type { HookEventInput, HookPublisher } from './hooks.js';
import { OBSERVE_PAGE, Observer } from './observer.js';

let store: Store & { close(): Promise<void> };
let batches: number[];
let warnings: string[];

beforeEach(async () => {
  const sqlite = await openSqliteStore({ path: ':memory:' });
  batches = [];
  // Counts the batch writes, then lets the real store do them.
  store = Object.assign(Object.create(sqlite) as typeof sqlite, {
    putObservations: (kind: string, observations: readonly NodeObservation[], at: number) => {
      batches.push(observations.length);
      return sqlite.putObservations(kind, observations, at);
    },
  });
  for (let i = 0; i < 250; i++) await store.insertNode('host', `h-${String(i).padStart(3, '0')}`, {}, 0);
  warnings = [];
});

afterEach(async () => {
  await store.close();
});

/** A clock that moves 1 ms at every reading, so that every time the observer takes is distinct. */
const ticking = { at: 1_000, now: (): number => ++ticking.at, sleep: () => Promise.resolve() };

function observer(observe: (name: string) => Promise<Observation>): Observer {
  const provider: NodeProvider = {
    name: 'vm',
    kind: 'host',
    claims: [],
    apply: () => Promise.reject(new Error('not called')),
    explain: () => Promise.reject(new Error('not called')),
    observe: (ref) => observe(ref.name),
  };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      warnings.push((JSON.parse(chunk.toString()) as { message: string }).message);
      done();
    },
  });
  const transports = [new winston.transports.Stream({ stream: sink })];
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston types its transports loosely
  const logger = winston.createLogger({ transports, format: winston.format.json() });
  return new Observer({
    store,
    kinds: new Map([['host', { providers: new Map([['vm', provider]]) }]]),
    logger,
    clock: ticking,
    intervalMs: 60_000,
  });
}

describe('Observer.pass', () => {
  it('writes each page of nodes in one store call and lets other work run between pages', async () => {
    let immediateRan = false;
    let seenByLastNode: boolean | undefined;
    const pass = observer((name) => {
      if (name === 'h-249') seenByLastNode = immediateRan;
      return Promise.resolve(name === 'h-007' ? null : { power: 'on' });
    }).pass(new AbortController().signal);
    setImmediate(() => {
      immediateRan = true;
    });
    expect(await pass).toEqual({ nodes: 250, failures: 0 });
    expect(batches).toEqual(Array.from({ length: 10 }, () => OBSERVE_PAGE));
    expect(seenByLastNode).toBe(true);
    expect((await store.getNode('host', 'h-249'))?.observed['vm']?.attrs).toEqual({ power: 'on' });
    expect((await store.getNode('host', 'h-007'))?.observed['vm']?.attrs).toBeNull();
  });

  it('skips a node deleted during the pass and counts a failed observe without losing the page', async () => {
    const result = await observer(async (name) => {
      if (name === 'h-010') await store.deleteNode('host', 'h-011');
      if (name === 'h-020') throw new BackendUnavailableError('libvirt is down');
      return { power: 'off' };
    }).pass(new AbortController().signal);
    // h-011 was listed before it went: it is observed, and the store skips its observation.
    expect(result).toEqual({ nodes: 250, failures: 1 });
    expect(batches).toEqual([OBSERVE_PAGE - 1, ...Array.from({ length: 9 }, () => OBSERVE_PAGE)]);
    expect(await store.getNode('host', 'h-011')).toBeUndefined();
    expect((await store.getNode('host', 'h-020'))?.observed).toEqual({});
    expect((await store.getNode('host', 'h-021'))?.observed['vm']?.attrs).toEqual({ power: 'off' });
    expect(warnings).toEqual(['observe failed']);
  });

  it('stamps a page with the time it began, so a change made while it was observed is newer than it', async () => {
    await observer(async (name) => {
      // h-010 was observed already; it changes before the page is written.
      if (name === 'h-020') await store.updateNode('host', 'h-010', { power: 'off' }, ticking.now());
      return { power: 'on' };
    }).pass(new AbortController().signal);
    const changed = await store.getNode('host', 'h-010');
    const observedAt = changed?.observed['vm']?.at ?? Infinity;
    expect(observedAt).toBeLessThan(changed?.updatedAt ?? -Infinity);
    // The next page began after the change: its observations are newer.
    expect((await store.getNode('host', 'h-150'))?.observed['vm']?.at).toBeGreaterThan(
      changed?.updatedAt ?? Infinity,
    );
  });

  it('counts the observations of a page the store refuses as failures and goes on', async () => {
    let calls = 0;
    const refuse = store.putObservations.bind(store);
    store.putObservations = (kind, observations, at) =>
      ++calls === 2
        ? Promise.reject(new BackendUnavailableError('disk full'))
        : refuse(kind, observations, at);
    const result = await observer(() => Promise.resolve({ power: 'on' })).pass(new AbortController().signal);
    expect(result).toEqual({ nodes: 250, failures: OBSERVE_PAGE });
    expect((await store.getNode('host', `h-${String(OBSERVE_PAGE + 5).padStart(3, '0')}`))?.observed).toEqual(
      {},
    );
    expect((await store.getNode('host', 'h-200'))?.observed['vm']?.attrs).toEqual({ power: 'on' });
  });

  it('tells hooks of drift only when one listens for it, after the page is written', async () => {
    const { schema } = provisioningWorld();
    await store.insertNode('host', 'drifty', { present: true, hwspec: 'small' }, 0);
    const published: HookEventInput[] = [];
    const hooks = {
      publish: (events: readonly HookEventInput[]) => {
        published.push(...events);
        return Promise.resolve([]);
      },
    } as unknown as HookPublisher;
    const libvirt: NodeProvider = {
      name: 'libvirt',
      kind: 'host',
      claims: [],
      apply: () => Promise.reject(new Error('not called')),
      explain: () => Promise.reject(new Error('not called')),
      observe: (ref) => Promise.resolve(ref.name === 'drifty' ? { hwspec: 'large' } : null),
    };
    const drifting = new Observer({
      store,
      kinds: new Map([['host', { providers: new Map([['libvirt', libvirt]]), schema }]]),
      logger: winston.createLogger({ silent: true }),
      clock: ticking,
      intervalMs: 60_000,
      hooks,
    });
    // No hook listens: nothing is published.
    await drifting.pass(new AbortController().signal);
    expect(published).toEqual([]);
    await store.createHook({
      id: 'h1',
      url: 'http://127.0.0.1:9/',
      events: ['node.drift'],
      kind: 'host',
      secret: 's',
      enabled: true,
      consecutiveFailures: 0,
      createdAt: 0,
      actor: 'test',
    });
    await drifting.pass(new AbortController().signal);
    expect(published.map((e) => [e.event, e.name, e.detail])).toEqual([
      [
        'node.drift',
        'drifty',
        { drift: [{ path: 'hwspec', provider: 'libvirt', expected: 'small', observed: 'large' }] },
      ],
    ]);
  });
});
