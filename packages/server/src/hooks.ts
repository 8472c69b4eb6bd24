/**
 * Publishing hook events: when a job ends or observe finds drift, every enabled hook that subscribes to the event
 * (and whose kind and search filter match the event's node) gets a delivery record and a task on the `hooks` queue.
 * Both are keyed by `<hook id>:<event id>`, and event ids are derived from what happened (the job id and the event,
 * or the node's revision and its drift), so publishing an event again (a retry, a new leader) sends nothing twice.
 */
import type {
  Attrs,
  Clock,
  Coordinator,
  DeliveryRecord,
  Filter,
  HookEvent,
  HookRecord,
  JobRecord,
  JsonObject,
  Store,
  StoredNode,
} from '@consortium/core';
import type { DriftView } from '@consortium/core';
import {
  bindFilter,
  canonicalJson,
  deepEqual,
  deliveryId,
  matchesFilter,
  parseSearch,
  splitKinds,
  toErrorInfo,
} from '@consortium/core';
import { createHash } from 'node:crypto';
import type winston from 'winston';
import type { Kinds } from './plugins.js';

/** The queue deliveries wait in; a task's id is its delivery's id. */
export const HOOK_QUEUE = 'hooks';

/** One thing that happened, as hooks hear of it. */
export interface HookEventInput {
  readonly event: HookEvent;
  /** Derived from what happened, never random: the same event always has the same id. */
  readonly eventId: string;
  readonly occurredAt: number;
  readonly kind: string;
  readonly name: string;
  /** The node as the event leaves it (for a delete: as it was before). */
  readonly attrs: Attrs | null;
  /** The rest of the body: the job, the drift. */
  readonly detail: JsonObject;
}

/** What a publisher needs. */
export interface HookPublisherDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly clock: Clock;
  readonly logger: winston.Logger;
  /** Attempts of each delivery before it is given up. */
  readonly maxAttempts: number;
}

/** Enqueues the deliveries of events to the hooks that want them. */
export class HookPublisher {
  /** Makes a publisher over its dependencies. */
  constructor(private readonly deps: HookPublisherDeps) {}

  /**
   * Publishes events; never throws (a hook must not fail the job that caused the event): a failure is logged.
   * Returns the ids of the deliveries enqueued.
   */
  async publish(events: readonly HookEventInput[]): Promise<string[]> {
    if (events.length === 0) return [];
    const enqueued: string[] = [];
    try {
      const hooks = (await this.deps.store.listHooks()).filter((hook) => hook.enabled);
      for (const input of events) {
        for (const hook of hooks) {
          if (!(await this.matches(hook, input))) continue;
          enqueued.push(await this.enqueue(hook, input));
        }
      }
    } catch (error) {
      this.deps.logger.error('publishing hook events failed', {
        events: events.map((e) => e.eventId),
        error: toErrorInfo(error).message,
      });
    }
    return enqueued;
  }

  /** Publishes what the end of a job means (`job` as it ended): its own event and, for a success, the node's. */
  publishJob(job: JobRecord, after: Attrs | null): Promise<string[]> {
    return this.publish(jobHookEvents(job, after));
  }

  private async enqueue(hook: HookRecord, input: HookEventInput): Promise<string> {
    const { store, coordinator, clock } = this.deps;
    const id = deliveryId(hook.id, input.eventId);
    const now = clock.now();
    const delivery: DeliveryRecord = {
      id,
      hookId: hook.id,
      event: input.event,
      eventId: input.eventId,
      status: 'pending',
      attempts: 0,
      payload: eventBody(input),
      log: [],
      createdAt: now,
      updatedAt: now,
    };
    // The record first: a task always finds its delivery. Both are no-ops when they exist already.
    await store.createDelivery(delivery);
    await coordinator.queue(HOOK_QUEUE).enqueue({
      id,
      payload: { delivery: id },
      maxAttempts: this.deps.maxAttempts,
    });
    return id;
  }

  /** True when the hook subscribes to the event and its kind and filter match the event's node. */
  private async matches(hook: HookRecord, input: HookEventInput): Promise<boolean> {
    if (!hook.events.includes(input.event)) return false;
    // A hook hears of what happens after it was made (a new master publishes recent events again).
    if (input.occurredAt < hook.createdAt) return false;
    if (hook.kind !== undefined && hook.kind !== input.kind) return false;
    if (hook.filter === undefined) return true;
    const filter = this.boundFilter(hook.filter, input.kind);
    if (filter === undefined) return false;
    const { store } = this.deps;
    return matchesFilter({ name: input.name, attrs: input.attrs ?? {} }, filter, async (kind, name) => {
      const node = await store.getNode(kind, name);
      return node === undefined ? undefined : { name: node.name, attrs: node.attrs };
    });
  }

