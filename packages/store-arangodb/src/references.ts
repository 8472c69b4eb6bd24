/**
 * References between nodes, kept as edges in the `refs` edge collection. A kind's schema marks a field that names
 * another node with `x-ref: <kind>` (`subnet: { type: string, x-ref: subnet }`, or a list of such names); the store
 * is told these fields when it opens (`referencesOf(schemas)`), and every node write replaces the node's outgoing
 * edges, in the same stream transaction, with one edge per name found at each reference field.
 *
 * What the edges are for: the one-hop `ref` filter of search (`subnet.vlan=100`, which core binds to
 * `{ op: 'ref', field: 'subnet', kind: 'subnet', filter: vlan = 100 }`) walks them — an edge-index lookup from the
 * node and a primary-index lookup of the target — instead of reading the names out of the attributes; and they
 * make the reverse question ("which hosts refer to subnet net-a?") an `INBOUND` lookup for whoever needs it next.
 * An edge may point at a node that does not exist (yet, or any more): ArangoDB does not check `_to` for plain edge
 * collections, and the hop then finds nothing, as it would by name.
 */
import { createHash } from 'node:crypto';
import type { Attrs, JsonValue, KindSchema } from '@consortium/core';

/** Per kind, its reference fields (dotted attribute paths) and the kind each one names. */
export type ReferenceMap = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** One outgoing reference of a node: the field it was found at and the node it names. */
export interface ReferenceEdge {
  readonly field: string;
  readonly toKind: string;
  readonly toName: string;
}

/** The `_key` of a node's document: a digest of kind and name, so that an edge's `_to` needs no lookup. */
export function nodeKey(kind: string, name: string): string {
  return digest(`${kind}\u0000${name}`);
}

/** A document `_key` for an arbitrary identifier (job ids, token ids), which may hold characters `_key` forbids. */
export function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The reference fields of each kind, read from `x-ref` in the kinds' JSON schemas (on a string property, or on the
 * items of a list of strings), under objects and lists of objects (`interfaces.subnet`).
 */
export function referencesOf(schemas: Iterable<Pick<KindSchema, 'kind' | 'document'>>): ReferenceMap {
  const map: Record<string, Record<string, string>> = {};
  for (const schema of schemas) {
    const fields: Record<string, string> = {};
    walkProperties(schema.document, [], fields);
    if (Object.keys(fields).length > 0) map[schema.kind] = fields;
  }
  return map;
}

function walkProperties(schema: unknown, path: readonly string[], out: Record<string, string>): void {
  if (!isObject(schema)) return;
  const ref = schema['x-ref'] ?? (isObject(schema['items']) ? schema['items']['x-ref'] : undefined);
  if (typeof ref === 'string' && path.length > 0) {
    out[path.join('.')] = ref;
    return;
  }
  const items = schema['items'];
  if (schema['type'] === 'array' && isObject(items)) {
    walkProperties(items, path, out);
    return;
  }
  const properties = schema['properties'];
  if (!isObject(properties)) return;
  for (const [name, child] of Object.entries(properties)) walkProperties(child, [...path, name], out);
}

/**
 * The edges a node of `kind` has: for each reference field, every string at the path (fanning out over the arrays
 * the path crosses, exactly as the filters do) or in a list of strings there; duplicates once.
 */
export function referenceEdges(
  kind: string,
  attrs: Attrs,
  references: ReferenceMap | undefined,
): ReferenceEdge[] {
  const fields = references?.[kind];
  if (fields === undefined) return [];
  const edges: ReferenceEdge[] = [];
  const seen = new Set<string>();
  for (const [field, toKind] of Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const toName of namesAt(attrs, field)) {
      const id = `${field}\u0000${toName}`;
      if (seen.has(id)) continue;
      seen.add(id);
      edges.push({ field, toKind, toName });
    }
  }
  return edges;
}

/** The names a reference field holds: the values at the path (see `referenceEdges`) that are strings or lists of them. */
export function namesAt(attrs: Attrs, field: string): string[] {
  const segments = field.split('.');
  let candidates: JsonValue[] = [attrs];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    const next: JsonValue[] = [];
    for (const candidate of candidates) {
      const value = isObject(candidate) && Object.hasOwn(candidate, segment) ? candidate[segment] : null;
      if (!last && Array.isArray(value)) next.push(...(value as readonly JsonValue[]));
      else next.push(value ?? null);
    }
    candidates = next;
  });
  const names: string[] = [];
  for (const value of candidates) {
    if (typeof value === 'string') names.push(value);
    else if (Array.isArray(value)) for (const item of value) if (typeof item === 'string') names.push(item);
  }
  return names;
}

function isObject(value: unknown): value is Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An edge of `refs` as stored: from the node's document to the named node's (which may not exist). */
export interface EdgeDocument {
  readonly _from: string;
  readonly _to: string;
  readonly fromKind: string;
  readonly field: string;
  readonly toKind: string;
  readonly toName: string;
}

/** The `refs` documents of the node `from` (its `_id`) of `kind`, for the collection of nodes `nodes`. */
export function edgeDocuments(
  nodes: string,
  kind: string,
  from: string,
  attrs: Attrs,
  references: ReferenceMap | undefined,
): EdgeDocument[] {
  return referenceEdges(kind, attrs, references).map((edge) => ({
    _from: from,
    _to: `${nodes}/${nodeKey(edge.toKind, edge.toName)}`,
    fromKind: kind,
    field: edge.field,
    toKind: edge.toKind,
    toName: edge.toName,
  }));
}

/** The map as canonical JSON (sorted keys), to tell whether the references changed since the edges were built. */
export function canonicalReferences(references: ReferenceMap): string {
  const sorted = (record: Readonly<Record<string, unknown>>): [string, unknown][] =>
    Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(
    sorted(references).map(([kind, fields]) => [kind, sorted(fields as Record<string, string>)]),
  );
}
