/** The OpenAPI 3.1 document, generated from the compiled kind schemas so that it can never drift from them. */
import type { Kinds } from '../plugins.js';
import { fleetPaths } from './openapi-fleet.js';

const problem = { $ref: '#/components/responses/Problem' };
const json = (schema: unknown) => ({ 'application/json': { schema } });

/** Builds the OpenAPI document of this server's kinds. */
export function openApiDocument(kinds: Kinds, version: string): Record<string, unknown> {
  const schemas: Record<string, unknown> = {
    Problem: {
      type: 'object',
      required: ['type', 'title', 'status', 'code', 'detail'],
      properties: {
        type: { type: 'string' },
        title: { type: 'string' },
        status: { type: 'integer' },
        code: { type: 'string', description: 'stable machine-readable code' },
        detail: { type: 'string' },
        instance: { type: 'string' },
        details: { type: 'object' },
      },
    },
    Job: {
      type: 'object',
      required: ['id', 'kind', 'name', 'action', 'state'],
      properties: {
        id: { type: 'string' },
        kind: { type: 'string' },
        name: { type: 'string' },
        action: { enum: ['create', 'patch', 'delete'] },
        state: { enum: ['held', 'queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'] },
        rounds: { type: 'array', items: { type: 'object' } },
        conditions: { type: 'array', items: { type: 'object' } },
        expiresAt: { type: 'string', description: 'while the job runs: when its TTL ends it (ISO 8601)' },
        failure: { type: 'object' },
      },
    },
  };
  const paths: Record<string, unknown> = {
    '/api/jobs': {
      get: {
        summary: 'List jobs, newest first',
        responses: { 200: { description: 'jobs' }, default: problem },
      },
    },
    '/api/jobs/{id}': {
      get: {
        summary: 'One job with every round',
        responses: {
          200: { description: 'job', content: json({ $ref: '#/components/schemas/Job' }) },
          default: problem,
        },
      },
    },
    '/api/jobs/{id}/events': {
      get: {
        summary: 'Job events as Server-Sent Events',
        responses: { 200: { description: 'text/event-stream' } },
      },
    },
    '/api/jobs/{id}/cancel': {
      post: {
        summary: 'Cancel a job',
        responses: { 202: { description: 'cancel requested' }, default: problem },
      },
    },
  };
  Object.assign(paths, fleetPaths());
  for (const [kind, runtime] of kinds) {
    const title =
      kind.charAt(0).toUpperCase() + kind.slice(1).replace(/-./g, (m) => (m[1] ?? '').toUpperCase());
    const document = Object.fromEntries(
      Object.entries(runtime.schema.document).filter(([k]) => k !== '$schema'),
    );
    schemas[`${title}Attrs`] = document;
    schemas[title] = {
      type: 'object',
      required: ['kind', 'name', 'revision', 'attrs'],
      properties: {
        kind: { const: kind },
        name: { type: 'string' },
        revision: { type: 'integer' },
        attrs: { $ref: `#/components/schemas/${title}Attrs` },
      },
    };
    const accepted = {
      202: { description: 'job accepted', content: json({ $ref: '#/components/schemas/Job' }) },
      default: problem,
    };
    paths[`/api/inventory/${kind}`] = {
      get: {
        summary: `List ${kind} nodes (NetBox-style filters, cursor pagination)`,
        responses: { 200: { description: 'a page' }, default: problem },
      },
      post: {
        summary: `Create a ${kind}`,
        requestBody: json({
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string' }, attrs: { $ref: `#/components/schemas/${title}Attrs` } },
        }),
        responses: accepted,
      },
    };
    paths[`/api/inventory/${kind}/{name}`] = {
      get: {
        summary: `One ${kind}`,
        responses: {
          200: { description: 'node', content: json({ $ref: `#/components/schemas/${title}` }) },
          default: problem,
        },
      },
      patch: {
        summary: `Change a ${kind}`,
        requestBody: {
          content: {
            'application/merge-patch+json': { schema: { $ref: `#/components/schemas/${title}Attrs` } },
            'application/json-patch+json': { schema: { type: 'array', items: { type: 'object' } } },
          },
        },
        responses: accepted,
      },
      delete: { summary: `Delete a ${kind}`, responses: accepted },
    };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: { title: 'Consortium API', version },
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Problem: {
          description: 'an error',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
