/**
 * The first phase of a fold: each task's outcome is checked against the provider contract (every update answered
 * once, values only for paths it owns), rejections and errors become the job's failure, and accepted updates and
 * reported values are merged into the node in provider order.
 */
import { AttrsDraft } from '../merge.js';
import type { Attrs, JsonValue, UpdateOp } from '../model.js';
import type { Path } from '../paths.js';
import { formatPath, parsePath } from '../paths.js';
import type { ExplainOutcome } from '../provider.js';
import type { KindSchema } from '../schema.js';
import type { PendingUpdate, PlannerState, TaskState } from './types.js';
import type { FirstFailure } from './updates.js';
import { describe } from './updates.js';

/** A path whose value changed in a round, and who changed it. */
export interface Change {
  readonly path: string;
  readonly by: string;
}

/** What the outcomes of one round did to the node and to the pending updates. */
export interface MergedOutcomes {
  readonly attrs: Attrs;
  /** Paths known only later (explain), with their provider, after this round. */
  readonly later: Record<string, string>;
  readonly changed: Change[];
  /** Ids of updates that were accepted. */
  readonly settled: ReadonlySet<string>;
  /** Updates the providers deferred, by id, as they now stand. */
  readonly deferred: ReadonlyMap<string, PendingUpdate>;
  readonly accepted: number;
}

/** Checks that a task answered each of its updates exactly once; reports breaches and rejections as failures. */
function checkAnswers(
  task: TaskState,
  outcome: ExplainOutcome,
  byId: ReadonlyMap<string, PendingUpdate>,
  failures: FirstFailure,
  contract: (message: string) => void,
): void {
  const given = new Set(task.updateIds);
  const answered = [
    ...(outcome.accepted ?? []),
    ...(outcome.deferred ?? []).map((d) => d.id),
    ...(outcome.rejected ?? []).map((r) => r.id),
  ];
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of answered) {
    if (seen.has(id)) twice.add(id);
    seen.add(id);
  }
  const unknown = answered.filter((id) => !given.has(id));
  const missing = task.updateIds.filter((id) => !seen.has(id));
  if (unknown.length > 0) contract(`answered updates it was not given (${unknown.join(', ')})`);
  if (twice.size > 0) contract(`answered an update twice (${[...twice].join(', ')})`);
  if (missing.length > 0) contract(`did not answer ${missing.join(', ')}`);
  for (const rejection of outcome.rejected ?? []) {
    const update = byId.get(rejection.id)?.update;
    failures.fail({
      code: 'REJECTED',
      message: `${task.provider} rejected ${update === undefined ? rejection.id : describe(update)}: ${rejection.reason}`,
      providers: [task.provider],
    });
  }
}

/** Merges every task's accepted updates and reported values into the node (tasks in provider order). */
export function mergeOutcomes(
  schema: KindSchema,
  state: PlannerState,
  tasks: readonly TaskState[],
  byId: ReadonlyMap<string, PendingUpdate>,
  failures: FirstFailure,
): MergedOutcomes {
  const draft = new AttrsDraft(state.attrs, schema);
  const later: Record<string, string> = { ...state.later };
  const changed: Change[] = [];
  const settled = new Set<string>();
  const deferred = new Map<string, PendingUpdate>();
  let accepted = 0;

  // One change per path and provider: a thousand items added to one list are one change of that list.
  const seen = new Set<string>();
  const record = (path: Path, by: string, op: UpdateOp, value: JsonValue | undefined): void => {
    if (!draft.apply(path, op, value)) return;
    const text = formatPath(path);
    const key = `${by}|${text}`;
    if (seen.has(key)) return;
    seen.add(key);
    changed.push({ path: text, by });
  };

  for (const task of tasks) {
    if (task.error !== undefined) {
      const attempts = task.attempt > 1 ? ` after ${task.attempt} attempts` : '';
      failures.fail({
        code: task.error.code,
        message: `${task.provider} failed${attempts}: ${task.error.message}`,
        providers: [task.provider],
      });
      continue;
    }
    const outcome: ExplainOutcome = task.outcome ?? {};
    const contract = (message: string): void => {
      failures.fail({
        code: 'PROVIDER_CONTRACT',
        message: `${task.provider} broke the provider contract: ${message}`,
        providers: [task.provider],
      });
    };
    checkAnswers(task, outcome, byId, failures, contract);
    if (failures.failure !== undefined) continue;

    for (const id of outcome.accepted ?? []) {
      const update = (byId.get(id) as PendingUpdate).update;
      const path = parsePath(update.path);
      try {
        record(path, task.provider, update.op, update.value);
      } catch (error) {
        failures.fail({ code: 'INVALID_INPUT', message: `${describe(update)}: ${(error as Error).message}` });
      }
      settled.add(id);
      accepted++;
    }
    for (const d of outcome.deferred ?? []) {
      const pending = byId.get(d.id) as PendingUpdate;
      deferred.set(d.id, {
        ...pending,
        status: 'deferred',
        reason: d.reason,
        seenVersion: state.version,
        ...(d.waitFor === undefined ? {} : { waitFor: d.waitFor }),
      });
    }
    const owned = (text: string): Path | undefined => {
      let path: Path;
      try {
        path = schema.resolvePath(text);
      } catch (error) {
        contract(`reported a value for ${text}: ${(error as Error).message}`);
        return undefined;
      }
      const owner = schema.authorityOf(path);
      if (owner !== task.provider) {
        contract(`reported a value for ${text}, which ${owner} has authority over`);
        return undefined;
      }
      return path;
    };
    for (const [text, value] of Object.entries(outcome.set ?? {})) {
      const path = owned(text);
      if (path === undefined) continue;
      const problems = schema.checkValue(path, value);
      if (problems.length > 0) {
        contract(`reported an invalid value for ${text}: ${problems.join('; ')}`);
        continue;
      }
      record(path, task.provider, 'set', value);
      delete later[formatPath(path)];
    }
    for (const text of outcome.unset ?? []) {
      const path = owned(text);
      if (path !== undefined) record(path, task.provider, 'unset', undefined);
    }
    for (const text of outcome.later ?? []) {
      const path = owned(text);
      if (path !== undefined && later[formatPath(path)] === undefined) {
        later[formatPath(path)] = task.provider;
        changed.push({ path: formatPath(path), by: task.provider });
      }
    }
  }
  return { attrs: draft.result(), later, changed, settled, deferred, accepted };
}
