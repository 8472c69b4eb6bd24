/**
 * Who did something, as the API shows it: a token's id with its description, so that an operator reads "ci
 * pipeline (3f9a1c0b7d2e)" rather than an opaque id. A token revoked since keeps its id and shows no description.
 *
 * Each web process keeps the descriptions it last read, so that an answer about a job does not read every token
 * again: the copy is read anew when an answer names an id it does not hold (a token made since, by any process),
 * when a revocation is announced (`TOKEN_REVOKED_TOPIC`, as the authentication cache hears it), and at the latest
 * after `TOKEN_CACHE_MS`, which bounds how long a token deleted behind the API's back keeps its description.
 */
import type { ActorView, Clock, Coordinator, JobRecord, TokenStore } from '@consortium/core';
import { TOKEN_REVOKED_TOPIC } from '../tokens.js';
import { TOKEN_CACHE_MS } from './auth.js';

/** An actor on the wire. */
export type { ActorView };

/** A function from actor id to its view. */
export type ActorNames = (id: string) => ActorView;

/** What the names are read through. */
export interface ActorDeps {
  readonly store: Pick<TokenStore, 'listTokens'>;
  readonly coordinator: Pick<Coordinator, 'subscribe'>;
  readonly clock: Pick<Clock, 'now'>;
}

/** The token descriptions of one web process (one per coordinator) and when they were read. */
class Descriptions {
  #read: { readonly byId: ReadonlyMap<string, string | null>; readonly until: number } | undefined;
  /** Bumped by every revocation, so that a read in flight while one arrived is not kept. */
  #generation = 0;

  constructor(private readonly deps: ActorDeps) {
    deps.coordinator.subscribe(TOKEN_REVOKED_TOPIC, () => {
      this.#generation += 1;
      this.#read = undefined;
    });
  }

  async names(ids: readonly string[]): Promise<ActorNames> {
    const { store, clock } = this.deps;
    let read = this.#read;
    if (read === undefined || read.until <= clock.now() || ids.some((id) => !read?.byId.has(id))) {
      const asked = this.#generation;
      const byId = new Map((await store.listTokens()).map((t) => [t.id, t.description ?? null]));
      read = { byId, until: clock.now() + TOKEN_CACHE_MS };
      if (asked === this.#generation) this.#read = read;
    }
    const { byId } = read;
    return (id) => ({ id, description: byId.get(id) ?? null });
  }
}

/** The copies, by store and coordinator (one pair per web process; tests make several). */
const copies = new WeakMap<object, WeakMap<object, Descriptions>>();

/**
 * The view of the actors `ids` (every id the answer will name; another id shows no description), reading the
 * tokens only when this process's copy may not hold them as they are.
 */
export async function actorNames(deps: ActorDeps, ids: readonly string[]): Promise<ActorNames> {
  let byCoordinator = copies.get(deps.store);
  if (byCoordinator === undefined) {
    byCoordinator = new WeakMap();
    copies.set(deps.store, byCoordinator);
  }
  let found = byCoordinator.get(deps.coordinator);
  if (found === undefined) {
    found = new Descriptions(deps);
    byCoordinator.set(deps.coordinator, found);
  }
  return found.names(ids);
}

/** The actors a job's view names: who asked, and who asked to cancel it. */
export function jobActors(job: JobRecord): string[] {
  return job.cancelRequested === undefined ? [job.actor] : [job.actor, job.cancelRequested.by];
}
