/** Bearer-token authentication and role checks for the API. */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Coordinator, Role, TokenRecord, TokenStore } from '@consortium/core';
import { ForbiddenError, UnauthenticatedError } from '@consortium/core';
import { TOKEN_REVOKED_TOPIC, hashToken, roleAllows } from '../tokens.js';

/** Who is calling. */
export interface Caller {
  readonly id: string;
  readonly role: Role;
}

/** The caller of an authenticated request. */
export function callerOf(res: Response): Caller {
  return res.locals['caller'] as Caller;
}

/**
 * How long a looked-up token is trusted before the store is asked again. A revocation through the API clears the
 * cache of every web process at once (`TOKEN_REVOKED_TOPIC`); a token deleted from the store behind the API's back
 * works at most this long.
 */
export const TOKEN_CACHE_MS = 5_000;

/**
 * Authenticates `Authorization: Bearer <token>` against the stored token hashes; throws `UnauthenticatedError`.
 * Lookups are cached for `TOKEN_CACHE_MS` per secret, so a busy client costs one hash and one store read per window;
 * a revocation announced on the coordinator empties the cache. Returns the handler and a function that stops
 * listening for revocations.
 */
export function authenticate(
  store: TokenStore,
  coordinator: Pick<Coordinator, 'subscribe'>,
  now: () => number,
): RequestHandler & { close(): void } {
  const cache = new Map<string, { token: TokenRecord | undefined; until: number }>();
  // A generation makes a lookup that was in flight while a revocation arrived not refill the cache with it.
  let generation = 0;
  const unsubscribe = coordinator.subscribe(TOKEN_REVOKED_TOPIC, () => {
    generation += 1;
    cache.clear();
  });
  const handler = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    if (header === undefined) throw new UnauthenticatedError('missing Authorization: Bearer <token>');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match === null) throw new UnauthenticatedError('the Authorization header must be "Bearer <token>"');
    const secret = match[1] as string;
    let cached = cache.get(secret);
    if (cached === undefined || cached.until <= now()) {
      if (cache.size >= 1_000) cache.clear();
      const asked = generation;
      cached = { token: await store.findToken(hashToken(secret)), until: now() + TOKEN_CACHE_MS };
      if (asked === generation) cache.set(secret, cached);
    }
    const token = cached.token;
    if (token === undefined) throw new UnauthenticatedError('unknown token');
    if (token.expiresAt !== undefined && token.expiresAt <= now())
      throw new UnauthenticatedError('token expired');
    res.locals['caller'] = { id: token.id, role: token.role } satisfies Caller;
    next();
  };
  return Object.assign(handler, { close: unsubscribe });
}

/** Requires at least `role`; throws `ForbiddenError` naming what is needed. */
export function requireRole(res: Response, role: Role): Caller {
  const caller = callerOf(res);
  if (!roleAllows(caller.role, role)) {
    throw new ForbiddenError(`this needs the ${role} role; token ${caller.id} has ${caller.role}`);
  }
  return caller;
}
