/**
 * The wake-up phase of a fold: deferred updates become ready when something they wait for changed, and the idle
 * owner of a path someone waits for is nudged once with a sync of that path.
 */
import { CORE_PROVIDER } from '../model.js';
import { overlaps, parsePath } from '../paths.js';
import type { KindSchema } from '../schema.js';
import type { PendingUpdate, PlannerState } from './types.js';

/** Deferred updates become ready when a path they may wait for changed, by someone else, since they deferred. */
export function wakeDeferred(state: PlannerState): PendingUpdate[] {
  return state.pending.map((p) => {
    if (p.status !== 'deferred') return p;
    const waitFor = p.waitFor?.map((text) => parsePath(text, { allowWildcard: true }));
    const seen = p.seenVersion ?? 0;
    const woken = Object.entries(state.changes).some(
      ([path, change]) =>
        change.version > seen &&
        change.by !== p.provider &&
        (waitFor === undefined || waitFor.some((w) => overlaps(w, parsePath(path)))),
    );
    return woken ? { ...p, status: 'ready' as const } : p;
  });
}

/**
 * Someone waits for a path whose owner has nothing to do: the owner is nudged once with a sync of that path, so
 * that a state left behind by an earlier failed job (a system never registered) does not wait forever. Returns the
 * nudges and the `owner|path` pairs nudged so far.
 */
export function nudgesFor(
  schema: KindSchema,
  pending: readonly PendingUpdate[],
  alreadyNudged: readonly string[],
  round: number,
): { readonly nudges: PendingUpdate[]; readonly nudged: string[] } {
  const nudged = new Set(alreadyNudged);
  const nudges: PendingUpdate[] = [];
  for (const p of pending) {
    if (p.status !== 'deferred' || p.waitFor === undefined) continue;
    for (const text of p.waitFor) {
      let owner: string;
      try {
        owner = schema.authorityOf(parsePath(text, { allowWildcard: true }));
      } catch {
        continue;
      }
      const key = `${owner}|${text}`;
      if (owner === p.provider || owner === CORE_PROVIDER || nudged.has(key)) continue;
      if ([...pending, ...nudges].some((q) => q.provider === owner)) continue;
      nudged.add(key);
      nudges.push({
        provider: owner,
        status: 'ready',
        update: {
          id: `n${round}.${nudges.length + 1}`,
          path: text,
          op: 'sync',
          origin: p.provider,
          reason: `${p.provider} waits for ${text}${p.reason === undefined ? '' : ` (${p.reason})`}`,
        },
      });
    }
  }
  return { nudges, nudged: [...nudged] };
}
