/** How nodes and jobs look on the wire: stable JSON that scripts can rely on. */
import type {
  Attrs,
  DriftView,
  JobRecord,
  JsonValue,
  JobView,
  KindSchema,
  NodeView,
  RoundRecord,
  RoundView,
  StoredNode,
} from '@consortium/core';
import type { ActorNames } from './actors.js';
import { conditionsOf, deepEqual, formatPath, getAt, isJsonObject, parsePath } from '@consortium/core';

function iso(ms: number): string;
function iso(ms: number | undefined): string | undefined;
function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** A plan's rounds as the API shows them: their start and end as RFC 3339 timestamps, like every time on the wire. */
export function roundsView(rounds: readonly RoundRecord[]): RoundView[] {
  return rounds.map((round) => ({ ...round, startedAt: iso(round.startedAt), endedAt: iso(round.endedAt) }));
}

/** What each provider last observed of a node, with when as an RFC 3339 timestamp. */
export function observedView(node: StoredNode): Record<string, { attrs: Attrs | null; at: string }> {
  return Object.fromEntries(
    Object.entries(node.observed).map(([provider, o]) => [provider, { attrs: o.attrs, at: iso(o.at) }]),
  );
}

/**
 * The node's attributes with every `readOnly` attribute (a hypervisor's observed capacity) taken from its
 * provider's last observation: such values are what the backend reports, never a desired state.
 */
export function observedAttrs(node: StoredNode, schema: KindSchema | undefined): Attrs {
  const properties = (schema?.document['properties'] ?? {}) as Record<string, Record<string, unknown>>;
  let attrs = node.attrs;
  for (const [name, property] of Object.entries(properties)) {
    if (property['readOnly'] !== true || schema === undefined) continue;
    const seen = node.observed[schema.authorityOf([{ prop: name }])]?.attrs;
    const value = seen?.[name];
    if (value !== undefined) attrs = { ...attrs, [name]: value };
  }
  return attrs;
}

/** A node as the API shows it; `fields` limits the attributes shown; `schema` shows observed `readOnly` values. */
export function nodeView(node: StoredNode, fields?: readonly string[], schema?: KindSchema): NodeView {
  const all = observedAttrs(node, schema);
  const attrs =
    fields === undefined ? all : Object.fromEntries(Object.entries(all).filter(([k]) => fields.includes(k)));
  return {
    kind: node.kind,
    name: node.name,
    revision: node.revision,
    attrs,
    createdAt: iso(node.createdAt),
    updatedAt: iso(node.updatedAt),
  };
}

/** Every concrete path of a node's attributes with the provider that owns its value. */
export function authorityMap(schema: KindSchema, attrs: Attrs): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string, value: JsonValue): void => {
    const parsed = parsePath(path);
    out[path] = schema.authorityOf(parsed);
    if (schema.subAuthorities(parsed).length === 0) return;
    const semantics = schema.listSemanticsAt(parsed);
    if (semantics?.type === 'map' && Array.isArray(value)) {
      for (const item of value as readonly JsonValue[]) {
        if (!isJsonObject(item)) continue;
        const key = item[semantics.key];
        if (typeof key !== 'string') continue;
        for (const [field, fieldValue] of Object.entries(item)) {
          if (field !== semantics.key) walk(`${path}[${key}].${field}`, fieldValue);
        }
      }
    } else if (isJsonObject(value)) {
      for (const [field, fieldValue] of Object.entries(value)) walk(`${path}.${field}`, fieldValue);
    }
  };
  for (const [attribute, value] of Object.entries(attrs)) walk(attribute, value);
  return out;
}

/** Drift: paths where a provider's observation, newer than the node's last change, differs from the value it owns. */
export function driftOf(schema: KindSchema, node: StoredNode): DriftView[] {
  const drift: DriftView[] = [];
  const authority = authorityMap(schema, node.attrs);
  for (const [provider, observation] of Object.entries(node.observed)) {
    // An observation older than the node's last change says nothing about drift: the change may not have reached it.
    if (observation.at < node.updatedAt) continue;
    const seen = observation.attrs ?? {};
    const paths = new Set([
      ...Object.entries(authority)
        .filter(([, owner]) => owner === provider)
        .map(([path]) => path),
      ...Object.keys(authorityMap(schema, seen)).filter(
        (path) => schema.authorityOf(parsePath(path)) === provider,
      ),
    ]);
    const properties = (schema.document['properties'] ?? {}) as Record<string, Record<string, unknown>>;
    for (const path of [...paths].sort()) {
      const parsed = parsePath(path);
      if (schema.subAuthorities(parsed).some((p) => p !== provider)) continue;
      // A readOnly value (observed capacity) is only ever what was observed: it cannot drift.
      const top = parsed[0];
      if (top !== undefined && 'prop' in top && properties[top.prop]?.['readOnly'] === true) continue;
      const expected = getAt(node.attrs, parsed, schema) ?? null;
      const observed = getAt(seen, parsed, schema) ?? null;
      if (!deepEqual(expected, observed)) {
        drift.push({
          path: formatPath(parsed),
          provider,
          expected,
          observed,
          at: iso(observation.at),
        });
      }
    }
  }
  return drift;
}

/**
 * A job as the API shows it: state, rounds, conditions (who blocks it and why), failure; who asked (and who asked
 * to cancel) by token id and description.
 */
export function jobView(job: JobRecord, actors: ActorNames, options: { summary?: boolean } = {}): JobView {
  const plan = job.plan;
  return {
    id: job.id,
    kind: job.kind,
    name: job.name,
    action: job.action,
    state: job.state,
    actor: actors(job.actor),
    createdAt: iso(job.createdAt),
    startedAt: iso(job.startedAt),
    endedAt: iso(job.endedAt),
    updates: job.updates,
    ...(options.summary === true
      ? { roundCount: plan?.rounds.length ?? 0 }
      : {
          rounds: roundsView(plan?.rounds ?? []),
          conditions: plan === undefined || job.endedAt !== undefined ? [] : conditionsOf(plan),
          // A job still running says until when its TTL lets it run (the console shows it beside a blocked job).
          ...(plan === undefined || job.endedAt !== undefined ? {} : { expiresAt: iso(plan.deadline) }),
        }),
    ...(job.failure === undefined ? {} : { failure: job.failure }),
    ...(job.rollback === undefined
      ? {}
      : {
          rollback:
            options.summary === true
              ? { state: job.rollback.phase }
              : { state: job.rollback.phase, rounds: roundsView(job.rollback.rounds) },
        }),
    ...(job.cancelRequested === undefined
      ? {}
      : { cancelRequested: { by: actors(job.cancelRequested.by), at: iso(job.cancelRequested.at) } }),
    ...(job.batch === undefined ? {} : { batch: job.batch.id }),
    links: {
      self: `/api/jobs/${job.id}`,
      events: `/api/jobs/${job.id}/events`,
      node: `/api/inventory/${job.kind}/${job.name}`,
    },
  };
}
