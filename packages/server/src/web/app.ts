/**
 * The HTTP API (DESIGN.md §7): inventory reads from the store, changes become jobs (202 + Location), jobs and
 * their event streams, schemas and OpenAPI, health and metrics. Every error is problem+json with a stable code.
 * Each resource has its own router (`routes/`); this file only composes them.
 */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { authenticate } from './auth.js';
import { BodyParserWorker, jsonBody } from './body.js';
import { consoleRouter } from './console.js';
import { problemHandler, sendProblem } from './problem.js';
import { batchesRouter } from './routes/batches.js';
import { discoveryRouter } from './routes/discovery.js';
import { encRouter } from './routes/enc.js';
import { auditRouter } from './routes/audit.js';
import { healthRouter } from './routes/health.js';
import { hooksRouter } from './routes/hooks.js';
import { inventoryRouter } from './routes/inventory.js';
import { jobsRouter } from './routes/jobs.js';
import { schemaRouter } from './routes/schema.js';
import { searchRouter } from './routes/search.js';
import { tokensRouter } from './routes/tokens.js';
import type { WebDeps } from './shared.js';
import { JSON_PATCH, MERGE_PATCH, UPDATES } from './shared.js';

export type { WebDeps } from './shared.js';
export { parseWait } from './shared.js';

/** Builds the express app of the web role. */
export function createApp(deps: WebDeps): express.Express {
  const { store, coordinator, clock, metrics, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // Behind a reverse proxy, req.ip and req.protocol come from X-Forwarded-For/-Proto, but only from proxies named.
  if (deps.trustProxy !== undefined) {
    app.set('trust proxy', typeof deps.trustProxy === 'string' ? deps.trustProxy : [...deps.trustProxy]);
  }

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const seconds = (performance.now() - started) / 1000;
      metrics.httpRequest(req.method, `${req.baseUrl}${route}`, res.statusCode, seconds);
      // The client is the proxy's X-Forwarded-For entry only when web.trustProxy names that proxy.
      if (logger.isDebugEnabled()) {
        logger.debug('request', {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          ms: Math.round(seconds * 1000),
          client: req.ip,
        });
      }
    });
    next();
  });

  app.use(healthRouter(deps));

  const api = express.Router();
  api.use(authenticate(store, coordinator, () => clock.now()));
  api.use(
    jsonBody({
      limit: deps.bodyLimit,
      types: ['application/json', MERGE_PATCH, JSON_PATCH, UPDATES],
      worker: deps.bodyParser ?? new BodyParserWorker(),
    }),
  );
  api.use(schemaRouter(deps));
  api.use(inventoryRouter(deps));
  api.use(searchRouter(deps));
  api.use(jobsRouter(deps));
  api.use(tokensRouter(deps));
  api.use(batchesRouter(deps));
  api.use(encRouter(deps));
  api.use(discoveryRouter(deps));
  api.use(auditRouter(deps));
  api.use(hooksRouter(deps));

  app.use('/api', api);
  app.use(consoleRouter(deps.consoleDir));
  app.use((req, res) => {
    sendProblem(res, 'NOT_FOUND', `no route for ${req.method} ${req.path}`);
  });
  app.use(problemHandler(logger));
  return app;
}
