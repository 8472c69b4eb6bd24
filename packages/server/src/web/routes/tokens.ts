/** API tokens (admin only) and the caller's own identity. */
import express from 'express';
import { InputError } from '@consortium/core';
import { createToken } from '../../tokens.js';
import { callerOf, requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { requireBody } from '../shared.js';

/** The router of `/api/tokens` and `/api/whoami`. */
export function tokensRouter(deps: Pick<WebDeps, 'store' | 'clock'>): express.Router {
  const { store, clock } = deps;
  const router = express.Router();
  router.post('/tokens', async (req, res) => {
    requireRole(res, 'admin');
    requireBody(req, ['application/json']);
    const { role, description, ttlSeconds } = (req.body ?? {}) as {
      role?: unknown;
      description?: unknown;
      ttlSeconds?: unknown;
    };
    if (typeof role !== 'string') throw new InputError('role is required (reader, operator or admin)');
    if (description !== undefined && typeof description !== 'string')
      throw new InputError('description must be a string');
    if (ttlSeconds !== undefined && typeof ttlSeconds !== 'number')
      throw new InputError('ttlSeconds must be a number');
    const { secret, record } = await createToken(store, {
      role,
      now: clock.now(),
      ...(description === undefined ? {} : { description }),
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
    });
    res
      .status(201)
      .json({ id: record.id, role: record.role, token: secret, expiresAt: record.expiresAt ?? null });
  });
  router.get('/tokens', async (_req, res) => {
    requireRole(res, 'admin');
    const tokens = await store.listTokens();
    res.json({
      items: tokens.map((t) => ({
        id: t.id,
        role: t.role,
        description: t.description,
        createdAt: t.createdAt,
        expiresAt: t.expiresAt,
      })),
    });
  });
  router.get('/whoami', (_req, res) => {
    res.json(callerOf(res));
  });
  return router;
}
