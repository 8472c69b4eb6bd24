/** API tokens (admin only): create, list, revoke; and the caller's own identity. */
import express from 'express';
import { InputError } from '@consortium/core';
import { createToken, revokeToken, tokenView } from '../../tokens.js';
import { callerOf, requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { requireBody } from '../shared.js';

/** The router of `/api/tokens` and `/api/whoami`. */
export function tokensRouter(deps: Pick<WebDeps, 'store' | 'coordinator' | 'clock'>): express.Router {
  const { store, coordinator, clock } = deps;
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
    res.status(201).json({ ...tokenView(record), token: secret });
  });
  router.get('/tokens', async (_req, res) => {
    requireRole(res, 'admin');
    const tokens = await store.listTokens();
    res.json({ items: tokens.map(tokenView) });
  });
  router.delete('/tokens/:id', async (req, res) => {
    requireRole(res, 'admin');
    // Announced on the coordinator: every web process drops its cached tokens (see revokeToken).
    const token = await revokeToken(store, coordinator, req.params['id']);
    res.json({ ...tokenView(token), revoked: true });
  });
  router.get('/whoami', (_req, res) => {
    res.json(callerOf(res));
  });
  return router;
}
