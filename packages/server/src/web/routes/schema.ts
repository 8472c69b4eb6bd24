/** Schemas: every kind with its attributes and providers, one kind's JSON Schema, and the OpenAPI document. */
import { createHash } from 'node:crypto';
import express from 'express';
import { requireRole } from '../auth.js';
import { openApiDocument } from '../openapi.js';
import type { WebDeps } from '../shared.js';
import { runtimeOf } from '../shared.js';

/** The router of `/api/schema` and `/api/openapi.json`. */
export function schemaRouter(deps: Pick<WebDeps, 'kinds' | 'version'>): express.Router {
  const { kinds } = deps;
  const router = express.Router();
  router.get('/schema', (_req, res) => {
    requireRole(res, 'reader');
    res.json({
      kinds: [...kinds].map(([name, runtime]) => ({
        name,
        description: runtime.schema.description,
        attributes: runtime.schema.attributes,
        providers: runtime.schema.providers,
        links: { schema: `/api/schema/${name}` },
      })),
    });
  });
  router.get('/schema/:kind', (req, res) => {
    requireRole(res, 'reader');
    const { document } = runtimeOf(kinds, req.params['kind']).schema;
    const etag = `"${createHash('sha1').update(JSON.stringify(document)).digest('base64url')}"`;
    res.setHeader('ETag', etag);
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    res.type('application/schema+json').send(JSON.stringify(document));
  });
  router.get('/openapi.json', (req, res) => {
    requireRole(res, 'reader');
    // The origin the client used (behind a trusted proxy, the one it was reached at), so tools can call the API.
    res.json(
      openApiDocument(kinds, deps.version, {
        serverUrl: `${req.protocol}://${req.get('host') ?? 'localhost'}`,
      }),
    );
  });
  return router;
}
