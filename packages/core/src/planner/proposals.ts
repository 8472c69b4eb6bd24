/**
 * The proposals phase of a fold: updates providers propose for paths other providers own, checked against the
 * schema and the user's request, and dropped when they already hold or are already pending.
 */
import { canonicalJson, deepEqual } from '../json.js';
import { updateHolds } from '../merge.js';
import type { Attrs, JsonValue, ProposedUpdate, UpdateRequest } from '../model.js';
import { CORE_PROVIDER } from '../model.js';
import type { Path } from '../paths.js';
import { formatPath, overlaps, parsePath, pathEquals } from '../paths.js';
import type { KindSchema } from '../schema.js';
import type { PendingUpdate, PlannerState, TaskState } from './types.js';
import type { FirstFailure } from './updates.js';
import { describe, proposedUpdate } from './updates.js';

/** The proposals of one round, and which providers made them. */
export interface RoundProposals {
  readonly proposals: PendingUpdate[];
  readonly proposers: ReadonlySet<string>;
}

/** Why a proposal may not be made, or undefined when it may. */
function refusal(
  schema: KindSchema,
  userUpdates: readonly ProposedUpdate[],
  userPaths: readonly Path[],
  provider: string,
  request: UpdateRequest,
  update: ProposedUpdate,
  path: Path,
): { code: 'PROVIDER_CONTRACT' | 'SCHEMA_VIOLATION' | 'PROPOSAL_CONFLICT'; message: string } | undefined {
  const owner = schema.authorityOf(path);
  if (owner === provider || owner === CORE_PROVIDER || request.op === 'sync') {
    return {
      code: 'PROVIDER_CONTRACT',
      message: `${provider} broke the provider contract: proposed ${describe(update)}, which ${owner === provider ? 'it owns (report it with set)' : 'no provider may propose'}`,
    };
  }
  const checked =
    request.op === 'set'
      ? schema.checkValue(path, request.value ?? null)
      : request.op === 'add' || request.op === 'remove'
        ? schema.checkValue(path, [request.value ?? null])
        : [];
  if (checked.length > 0) {
    return {
      code: 'SCHEMA_VIOLATION',
      message: `proposal from ${provider} violates the schema: ${checked.join('; ')}`,
    };
  }
  const contradicted = userUpdates.find((u, i) => {
    const userPath = userPaths[i] as Path;
    if (!overlaps(userPath, path)) return false;
    return !(pathEquals(userPath, path) && u.op === request.op && deepEqual(u.value, request.value));
  });
  if (contradicted !== undefined) {
    return {
      code: 'PROPOSAL_CONFLICT',
      message: `${provider} proposed ${describe(update)}, which contradicts the requested ${describe(contradicted)}`,
    };
  }
  return undefined;
}

/** Collects the round's proposals, in provider order, against the node as merged after the round's values. */
export function collectProposals(
  schema: KindSchema,
  state: PlannerState,
  round: number,
  tasks: readonly TaskState[],
  attrs: Attrs,
  settled: ReadonlySet<string>,
  failures: FirstFailure,
): RoundProposals {
  const proposals: PendingUpdate[] = [];
  const proposers = new Set<string>();
  const proposed = tasks.some((task) => (task.outcome?.propose ?? []).length > 0);
  if (!proposed) return { proposals, proposers };
  // Indexes built once per round that has proposals: pending updates by what they do, the user's paths parsed.
  const keyOf = (path: string, op: string, value: JsonValue | undefined): string =>
    `${op}|${path}|${canonicalJson(value)}`;
  const open = new Set(
    state.pending
      .filter((p) => !settled.has(p.update.id))
      .map((p) => keyOf(p.update.path, p.update.op, p.update.value)),
  );
  const userPaths = state.userUpdates.map((u) => parsePath(u.path));
  for (const task of tasks) {
    for (const request of task.outcome?.propose ?? []) {
      const id = `p${round}.${proposals.length + 1}`;
      const update = proposedUpdate(id, task.provider, request);
      let path: Path;
      try {
        path = schema.resolvePath(request.path);
      } catch (error) {
        failures.fail({
          code: 'INVALID_INPUT',
          message: `proposal from ${task.provider}: ${(error as Error).message}`,
        });
        continue;
      }
      const refused = refusal(schema, state.userUpdates, userPaths, task.provider, request, update, path);
      if (refused !== undefined) {
        failures.fail({ ...refused, providers: [task.provider] });
        continue;
      }
      if (updateHolds(attrs, path, request.op, request.value, schema)) continue;
      const key = keyOf(formatPath(path), request.op, request.value);
      if (open.has(key)) continue;
      open.add(key);
      proposals.push({
        update: { ...update, path: formatPath(path) },
        provider: schema.authorityOf(path),
        status: 'ready',
      });
      proposers.add(task.provider);
    }
  }
  return { proposals, proposers };
}
