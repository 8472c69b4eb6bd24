/**
 * The contract every `Store` adapter must honour, as a vitest suite. An adapter's test file calls
 * `describeStoreContract('sqlite', makeStore)`; `makeStore` returns a fresh, empty store for every test.
 *
 * Beyond the port's doc comments, the suite pins down (so that every adapter agrees):
 * - error messages: `Node <kind>/<name> already exists` (ConflictError), `Node <kind>/<name> not found` and
 *   `Job <id> not found` (NotFoundError), `Node <kind>/<name> is at revision <actual>, not <expected>`
 *   (PreconditionFailedError), `Job <id> already exists` (ConflictError), `Invalid cursor` and
 *   `limit must be a positive integer, got <n>` (InputError);
 * - filters: a path that crosses an array holds if it holds for any element; a missing value is JSON null;
 *   comparisons are type-strict; `ne` is `not eq`; `has` tests the array at the end of the path; `glob` knows only
 *   `*` and `?`, is case-sensitive and applies to strings;
 * - `putObservation` needs an existing node and changes neither its revision nor `updatedAt`; deleting a node
 *   deletes its observations; `putToken` replaces a token with the same id.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FILTER_ALL_HOSTS, FILTER_CASES, FILTER_HOSTS } from './filter-cases.js';
import { describeHookStoreCases } from './hook-store-contract.js';
import {
  ConflictError,
  InputError,
  LeaseLostError,
  NotFoundError,
  PreconditionFailedError,
} from '@consortium/core';
import type {
  AuditEntry,
  Filter,
  JobEvent,
  JobRecord,
  PlannerState,
  Store,
  StoredNode,
  TokenRecord,
} from '@consortium/core';

/** A fresh store for one test and how to dispose of it (close it, drop its database). */
export interface StoreHarness {
  readonly store: Store;
  cleanup(): Promise<void>;
  /**
   * Opens another instance of the same store on its own connections, as a second process would; the test closes
   * it. Needed when the adapter declares `secondInstance: true`.
   */
  readonly reopen?: () => Promise<Store>;
  /**
   * Severs every connection the store's instances have to the database at once, as a network cut or a server crash
   * would; the store must recover by itself. Needed when the adapter declares `cut: true`.
   */
  readonly cut?: () => Promise<void>;
}

/** A database no store has opened yet, for instances that open (and migrate) it at the same time. */
export interface FreshStoreTarget {
  /** Opens one instance of the store on the database, migrating it if needed. */
  open(): Promise<Store>;
  /** The schema versions recorded as applied, one entry per record, in order. */
  appliedMigrations(): Promise<readonly number[]>;
  /** Removes the database; the test has closed the stores it opened. */
  cleanup(): Promise<void>;
}

/**
 * What an adapter can do beyond the port, for the cases that need it. Each is `true` (or the factory) when it can,
 * or the reason it cannot, which the skipped test prints in its title: a case never passes silently.
 */
export interface StoreContractCapabilities {
  /** `harness.reopen` opens a second instance on the same database. */
  readonly secondInstance: true | string;
  /** `harness.cut` severs the store's connections. */
  readonly cut: true | string;
  /** Makes an empty, unmigrated database. */
  readonly freshDatabase: (() => Promise<FreshStoreTarget>) | string;
}

const NOT_DECLARED: StoreContractCapabilities = {
  secondInstance: 'the adapter declares no second instance',
  cut: 'the adapter declares no connection cut',
  freshDatabase: 'the adapter declares no fresh database',
};

const T0 = 1_700_000_000_000;

type ErrorClass = abstract new (...args: never[]) => Error;

/** Awaits `promise` and asserts that it rejects with an instance of `type` whose message is exactly `message`. */
async function expectRejection(promise: Promise<unknown>, type: ErrorClass, message: string): Promise<void> {
  const outcome = await promise.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) expect.fail(`expected a ${type.name} "${message}", got a result`);
  expect(outcome.error).toBeInstanceOf(type);
  expect((outcome.error as Error).message).toBe(message);
}

