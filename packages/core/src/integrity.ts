/**
 * Referential integrity between nodes: which attributes of which kinds name nodes of a kind (the `x-ref`
 * annotations of the compiled kind schemas), and the checks a change must pass before it is accepted — a node that
 * others still name cannot be deleted, and a change must not strand the nodes that name it (a subnet's network
 * moved away from its hosts' addresses), as the kind that is referenced declares.
 */
import { InUseError } from './errors.js';
import { AttrsDraft } from './merge.js';
import type { Attrs, UpdateRequest } from './model.js';
import { PRESENT_ATTR } from './model.js';
import type { Filter, NodeReader } from './ports/store.js';
import type { JsonSchema, KindSchema } from './schema.js';

/** One attribute of a kind that names nodes of another kind. */
export interface Reference {
  /** The kind whose nodes hold the reference. */
  readonly kind: string;
  /** The attribute as a search field (`subnet`, `interfaces.subnet`, `members`). */
  readonly field: string;
  /** True when the field holds a list of names (`has`), false for one name (`eq`). */
  readonly list: boolean;
}

/** Every (kind, field) whose `x-ref` names `target`, in kind then field order. */
export function referencesTo(schemas: ReadonlyMap<string, KindSchema>, target: string): Reference[] {
  const found: Reference[] = [];
  const walk = (kind: string, schema: JsonSchema | undefined, field: string): void => {
    if (schema === undefined) return;
    if (schema['x-ref'] === target && field !== '') found.push({ kind, field, list: false });
    const items = schema['items'] as JsonSchema | undefined;
    if (items !== undefined) {
      if (items['x-ref'] === target && field !== '') found.push({ kind, field, list: true });
      else walk(kind, items, field);
    }
    const properties = schema['properties'] as Record<string, JsonSchema> | undefined;
    for (const [name, sub] of Object.entries(properties ?? {})) {
      walk(kind, sub, field === '' ? name : `${field}.${name}`);
    }
  };
  for (const kind of [...schemas.keys()].sort()) walk(kind, schemas.get(kind)?.document, '');
  return found.sort((a, b) => a.kind.localeCompare(b.kind) || a.field.localeCompare(b.field));
}

/** A node that names another, as integrity checks see it. */
export interface Referrer {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Attrs;
}

/** Nodes that name `kind/name` through any reference, at most `limit` of them, by kind then name. */
export async function referrersOf(
  reader: NodeReader,
  schemas: ReadonlyMap<string, KindSchema>,
  kind: string,
  name: string,
  limit: number,
): Promise<Referrer[]> {
  const byKind = new Map<string, Filter[]>();
  for (const ref of referencesTo(schemas, kind)) {
    const clause: Filter = ref.list
      ? { op: 'has', field: ref.field, value: name }
      : { op: 'eq', field: ref.field, value: name };
    byKind.set(ref.kind, [...(byKind.get(ref.kind) ?? []), clause]);
  }
  const found: Referrer[] = [];
  for (const [referring, clauses] of byKind) {
    if (found.length >= limit) break;
    const filter: Filter = clauses.length === 1 ? (clauses[0] as Filter) : { op: 'or', args: clauses };
    const page = await reader.listNodes(referring, { limit: limit - found.length, filter });
    for (const node of page.items) {
      // A node being deleted (present unset) no longer counts as a user.
      if (node.attrs[PRESENT_ATTR] === true)
        found.push({ kind: referring, name: node.name, attrs: node.attrs });
    }
  }
  return found;
}

/** Referrers named in an `IN_USE` message before it says "and more". */
const NAMED = 10;
/** Referrers a change is checked against; a kind with more refers the operator to fewer at a time. */
const CHECKED = 1_000;

/** The attributes a node would have with `updates` applied; the updates must have passed the planner's `start`. */
export function attrsAfter(schema: KindSchema, current: Attrs, updates: readonly UpdateRequest[]): Attrs {
  const draft = new AttrsDraft(current, schema);
  for (const update of updates) draft.apply(schema.resolvePath(update.path), update.op, update.value);
  return draft.result();
}

/**
 * Checks a change of `kind/name` against the nodes that name it, before it is accepted: a delete (`after` without
 * `present`) is refused while any node names it; any other change is checked with the kind's `referrerInvariant`
 * against each node that names it. Throws `InUseError` naming the nodes.
 */
export async function assertReferentialIntegrity(
  reader: NodeReader,
  schemas: ReadonlyMap<string, KindSchema>,
  kind: string,
  name: string,
  after: Attrs,
): Promise<void> {
  const schema = schemas.get(kind);
  if (schema === undefined) return;
  const label = (r: Referrer): string => `${r.kind}/${r.name}`;
  if (after[PRESENT_ATTR] !== true) {
    const users = await referrersOf(reader, schemas, kind, name, NAMED + 1);
    if (users.length === 0) return;
    const named = users.slice(0, NAMED).map(label);
    throw new InUseError(
      `${kind}/${name} is used by ${named.join(', ')}${users.length > NAMED ? ' and more' : ''}; change or delete them first`,
      { details: { kind, name, usedBy: named } },
    );
  }
  const invariant = schema.referrerInvariant;
  if (invariant === undefined) return;
  const users = await referrersOf(reader, schemas, kind, name, CHECKED);
  const problems = users.flatMap((user) => {
    const problem = invariant(after, user);
    return problem === undefined ? [] : [{ user: label(user), problem }];
  });
  if (problems.length === 0) return;
  throw new InUseError(
    `${kind}/${name} is used by ${problems
      .slice(0, NAMED)
      .map((p) => `${p.user} (${p.problem})`)
      .join(', ')}${problems.length > NAMED ? ' and more' : ''}; the change would leave them behind`,
    { details: { kind, name, usedBy: problems.slice(0, NAMED).map((p) => p.user) } },
  );
}
