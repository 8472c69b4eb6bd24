/** The watch phase: a change at a path sends each provider watching it one `sync` update. */
import { getAt } from '../merge.js';
import { parsePath } from '../paths.js';
import type { KindSchema } from '../schema.js';
import type { Change } from './outcomes.js';
import type { PendingUpdate, PlannerState } from './types.js';

/** The syncs that the changes of a round add for watchers, skipping watchers that already have one waiting. */
export function syncsFor(
  schema: KindSchema,
  state: PlannerState,
  changed: readonly Change[],
  round: number,
): PendingUpdate[] {
  const added: PendingUpdate[] = [];
  for (const change of changed) {
    const path = parsePath(change.path);
    for (const watch of schema.watchersOf(path)) {
      if (watch.provider === change.by) continue;
      if (watch.onRemovalOnly === true && getAt(state.attrs, watch.pattern, schema) !== undefined) continue;
      const already = [...state.pending, ...added].some(
        (p) =>
          p.provider === watch.provider &&
          p.update.op === 'sync' &&
          p.update.path === watch.path &&
          p.status !== 'inflight',
      );
      if (already) continue;
      added.push({
        provider: watch.provider,
        status: 'ready',
        update: {
          id: `s${round}.${added.length + 1}`,
          path: watch.path,
          op: 'sync',
          origin: change.by,
          reason: `${change.path} changed`,
        },
      });
    }
  }
  return added;
}
