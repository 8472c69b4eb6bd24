/** API tokens: random secrets shown once, stored only as SHA-256 hashes, each with a role and maybe an expiry. */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Coordinator, Role, TokenRecord, TokenStore, TokenView } from '@consortium/core';
import { InputError, NotFoundError } from '@consortium/core';

/** Roles from least to most allowed. */
export const ROLES: readonly Role[] = ['reader', 'operator', 'admin'];

/** The longest life a token may be given: ten years. */
export const MAX_TOKEN_TTL_SECONDS = 10 * 366 * 24 * 3600;

/** The longest description a token may carry. */
export const MAX_TOKEN_DESCRIPTION = 200;

/** The coordinator topic on which a revocation is announced, so that every web process drops its cached tokens. */
export const TOKEN_REVOKED_TOPIC = 'tokens/revoked';

/** The file in the data dir that keeps `consortium dev`'s admin token between starts. */
export const DEV_TOKEN_FILE = 'dev-admin-token';

/** True when `role` allows what `needed` allows. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** The stored form of a token secret. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Creates a token and returns its secret (shown once) with its record; throws `InputError` for a bad role, TTL or description. */
export async function createToken(
  store: TokenStore,
  options: { role: string; description?: string; ttlSeconds?: number; now: number },
): Promise<{ secret: string; record: TokenRecord }> {
  if (!ROLES.includes(options.role as Role)) {
    throw new InputError(`unknown role "${options.role}" (roles: ${ROLES.join(', ')})`);
  }
  const ttl = options.ttlSeconds;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0 && ttl <= MAX_TOKEN_TTL_SECONDS)) {
    throw new InputError(
      `a token TTL must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS} (ten years)`,
      { details: { field: 'ttlSeconds', max: MAX_TOKEN_TTL_SECONDS } },
    );
  }
  if (options.description !== undefined && options.description.length > MAX_TOKEN_DESCRIPTION) {
    throw new InputError(`a token description has at most ${MAX_TOKEN_DESCRIPTION} characters`, {
      details: { field: 'description', max: MAX_TOKEN_DESCRIPTION },
    });
  }
  const secret = `cst_${randomBytes(24).toString('base64url')}`;
  const record: TokenRecord = {
    id: randomBytes(6).toString('hex'),
    hash: hashToken(secret),
    role: options.role as Role,
    createdAt: options.now,
    ...(options.description === undefined ? {} : { description: options.description }),
    ...(ttl === undefined ? {} : { expiresAt: options.now + ttl * 1000 }),
  };
  await store.putToken(record);
  return { secret, record };
}

export type { TokenView } from '@consortium/core';

/** The view of a token record (times as ISO 8601). */
export function tokenView(token: TokenRecord): TokenView {
  return {
    id: token.id,
    role: token.role,
    description: token.description ?? null,
    createdAt: new Date(token.createdAt).toISOString(),
    expiresAt: token.expiresAt === undefined ? null : new Date(token.expiresAt).toISOString(),
  };
}

/**
 * Revokes a token: deletes it and announces it on `TOKEN_REVOKED_TOPIC`, so that every web process forgets the
 * tokens it cached before its next request is authenticated. Throws `NotFoundError` for an unknown id.
 */
export async function revokeToken(
  store: TokenStore,
  coordinator: Coordinator,
  id: string,
): Promise<TokenRecord> {
  const token = (await store.listTokens()).find((t) => t.id === id);
  if (token === undefined) throw new NotFoundError(`token ${id} does not exist`, { details: { id } });
  await store.deleteToken(id);
  await coordinator.notify(TOKEN_REVOKED_TOPIC, { id });
  return token;
}

/**
 * `consortium dev`'s admin token: the one kept in `<dataDir>/dev-admin-token` while the store still knows it,
 * else a new one written there. Also restricts the data dir's files to their owner (0600, the dir 0700): they
 * hold the store and this secret. A restart therefore keeps one never-expiring admin token, not one more per start.
 */
export async function devAdminToken(store: TokenStore, dataDir: string, now: number): Promise<string> {
  await restrictDataDir(dataDir);
  const file = join(dataDir, DEV_TOKEN_FILE);
  const kept = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (kept !== '') {
    const token = await store.findToken(hashToken(kept));
    if (token !== undefined && token.role === 'admin' && token.expiresAt === undefined) return kept;
  }
  const { secret } = await createToken(store, { role: 'admin', description: 'consortium dev', now });
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  // writeFile's mode applies only to a new file; an existing one keeps its mode otherwise.
  await chmod(file, 0o600);
  return secret;
}

/** Makes the data dir 0700 and every file in it 0600 (SQLite gives its -wal and -shm files the database's mode). */
async function restrictDataDir(dataDir: string): Promise<void> {
  await chmod(dataDir, 0o700);
  for (const entry of await readdir(dataDir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(dataDir, entry.name), 0o600);
  }
}
