/**
 * The wake-up phase of a fold: deferred updates become ready when something they wait for changed, and the idle
 * owner of a path someone waits for is nudged once with a sync of that path.
 */
import type { ProposedUpdate } from '../model.js';
import { CORE_PROVIDER } from '../model.js';
import type { Path } from '../paths.js';
import { ANY_KEY, formatPath, overlaps, parsePath } from '../paths.js';
import type { KindSchema } from '../schema.js';
import type { PendingUpdate, PlannerState } from './types.js';
import { describe } from './updates.js';

/** Deferred updates become ready when a path they may wait for changed, by someone else, since they deferred. */
export function wakeDeferred(state: PlannerState): PendingUpdate[] {
  // Parsed once for all deferred updates: a round may defer thousands of them.
  const changes = Object.entries(state.changes).map(([path, change]) => ({
    path: parsePath(path),
    ...change,
  }));
  const waits = new Map<string, Path>();
  const waitPath = (text: string): Path => {
    let path = waits.get(text);
    if (path === undefined) {
      path = parsePath(text, { allowWildcard: true });
      waits.set(text, path);
    }
    return path;
  };
  return state.pending.map((p) => {
    if (p.status !== 'deferred') return p;
    const waitFor = p.waitFor?.map(waitPath);
    const seen = p.seenVersion ?? 0;
    const woken = changes.some(
      (change) =>
        change.version > seen &&
        change.by !== p.provider &&
        (waitFor === undefined || waitFor.some((w) => overlaps(w, change.path))),
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
  // Providers with something to do (a set, not a scan per deferral: a round may defer thousands of updates).
  const busy = new Set(pending.map((p) => p.provider));
  const owners = new Map<string, string | null>();
  const ownerOf = (text: string): string | null => {
    let owner = owners.get(text);
    if (owner === undefined) {
      try {
        owner = schema.authorityOf(parsePath(text, { allowWildcard: true }));
      } catch {
        owner = null;
      }
      owners.set(text, owner);
    }
    return owner;
  };
  for (const p of pending) {
    if (p.status !== 'deferred' || p.waitFor === undefined) continue;
    for (const text of p.waitFor) {
      const owner = ownerOf(text);
      if (owner === null) continue;
      const key = `${owner}|${text}`;
      if (owner === p.provider || owner === CORE_PROVIDER || nudged.has(key)) continue;
      if (busy.has(owner)) continue;
      busy.add(owner);
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

/** The paths a request's updates touch, to ask whether one overlaps a path without a scan per question. */
class UserPaths {
  /** Every user path and each of its prefixes, formatted. */
  private readonly prefixes = new Set<string>();
  /** The user paths themselves, formatted. */
  private readonly exact = new Set<string>();

  constructor(private readonly paths: readonly Path[]) {
    for (const path of paths) {
      this.exact.add(formatPath(path));
      for (let length = 1; length <= path.length; length++)
        this.prefixes.add(formatPath(path.slice(0, length)));
    }
  }

  /** True when some user path is a prefix of `path`, or `path` of it. */
  touch(path: Path): boolean {
    if (path.some((segment) => 'key' in segment && segment.key === ANY_KEY)) {
      return this.paths.some((u) => overlaps(u, path));
    }
    if (this.prefixes.has(formatPath(path))) return true;
    for (let length = 1; length < path.length; length++) {
      if (this.exact.has(formatPath(path.slice(0, length)))) return true;
    }
    return false;
  }
}

/** How a waited-for path stays unchanged for good: an input nobody gives, an owner blocked too, or an idle owner. */
type DeadWait =
  | { readonly kind: 'input' }
  | { readonly kind: 'chain'; readonly owner: string }
  | { readonly kind: 'idle'; readonly owner: string };

/** Why a waited-for path can never change in this job, or undefined when it still may. */
function deadWait(
  schema: KindSchema,
  p: PendingUpdate,
  text: string,
  pendingOf: ReadonlyMap<string, number>,
  userPaths: UserPaths,
  nudged: ReadonlySet<string>,
): DeadWait | undefined {
  let path: Path;
  let owner: string;
  try {
    path = parsePath(text, { allowWildcard: true });
    owner = schema.authorityOf(path);
  } catch {
    // A path the kind does not have never changes.
    return { kind: 'input' };
  }
  if (owner === p.provider || owner === CORE_PROVIDER) {
    // The provider's own input (or the core's): only the request can give it. If it does, the wait may be about
    // when, not whether, so the old rule holds: ask again after backoff.
    return userPaths.touch(path) ? undefined : { kind: 'input' };
  }
  if ((pendingOf.get(owner) ?? 0) > 0) return { kind: 'chain', owner };
  // An idle owner of another provider's wait is nudged once; until then it may still supply the path.
  return nudged.has(`${owner}|${text}`) ? { kind: 'idle', owner } : undefined;
}

/**
 * Says why no provider can ever make progress, or undefined when one still may. That is so when every pending
 * update is deferred, each names what it waits for (`waitFor`; a deferral without one, or with an empty one, may
 * be cleared by the outside world and is asked again after backoff), and each waited-for path is an input no
 * update of the request supplies (owned by the waiting provider itself or by the core), or is owned by a provider
 * whose own pending updates are all blocked like this, or by one that has nothing pending and was already nudged
 * for the path. Re-asking cannot help then: providers say in `waitFor` what may unblock them, and nothing will
 * change it.
 */
export function hopelessReason(
  schema: KindSchema,
  pending: readonly PendingUpdate[],
  userUpdates: readonly ProposedUpdate[],
  nudged: readonly string[],
): string | undefined {
  if (pending.length === 0) return undefined;
  if (pending.some((p) => p.status !== 'deferred' || p.waitFor === undefined || p.waitFor.length === 0)) {
    return undefined;
  }
  const asked = new Set(nudged);
  const userPaths = new UserPaths(userUpdates.map((u) => parsePath(u.path)));
  const counts = new Map<string, number>();
  for (const p of pending) counts.set(p.provider, (counts.get(p.provider) ?? 0) + 1);
  const causes: string[] = [];
  const chains: string[] = [];
  for (const p of pending) {
    for (const text of p.waitFor ?? []) {
      // Pending updates of the owner other than this one.
      counts.set(p.provider, (counts.get(p.provider) ?? 0) - 1);
      const dead = deadWait(schema, p, text, counts, userPaths, asked);
      counts.set(p.provider, (counts.get(p.provider) ?? 0) + 1);
      if (dead === undefined) return undefined;
      const why = p.reason === undefined ? '' : ` (${p.reason})`;
      const subject =
        p.update.op === 'sync' && p.update.id.startsWith('n')
          ? `${p.update.path} is never supplied`
          : `${describe(p.update)} cannot be done`;
      if (dead.kind === 'chain') chains.push(`${p.provider} waits for ${text} from ${dead.owner}${why}`);
      else if (dead.kind === 'input') {
        causes.push(`${subject}: ${p.provider} needs ${text}, which no update of this change supplies${why}`);
      } else {
        causes.push(
          `${subject}: ${p.provider} waits for ${text}${why}, which ${dead.owner} does not supply (it had nothing to do for it when asked)`,
        );
      }
    }
  }
  // Every chain ends in a cause, unless the providers wait for each other. The cause comes first (it is what the
  // operator can fix); the chains after it say what it holds up.
  if (causes.length === 0)
    return `no provider can make progress: providers wait for each other: ${chains.join('; ')}`;
  const held = chains.length === 0 ? '' : `; held up by it: ${[...new Set(chains)].join('; ')}`;
  return `no provider can make progress: ${[...new Set(causes)].join('; ')}${held}`;
}