  /** The hook's query for nodes of `kind`, typed by its schema; undefined when it restricts to other kinds. */
  private boundFilter(query: string, kind: string): Filter | undefined {
    return bindHookFilter(query, kind, this.deps.kinds);
  }
}

/**
 * A hook's search query bound to one kind as the search API binds it (bare words typed by the kind's schema, a
 * reference field made a hop); undefined when its `kind=` names other kinds. Throws `InputError` when it does not
 * parse.
 */
export function bindHookFilter(query: string, kind: string, kinds: Kinds): Filter | undefined {
  const { kinds: named, rest } = splitKinds(parseSearch(query));
  if (named !== undefined && !named.includes(kind)) return undefined;
  if (rest === undefined) return { op: 'and', args: [] };
  const runtime = kinds.get(kind);
  if (runtime === undefined) return rest;
  return bindFilter(rest, runtime.schema, (other) => kinds.get(other)?.schema).filter;
}

/** The events of an ended job: `job.<state>`, and on success what happened to the node. */
export function jobHookEvents(job: JobRecord, after: Attrs | null): HookEventInput[] {
  const { state } = job;
  const at = job.endedAt ?? job.updatedAt;
  if (state !== 'succeeded' && state !== 'failed' && state !== 'expired') return [];
  const detail: JsonObject = {
    job: {
      id: job.id,
      action: job.action,
      state,
      actor: job.actor,
      ...(job.failure === undefined
        ? {}
        : { failure: { code: job.failure.code, message: job.failure.message } }),
    },
  };
  const common = { occurredAt: at, kind: job.kind, name: job.name, detail };
  const events: HookEventInput[] = [
    { ...common, event: `job.${state}`, eventId: `${job.id}.job`, attrs: after ?? job.before },
  ];
  if (state !== 'succeeded') return events;
  const nodeEvent: HookEvent =
    job.action === 'create' ? 'node.created' : job.action === 'delete' ? 'node.deleted' : 'node.changed';
  // A patch that changed nothing is no change.
  if (nodeEvent === 'node.changed' && deepEqual(job.before, after)) return events;
  events.push({ ...common, event: nodeEvent, eventId: `${job.id}.node`, attrs: after ?? job.before });
  return events;
}

/**
 * The `node.drift` event of a node whose observations differ from what it holds. Its id names the node, its revision
 * and the drift (paths, providers, values), so that every observe pass that finds the same drift publishes the same
 * event, and a new drift, or the same after a change, a new one.
 */
export function driftEvent(node: StoredNode, drift: readonly DriftView[], at: number): HookEventInput {
  const found = drift.map((d) => ({
    path: d.path,
    provider: d.provider,
    expected: d.expected,
    observed: d.observed,
  }));
  const digest = createHash('sha256').update(canonicalJson(found)).digest('hex').slice(0, 16);
  return {
    event: 'node.drift',
    eventId: `drift.${node.kind}.${node.name}.r${node.revision}.${digest}`,
    occurredAt: at,
    kind: node.kind,
    name: node.name,
    attrs: node.attrs,
    detail: { drift: found },
  };
}

/** The `node.created` of an adopted node: it was made from what the backends hold, by `actor`, with no job. */
export function adoptionEvent(node: StoredNode, actor: string, at: number): HookEventInput {
  return {
    event: 'node.created',
    eventId: `adopt.${node.kind}.${node.name}.r${String(node.revision)}.${String(node.createdAt)}`,
    occurredAt: at,
    kind: node.kind,
    name: node.name,
    attrs: node.attrs,
    detail: { adoption: { actor } },
  };
}

/** The JSON body of an event: `{id, event, occurredAt, node, ...detail}`. */
export function eventBody(input: HookEventInput): JsonObject {
  return {
    id: input.eventId,
    event: input.event,
    occurredAt: new Date(input.occurredAt).toISOString(),
    node: { kind: input.kind, name: input.name, attrs: input.attrs },
    ...input.detail,
  };
}
