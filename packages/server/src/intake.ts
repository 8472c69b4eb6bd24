/**
 * The one intake of changes (validate → job → enqueue). The web hands every create, patch and delete here; the
 * intake checks it against the node as it stands, explains it or records it as a job and queues it for the master.
 * It never writes a node: the master is the only writer of nodes, and the same admission rules run again in the
 * master when the job starts, since the node may have changed in between.
 *
 * If-Match: a change made against revision R carries R in its job (`expectedRevision`). It is admitted only while
 * the node is at R and no other change of the node is queued or running (that change would move the revision before
 * this one applies); the check and the job write happen under the node's intake lock in the coordinator, so of many
 * concurrent requests against one revision exactly one is admitted, across web processes. The master applies the
 * job only if the node is still at R when it starts (else the job fails with PRECONDITION_FAILED), and every node
 * write of the master is conditional on the revision it last saw.
 */
import { randomBytes } from 'node:crypto';
import type {
  Clock,
  Coordinator,
  JobAction,
  JobRecord,
  JobState,
  PlanInput,
  PlannerState,
  Store,
  StoredNode,
  UpdateRequest,
} from '@consortium/core';
import {
  CancelledError,
  ConflictError,
  NotFoundError,
  PRESENT_ATTR,
  PreconditionFailedError,
  TimeoutError,
  assertReferentialIntegrity,
  attrsAfter,
  explainPlan,
} from '@consortium/core';
import type { Plan } from '@consortium/core';
import type winston from 'winston';
import type { KindRuntime, Kinds } from './plugins.js';
import { JOB_QUEUE, intakeLockKey } from './protocol.js';
import { TRACING, traceJob, traceNow } from './trace.js';

/** One requested change of one node, as the API took it. */
export interface ChangeRequest {
  readonly kind: string;
  readonly name: string;
  readonly action: JobAction;
  readonly updates: readonly UpdateRequest[];
  /** Who asks (token id). */
  readonly actor: string;
  /** The revision the change was made against (`If-Match`); absent: whatever the node is at. */
  readonly expectedRevision?: number;
}

/** Dependencies of the intake. */
export interface IntakeDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly clock: Clock;
  readonly logger: winston.Logger;
}

/** How long a request waits for the node's intake lock (held only for a few store calls at a time). */
const INTAKE_LOCK_TIMEOUT_MS = 30_000;

/** The job states in which a change is still to be applied. */
const UNFINISHED = ['queued', 'running'] as const;

