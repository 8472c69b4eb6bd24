/**
 * Checks of a request's updates before planning: no `sync`, no two updates that touch the same path (except items
 * of one set list, unless one adds what another removes), and list items that fit the list's item schema. Linear
 * in the number of updates: updates are grouped by path, and only a path's ancestors are looked up.
 */
import { InputError, SchemaViolationError } from '../errors.js';
import { canonicalJson, deepEqual } from '../json.js';
import type { ProposedUpdate } from '../model.js';
import type { Path } from '../paths.js';
import { formatPath } from '../paths.js';
import type { KindSchema } from '../schema.js';
import { countWork } from '../work-meter.js';
import { describe, disjointMerge } from './updates.js';

const isItemOp = (update: ProposedUpdate): boolean => update.op === 'add' || update.op === 'remove';

/** True when two updates of overlapping paths cannot both be in one request. */
function clash(a: ProposedUpdate, aPath: Path, b: ProposedUpdate, bPath: Path): boolean {
  if (disjointMerge(a, aPath, b, bPath)) return false;
  if (isItemOp(a) && isItemOp(b)) return a.op !== b.op && deepEqual(a.value, b.value);
  return true;
}

/**
 * For every update, the first other update it clashes with (by index), or -1: what the pairwise check in request
 * order would find first, computed from groups of equal paths and each path's ancestors.
 */
function firstClashes(updates: readonly ProposedUpdate[], paths: readonly Path[]): number[] {
  const partner = updates.map(() => -1);
  const note = (i: number, j: number): void => {
    if (partner[i] === -1 || j < (partner[i] as number)) partner[i] = j;
  };
  const groups = new Map<string, number[]>();
  paths.forEach((path, i) => {
    const key = formatPath(path);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [i]);
    else group.push(i);
  });
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    countWork(group.length);
    // On one path every pair clashes unless both are items of a set list (then only an add and a remove of one item).
    const firstWhole = group.find((i) => !isItemOp(updates[i] as ProposedUpdate));
    const firstOf = new Map<string, { add?: number; remove?: number }>();
    for (const i of group) {
      const update = updates[i] as ProposedUpdate;
      if (!isItemOp(update)) continue;
      const seen = firstOf.get(canonicalJson(update.value)) ?? {};
      if (update.op === 'add') seen.add ??= i;
      else seen.remove ??= i;
      firstOf.set(canonicalJson(update.value), seen);
    }
    for (const i of group) {
      const update = updates[i] as ProposedUpdate;
      if (!isItemOp(update)) {
        note(i, group[0] === i ? (group[1] as number) : (group[0] as number));
        continue;
      }
      if (firstWhole !== undefined) note(i, firstWhole);
      const seen = firstOf.get(canonicalJson(update.value));
      const opposite = update.op === 'add' ? seen?.remove : seen?.add;
      if (opposite !== undefined) note(i, opposite);
    }
  }
  // Across paths: a path clashes only with updates of its ancestors (or descendants, seen from their side).
  for (const group of groups.values()) {
    const path = paths[group[0] as number] as Path;
    for (let length = 1; length < path.length; length++) {
      const above = groups.get(formatPath(path.slice(0, length)));
      if (above === undefined) continue;
      for (const i of group) {
        for (const j of above) {
          countWork(1);
          if (clash(updates[i] as ProposedUpdate, path, updates[j] as ProposedUpdate, paths[j] as Path)) {
            note(i, j);
            note(j, i);
          }
        }
      }
    }
  }
  return partner;
}

/**
 * Checks a request's updates in order and throws for the first that is wrong: `InputError` for a `sync` or two
 * updates that touch the same path, `SchemaViolationError` for a list item that does not fit its list.
 */
export function checkRequestUpdates(
  schema: KindSchema,
  updates: readonly ProposedUpdate[],
  paths: readonly Path[],
): void {
  const partner = firstClashes(updates, paths);
  updates.forEach((update, i) => {
    if (update.op === 'sync')
      throw new InputError(`"sync" is not an operation a request can ask for (${update.path})`);
    const j = partner[i] as number;
    if (j >= 0) {
      const other = updates[j] as ProposedUpdate;
      if (isItemOp(update) && isItemOp(other)) {
        throw new InputError(`cannot both add and remove ${JSON.stringify(update.value)} in ${update.path}`);
      }
      throw new InputError(`updates "${describe(update)}" and "${describe(other)}" touch the same path`, {
        details: { paths: [update.path, other.path] },
      });
    }
    if (isItemOp(update) && update.value !== undefined) {
      const problems = schema.checkValue(paths[i] as Path, [update.value]);
      if (problems.length > 0) {
        throw new SchemaViolationError(`${update.op} ${update.path}: ${problems.join('; ')}`, {
          details: { errors: problems },
        });
      }
    }
  });
}

/**
 * Refuses at once a request that adds more distinct items to a set list than the list may hold, before the
 * request's other checks cost anything: the message is the one the schema check would give for the result.
 */
export function checkListLimits(
  schema: KindSchema,
  updates: readonly ProposedUpdate[],
  paths: readonly Path[],
): void {
  const added = new Map<string, { path: Path; items: Set<string>; removed: Set<string> }>();
  updates.forEach((update, i) => {
    if (!isItemOp(update)) return;
    const key = formatPath(paths[i] as Path);
    let entry = added.get(key);
    if (entry === undefined) {
      entry = { path: paths[i] as Path, items: new Set(), removed: new Set() };
      added.set(key, entry);
    }
    (update.op === 'add' ? entry.items : entry.removed).add(canonicalJson(update.value));
  });
  for (const { path, items, removed } of added.values()) {
    if (items.size <= ((schema.schemaAt(path)?.['maxItems'] as number | undefined) ?? Infinity)) continue;
    schema.assertListSize(path, [...items].filter((item) => !removed.has(item)).length);
  }
}
