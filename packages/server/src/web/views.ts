/** How nodes and jobs look on the wire: stable JSON that scripts can rely on. */
import type { Attrs, JobRecord, JsonValue, KindSchema, StoredNode } from '@consortium/core';
import { conditionsOf, deepEqual, formatPath, getAt, isJsonObject, parsePath } from '@consortium/core';

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

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
export function nodeView(
  node: StoredNode,
  fields?: readonly string[],
  schema?: KindSchema,
): Record<string, unknown> {
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
export function driftOf(
  schema: KindSchema,
  node: StoredNode,
): { path: string; provider: string; expected: JsonValue | null; observed: JsonValue | null; at: string }[] {
  const drift = [];
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
          at: iso(observation.at) as string,
        });
      }
    }
  }
  return drift;
}

/** A job as the API shows it: state, rounds, conditions (who blocks it and why), failure. */
export function jobView(job: JobRecord, options: { summary?: boolean } = {}): Record<string, unknown> {
  const plan = job.plan;
  return {
    id: job.id,
    kind: job.kind,
    name: job.name,
    action: job.action,
    state: job.state,
    actor: job.actor,
    createdAt: iso(job.createdAt),
    startedAt: iso(job.startedAt),
    endedAt: iso(job.endedAt),
    updates: job.updates,
    ...(options.summary === true
      ? { roundCount: plan?.rounds.length ?? 0 }
      : {
          rounds: plan?.rounds ?? [],
          conditions: plan === undefined || job.endedAt !== undefined ? [] : conditionsOf(plan),
        }),
    ...(job.failure === undefined ? {} : { failure: job.failure }),
    ...(job.rollback === undefined
      ? {}
      : {
          rollback:
            options.summary === true
              ? { state: job.rollback.phase }
              : { state: job.rollback.phase, rounds: job.rollback.rounds },
        }),
    ...(job.cancelRequested === undefined
      ? {}
      : { cancelRequested: { by: job.cancelRequested.by, at: iso(job.cancelRequested.at) } }),
    links: {
      self: `/api/jobs/${job.id}`,
      events: `/api/jobs/${job.id}/events`,
      node: `/api/inventory/${job.kind}/${job.name}`,
    },
  };
}