function job(id: string, overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    kind: 'host',
    name: 'web-01',
    action: 'patch',
    state: 'queued',
    actor: 'dev',
    updates: [{ path: 'power', op: 'set', value: 'on' }],
    before: { power: 'off' },
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

function plan(jobId: string): PlannerState {
  return {
    jobId,
    kind: 'host',
    name: 'web-01',
    phase: 'running',
    attrs: { power: 'off', interfaces: [{ name: 'eth0', mac: '52:54:00:00:00:01' }] },
    userUpdates: [{ id: 'u1', path: 'power', op: 'set', value: 'on', origin: 'user' }],
    pending: [],
    version: 3,
    changes: { power: { by: 'libvirt', version: 2 } },
    later: {},
    round: { number: 2, startedAt: T0 + 10, tasks: [] },
    rounds: [],
    progressRounds: 1,
    idleStreak: 0,
    notBefore: 0,
    startedAt: T0 + 1,
    deadline: T0 + 600_000,
    fingerprints: { abc: 1 },
  };
}

function namesOf(nodes: readonly StoredNode[]): string[] {
  return nodes.map((node) => node.name);
}

/** Defines the store contract suite for one adapter; `makeStore` must return an empty store each time. */
export function describeStoreContract(
  name: string,
  makeStore: () => Promise<StoreHarness>,
  capabilities: StoreContractCapabilities = NOT_DECLARED,
): void {
  /** `it`, or `it.skip` with the reason in the title when the adapter lacks `capability`. */
  const itWith = (
    capability: true | string | (() => unknown),
    title: string,
    fn: () => Promise<void>,
  ): void => {
    if (typeof capability === 'string') it.skip(`${title} (skipped: ${capability})`, fn);
    else it(title, fn);
  };

  describe(`Store contract: ${name}`, () => {
    let harness: StoreHarness | undefined;
    let store: Store;

    beforeEach(async () => {
      harness = await makeStore();
      store = harness.store;
    });

    afterEach(async () => {
      await harness?.cleanup();
      harness = undefined;
    });

    describe('nodes', () => {
      it('inserts a node at revision 1 and reads it back', async () => {
        const attrs = {
          datacenter: 'pek1',
          rack: 3.5,
          on: true,
          none: null,
          roles: ['a'],
          nested: { ü: '✓' },
        };
        const inserted = await store.insertNode('host', 'web-01', attrs, T0);
        const expected: StoredNode = {
          kind: 'host',
          name: 'web-01',
          attrs,
          revision: 1,
          observed: {},
          createdAt: T0,
          updatedAt: T0,
        };
        expect(inserted).toStrictEqual(expected);
        expect(await store.getNode('host', 'web-01')).toStrictEqual(expected);
      });

      it('returns undefined for a missing node and keeps kinds apart', async () => {
        await store.insertNode('host', 'web-01', { a: 1 }, T0);
        expect(await store.getNode('host', 'web-02')).toBeUndefined();
        expect(await store.getNode('vm', 'web-01')).toBeUndefined();
        await store.insertNode('vm', 'web-01', { a: 2 }, T0);
        expect((await store.getNode('vm', 'web-01'))?.attrs).toEqual({ a: 2 });
        expect((await store.getNode('host', 'web-01'))?.attrs).toEqual({ a: 1 });
      });

      it('refuses to insert a node that exists', async () => {
        await store.insertNode('host', 'web-01', { a: 1 }, T0);
        await expectRejection(
          store.insertNode('host', 'web-01', { a: 2 }, T0 + 1),
          ConflictError,
          'Node host/web-01 already exists',
        );
        const node = await store.getNode('host', 'web-01');
        expect(node?.attrs).toEqual({ a: 1 });
        expect(node?.revision).toBe(1);
      });

      it('replaces the attributes and bumps the revision on update', async () => {
        await store.insertNode('host', 'web-01', { a: 1, b: 2 }, T0);
        const updated = await store.updateNode('host', 'web-01', { a: 3 }, T0 + 5);
        expect(updated).toStrictEqual({
          kind: 'host',
          name: 'web-01',
          attrs: { a: 3 },
          revision: 2,
          observed: {},
          createdAt: T0,
          updatedAt: T0 + 5,
        });
        const again = await store.updateNode('host', 'web-01', { a: 4 }, T0 + 6, 2);
        expect(again.revision).toBe(3);
        expect(await store.getNode('host', 'web-01')).toStrictEqual(again);
      });

      it('refuses an update at a stale revision and leaves the node alone', async () => {
        await store.insertNode('host', 'web-01', { a: 1 }, T0);
        await store.updateNode('host', 'web-01', { a: 2 }, T0 + 1);
        await expectRejection(
          store.updateNode('host', 'web-01', { a: 3 }, T0 + 2, 1),
          PreconditionFailedError,
          'Node host/web-01 is at revision 2, not 1',
        );
        await expectRejection(
          store.updateNode('host', 'web-01', { a: 3 }, T0 + 2, 7),
          PreconditionFailedError,
          'Node host/web-01 is at revision 2, not 7',
        );
        const node = await store.getNode('host', 'web-01');
        expect(node?.attrs).toEqual({ a: 2 });
        expect(node?.revision).toBe(2);
        expect(node?.updatedAt).toBe(T0 + 1);
      });

      it('refuses to update a missing node, with or without a revision', async () => {
        await expectRejection(
          store.updateNode('host', 'nope', {}, T0),
          NotFoundError,
          'Node host/nope not found',
        );
        await expectRejection(
          store.updateNode('host', 'nope', {}, T0, 1),
          NotFoundError,
          'Node host/nope not found',
        );
        expect(await store.getNode('host', 'nope')).toBeUndefined();
      });

      it('deletes a node without a revision', async () => {
        await store.insertNode('host', 'web-01', {}, T0);
        await store.deleteNode('host', 'web-01');
        expect(await store.getNode('host', 'web-01')).toBeUndefined();
      });

      it('deletes a node at its revision and refuses at another one', async () => {
        await store.insertNode('host', 'web-01', {}, T0);
        await store.updateNode('host', 'web-01', { a: 1 }, T0 + 1);
        await expectRejection(
          store.deleteNode('host', 'web-01', 1),
          PreconditionFailedError,
          'Node host/web-01 is at revision 2, not 1',
        );
        expect((await store.getNode('host', 'web-01'))?.revision).toBe(2);
        await store.deleteNode('host', 'web-01', 2);
        expect(await store.getNode('host', 'web-01')).toBeUndefined();
      });

      it('treats deleting an absent node as a no-op', async () => {
        await store.deleteNode('host', 'nope');
        await store.deleteNode('host', 'nope', 3);
        await store.insertNode('vm', 'nope', {}, T0);
        await store.deleteNode('host', 'nope');
        expect(await store.getNode('vm', 'nope')).toBeDefined();
      });

      it('starts again at revision 1 after delete and insert', async () => {
        await store.insertNode('host', 'web-01', { a: 1 }, T0);
        await store.updateNode('host', 'web-01', { a: 2 }, T0 + 1);
        await store.deleteNode('host', 'web-01');
        const again = await store.insertNode('host', 'web-01', { a: 3 }, T0 + 2);
        expect(again.revision).toBe(1);
        expect(again.createdAt).toBe(T0 + 2);
      });
    });

    describe('observations', () => {
      beforeEach(async () => {
        await store.insertNode('host', 'web-01', { power: 'on' }, T0);
      });

      it('records what each provider observed without touching the revision', async () => {
        await store.putObservation('host', 'web-01', 'libvirt', { power: 'off' }, T0 + 10);
        await store.putObservation('host', 'web-01', 'netbox', null, T0 + 11);
        const node = await store.getNode('host', 'web-01');
        expect(node).toStrictEqual({
          kind: 'host',
          name: 'web-01',
          attrs: { power: 'on' },
          revision: 1,
          observed: {
            libvirt: { attrs: { power: 'off' }, at: T0 + 10 },
            netbox: { attrs: null, at: T0 + 11 },
          },
          createdAt: T0,
          updatedAt: T0,
        });
      });

      it('replaces a provider’s earlier observation', async () => {
        await store.putObservation('host', 'web-01', 'libvirt', { power: 'off' }, T0 + 10);
        await store.putObservation('host', 'web-01', 'libvirt', { power: 'on', hwspec: 'small' }, T0 + 20);
        const node = await store.getNode('host', 'web-01');
        expect(node?.observed).toStrictEqual({
          libvirt: { attrs: { power: 'on', hwspec: 'small' }, at: T0 + 20 },
        });
        expect(node?.revision).toBe(1);
      });

      it('keeps observations across updates and returns them from update and list', async () => {
        await store.putObservation('host', 'web-01', 'libvirt', { power: 'off' }, T0 + 10);
        const updated = await store.updateNode('host', 'web-01', { power: 'off' }, T0 + 20, 1);
        expect(updated.observed).toStrictEqual({ libvirt: { attrs: { power: 'off' }, at: T0 + 10 } });
        const page = await store.listNodes('host', { limit: 10 });
        expect(page.items[0]?.observed).toStrictEqual({ libvirt: { attrs: { power: 'off' }, at: T0 + 10 } });
      });

      it('needs an existing node', async () => {
        await expectRejection(
          store.putObservation('host', 'nope', 'libvirt', {}, T0),
          NotFoundError,
          'Node host/nope not found',
        );
      });

      it('forgets the observations of a deleted node', async () => {
        await store.putObservation('host', 'web-01', 'libvirt', { power: 'off' }, T0 + 10);
        await store.deleteNode('host', 'web-01');
        await store.insertNode('host', 'web-01', {}, T0 + 30);
        expect((await store.getNode('host', 'web-01'))?.observed).toStrictEqual({});
      });
    });

    describe('listNodes pagination', () => {
      it('returns an empty page without a cursor for an empty kind', async () => {
        const page = await store.listNodes('host', { limit: 10 });
        expect(page.items).toEqual([]);
        expect(page.next).toBeUndefined();
      });

      it('pages through every node once, in name order', async () => {
        const names = Array.from({ length: 25 }, (_, i) => `node-${String((i * 7) % 25).padStart(2, '0')}`);
        for (const n of names) await store.insertNode('host', n, { n }, T0);
        await store.insertNode('vm', 'node-00', {}, T0);
        const seen: string[] = [];
        const sizes: number[] = [];
        let cursor: string | undefined;
        for (let guard = 0; guard < 10; guard += 1) {
          const page = await store.listNodes(
            'host',
            cursor === undefined ? { limit: 7 } : { limit: 7, cursor },
          );
          seen.push(...namesOf(page.items));
          sizes.push(page.items.length);
          expect(page.items.every((node) => node.kind === 'host')).toBe(true);
          if (page.next === undefined) break;
          cursor = page.next;
        }
        expect(sizes).toEqual([7, 7, 7, 4]);
        expect(seen).toEqual([...names].sort());
      });

      it('gives no cursor after a last page that is exactly full', async () => {
        for (const n of ['a', 'b', 'c', 'd']) await store.insertNode('host', n, {}, T0);
        const first = await store.listNodes('host', { limit: 2 });
        expect(namesOf(first.items)).toEqual(['a', 'b']);
        expect(first.next).toBeDefined();
        const second = await store.listNodes('host', { limit: 2, cursor: first.next ?? '' });
        expect(namesOf(second.items)).toEqual(['c', 'd']);
        expect(second.next).toBeUndefined();
      });

      it('stays stable when nodes come and go between pages', async () => {
        for (const n of ['b', 'd', 'f', 'h', 'j']) await store.insertNode('host', n, {}, T0);
        const first = await store.listNodes('host', { limit: 2 });
        expect(namesOf(first.items)).toEqual(['b', 'd']);
        // Before the cursor (must not show up), the cursor's own node (gone), and after it (must show up).
        await store.insertNode('host', 'a', {}, T0);
        await store.insertNode('host', 'c', {}, T0);
        await store.deleteNode('host', 'd');
        await store.insertNode('host', 'e', {}, T0);
        const second = await store.listNodes('host', { limit: 2, cursor: first.next ?? '' });
        expect(namesOf(second.items)).toEqual(['e', 'f']);
        const third = await store.listNodes('host', { limit: 2, cursor: second.next ?? '' });
        expect(namesOf(third.items)).toEqual(['h', 'j']);
        expect(third.next).toBeUndefined();
      });

      it('refuses a cursor it did not make and a limit below 1', async () => {
        await expectRejection(
          store.listNodes('host', { limit: 5, cursor: '!!!' }),
          InputError,
          'Invalid cursor',
        );
        await expectRejection(
          store.listNodes('host', { limit: 0 }),
          InputError,
          'limit must be a positive integer, got 0',
        );
        await expectRejection(
          store.listNodes('host', { limit: 1.5 }),
          InputError,
          'limit must be a positive integer, got 1.5',
        );
      });
    });

    describe('listNodes filters', () => {
      beforeEach(async () => {
        for (const [n, attrs] of Object.entries(FILTER_HOSTS)) await store.insertNode('host', n, attrs, T0);
        await store.insertNode('vm', 'web-01', { datacenter: 'pek1' }, T0);
        await store.insertNode('subnet', 'net-a', { vlan: 100, cidr: '10.1.0.0/24' }, T0);
        await store.insertNode('subnet', 'net-b', { vlan: 200, cidr: '10.2.0.0/24' }, T0);
        // A node of another kind with a referenced name: a hop finds nodes of the named kind only.
        await store.insertNode('vm', 'net-b', { vlan: 100 }, T0);
      });

      const find = async (filter: Filter, kind = 'host'): Promise<string[]> =>
        namesOf((await store.listNodes(kind, { filter, limit: 100 })).items);

      it.each(FILTER_CASES)('%s', async (_title, filter, expected) => {
        expect(await find(filter)).toEqual(expected);
      });

      it('refuses a cidr filter without an IPv4 network, and a ref without a kind', async () => {
        await expectRejection(
          store.listNodes('host', {
            filter: { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.0/40' },
            limit: 10,
          }),
          InputError,
          'Filter "cidr" on "interfaces.ip" needs an IPv4 network such as 10.1.0.0/16',
        );
        await expectRejection(
          store.listNodes('host', {
            filter: { op: 'ref', field: 'subnet', kind: '', filter: { op: 'and', args: [] } },
            limit: 10,
          }),
          InputError,
          'Filter "ref" on "subnet" needs a kind',
        );
      });

      it('filters within the kind only', async () => {
        expect(await find({ op: 'eq', field: 'datacenter', value: 'pek1' }, 'vm')).toEqual(['web-01']);
        expect(await find({ op: 'eq', field: 'datacenter', value: 'sha2' }, 'vm')).toEqual([]);
      });

      it('pages through filtered results', async () => {
        const filter: Filter = { op: 'has', field: 'puppet_roles', value: 'base' };
        const first = await store.listNodes('host', { filter, limit: 2 });
        expect(namesOf(first.items)).toEqual(['db-01', 'web-01']);
        const second = await store.listNodes('host', { filter, limit: 2, cursor: first.next ?? '' });
        expect(namesOf(second.items)).toEqual(['web-02']);
        expect(second.next).toBeUndefined();
      });

      it.each([
        'Datacenter',
        'a..b',
        'a-b',
        '',
        '.a',
        'a.',
        '1a',
        'interfaces[0].ip',
        "name'; DROP TABLE nodes; --",
      ])('refuses the field %j', async (field) => {
        await expectRejection(
          store.listNodes('host', { filter: { op: 'exists', field }, limit: 10 }),
          InputError,
          `Invalid filter field ${JSON.stringify(field)}`,
        );
        expect(await find({ op: 'exists', field: 'name' })).toEqual(FILTER_ALL_HOSTS);
      });

      it('refuses a bad field anywhere in the tree', async () => {
        const filter: Filter = {
          op: 'or',
          args: [
            { op: 'eq', field: 'name', value: 'x' },
            { op: 'not', arg: { op: 'in', field: 'A', values: [] } },
          ],
        };
        await expectRejection(
          store.listNodes('host', { filter, limit: 10 }),
          InputError,
          'Invalid filter field "A"',
        );
      });

      it('refuses values it cannot compare', async () => {
        await expectRejection(
          store.listNodes('host', {
            filter: { op: 'eq', field: 'labels', value: { team: 'db' } },
            limit: 10,
          }),
          InputError,
          'Filter value for "labels" must be a string, number, boolean or null',
        );
        await expectRejection(
          store.listNodes('host', { filter: { op: 'in', field: 'rack', values: [3, [12]] }, limit: 10 }),
          InputError,
          'Filter value for "rack" must be a string, number, boolean or null',
        );
        await expectRejection(
          store.listNodes('host', { filter: { op: 'lt', field: 'enabled', value: true }, limit: 10 }),
          InputError,
          'Filter "lt" on "enabled" needs a number or a string',
        );
        await expectRejection(
          store.listNodes('host', { filter: { op: 'ge', field: 'rack', value: null }, limit: 10 }),
          InputError,
          'Filter "ge" on "rack" needs a number or a string',
        );
      });
    });

    describe('jobs', () => {
      it('fences job writes: a stale master cannot write after a newer one did', async () => {
        await store.createJob(job('job-f'));
        const first = await store.updateJob('job-f', { state: 'running' }, T0 + 1, '7');
        expect(first.fence).toBe('7');
        // Compared as integers, not as strings: "10" is newer than "9".
        const newer = await store.updateJob('job-f', { plan: plan('job-f') }, T0 + 2, '10');
        expect(newer.fence).toBe('10');
        await expectRejection(
          store.updateJob('job-f', { state: 'failed' }, T0 + 3, '9'),
          LeaseLostError,
          'Job job-f belongs to a newer master (fence 10 > 9)',
        );
        expect((await store.getJob('job-f'))?.state).toBe('running');
        const same = await store.updateJob('job-f', { state: 'succeeded' }, T0 + 4, '10');
        expect([same.state, same.fence]).toEqual(['succeeded', '10']);
        // An unfenced write (the web asking for a cancel) neither checks nor changes the fence.
        const unfenced = await store.updateJob(
          'job-f',
          { cancelRequested: { by: 'bob', at: T0 + 5 } },
          T0 + 5,
        );
        expect(unfenced.fence).toBe('10');
        await expectRejection(
          store.updateJob('job-f', {}, T0 + 6, 'x1'),
          InputError,
          'A fencing token must be a decimal integer, not "x1"',
        );
      });

      it('ends a job with its ended event and audit entry in one write, or not at all', async () => {
        await store.createJob(job('job-e'));
        await store.updateJob('job-e', { state: 'running' }, T0 + 1, '5');
        await store.appendEvent('job-e', 'round', { round: 1 }, T0 + 2);
        const audit = {
          at: T0 + 4,
          actor: 'dev',
          action: 'patch:succeeded',
          kind: 'host',
          name: 'web-01',
          jobId: 'job-e',
          before: { power: 'off' },
          after: { power: 'on' },
        };
        const ending = { event: { type: 'ended', data: { state: 'succeeded' } }, audit };
        // A stale master ends nothing: no state, no event, no audit.
        await store.updateJob('job-e', {}, T0 + 2, '6');
        await expectRejection(
          store.endJob('job-e', { state: 'succeeded', endedAt: T0 + 3 }, T0 + 3, ending, '5'),
          LeaseLostError,
          'Job job-e belongs to a newer master (fence 6 > 5)',
        );
        expect((await store.getJob('job-e'))?.state).toBe('running');
        expect((await store.listEvents('job-e', 0)).map((e) => e.type)).toEqual(['round']);
        expect(await store.listAudit({ kind: 'host', name: 'web-01', limit: 10 })).toEqual({ items: [] });
        const ended = await store.endJob(
          'job-e',
          { state: 'succeeded', endedAt: T0 + 4 },
          T0 + 4,
          ending,
          '6',
        );
        expect([ended.job.state, ended.job.endedAt, ended.job.fence]).toEqual(['succeeded', T0 + 4, '6']);
        expect(ended.event).toEqual({
          jobId: 'job-e',
          seq: 2,
          at: T0 + 4,
          type: 'ended',
          data: { state: 'succeeded' },
        });
        expect(await store.listEvents('job-e', 1)).toEqual([ended.event]);
        expect(await store.listAudit({ kind: 'host', name: 'web-01', limit: 10 })).toEqual({
          items: [audit],
        });
        await expectRejection(
          store.endJob('job-none', {}, T0 + 5, { event: { type: 'ended', data: {} } }),
          NotFoundError,
          'Job job-none not found',
        );
      });

      it('writes a step of a job with its event in one write, or not at all', async () => {
        await store.createJob(job('job-s'));
        await store.updateJob('job-s', { state: 'running' }, T0 + 1, '5');
        await store.updateJob('job-s', {}, T0 + 2, '6');
        // A stale master writes no step: no patch, no event.
        await expectRejection(
          store.stepJob('job-s', { resumes: 1 }, T0 + 3, { type: 'task', data: { n: 1 } }, '5'),
          LeaseLostError,
          'Job job-s belongs to a newer master (fence 6 > 5)',
        );
        expect((await store.getJob('job-s'))?.resumes).toBeUndefined();
        expect(await store.listEvents('job-s', 0)).toEqual([]);
        const step = await store.stepJob(
          'job-s',
          { resumes: 2 },
          T0 + 4,
          { type: 'task', data: { n: 2 } },
          '6',
        );
        expect([step.job.state, step.job.resumes, step.job.updatedAt]).toEqual(['running', 2, T0 + 4]);
        expect(step.event).toEqual({ jobId: 'job-s', seq: 1, at: T0 + 4, type: 'task', data: { n: 2 } });
        expect(await store.listEvents('job-s', 0)).toEqual([step.event]);
        expect(await store.getJob('job-s')).toEqual(step.job);
        await expectRejection(
          store.stepJob('job-none', {}, T0 + 5, { type: 'task', data: {} }),
          NotFoundError,
          'Job job-none not found',
        );
      });

      it('creates a job and reads it back whole', async () => {
        const record = job('job-1', {
          before: null,
          action: 'create',
          state: 'running',
          startedAt: T0 + 1,
          plan: plan('job-1'),
          cancelRequested: { by: 'alice', at: T0 + 2 },
        });
        await store.createJob(record);
        expect(await store.getJob('job-1')).toStrictEqual(record);
        expect(await store.getJob('job-2')).toBeUndefined();
      });

      it('refuses a job id that exists', async () => {
        await store.createJob(job('job-1'));
        await expectRejection(
          store.createJob(job('job-1', { name: 'other' })),
          ConflictError,
          'Job job-1 already exists',
        );
        expect((await store.getJob('job-1'))?.name).toBe('web-01');
      });

      it('patches only the given fields and stamps updatedAt', async () => {
        const record = job('job-1');
        await store.createJob(record);
        const running = await store.updateJob('job-1', { state: 'running', startedAt: T0 + 5 }, T0 + 5);
        expect(running).toStrictEqual({ ...record, state: 'running', startedAt: T0 + 5, updatedAt: T0 + 5 });
        const planned = await store.updateJob('job-1', { plan: plan('job-1') }, T0 + 6);
        expect(planned).toStrictEqual({ ...running, plan: plan('job-1'), updatedAt: T0 + 6 });
        const failed = await store.updateJob(
          'job-1',
          {
            state: 'failed',
            endedAt: T0 + 9,
            failure: { code: 'NOT_CONVERGED', message: 'no', providers: ['ipam'] },
          },
          T0 + 9,
        );
        expect(failed).toStrictEqual({
          ...planned,
          state: 'failed',
          endedAt: T0 + 9,
          failure: { code: 'NOT_CONVERGED', message: 'no', providers: ['ipam'] },
          updatedAt: T0 + 9,
        });
        const touched = await store.updateJob('job-1', {}, T0 + 10);
        expect(touched).toStrictEqual({ ...failed, updatedAt: T0 + 10 });
        expect(await store.getJob('job-1')).toStrictEqual(touched);
      });

      it('refuses to update a missing job', async () => {
        await expectRejection(
          store.updateJob('nope', { state: 'running' }, T0),
          NotFoundError,
          'Job nope not found',
        );
      });

      describe('listJobs', () => {
        // Newest first: job-e, then job-d and job-c (same time, higher id first), job-b, job-a.
        const records: readonly JobRecord[] = [
          job('job-c', { createdAt: T0 + 3, state: 'running' }),
          job('job-a', { createdAt: T0 + 1, state: 'succeeded' }),
          job('job-e', { createdAt: T0 + 5, kind: 'vm', name: 'vm-01' }),
          job('job-b', { createdAt: T0 + 2, state: 'failed', name: 'web-02' }),
          job('job-d', { createdAt: T0 + 3, state: 'running', name: 'web-02' }),
        ];

        beforeEach(async () => {
          for (const record of records) await store.createJob(record);
        });

        const ids = async (options: Parameters<Store['listJobs']>[0]): Promise<string[]> =>
          (await store.listJobs(options)).items.map((item) => item.id);

        it('lists newest first, ties by id', async () => {
          const page = await store.listJobs({ limit: 10 });
          expect(page.items.map((item) => item.id)).toEqual(['job-e', 'job-d', 'job-c', 'job-b', 'job-a']);
          expect(page.items[0]).toStrictEqual(records[2]);
          expect(page.next).toBeUndefined();
        });

        it('pages with a cursor', async () => {
          const seen: string[] = [];
          let page = await store.listJobs({ limit: 2 });
          seen.push(...page.items.map((item) => item.id));
          while (page.next !== undefined) {
            page = await store.listJobs({ limit: 2, cursor: page.next });
            seen.push(...page.items.map((item) => item.id));
          }
          expect(seen).toEqual(['job-e', 'job-d', 'job-c', 'job-b', 'job-a']);
        });

        it('keeps its place when newer jobs arrive', async () => {
          const first = await store.listJobs({ limit: 2 });
          await store.createJob(job('job-f', { createdAt: T0 + 9 }));
          expect(await ids({ limit: 10, cursor: first.next ?? '' })).toEqual(['job-c', 'job-b', 'job-a']);
        });

        it('filters by states, kind and name', async () => {
          expect(await ids({ limit: 10, states: ['running'] })).toEqual(['job-d', 'job-c']);
          expect(await ids({ limit: 10, states: ['failed', 'succeeded'] })).toEqual(['job-b', 'job-a']);
          expect(await ids({ limit: 10, states: [] })).toEqual([]);
          expect(await ids({ limit: 10, kind: 'vm' })).toEqual(['job-e']);
          expect(await ids({ limit: 10, kind: 'host', name: 'web-02' })).toEqual(['job-d', 'job-b']);
          expect(await ids({ limit: 10, name: 'web-02', states: ['running'] })).toEqual(['job-d']);
          expect(await ids({ limit: 1, kind: 'host', states: ['running', 'failed'] })).toEqual(['job-d']);
        });

        it('pages through a filter', async () => {
          const first = await store.listJobs({ limit: 1, kind: 'host', name: 'web-02' });
          expect(first.items.map((item) => item.id)).toEqual(['job-d']);
          const second = await store.listJobs({
            limit: 1,
            kind: 'host',
            name: 'web-02',
            cursor: first.next ?? '',
          });
          expect(second.items.map((item) => item.id)).toEqual(['job-b']);
          expect(second.next).toBeUndefined();
        });

        it('sees the state an update gave a job', async () => {
          await store.updateJob('job-a', { state: 'running' }, T0 + 20);
          expect(await ids({ limit: 10, states: ['running'] })).toEqual(['job-d', 'job-c', 'job-a']);
          expect(await ids({ limit: 10, states: ['succeeded'] })).toEqual([]);
        });

        it('refuses a bad cursor or limit', async () => {
          await expectRejection(store.listJobs({ limit: 2, cursor: '!!!' }), InputError, 'Invalid cursor');
          await expectRejection(
            store.listJobs({ limit: -1 }),
            InputError,
            'limit must be a positive integer, got -1',
          );
        });
      });
    });

    describe('job events', () => {
      beforeEach(async () => {
        await store.createJob(job('job-1'));
        await store.createJob(job('job-2'));
      });

      it('numbers events from 1 per job', async () => {
        expect(await store.appendEvent('job-1', 'accepted', { by: 'dev' }, T0)).toStrictEqual({
          jobId: 'job-1',
          seq: 1,
          at: T0,
          type: 'accepted',
          data: { by: 'dev' },
        });
        expect((await store.appendEvent('job-1', 'round', { n: 1 }, T0 + 1)).seq).toBe(2);
        expect((await store.appendEvent('job-2', 'accepted', {}, T0 + 2)).seq).toBe(1);
        expect((await store.appendEvent('job-1', 'ended', { ok: true, list: [1, null] }, T0 + 3)).seq).toBe(
          3,
        );
      });

      it('lists events after a sequence number, in order', async () => {
        await store.appendEvent('job-1', 'a', { i: 1 }, T0);
        await store.appendEvent('job-2', 'x', {}, T0);
        await store.appendEvent('job-1', 'b', { i: 2 }, T0 + 1);
        await store.appendEvent('job-1', 'c', { i: 3, nested: { deep: ['x'] } }, T0 + 2);
        expect(await store.listEvents('job-1', 0)).toStrictEqual([
          { jobId: 'job-1', seq: 1, at: T0, type: 'a', data: { i: 1 } },
          { jobId: 'job-1', seq: 2, at: T0 + 1, type: 'b', data: { i: 2 } },
          { jobId: 'job-1', seq: 3, at: T0 + 2, type: 'c', data: { i: 3, nested: { deep: ['x'] } } },
        ]);
        expect((await store.listEvents('job-1', 2)).map((e) => e.seq)).toEqual([3]);
        expect(await store.listEvents('job-1', 3)).toEqual([]);
        expect(await store.listEvents('nope', 0)).toEqual([]);
      });

      it('refuses events for a missing job', async () => {
        await expectRejection(store.appendEvent('nope', 'a', {}, T0), NotFoundError, 'Job nope not found');
      });

      it('gives concurrent appends distinct, gapless numbers', async () => {
        const events = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.appendEvent('job-1', 'tick', { i }, T0 + i)),
        );
        expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
        const listed = await store.listEvents('job-1', 0);
        expect(listed.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        for (const event of events) expect(listed[event.seq - 1]?.data).toEqual(event.data);
      });
    });

    describe('audit', () => {
      const first: AuditEntry = {
        at: T0 + 1,
        actor: 'alice',
        action: 'patch',
        kind: 'host',
        name: 'web-01',
        jobId: 'job-1',
        before: { power: 'off' },
        after: { power: 'on' },
      };
      const second: AuditEntry = {
        at: T0 + 3,
        actor: 'bob',
        action: 'delete',
        kind: 'host',
        name: 'web-02',
        before: { power: 'on' },
        after: null,
      };
      const third: AuditEntry = {
        at: T0 + 2,
        actor: 'tok-1',
        action: 'create',
        kind: 'vm',
        name: 'web-01',
        before: null,
        after: { hwspec: 'small' },
      };

      beforeEach(async () => {
        for (const entry of [first, second, third]) await store.appendAudit(entry);
      });

      it('lists entries newest first', async () => {
        const page = await store.listAudit({ limit: 10 });
        expect(page).toStrictEqual({ items: [second, third, first] });
        expect('jobId' in (page.items[0] ?? {})).toBe(false);
        expect((await store.listAudit({ limit: 2 })).items).toStrictEqual([second, third]);
      });

      it('lists the entries of one node, or one kind', async () => {
        expect((await store.listAudit({ kind: 'host', name: 'web-01', limit: 10 })).items).toStrictEqual([
          first,
        ]);
        expect((await store.listAudit({ kind: 'host', limit: 10 })).items).toStrictEqual([second, first]);
        expect(await store.listAudit({ kind: 'host', name: 'nope', limit: 10 })).toStrictEqual({ items: [] });
      });

      it('lists the entries of one actor or one job, every filter applying together', async () => {
        expect((await store.listAudit({ actor: 'bob', limit: 10 })).items).toStrictEqual([second]);
        expect((await store.listAudit({ jobId: 'job-1', limit: 10 })).items).toStrictEqual([first]);
        expect(
          (await store.listAudit({ actor: 'alice', jobId: 'job-1', kind: 'host', limit: 10 })).items,
        ).toStrictEqual([first]);
        expect((await store.listAudit({ actor: 'bob', jobId: 'job-1', limit: 10 })).items).toStrictEqual([]);
        expect((await store.listAudit({ actor: 'nobody', limit: 10 })).items).toStrictEqual([]);
      });

      it('pages with the cursor of the previous page, entries of one millisecond included', async () => {
        const sameMs: AuditEntry[] = [1, 2, 3].map((i) => ({ ...second, name: `same-${i}` }));
        for (const entry of sameMs) await store.appendAudit(entry);
        const seen: AuditEntry[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listAudit({ limit: 2, ...(cursor === undefined ? {} : { cursor }) });
          seen.push(...page.items);
          cursor = page.next;
          pages += 1;
        } while (cursor !== undefined);
        expect(seen).toStrictEqual([...[...sameMs].reverse(), second, third, first]);
        expect(pages).toBe(3);
        const hosts = await store.listAudit({ kind: 'host', limit: 1 });
        expect(hosts.items).toStrictEqual([sameMs[2]]);
        const rest = await store.listAudit({ kind: 'host', limit: 10, cursor: hosts.next as string });
        expect(rest).toStrictEqual({ items: [sameMs[1], sameMs[0], second, first] });
      });

      it('refuses a cursor it did not make', async () => {
        await expectRejection(
          store.listAudit({ limit: 2, cursor: 'garbage!' }),
          InputError,
          'Invalid cursor',
        );
      });

      it('puts the later of two entries at the same time first', async () => {
        const again: AuditEntry = { ...first, actor: 'carol' };
        await store.appendAudit(again);
        expect((await store.listAudit({ kind: 'host', name: 'web-01', limit: 10 })).items).toStrictEqual([
          again,
          first,
        ]);
      });
    });

    describe('tokens', () => {
      const admin: TokenRecord = {
        id: 'tok-1',
        hash: 'h1',
        role: 'admin',
        description: 'ops laptop',
        createdAt: T0,
        expiresAt: T0 + 86_400_000,
      };
      const reader: TokenRecord = { id: 'tok-2', hash: 'h2', role: 'reader', createdAt: T0 + 1 };

      it('stores tokens and finds them by hash', async () => {
        await store.putToken(admin);
        await store.putToken(reader);
        expect(await store.findToken('h1')).toStrictEqual(admin);
        expect(await store.findToken('h2')).toStrictEqual(reader);
        expect(await store.findToken('tok-1')).toBeUndefined();
        expect(await store.findToken('nope')).toBeUndefined();
        const listed = await store.listTokens();
        expect([...listed].sort((a, b) => a.id.localeCompare(b.id))).toStrictEqual([admin, reader]);
      });

      it('replaces a token with the same id', async () => {
        await store.putToken(admin);
        const renewed: TokenRecord = { id: 'tok-1', hash: 'h9', role: 'operator', createdAt: T0 + 5 };
        await store.putToken(renewed);
        expect(await store.findToken('h1')).toBeUndefined();
        expect(await store.findToken('h9')).toStrictEqual(renewed);
        expect(await store.listTokens()).toStrictEqual([renewed]);
      });

      it('refuses a second token with the same hash', async () => {
        await store.putToken(admin);
        await expectRejection(
          store.putToken({ ...reader, hash: 'h1' }),
          ConflictError,
          'Another token has the same hash',
        );
        expect(await store.listTokens()).toStrictEqual([admin]);
      });

      it('deletes tokens by id; deleting an absent one is a no-op', async () => {
        await store.putToken(admin);
        await store.putToken(reader);
        await store.deleteToken('tok-1');
        await store.deleteToken('tok-1');
        expect(await store.findToken('h1')).toBeUndefined();
        expect(await store.listTokens()).toStrictEqual([reader]);
      });
    });

    describe('reservations', () => {
      it('gives a key to its first owner only, idempotently', async () => {
        expect(await store.reserve('10.1.0.0/24', '10.1.0.5', 'host/web-01')).toBe(true);
        expect(await store.reserve('10.1.0.0/24', '10.1.0.5', 'host/web-01')).toBe(true);
        expect(await store.reserve('10.1.0.0/24', '10.1.0.5', 'host/web-02')).toBe(false);
        expect(await store.reserve('10.2.0.0/24', '10.1.0.5', 'host/web-02')).toBe(true);
        expect(await store.listReservations('10.1.0.0/24')).toStrictEqual([
          { key: '10.1.0.5', owner: 'host/web-01' },
        ]);
        expect(await store.listReservations('10.2.0.0/24')).toStrictEqual([
          { key: '10.1.0.5', owner: 'host/web-02' },
        ]);
        expect(await store.listReservations('nope')).toEqual([]);
      });

      it('releases one key or all keys of an owner', async () => {
        const ns = 'subnet/a';
        for (const key of ['k1', 'k2', 'k3']) await store.reserve(ns, key, 'o1');
        await store.reserve(ns, 'k4', 'o2');
        await store.reserve('subnet/b', 'k1', 'o1');
        await store.release(ns, 'o1', 'k2');
        expect(await store.listReservations(ns)).toStrictEqual([
          { key: 'k1', owner: 'o1' },
          { key: 'k3', owner: 'o1' },
          { key: 'k4', owner: 'o2' },
        ]);
        expect(await store.listReservations(ns, 'o1')).toStrictEqual([
          { key: 'k1', owner: 'o1' },
          { key: 'k3', owner: 'o1' },
        ]);
        expect(await store.listReservations(ns, 'o3')).toEqual([]);
        await store.release(ns, 'o2', 'k1');
        await store.release(ns, 'o1', 'k9');
        expect(await store.listReservations(ns)).toHaveLength(3);
        await store.release(ns, 'o1');
        expect(await store.listReservations(ns)).toStrictEqual([{ key: 'k4', owner: 'o2' }]);
        expect(await store.listReservations('subnet/b')).toStrictEqual([{ key: 'k1', owner: 'o1' }]);
        await store.release(ns, 'nobody');
        expect(await store.reserve(ns, 'k1', 'o2')).toBe(true);
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of 50 concurrent updates at the same revision win', async () => {
        await store.insertNode('host', 'web-01', { n: -1 }, T0);
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, (_, i) => store.updateNode('host', 'web-01', { n: i }, T0 + 1 + i, 1)),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(49);
        for (const result of lost) {
          expect(result.reason).toBeInstanceOf(PreconditionFailedError);
          expect((result.reason as Error).message).toBe('Node host/web-01 is at revision 2, not 1');
        }
        const winner = won[0]?.value;
        expect(winner?.revision).toBe(2);
        expect(await store.getNode('host', 'web-01')).toStrictEqual(winner);
      });

      it('lets exactly one of 20 concurrent inserts of one node win', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => store.insertNode('host', 'web-01', { n: i }, T0)),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') {
            expect(result.reason).toBeInstanceOf(ConflictError);
            expect((result.reason as Error).message).toBe('Node host/web-01 already exists');
          }
        }
      });

      it('never gives one key to two of 100 concurrent owners', async () => {
        const ns = 'subnet/race';
        const keys = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];
        const attempts = Array.from({ length: 100 }, (_, i) => ({
          owner: `owner-${i}`,
          key: keys[i % keys.length] ?? '',
        }));
        const results = await Promise.all(attempts.map((a) => store.reserve(ns, a.key, a.owner)));
        const winners = new Map<string, string[]>();
        attempts.forEach((a, i) => {
          if (results[i] === true) winners.set(a.key, [...(winners.get(a.key) ?? []), a.owner]);
        });
        expect([...winners.keys()].sort()).toEqual(keys);
        for (const owners of winners.values()) expect(owners).toHaveLength(1);
        const listed = await store.listReservations(ns);
        expect(listed).toStrictEqual(keys.map((key) => ({ key, owner: winners.get(key)?.[0] })));
      });

      it('hands out distinct keys to owners that each take the first free one', async () => {
        const ns = 'subnet/alloc';
        const keys = Array.from({ length: 10 }, (_, i) => `10.0.1.${i + 1}`);
        const allocate = async (owner: string): Promise<string | undefined> => {
          for (const key of keys) if (await store.reserve(ns, key, owner)) return key;
          return undefined;
        };
        const got = await Promise.all(Array.from({ length: 30 }, (_, i) => allocate(`owner-${i}`)));
        const taken = got.filter((key): key is string => key !== undefined);
        expect([...taken].sort()).toEqual([...keys].sort());
        expect(new Set(taken).size).toBe(taken.length);
        expect(await store.listReservations(ns)).toHaveLength(keys.length);
      });
    });

    describeHookStoreCases(() => store);

    describe('across instances and faults', () => {
      const others: Store[] = [];
      afterEach(async () => {
        for (const other of others.splice(0)) await other.close();
      });

      const second = async (): Promise<Store> => {
        if (harness?.reopen === undefined)
          throw new Error('secondInstance is declared but the harness has no reopen');
        const other = await harness.reopen();
        others.push(other);
        return other;
      };

      itWith(
        capabilities.freshDatabase,
        'applies the migrations once when several instances open a fresh database together',
        async () => {
          if (typeof capabilities.freshDatabase === 'string') return;
          const target = await capabilities.freshDatabase();
          try {
            const opened = await Promise.allSettled([target.open(), target.open(), target.open()]);
            for (const result of opened) if (result.status === 'fulfilled') others.push(result.value);
            expect(opened.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
            const applied = await target.appliedMigrations();
            expect(applied.length).toBeGreaterThan(0);
            expect(applied).toEqual(Array.from({ length: applied.length }, (_, i) => i + 1));
            const [a, b] = others;
            await a?.insertNode('host', 'web-01', { a: 1 }, T0);
            expect((await b?.getNode('host', 'web-01'))?.attrs).toEqual({ a: 1 });
            // Opening again applies nothing more.
            others.push(await target.open());
            expect(await target.appliedMigrations()).toEqual(applied);
          } finally {
            for (const other of others.splice(0)) await other.close();
            await target.cleanup();
          }
        },
      );

      itWith(
        capabilities.secondInstance,
        'gives each key exactly one owner when two instances race for the same keys',
        async () => {
          const other = await second();
          const ns = 'subnet/two';
          const keys = ['10.0.2.1', '10.0.2.2', '10.0.2.3', '10.0.2.4'];
          const attempts = Array.from({ length: 80 }, (_, i) => ({
            via: i % 2 === 0 ? store : other,
            owner: `owner-${i}`,
            key: keys[i % keys.length] ?? '',
          }));
          const results = await Promise.all(attempts.map((a) => a.via.reserve(ns, a.key, a.owner)));
          const winners = new Map<string, string[]>();
          attempts.forEach((a, i) => {
            if (results[i] === true) winners.set(a.key, [...(winners.get(a.key) ?? []), a.owner]);
          });
          expect([...winners.keys()].sort()).toEqual(keys);
          for (const owners of winners.values()) expect(owners).toHaveLength(1);
          const expected = keys.map((key) => ({ key, owner: winners.get(key)?.[0] }));
          expect(await store.listReservations(ns)).toStrictEqual(expected);
          expect(await other.listReservations(ns)).toStrictEqual(expected);
          // Each instance sees the other's reservations: a loser stays a loser on either.
          const loser = attempts.find((a, i) => results[i] === false);
          expect(await other.reserve(ns, loser?.key ?? '', loser?.owner ?? '')).toBe(false);
          expect(await store.reserve(ns, loser?.key ?? '', loser?.owner ?? '')).toBe(false);
        },
      );

      it('writes nothing for a job write with a stale fencing token', async () => {
        await store.createJob(job('job-s'));
        await store.appendEvent('job-s', 'accepted', {}, T0);
        const current = await store.updateJob('job-s', { state: 'running', startedAt: T0 + 1 }, T0 + 1, '20');
        await expectRejection(
          store.updateJob(
            'job-s',
            {
              state: 'failed',
              endedAt: T0 + 2,
              plan: plan('job-s'),
              failure: { code: 'NOT_CONVERGED', message: 'stale', providers: [] },
              cancelRequested: { by: 'old', at: T0 + 2 },
            },
            T0 + 2,
            '19',
          ),
          LeaseLostError,
          'Job job-s belongs to a newer master (fence 20 > 19)',
        );
        expect(await store.getJob('job-s')).toStrictEqual(current);
        expect(await store.listJobs({ limit: 10, states: ['failed'] })).toEqual({ items: [] });
        expect((await store.listEvents('job-s', 0)).map((e) => e.type)).toEqual(['accepted']);
      });

      itWith(
        capabilities.secondInstance,
        'refuses a stale master on one instance after a newer one wrote through another',
        async () => {
          const other = await second();
          await store.createJob(job('job-m'));
          await store.updateJob('job-m', { state: 'running' }, T0 + 1, '3');
          const newer = await other.updateJob('job-m', { plan: plan('job-m') }, T0 + 2, '4');
          await expectRejection(
            store.updateJob('job-m', { state: 'failed' }, T0 + 3, '3'),
            LeaseLostError,
            'Job job-m belongs to a newer master (fence 4 > 3)',
          );
          expect(await store.getJob('job-m')).toStrictEqual(newer);
          expect(await other.getJob('job-m')).toStrictEqual(newer);
        },
      );

      itWith(capabilities.cut, 'leaves no half-write when its connections are cut mid-write', async () => {
        if (harness?.cut === undefined) throw new Error('cut is declared but the harness has no cut');
        await store.createJob(job('job-x'));
        const writes = Array.from({ length: 30 }, (_, i) =>
          i % 3 === 2
            ? store.updateJob('job-x', { plan: { ...plan('job-x'), version: i } }, T0 + i)
            : store.appendEvent('job-x', 'tick', { i }, T0 + i),
        );
        const cutting = harness.cut();
        const settled = await Promise.allSettled(writes);
        await cutting;
        for (const result of settled) {
          if (result.status === 'rejected') {
            // Connection trouble only, and retryable: never a half-done write reported as something else.
            expect(result.reason).toMatchObject({ retryable: true });
          }
        }
        // The store recovers by itself: retry until a write goes through (a pooled connection may still be dead).
        let last: JobEvent | undefined;
        for (let attempt = 0; attempt < 50 && last === undefined; attempt += 1) {
          try {
            last = await store.appendEvent('job-x', 'after', {}, T0 + 100);
          } catch (error) {
            expect(error).toMatchObject({ retryable: true });
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
        expect(last).toBeDefined();
        const events = await store.listEvents('job-x', 0);
        // Gapless numbers: no number was taken by a write that did not land, and no event is missing its number.
        expect(events.map((e) => e.seq)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
        expect(events[events.length - 1]).toStrictEqual(last);
        const ticks = events.filter((e) => e.type === 'tick').map((e) => e.data['i'] as number);
        expect(new Set(ticks).size).toBe(ticks.length);
        settled.forEach((result, i) => {
          if (i % 3 !== 2 && result.status === 'fulfilled') expect(ticks).toContain(i);
        });
        const record = await store.getJob('job-x');
        const version = record?.plan?.version;
        if (version !== undefined) expect(version % 3).toBe(2);
        expect(record?.state).toBe('queued');
      });
    });

    it('closes, more than once', async () => {
      await store.close();
      await store.close();
    });
  });
}
