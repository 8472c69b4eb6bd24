import { describe, expect, it } from 'vitest';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import type { TokenRecord } from '@consortium/core';
import { TOKEN_REVOKED_TOPIC } from '../tokens.js';
import { actorNames, jobActors } from './actors.js';
import { TOKEN_CACHE_MS } from './auth.js';

const T0 = 1_700_000_000_000;

/** Token rows whose reads are counted. */
function tokenStore(tokens: TokenRecord[]): {
  store: { listTokens(): Promise<readonly TokenRecord[]> };
  reads: () => number;
} {
  let reads = 0;
  return {
    store: {
      listTokens: () => {
        reads += 1;
        return Promise.resolve([...tokens]);
      },
    },
    reads: () => reads,
  };
}

/** Lets the memory coordinator deliver its notices (it does so in microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('actorNames', () => {
  it('reads the tokens again only for an id it does not hold, a revocation or an old copy', async () => {
    const coordinator = new MemoryCoordinator(new MemoryCluster());
    const tokens: TokenRecord[] = [
      { id: 'ci', hash: 'h1', role: 'operator', description: 'ci pipeline', createdAt: T0 },
    ];
    const { store, reads } = tokenStore(tokens);
    let now = T0;
    const deps = { store, coordinator, clock: { now: () => now } };

    expect((await actorNames(deps, ['ci']))('ci')).toEqual({ id: 'ci', description: 'ci pipeline' });
    expect((await actorNames(deps, ['ci']))('ci')).toEqual({ id: 'ci', description: 'ci pipeline' });
    expect(reads()).toBe(1);

    // A token made since (by any process) is read when an answer names it.
    tokens.push({ id: 'night', hash: 'h2', role: 'operator', description: 'night shift', createdAt: T0 });
    const both = await actorNames(deps, ['ci', 'night']);
    expect([both('ci'), both('night')]).toEqual([
      { id: 'ci', description: 'ci pipeline' },
      { id: 'night', description: 'night shift' },
    ]);
    expect(reads()).toBe(2);

    // A revocation announced anywhere drops the copy: the revoked token shows no description at once.
    tokens.splice(0, 1);
    await coordinator.notify(TOKEN_REVOKED_TOPIC, { id: 'ci' });
    await settle();
    expect((await actorNames(deps, ['night']))('ci')).toEqual({ id: 'ci', description: null });
    expect(reads()).toBe(3);

    // A copy older than TOKEN_CACHE_MS is read again.
    await actorNames(deps, ['night']);
    expect(reads()).toBe(3);
    now += TOKEN_CACHE_MS;
    await actorNames(deps, ['night']);
    expect(reads()).toBe(4);
    await coordinator.close();
  });

  it('names who asked for a job and who asked to cancel it', () => {
    const job = {
      id: 'j-1',
      kind: 'host',
      name: 'web-01',
      action: 'create' as const,
      state: 'running' as const,
      actor: 'ci',
      updates: [],
      before: null,
      createdAt: T0,
      updatedAt: T0,
    };
    expect(jobActors(job)).toEqual(['ci']);
    expect(jobActors({ ...job, cancelRequested: { by: 'night', at: T0 + 1 } })).toEqual(['ci', 'night']);
  });
});
