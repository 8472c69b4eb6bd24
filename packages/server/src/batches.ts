/**
 * Batches: one change (or a delete) applied to many nodes, as one ordinary job per node. A batch has no record of
 * its own: its jobs are written together, `held`, with ids `<batch>.n<index>` and the batch's settings in each
 * (`JobRecord.batch`), and the batch runner (leader-only, `batch-runner.ts`) releases them to the master as the
 * concurrency allows. So a batch lives in the store exactly as its jobs do (every adapter, `store copy`, failover),
 * and its state and counts are derived from its jobs when read.
 */
import { randomBytes } from 'node:crypto';
import type {
  BatchRef,
  Clock,
  Filter,
  JobAction,
  JobRecord,
  JobState,
  KindSchema,
  Plan,
  Store,
  StoredNode,
  UpdateRequest,
} from '@consortium/core';
import {
  InputError,
  NotFoundError,
  assertNodeName,
  assertReferentialIntegrity,
  attrsAfter,
  bindFilter,
  filterFields,
  parseSearch,
  splitKinds,
  toErrorInfo,
} from '@consortium/core';
import type winston from 'winston';
import type { ChangeRequest } from './intake.js';
import type { Intake } from './intake.js';
import { admit, exists, planChange } from './intake.js';
import type { KindRuntime, Kinds } from './plugins.js';

/** The topic the web announces a new or cancelled batch on, so that the runner looks at once. */
export const BATCH_TOPIC = 'batches/changed';

/** Default number of a batch's jobs queued or running at once. */
export const DEFAULT_BATCH_CONCURRENCY = 10;

/** The largest batch one request may make (one job per node; larger sets are split by the caller). */
export const MAX_BATCH_NODES = 10_000;

/** The id of a batch's job for the node at `index`. */
export function batchJobId(batchId: string, index: number): string {
  return `${batchId}.n${index}`;
}

/** The batch id of a job id made by `batchJobId`; undefined for other jobs. */
export function batchOfJobId(jobId: string): string | undefined {
  const match = /^(b-[0-9a-z]+-[0-9a-f]+)\.n\d+$/.exec(jobId);
  return match?.[1];
}

