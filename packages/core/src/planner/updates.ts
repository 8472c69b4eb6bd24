/** Small helpers over proposed updates shared by the planner's phases: descriptions, construction, first failure. */
import type { JsonObject, ProposedUpdate, UpdateRequest } from '../model.js';
import { isJsonObject } from '../model.js';
import type { Path } from '../paths.js';
import type { JobFailure } from './types.js';

/** Collects the failures of one fold; the first one is the job's failure. */
export class FirstFailure {
  failure: JobFailure | undefined;

  /** Records a failure unless an earlier one was recorded. */
  fail(failure: JobFailure): void {
    this.failure ??= failure;
  }
}

/** An update as messages show it: `path=value` for a set, `op path=value` otherwise. */
export function describe(update: Pick<ProposedUpdate, 'op' | 'path' | 'value'>): string {
  const value = update.value === undefined ? '' : `=${JSON.stringify(update.value)}`;
  return update.op === 'set' ? `${update.path}${value}` : `${update.op} ${update.path}${value}`;
}

/** A proposed update from a request, built field by field (spreading caller objects is slow and copies extras). */
export function proposedUpdate(id: string, origin: string, request: UpdateRequest): ProposedUpdate {
  const update: { -readonly [K in keyof ProposedUpdate]: ProposedUpdate[K] } = {
    id,
    path: request.path,
    op: request.op,
    origin,
  };
  if (request.value !== undefined) update.value = request.value;
  if (request.reason !== undefined) update.reason = request.reason;
  return update;
}

/**
 * True when two overlapping updates cannot interfere: one merges an object that does not name the field the
 * other, deeper, update is about (`merge interfaces[eth1] {name}` beside `set interfaces[eth1].mac`).
 */
export function disjointMerge(a: ProposedUpdate, aPath: Path, b: ProposedUpdate, bPath: Path): boolean {
  const [shallow, shallowPath, deepPath] =
    aPath.length < bPath.length ? [a, aPath, bPath] : [b, bPath, aPath];
  if (
    shallow.op !== 'merge' ||
    !isJsonObject(shallow.value ?? null) ||
    deepPath.length === shallowPath.length
  )
    return false;
  const next = deepPath[shallowPath.length] as Path[number];
  return 'prop' in next && !Object.hasOwn(shallow.value as JsonObject, next.prop);
}