function newJobId(now: number): string {
  return `j-${now.toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** True when a stored node exists as far as changes are concerned (a node without `present` is only a stub). */
export function exists(node: StoredNode | undefined): node is StoredNode {
  return node !== undefined && node.attrs[PRESENT_ATTR] !== undefined;
}

/** The job states in which a create was not completed. */
const FAILED: readonly JobState[] = ['failed', 'expired'];

/**
 * The failed create a node is left over from, if it is: the node's newest create (other than `exceptJob`) failed
 * and its rollback did not remove the node. Such a node may be created again, which completes it.
 */
export async function failedCreateOf(
  store: Pick<Store, 'listJobs'>,
  kind: string,
  name: string,
  exceptJob?: string,
): Promise<JobRecord | undefined> {
  const recent = await store.listJobs({ kind, name, limit: 20 });
  const create = recent.items.find((job) => job.action === 'create' && job.id !== exceptJob);
  if (create === undefined || !FAILED.includes(create.state) || create.rollback === undefined)
    return undefined;
  return create.rollback.phase === 'succeeded' ? undefined : create;
}

/**
 * The node a create plans against: a failed create's leftover counts as not yet present, so that creating it
 * again sets `present` anew and every provider that watches it converges on what is already there.
 */
export function asCreated(
  node: StoredNode | undefined,
  leftover: JobRecord | undefined,
): StoredNode | undefined {
  if (node === undefined || leftover === undefined) return node;
  const attrs = Object.fromEntries(Object.entries(node.attrs).filter(([key]) => key !== PRESENT_ATTR));
  return { ...node, attrs };
}

/**
 * Whether a change may apply to the node as it stands; throws the error the API answers. `busy` is a change of
 * the node still queued or running (the intake's view; the master passes none: its own job is the one running);
 * `leftover` is the failed create the node is left over from, which may be created again.
 */
export function admit(
  request: Pick<ChangeRequest, 'kind' | 'name' | 'action' | 'expectedRevision'>,
  node: StoredNode | undefined,
  context: {
    readonly busy?: Pick<JobRecord, 'id'> | undefined;
    readonly leftover?: JobRecord | undefined;
  } = {},
): void {
  const { kind, name } = request;
  const { busy } = context;
  if (request.action === 'create') {
    if (exists(node) && context.leftover === undefined) {
      throw new ConflictError(`${kind}/${name} already exists; change it with PATCH`, {
        details: { kind, name },
      });
    }
    if (busy !== undefined) {
      throw new ConflictError(`${kind}/${name} is already being created (job ${busy.id})`, {
        details: { kind, name, job: busy.id },
      });
    }
    return;
  }
  if (!exists(node)) throw new NotFoundError(`${kind}/${name} does not exist`, { details: { kind, name } });
  const expected = request.expectedRevision;
  if (expected === undefined) return;
  if (node.revision !== expected) {
    throw new PreconditionFailedError(`${kind}/${name} is at revision ${node.revision}, not ${expected}`, {
      details: { revision: node.revision },
    });
  }
  if (busy !== undefined) {
    throw new PreconditionFailedError(
      `${kind}/${name} has a change in progress (job ${busy.id}); revision ${expected} will not be current when this one applies`,
      { details: { revision: node.revision, job: busy.id } },
    );
  }
}

/**
 * The first plan of a change against the node as it stands; throws `InputError`, `UnknownAttributeError` or
 * `SchemaViolationError` when the change does not apply. The intake and the master both plan through this.
 */
export function planChange(
  runtime: KindRuntime,
  change: Pick<ChangeRequest, 'kind' | 'name' | 'updates'> & { readonly jobId: string },
  node: StoredNode | undefined,
  now: number,
): PlannerState {
  return runtime.planner.start(planInput(change, node), now);
}

function planInput(
  change: Pick<ChangeRequest, 'kind' | 'name' | 'updates'> & { readonly jobId: string },
  node: StoredNode | undefined,
): PlanInput {
  return {
    jobId: change.jobId,
    kind: change.kind,
    name: change.name,
    current: node?.attrs ?? {},
    updates: change.updates,
  };
}

/** The intake: checks, explains and submits changes; writes jobs, never nodes. */
export class Intake {
  private readonly schemas: ReadonlyMap<string, KindRuntime['schema']>;

  /** Makes the intake over its dependencies. */
  constructor(private readonly deps: IntakeDeps) {
    this.schemas = new Map([...deps.kinds].map(([kind, runtime]) => [kind, runtime.schema]));
  }

  /**
   * Refuses (409 IN_USE, naming them) a change that would delete a node other nodes name through an `x-ref`, or
   * leave them behind as the kind's `referrerInvariant` says (a subnet moved away from its hosts' addresses). Runs
   * after the planner has validated the change.
   */
  private async checkReferrers(
    runtime: KindRuntime,
    request: ChangeRequest,
    node: StoredNode | undefined,
  ): Promise<void> {
    const after = attrsAfter(runtime.schema, node?.attrs ?? {}, request.updates);
    await assertReferentialIntegrity(this.deps.store, this.schemas, request.kind, request.name, after);
  }

  private runtime(kind: string): KindRuntime {
    const runtime = this.deps.kinds.get(kind);
    if (runtime === undefined) throw new NotFoundError(`unknown kind "${kind}"`, { details: { kind } });
    return runtime;
  }

  /** The failed create a node to be created again is left over from (looked up only for a create of a node). */
  private async leftover(
    request: ChangeRequest,
    node: StoredNode | undefined,
  ): Promise<JobRecord | undefined> {
    if (request.action !== 'create' || !exists(node)) return undefined;
    return failedCreateOf(this.deps.store, request.kind, request.name);
  }

  /** Admits a change against the node and the changes in progress as they stand now; throws the refusal. */
  private async admissible(
    request: ChangeRequest,
  ): Promise<{ node: StoredNode | undefined; leftover: JobRecord | undefined }> {
    const { store } = this.deps;
    const node = await store.getNode(request.kind, request.name);
    const busy = await store.listJobs({
      kind: request.kind,
      name: request.name,
      states: UNFINISHED,
      limit: 1,
    });
    const leftover = await this.leftover(request, node);
    admit(request, node, { busy: busy.items[0], leftover });
    return { node, leftover };
  }

  /** Plans a change without side effects (nothing is written, no backend is touched). */
  async explain(request: ChangeRequest): Promise<Plan> {
    const { store, clock, logger } = this.deps;
    const runtime = this.runtime(request.kind);
    const node = await store.getNode(request.kind, request.name);
    const leftover = await this.leftover(request, node);
    admit(request, node, { leftover });
    const now = clock.now();
    const current = asCreated(node, leftover);
    const input = planInput({ ...request, jobId: 'explain' }, current);
    const plan = await explainPlan(runtime.planner, input, runtime.providers, {
      logger: logger.child({ explain: `${request.kind}/${request.name}` }),
      now,
    });
    // A change the intake would refuse does not explain as if it could run.
    await this.checkReferrers(runtime, request, current);
    return plan;
  }

  /**
   * Admits a change and queues it as a job: under the node's intake lock, checks the node and the changes in
   * progress, validates the change with the planner, writes the job and queues it. A refused change writes nothing.
   */
  async submit(request: ChangeRequest): Promise<JobRecord> {
    const { store, coordinator, clock } = this.deps;
    const runtime = this.runtime(request.kind);
    // A change bound to a revision while another change is in progress is refused without queueing for the lock
    // (clients retrying on 412 would otherwise crowd it); the check under the lock below is the one that counts.
    if (request.expectedRevision !== undefined) await this.admissible(request);
    let held;
    const started = TRACING ? traceNow() : 0;
    try {
      held = await coordinator.lock(
        intakeLockKey(request.kind, request.name),
        AbortSignal.timeout(INTAKE_LOCK_TIMEOUT_MS),
      );
    } catch (error) {
      if (!(error instanceof CancelledError)) throw error;
      throw new TimeoutError(
        `${request.kind}/${request.name}: another request held the node's intake for ${INTAKE_LOCK_TIMEOUT_MS / 1000} s; try again`,
      );
    }
    const locked = TRACING ? traceNow() : 0;
    try {
      const { node, leftover } = await this.admissible(request);
      const now = clock.now();
      const id = newJobId(now);
      traceJob(id, 'web.intake', started);
      traceJob(id, 'web.locked', locked);
      const current = asCreated(node, leftover);
      planChange(runtime, { ...request, jobId: id }, current, now);
      await this.checkReferrers(runtime, request, current);
      const job: JobRecord = {
        id,
        kind: request.kind,
        name: request.name,
        action: request.action,
        state: 'queued',
        actor: request.actor,
        updates: request.updates,
        before: exists(node) ? node.attrs : null,
        createdAt: now,
        updatedAt: now,
        ...(request.expectedRevision === undefined ? {} : { expectedRevision: request.expectedRevision }),
      };
      traceJob(id, 'web.admitted');
      await store.createJob(job);
      traceJob(id, 'web.stored');
      // The job is stored, so a request admitted once the lock is released finds it: the release need not wait for
      // the enqueue, and the two go to etcd in one transaction.
      await Promise.all([
        coordinator.queue(JOB_QUEUE).enqueue({ id: job.id, payload: job.id }),
        held.release(),
      ]);
      traceJob(id, 'web.queued');
      return job;
    } finally {
      await held.release();
    }
  }
}