function newBatchId(now: number): string {
  return `b-${now.toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** How a batch picks its nodes: a search query over one kind, or names. */
export type BatchSelector =
  | { readonly query: string; readonly names?: undefined }
  | { readonly names: readonly string[]; readonly query?: undefined };

/** A batch as asked for. */
export interface BatchRequest {
  readonly kind: string;
  readonly selector: BatchSelector;
  readonly action: Extract<JobAction, 'patch' | 'delete'>;
  /** The change for every node (patch only). */
  readonly updates: readonly UpdateRequest[];
  readonly concurrency: number;
  /** `{count}` failures, or `{percent}` of the nodes (rounded up, at least 1). */
  readonly failureBudget: { readonly count: number } | { readonly percent: number };
  readonly actor: string;
}

/** The failure budget as a number of jobs for a batch of `total` nodes. */
export function budgetOf(budget: BatchRequest['failureBudget'], total: number): number {
  if ('count' in budget) return budget.count;
  return Math.max(1, Math.ceil((budget.percent * total) / 100));
}

/** Reads a failure budget: a whole number of jobs, or a percentage `"10%"`; throws `InputError`. */
export function parseFailureBudget(value: unknown): BatchRequest['failureBudget'] {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return { count: value };
  if (typeof value === 'string') {
    const match = /^(\d{1,3})%$/.exec(value);
    const percent = match === null ? NaN : Number(match[1]);
    if (percent >= 1 && percent <= 100) return { percent };
    if (/^\d+$/.test(value) && Number(value) >= 1) return { count: Number(value) };
  }
  throw new InputError(
    `failureBudget must be a whole number of failures (1 or more) or a percentage such as "10%", not ${JSON.stringify(value)}`,
  );
}

/** The search filter a query means for one kind; throws `InputError` for another kind or a field it lacks. */
export function selectorFilter(kinds: Kinds, kind: string, query: string): Filter | undefined {
  const { kinds: named, rest } = splitKinds(parseSearch(query));
  if (named !== undefined && !(named.length === 1 && named[0] === kind))
    throw new InputError(`the selector names kind ${named.join(', ')} but the batch is of ${kind}`);
  if (rest === undefined) return undefined;
  const runtime = kinds.get(kind) as KindRuntime;
  const fields = filterFields(rest);
  if (fields.includes('kind'))
    throw new InputError('kind can be restricted only at the top level: kind=host and ...');
  const bound = bindFilter(rest, runtime.schema, (k) => kinds.get(k)?.schema);
  const missing = fields.find((field) => !bound.known.includes(field));
  if (missing !== undefined) throw new InputError(`no ${kind} has the attribute "${missing}"`);
  return bound.filter;
}

/** The nodes a selector picks, in name order; throws `InputError` for none or too many, `NotFoundError` for a name. */
export async function selectNodes(
  store: Store,
  kinds: Kinds,
  kind: string,
  selector: BatchSelector,
): Promise<StoredNode[]> {
  const nodes: StoredNode[] = [];
  if (selector.names !== undefined) {
    const missing: string[] = [];
    for (const name of new Set(selector.names)) {
      assertNodeName(name);
      const node = await store.getNode(kind, name);
      if (exists(node)) nodes.push(node);
      else missing.push(name);
    }
    if (missing.length > 0) {
      throw new NotFoundError(`${kind} ${missing.slice(0, 10).join(', ')} do(es) not exist`, {
        details: { kind, missing: missing.slice(0, 100) },
      });
    }
    nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } else {
    const filter = selectorFilter(kinds, kind, selector.query);
    let cursor: string | undefined;
    do {
      const page = await store.listNodes(kind, {
        limit: 500,
        ...(filter === undefined ? {} : { filter }),
        ...(cursor === undefined ? {} : { cursor }),
      });
      nodes.push(...page.items.filter((node) => exists(node)));
      cursor = page.next;
      if (nodes.length > MAX_BATCH_NODES) {
        throw new InputError(
          `the selector matches more than ${MAX_BATCH_NODES} ${kind} nodes; narrow it or split the batch`,
        );
      }
    } while (cursor !== undefined);
  }
  if (nodes.length === 0) throw new InputError(`the selector matches no ${kind}`);
  return nodes;
}

/** What one node's change would do, for the explain of a batch. */
export interface NodePlanSummary {
  readonly name: string;
  /** `refused`: the request itself would be refused for this node (the code says why). */
  readonly outcome: Plan['outcome'] | 'refused';
  readonly reason?: string;
  readonly code?: string;
}

/** Explains a batch: every node's plan, summarised, and how many would succeed, block, fail or be refused. */
export async function explainBatch(
  deps: { store: Store; kinds: Kinds; intake: Intake },
  request: BatchRequest,
): Promise<{ total: number; counts: Record<NodePlanSummary['outcome'], number>; nodes: NodePlanSummary[] }> {
  const nodes = await selectNodes(deps.store, deps.kinds, request.kind, request.selector);
  const summaries: NodePlanSummary[] = new Array<NodePlanSummary>(nodes.length);
  // A few explains at a time: each may read its backends, and a batch may hold thousands of nodes.
  let next = 0;
  const explainOne = async (): Promise<void> => {
    while (next < nodes.length) {
      const i = next++;
      const node = nodes[i] as StoredNode;
      try {
        const plan = await deps.intake.explain(changeOf(request, node.name));
        const reason = plan.failure?.message ?? plan.reason;
        summaries[i] = {
          name: node.name,
          outcome: plan.outcome,
          ...(reason === undefined ? {} : { reason }),
        };
      } catch (error) {
        const info = toErrorInfo(error);
        summaries[i] = { name: node.name, outcome: 'refused', reason: info.message, code: info.code };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, nodes.length) }, explainOne));
  const counts = { succeeded: 0, blocked: 0, failed: 0, refused: 0 };
  for (const summary of summaries) counts[summary.outcome] += 1;
  return { total: nodes.length, counts, nodes: summaries };
}

function changeOf(request: BatchRequest, name: string): ChangeRequest {
  return {
    kind: request.kind,
    name,
    action: request.action,
    updates: request.action === 'delete' ? [{ path: 'present', op: 'unset' }] : request.updates,
    actor: request.actor,
  };
}

/**
 * Creates a batch: selects its nodes, checks the change against every one of them (a change the intake would
 * refuse for any node refuses the whole batch, naming the node, and writes nothing), then writes one held job per
 * node and announces the batch. Returns the batch id and its first job.
 */
export async function createBatch(
  deps: { store: Store; kinds: Kinds; clock: Clock; announce: () => Promise<void> },
  request: BatchRequest,
): Promise<{ id: string; total: number }> {
  const { store, kinds, clock } = deps;
  const runtime = kinds.get(request.kind) as KindRuntime;
  const nodes = await selectNodes(store, kinds, request.kind, request.selector);
  const now = clock.now();
  const id = newBatchId(now);
  const schemas = new Map([...kinds].map(([kind, r]) => [kind, r.schema] as [string, KindSchema]));
  for (const node of nodes) {
    const change = changeOf(request, node.name);
    try {
      admit(change, node);
      planChange(runtime, { ...change, jobId: id }, node, now);
      await assertReferentialIntegrity(
        store,
        schemas,
        request.kind,
        node.name,
        attrsAfter(runtime.schema, node.attrs, change.updates),
      );
    } catch (error) {
      if (error instanceof Error) error.message = `${request.kind}/${node.name}: ${error.message}`;
      throw error;
    }
  }
  const ref = (index: number): BatchRef => ({
    id,
    index,
    total: nodes.length,
    concurrency: request.concurrency,
    failureBudget: budgetOf(request.failureBudget, nodes.length),
    selector: request.selector.query ?? request.selector.names.join(','),
  });
  for (const [index, node] of nodes.entries()) {
    const change = changeOf(request, node.name);
    const job: JobRecord = {
      id: batchJobId(id, index),
      kind: request.kind,
      name: node.name,
      action: request.action,
      state: 'held',
      actor: request.actor,
      updates: change.updates,
      before: node.attrs,
      createdAt: now,
      updatedAt: now,
      batch: ref(index),
    };
    await store.createJob(job);
  }
  await deps.announce();
  return { id, total: nodes.length };
}

/** What a batch is doing: derived from its jobs. */
export type BatchState = 'running' | 'stopping' | 'succeeded' | 'failed' | 'cancelled';

/** A batch as the API shows it. */
export interface BatchView {
  readonly id: string;
  readonly kind: string;
  readonly action: JobAction;
  readonly selector: string;
  readonly state: BatchState;
  readonly total: number;
  readonly concurrency: number;
  readonly failureBudget: number;
  /** Jobs per state (every state present, zero included). */
  readonly counts: Record<JobState, number>;
  /** Why it stopped starting jobs, if it did: its failure budget was spent, or someone cancelled it. */
  readonly stopped?: 'budget' | 'cancel';
  readonly actor: string;
  readonly createdAt: string;
  /** One line per node: its job, the job's state and, when it did not succeed, why. */
  readonly nodes: readonly {
    readonly name: string;
    readonly job: string;
    readonly state: JobState;
    readonly reason?: string;
  }[];
}

/** The jobs of a batch in index order; throws `NotFoundError` when there is no such batch. */
export async function batchJobs(store: Pick<Store, 'getJob'>, id: string): Promise<JobRecord[]> {
  const first = batchOfJobId(batchJobId(id, 0)) === id ? await store.getJob(batchJobId(id, 0)) : undefined;
  if (first?.batch === undefined) throw new NotFoundError(`batch ${id} does not exist`);
  const jobs: JobRecord[] = [first];
  for (let index = 1; index < first.batch.total; index++) {
    const job = await store.getJob(batchJobId(id, index));
    if (job !== undefined) jobs.push(job);
  }
  return jobs;
}

/** The reason a held job is ended with when its batch's failure budget is spent. */
export function budgetSpentMessage(budget: number): string {
  return `not started: the batch's failure budget (${budget} failed job${budget === 1 ? '' : 's'}) was spent`;
}

