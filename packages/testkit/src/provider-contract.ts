/**
 * The contract every provider must honour (DESIGN.md §6, the `NodeProvider` doc comment), run by each plugin against
 * its real backend or test server. For one host per test the suite checks:
 * - every update id of a task is answered exactly once (accepted, deferred or rejected), on create and on delete;
 * - explain answers like apply and changes nothing in the backend (no write, nothing held);
 * - a task applied again (a crash after the backend write) converges with no backend write;
 * - delete removes what the provider made, and a delete applied again writes nothing;
 * - a transient backend fault surfaces as a retryable `ConsortiumError`, and the task succeeds once it is gone.
 * Tests that need something the subject cannot give (a fault to inject, a backend that holds state) are skipped
 * with a title that says why.
 */
import type {
  ApplyOutcome,
  Attrs,
  JsonValue,
  ListSemantics,
  NodeProvider,
  Path,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
  UpdateRequest,
} from '@consortium/core';
import { applyUpdate, ConsortiumError, parsePath, silentLogger } from '@consortium/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** One host's create, as the planner would hand it to the provider. */
export interface ProviderCreate {
  /** The node as the round starts (with `present: true` and whatever other providers already reported). */
  readonly node: Attrs;
  /** Updates of the provider's own paths that make it create something in its backend. */
  readonly updates: readonly UpdateRequest[];
}

/** A provider wired to a backend for one test, and what the suite may ask of that backend. */
export interface ProviderContractSubject {
  readonly provider: NodeProvider;
  /** The create of host `name`; each test uses a name of its own. */
  create(name: string): ProviderCreate;
  /** How many writes the backend has received so far (the test servers count calls). */
  writes(): Promise<number>;
  /**
   * What the backend holds for host `name` (a VM, a system, reservations), or null when nothing; compared before
   * and after explain and delete. Absent for providers whose backend keeps nothing of their own (inventory).
   */
  holds?(name: string): Promise<JsonValue | null>;
  /** Makes the backend's next calls fail with a transient fault (a 503, a refused connection) until `clearFaults`. */
  injectTransientFault?(): Promise<void>;
  /** Ends injected faults. */
  clearFaults?(): Promise<void>;
  /** The list semantics of the kind's attributes (default: `interfaces` is a map keyed by `name`). */
  listSemanticsAt?(path: Path): ListSemantics | undefined;
  /** Releases what the subject opened and removes what it made. */
  cleanup(): Promise<void>;
}

/** Makes a fresh subject for one test. */
export type MakeProviderSubject = () => Promise<ProviderContractSubject>;

const defaultSemantics = (path: Path): ListSemantics | undefined => {
  const [head, ...rest] = path;
  return rest.length === 0 && head !== undefined && 'prop' in head && head.prop === 'interfaces'
    ? { type: 'map', key: 'name' }
    : undefined;
};

const context = (): ProviderContext => ({
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '1',
  now: () => Date.now(),
});

/** Every id an outcome answers, in order, with repeats kept. */
export function answeredIds(outcome: ApplyOutcome): string[] {
  return [
    ...(outcome.accepted ?? []),
    ...(outcome.deferred ?? []).map((d) => d.id),
    ...(outcome.rejected ?? []).map((r) => r.id),
  ];
}

