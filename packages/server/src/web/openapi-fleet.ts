/** The OpenAPI paths of fleet operations: batches, the Puppet ENC and discovery (hooks: openapi-hooks.ts). */

const problem = { $ref: '#/components/responses/Problem' };

/** One entry of a discovery group: its name, the providers that hold it, and `field` (drift or attrs). */
const discovered = (field: string, schema: Record<string, unknown>) => ({
  type: 'object',
  required: ['name', 'providers', field],
  properties: {
    name: { type: 'string' },
    providers: { type: 'array', items: { type: 'string' } },
    [field]: schema,
  },
});

/** Paths of `/api/batches`, `/api/enc`, `/api/hooks` and `/api/discovery`, keyed as OpenAPI's `paths`. */
export function fleetPaths(): Record<string, unknown> {
  return {
    '/api/batches': {
      get: {
        summary: 'The newest batches with their counts and state',
        responses: { 200: { description: 'batches' }, default: problem },
      },
      post: {
        summary:
          'Change or delete many nodes: one job per node selected (a search query or names), at most `concurrency` at once, stopping after `failureBudget` failures (N or "N%"); `?explain=true` summarises every node\'s plan',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['kind', 'selector'],
                properties: {
                  kind: { type: 'string' },
                  selector: {
                    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
                  },
                  updates: { type: 'array', items: { type: 'object' } },
                  delete: { const: true },
                  concurrency: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
                  failureBudget: { oneOf: [{ type: 'integer', minimum: 1 }, { type: 'string' }] },
                },
              },
            },
          },
        },
        responses: {
          200: { description: 'the explain of every node' },
          202: { description: 'batch accepted' },
          default: problem,
        },
      },
    },
    '/api/enc/{name}': {
      parameters: [
        {
          name: 'name',
          in: 'path',
          required: true,
          description: "the node's name",
          schema: { type: 'string' },
        },
      ],
      get: {
        summary:
          "Puppet's external node classifier: YAML with classes (puppet_roles) and parameters (the other attributes); ?kind= (host)",
        responses: { 200: { description: 'application/yaml' }, default: problem },
      },
    },
    '/api/discovery': {
      get: {
        summary:
          'What the backends hold for ?kind=, one entry per name listing the providers that hold it: known (a node exists, with drift), adoptable (no node, never one), orphaned (no node, but a job or audit entry names one)',
        parameters: [
          { name: 'kind', in: 'query', required: true, description: 'the kind', schema: { type: 'string' } },
        ],
        responses: {
          200: {
            description: 'the three groups',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['kind', 'known', 'adoptable', 'orphaned'],
                  properties: {
                    kind: { type: 'string' },
                    known: {
                      type: 'array',
                      items: discovered('drift', { type: 'array', items: { type: 'object' } }),
                    },
                    adoptable: { type: 'array', items: discovered('attrs', { type: 'object' }) },
                    orphaned: { type: 'array', items: discovered('attrs', { type: 'object' }) },
                  },
                },
              },
            },
          },
          default: problem,
        },
      },
    },
    '/api/discovery/adopt': {
      post: {
        summary:
          'Create nodes from observed values ({kind, names} or {kind, all: true}: every adoptable one; an orphan only by name); writes no backend. 404 for a name no backend holds, 409 for one that is a node; then nothing is adopted',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['kind'],
                properties: {
                  kind: { type: 'string' },
                  names: { type: 'array', items: { type: 'string' }, minItems: 1 },
                  all: { const: true },
                },
              },
            },
          },
        },
        responses: { 201: { description: '{kind, adopted: [{name, providers, attrs}]}' }, default: problem },
      },
    },
    '/api/batches/{id}': {
      parameters: [
        { name: 'id', in: 'path', required: true, description: 'the batch id', schema: { type: 'string' } },
      ],
      get: {
        summary: "One batch: counts per job state, state, every node's job and why it failed",
        responses: { 200: { description: 'batch' }, default: problem },
      },
    },
    '/api/batches/{id}/cancel': {
      parameters: [
        { name: 'id', in: 'path', required: true, description: 'the batch id', schema: { type: 'string' } },
      ],
      post: {
        summary: 'Cancel a batch: held jobs never start, queued and running ones are cancelled',
        responses: { 202: { description: 'cancel requested' }, default: problem },
      },
    },
  };
}
