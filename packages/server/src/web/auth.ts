/** Bearer-token authentication and role checks for the API. */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Role, Store } from '@consortium/core';
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

/** Authenticates `Authorization: Bearer <token>` against the stored token hashes; throws `UnauthenticatedError`. */
export function authenticate(store: Store, now: () => number): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (header === undefined) throw new UnauthenticatedError('missing Authorization: Bearer <token>');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match === null) throw new UnauthenticatedError('the Authorization header must be "Bearer <token>"');
    const token = await store.findToken(hashToken(match[1] as string));
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
