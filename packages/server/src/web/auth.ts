/** Bearer-token authentication and role checks for the API. */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Role, Store, TokenRecord } from '@consortium/core';
import { ForbiddenError, UnauthenticatedError } from '@consortium/core';
import { hashToken, roleAllows } from '../tokens.js';

/** Who is calling. */
export interface Caller {
  readonly id: string;
  readonly role: Role;
}

/** The caller of an authenticated request. */
export function callerOf(res: Response): Caller {
  return res.locals['caller'] as Caller;
}

/** How long a looked-up token is trusted before the store is asked again (a revoked token works this long). */
export const TOKEN_CACHE_MS = 5_000;

/**
 * Authenticates `Authorization: Bearer <token>` against the stored token hashes; throws `UnauthenticatedError`.
 * Lookups are cached for `TOKEN_CACHE_MS` per secret, so a busy client costs one hash and one store read per window.
 */
export function authenticate(store: Store, now: () => number): RequestHandler {
  const cache = new Map<string, { token: TokenRecord | undefined; until: number }>();
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (header === undefined) throw new UnauthenticatedError('missing Authorization: Bearer <token>');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match === null) throw new UnauthenticatedError('the Authorization header must be "Bearer <token>"');
    const secret = match[1] as string;
    let cached = cache.get(secret);
    if (cached === undefined || cached.until <= now()) {
      if (cache.size >= 1_000) cache.clear();
      cached = { token: await store.findToken(hashToken(secret)), until: now() + TOKEN_CACHE_MS };
      cache.set(secret, cached);
    }
    const token = cached.token;
    if (token === undefined) throw new UnauthenticatedError('unknown token');
    if (token.expiresAt !== undefined && token.expiresAt <= now())
      throw new UnauthenticatedError('token expired');
    res.locals['caller'] = { id: token.id, role: token.role } satisfies Caller;
    next();
  };
}

/** Requires at least `role`; throws `ForbiddenError` naming what is needed. */
export function requireRole(res: Response, role: Role): Caller {
  const caller = callerOf(res);
  if (!roleAllows(caller.role, role)) {
    throw new ForbiddenError(`this needs the ${role} role; token ${caller.id} has ${caller.role}`);
  }
  return caller;
}
