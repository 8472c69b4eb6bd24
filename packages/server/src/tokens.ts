/** API tokens: random secrets shown once, stored only as SHA-256 hashes, each with a role and maybe an expiry. */
import { createHash, randomBytes } from 'node:crypto';
import type { Role, Store, TokenRecord } from '@consortium/core';
import { InputError } from '@consortium/core';

/** Roles from least to most allowed. */
export const ROLES: readonly Role[] = ['reader', 'operator', 'admin'];

/** True when `role` allows what `needed` allows. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** The stored form of a token secret. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Creates a token and returns its secret (shown once) with its record; throws `InputError` for a bad role or TTL. */
export async function createToken(
  store: Store,
  options: { role: string; description?: string; ttlSeconds?: number; now: number },
): Promise<{ secret: string; record: TokenRecord }> {
  if (!ROLES.includes(options.role as Role)) {
    throw new InputError(`unknown role "${options.role}" (roles: ${ROLES.join(', ')})`);
  }
  if (options.ttlSeconds !== undefined && !(Number.isInteger(options.ttlSeconds) && options.ttlSeconds > 0)) {
    throw new InputError('a token TTL must be a positive number of seconds');
  }
  const secret = `cst_${randomBytes(24).toString('base64url')}`;
  const record: TokenRecord = {
    id: randomBytes(6).toString('hex'),
    hash: hashToken(secret),
    role: options.role as Role,
    createdAt: options.now,
    ...(options.description === undefined ? {} : { description: options.description }),
    ...(options.ttlSeconds === undefined ? {} : { expiresAt: options.now + options.ttlSeconds * 1000 }),
  };
  await store.putToken(record);
  return { secret, record };
}