/** Counts a batch's jobs per state, and its failures (failed or expired). */
export function countJobs(jobs: readonly Pick<JobRecord, 'state'>[]): {
  counts: Record<JobState, number>;
  failures: number;
  active: number;
} {
  const counts: Record<JobState, number> = {
    held: 0,
    queued: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    expired: 0,
    cancelled: 0,
  };
  for (const job of jobs) counts[job.state] += 1;
  return { counts, failures: counts.failed + counts.expired, active: counts.queued + counts.running };
}

/** The view of a batch from its jobs (`jobs[0]` is job 0). */
export function batchView(jobs: readonly JobRecord[]): BatchView {
  const first = jobs[0] as JobRecord & { batch: BatchRef };
  const ref = first.batch;
  const { counts, failures } = countJobs(jobs);
  const cancelled = jobs.some((job) => job.cancelRequested !== undefined);
  const stopped = cancelled ? 'cancel' : failures >= ref.failureBudget ? 'budget' : undefined;
  const unfinished = counts.held + counts.queued + counts.running > 0;
  let state: BatchState;
  if (unfinished) state = stopped === undefined ? 'running' : 'stopping';
  else if (stopped === 'cancel') state = 'cancelled';
  else state = failures > 0 || counts.cancelled > 0 ? 'failed' : 'succeeded';
  return {
    id: ref.id,
    kind: first.kind,
    action: first.action,
    selector: ref.selector,
    state,
    total: ref.total,
    concurrency: ref.concurrency,
    failureBudget: ref.failureBudget,
    counts,
    ...(stopped === undefined ? {} : { stopped }),
    actor: first.actor,
    createdAt: new Date(first.createdAt).toISOString(),
    nodes: jobs.map((job) => ({
      name: job.name,
      job: job.id,
      state: job.state,
      ...(job.failure === undefined ? {} : { reason: job.failure.message }),
    })),
  };
}

/** Dependencies of the batch routes and runner that read and write batches. */
export interface BatchDeps {
  readonly store: Store;
  readonly kinds: Kinds;
  readonly clock: Clock;
  readonly logger: winston.Logger;
}