/** Runs the provider contract against subjects from `make`. */
export function describeProviderContract(label: string, make: MakeProviderSubject): void {
  describe(`provider contract: ${label}`, () => {
    let subject: ProviderContractSubject;
    let hosts = 0;
    let jobs = 0;
    const prefix = `pc${String(process.pid % 1000)}-`;

    beforeEach(async () => {
      subject = await make();
    });

    afterEach(async () => {
      await subject.clearFaults?.();
      await subject.cleanup();
    });

    const host = (): string => `${prefix}${String(++hosts)}`;

    function task(name: string, node: Attrs, updates: readonly UpdateRequest[]): ProviderTask {
      const jobId = `contract-${String(++jobs)}`;
      return {
        id: `${jobId}/r1/${subject.provider.name}`,
        jobId,
        round: 1,
        attempt: 1,
        provider: subject.provider.name,
        kind: subject.provider.kind,
        name,
        node,
        updates: updates.map((u, i): ProposedUpdate => ({
          ...u,
          id: `${jobId}-u${String(i + 1)}`,
          origin: 'user',
        })),
      };
    }

    /** The node once the accepted updates and the provider's reports are merged, as the master would store it. */
    function after(t: ProviderTask, outcome: ApplyOutcome): Attrs {
      const source = {
        listSemanticsAt: (path: Path) => subject.listSemanticsAt?.(path) ?? defaultSemantics(path),
      };
      const accepted = new Set(outcome.accepted ?? []);
      let node = t.node;
      for (const u of t.updates) {
        if (accepted.has(u.id)) node = applyUpdate(node, parsePath(u.path), u.op, u.value, source);
      }
      for (const [path, value] of Object.entries(outcome.set ?? {}))
        node = applyUpdate(node, parsePath(path), 'set', value, source);
      for (const path of outcome.unset ?? [])
        node = applyUpdate(node, parsePath(path), 'unset', undefined, source);
      return node;
    }

    /** The delete task of a node as it stands: every update a sync of `present`, which the node no longer has. */
    function deletion(name: string, node: Attrs): ProviderTask {
      const rest = Object.fromEntries(Object.entries(node).filter(([key]) => key !== 'present'));
      return task(name, rest, [{ path: 'present', op: 'sync' }]);
    }

    /** Expects every update id of `t` answered exactly once, and nothing else. */
    function expectAnswered(t: ProviderTask, outcome: ApplyOutcome): void {
      expect([...answeredIds(outcome)].sort()).toEqual(t.updates.map((u) => u.id).sort());
    }

    /** Applies the create of a fresh host and expects it accepted whole. */
    async function created(): Promise<{ name: string; t: ProviderTask; outcome: ApplyOutcome }> {
      const name = host();
      const { node, updates } = subject.create(name);
      const t = task(name, node, updates);
      const outcome = await subject.provider.apply(t, context());
      expectAnswered(t, outcome);
      expect(outcome.rejected ?? []).toEqual([]);
      expect(outcome.deferred ?? []).toEqual([]);
      return { name, t, outcome };
    }

    it('answers every update id exactly once, on create and on delete', async () => {
      const { name, t, outcome } = await created();
      const removal = deletion(name, after(t, outcome));
      expectAnswered(removal, await subject.provider.apply(removal, context()));
    });

    it('explains like it applies, and explain writes nothing', async () => {
      const name = host();
      const { node, updates } = subject.create(name);
      const t = task(name, node, updates);
      const before = await subject.writes();
      const explained = await subject.provider.explain(t, context());
      expectAnswered(t, explained);
      expect(await subject.writes()).toBe(before);
      if (subject.holds !== undefined) expect(await subject.holds(name)).toBeNull();
      if (subject.provider.observe !== undefined) {
        expect(await subject.provider.observe({ kind: t.kind, name }, context())).toBeNull();
      }
      const applied = await subject.provider.apply(t, context());
      expect(applied.accepted).toEqual(explained.accepted);
      expect((applied.operations ?? []).map((o) => o.action)).toEqual(
        (explained.operations ?? []).map((o) => o.action),
      );
      // Explaining the delete of what now exists writes nothing either.
      const written = await subject.writes();
      const held = subject.holds === undefined ? null : await subject.holds(name);
      expectAnswered(t, applied);
      const removal = deletion(name, after(t, applied));
      expectAnswered(removal, await subject.provider.explain(removal, context()));
      expect(await subject.writes()).toBe(written);
      if (subject.holds !== undefined) expect(await subject.holds(name)).toEqual(held);
    });

    it('converges with no backend write when a task is applied again', async () => {
      const { name, t, outcome } = await created();
      const written = await subject.writes();
      // The same task again, as after a crash between the backend write and the result.
      const again = await subject.provider.apply(t, context());
      expectAnswered(t, again);
      expect(again.accepted).toEqual(outcome.accepted);
      expect(await subject.writes()).toBe(written);
      // And once the master stored what it reported.
      const settled = task(name, after(t, outcome), t.updates);
      expectAnswered(settled, await subject.provider.apply(settled, context()));
      expect(await subject.writes()).toBe(written);
    });

    it('removes on delete what it made; a delete applied again writes nothing', async () => {
      const { name, t, outcome } = await created();
      if (subject.holds !== undefined) expect(await subject.holds(name)).not.toBeNull();
      const removal = deletion(name, after(t, outcome));
      const removed = await subject.provider.apply(removal, context());
      expectAnswered(removal, removed);
      if (subject.holds !== undefined) expect(await subject.holds(name)).toBeNull();
      if (subject.provider.observe !== undefined) {
        expect(await subject.provider.observe({ kind: t.kind, name }, context())).toBeNull();
      }
      // Paths the provider reported are given up.
      for (const path of Object.keys(outcome.set ?? {})) expect(removed.unset ?? []).toContain(path);
      const written = await subject.writes();
      const again = deletion(name, after(removal, removed));
      expectAnswered(again, await subject.provider.apply(again, context()));
      expect(await subject.writes()).toBe(written);
    });

    it('reports a transient backend fault as retryable, and succeeds once the fault is gone', async (ctx) => {
      const inject = subject.injectTransientFault?.bind(subject);
      if (inject === undefined) return ctx.skip(`${label} has no backend that can fail transiently`);
      const name = host();
      const { node, updates } = subject.create(name);
      const t = task(name, node, updates);
      await inject();
      const failure: unknown = await subject.provider.apply(t, context()).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(ConsortiumError);
      expect((failure as ConsortiumError).retryable).toBe(true);
      await subject.clearFaults?.();
      const outcome = await subject.provider.apply(t, context());
      expectAnswered(t, outcome);
      expect(outcome.rejected ?? []).toEqual([]);
    });
  });
}
