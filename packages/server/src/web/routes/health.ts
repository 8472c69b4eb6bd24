/** Health, readiness and Prometheus metrics: unauthenticated, outside `/api`. */
import express from 'express';
import { sendProblem } from '../problem.js';
import type { WebDeps } from '../shared.js';

/** The router of `/healthz`, `/readyz` and `/metrics`. */
export function healthRouter(deps: Pick<WebDeps, 'metrics' | 'ready'>): express.Router {
  const { metrics } = deps;
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    if (await deps.ready()) res.json({ status: 'ready' });
    else sendProblem(res, 'BACKEND_UNAVAILABLE', 'not ready');
  });
  router.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
