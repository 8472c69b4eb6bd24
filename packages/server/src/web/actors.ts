/**
 * Who did something, as the API shows it: a token's id with its description, so that an operator reads "ci
 * pipeline (3f9a1c0b7d2e)" rather than an opaque id. The description is looked up when the answer is made; a
 * token revoked since keeps its id and shows no description.
 */
import type { ActorView, TokenStore } from '@consortium/core';

/** An actor on the wire. */
export type { ActorView };

/** A function from actor id to its view, reading the tokens once for one answer. */
export type ActorNames = (id: string) => ActorView;

/** Reads the tokens once and returns the view of any actor id among them. */
export async function actorNames(store: Pick<TokenStore, 'listTokens'>): Promise<ActorNames> {
  const descriptions = new Map((await store.listTokens()).map((t) => [t.id, t.description ?? null]));
  return (id) => ({ id, description: descriptions.get(id) ?? null });
}
