/** The record of a finished round, as the job shows it. */
import type { Change } from './outcomes.js';
import type { PendingUpdate, RoundRecord, TaskState } from './types.js';

/** The record of a round from its finished tasks (`progress` is decided later, by the fold). */
export function roundRecordOf(
  round: { readonly number: number; readonly startedAt: number },
  tasks: readonly TaskState[],
  byId: ReadonlyMap<string, PendingUpdate>,
  changes: readonly Change[],
  now: number,
): RoundRecord {
  return {
    round: round.number,
    startedAt: round.startedAt,
    endedAt: now,
    tasks: tasks.map((t) => ({
      id: t.id,
      provider: t.provider,
      updates: t.updateIds.map((id) => (byId.get(id) as PendingUpdate).update),
      attempts: t.attempt,
      ...(t.outcome === undefined ? {} : { outcome: t.outcome }),
      ...(t.error === undefined ? {} : { error: t.error }),
      ...(t.errors !== undefined && t.errors.length > (t.error === undefined ? 0 : 1)
        ? { retriedErrors: t.error === undefined ? t.errors : t.errors.slice(0, -1) }
        : {}),
      ...(t.durationMs === undefined ? {} : { durationMs: t.durationMs }),
    })),
    changes,
    progress: false,
  };
}
