/**
 * The hook part of the store contract: hooks, their failure counting and their deliveries, as every adapter must
 * keep them. `describeStoreContract` runs these cases against each adapter.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, InputError, NotFoundError } from '@consortium/core';
import type { DeliveryRecord, HookRecord, Store } from '@consortium/core';

const T0 = 1_700_000_000_000;

type ErrorClass = abstract new (...args: never[]) => Error;

async function expectRejection(promise: Promise<unknown>, type: ErrorClass, message: string): Promise<void> {
  const outcome = await promise.then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) expect.fail(`expected a ${type.name} "${message}", got a result`);
  expect(outcome.error).toBeInstanceOf(type);
  expect((outcome.error as Error).message).toBe(message);
}

function hook(id: string, overrides: Partial<HookRecord> = {}): HookRecord {
  return {
    id,
    url: 'https://example.invalid/hook',
    events: ['node.created', 'job.failed'],
    kind: 'host',
    filter: 'datacenter=pek1',
    secret: 's3cret',
    enabled: true,
    consecutiveFailures: 0,
    createdAt: T0,
    actor: 'dev',
    ...overrides,
  };
}

function delivery(hookId: string, eventId: string, createdAt = T0): DeliveryRecord {
  return {
    id: `${hookId}:${eventId}`,
    hookId,
    event: 'node.created',
    eventId,
    status: 'pending',
    attempts: 0,
    payload: {
      id: eventId,
      event: 'node.created',
      node: { kind: 'host', name: 'web-01', attrs: { a: [1] } },
    },
    log: [],
    createdAt,
    updatedAt: createdAt,
  };
}

/** The hook cases of the store contract, over the store of the running test. */
export function describeHookStoreCases(current: () => Store): void {
  describe('hooks', () => {
    it('creates hooks, lists them oldest first and refuses a second with the same id', async () => {
      const store = current();
      await store.createHook(hook('h-2', { createdAt: T0 + 5 }));
      // Without the optional fields: an adapter must not invent them.
      const plain: HookRecord = { ...hook('h-1') };
      delete (plain as { kind?: string }).kind;
      delete (plain as { filter?: string }).filter;
      await store.createHook(plain);
      expect(await store.getHook('h-1')).toStrictEqual(plain);
      expect(await store.getHook('h-3')).toBeUndefined();
      expect((await store.listHooks()).map((h) => h.id)).toEqual(['h-1', 'h-2']);
      await expectRejection(
        store.createHook(hook('h-1', { url: 'http://other' })),
        ConflictError,
        'Hook h-1 already exists',
      );
      expect(await store.getHook('h-1')).toStrictEqual(plain);
    });

    it('deletes a hook with its deliveries, and says when there is none', async () => {
      const store = current();
      await store.createHook(hook('h-1'));
      await store.createDelivery(delivery('h-1', 'e-1'));
      await store.deleteHook('h-1');
      expect(await store.getHook('h-1')).toBeUndefined();
      expect(await store.getDelivery('h-1:e-1')).toBeUndefined();
      await expectRejection(store.deleteHook('h-1'), NotFoundError, 'Hook h-1 not found');
      await expectRejection(
        store.createDelivery(delivery('h-1', 'e-2')),
        NotFoundError,
        'Hook h-1 not found',
      );
    });

    it('counts failed attempts, resets them on success and disables the hook once at the limit', async () => {
      const store = current();
      await store.createHook(hook('h-1'));
      expect(await store.recordHookAttempt('h-1', false, 3)).toStrictEqual({
        hook: hook('h-1', { consecutiveFailures: 1 }),
        disabled: false,
      });
      await store.recordHookAttempt('h-1', true, 3);
      expect((await store.getHook('h-1'))?.consecutiveFailures).toBe(0);
      await store.recordHookAttempt('h-1', false, 3);
      await store.recordHookAttempt('h-1', false, 3);
      expect(await store.recordHookAttempt('h-1', false, 3)).toStrictEqual({
        hook: hook('h-1', { consecutiveFailures: 3, enabled: false }),
        disabled: true,
      });
      expect((await store.recordHookAttempt('h-1', false, 3)).disabled).toBe(false);
      expect(await store.getHook('h-1')).toStrictEqual(
        hook('h-1', { consecutiveFailures: 4, enabled: false }),
      );
      expect(await store.setHookEnabled('h-1', true)).toStrictEqual(hook('h-1'));
      expect(await store.getHook('h-1')).toStrictEqual(hook('h-1'));
      expect(await store.setHookEnabled('h-1', false)).toStrictEqual(hook('h-1', { enabled: false }));
      await expectRejection(store.recordHookAttempt('h-9', true, 3), NotFoundError, 'Hook h-9 not found');
      await expectRejection(store.setHookEnabled('h-9', true), NotFoundError, 'Hook h-9 not found');
    });

    it('reports the disabling to exactly one of many concurrent failures', async () => {
      const store = current();
      await store.createHook(hook('h-1'));
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, () => store.recordHookAttempt('h-1', false, 5)),
      );
      expect(outcomes.filter((o) => o.disabled)).toHaveLength(1);
      expect(await store.getHook('h-1')).toStrictEqual(
        hook('h-1', { consecutiveFailures: 12, enabled: false }),
      );
    });

    it('inserts a delivery once per id and updates it', async () => {
      const store = current();
      await store.createHook(hook('h-1'));
      const first = delivery('h-1', 'e-1');
      expect(await store.createDelivery(first)).toBe(true);
      expect(await store.createDelivery({ ...first, attempts: 7 })).toBe(false);
      expect(await store.getDelivery(first.id)).toStrictEqual(first);
      const attempt = { at: T0 + 1, status: 500, durationMs: 12 };
      const updated = await store.updateDelivery(first.id, {
        attempts: 1,
        lastStatus: 500,
        log: [attempt],
        updatedAt: T0 + 1,
      });
      const expected = { ...first, attempts: 1, lastStatus: 500, log: [attempt], updatedAt: T0 + 1 };
      expect(updated).toStrictEqual(expected);
      expect(await store.getDelivery(first.id)).toStrictEqual(expected);
      await expectRejection(
        store.updateDelivery('h-1:nope', { attempts: 1 }),
        NotFoundError,
        'Delivery h-1:nope not found',
      );
    });

    it("lists a hook's deliveries newest first, a page at a time", async () => {
      const store = current();
      await store.createHook(hook('h-1'));
      await store.createHook(hook('h-2'));
      for (const [i, at] of [0, 3, 3, 1, 2].entries())
        await store.createDelivery(delivery('h-1', `e-${i}`, T0 + at));
      await store.createDelivery(delivery('h-2', 'e-9', T0 + 9));
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listDeliveries('h-1', {
          limit: 2,
          ...(cursor === undefined ? {} : { cursor }),
        });
        expect(page.items.length).toBeLessThanOrEqual(2);
        ids.push(...page.items.map((d) => d.eventId));
        cursor = page.next;
      } while (cursor !== undefined);
      expect(ids).toEqual(['e-2', 'e-1', 'e-4', 'e-3', 'e-0']);
      expect(await store.listDeliveries('h-3', { limit: 5 })).toEqual({ items: [] });
      await expectRejection(
        store.listDeliveries('h-1', { limit: 2, cursor: 'nope' }),
        InputError,
        'Invalid cursor',
      );
      await expectRejection(
        store.listDeliveries('h-1', { limit: 0 }),
        InputError,
        'limit must be a positive integer, got 0',
      );
    });
  });
}
