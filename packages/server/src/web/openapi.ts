/**
 * The OpenAPI 3.1 document of the whole API: every route with its path and query parameters, request bodies with
 * their media types (the updates list `consort` sends included), list and error responses. The kinds' schemas are
 * generated from the compiled kind schemas so that they can never drift from them; `openapi.test.ts` validates the
 * document and checks that every express route is in it, so a route added without its description fails CI.
 */
import type { Kinds } from '../plugins.js';
import { fleetPaths } from './openapi-fleet.js';
import { hookPaths } from './openapi-hooks.js';
import { AUDIT_QUERY } from './routes/audit.js';
import { JSON_PATCH, MERGE_PATCH, UPDATES } from './shared.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const problem = { $ref: '#/components/responses/Problem' };
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const ok = (description: string, schema: unknown) => ({ description, content: json(schema) });
const string = { type: 'string' };
const dateTime = { type: 'string', format: 'date-time', description: 'RFC 3339, UTC' };
const nullable = (schema: Record<string, unknown>) => ({ oneOf: [schema, { type: 'null' }] });
const page = (item: unknown, description: string) => ({
  type: 'object',
  required: ['items'],
  description,
  properties: {
    items: { type: 'array', items: item },
    next: { type: 'string', description: 'the cursor of the next page; absent on the last page' },
  },
});
const query = (name: string, description: string, schema: unknown = string) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});
const pathParam = (name: string, description: string, schema: unknown = string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema,
});

/** The shared schemas: problems, actors, updates, failures, conditions. */
function commonSchemas(): Record<string, unknown> {
  return {
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details with a stable code',
      required: ['type', 'title', 'status', 'code', 'detail'],
      properties: {
        type: string,
        title: string,
        status: { type: 'integer' },
        code: { type: 'string', description: 'stable machine-readable code' },
        detail: string,
        instance: string,
        details: { type: 'object' },
      },
    },
    Actor: {
      type: 'object',
      description: "who did something: a token's id and description",
      required: ['id', 'description'],
      properties: { id: string, description: nullable(string) },
    },
    Update: {
      type: 'object',
      required: ['path', 'op'],
      properties: {
        path: { type: 'string', description: 'an attribute path: power, interfaces[eth0].ip' },
        op: { enum: ['set', 'unset', 'add', 'remove', 'merge'] },
        value: {},
      },
      additionalProperties: false,
    },
    Updates: {
      type: 'array',
      description: `the body of ${UPDATES}: proposed updates, as consort sends them`,
      items: ref('Update'),
    },
    Failure: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: string, message: string, providers: { type: 'array', items: string } },
    },
    Condition: {
      type: 'object',
      properties: { provider: string, updateId: string, path: string, status: string, reason: string },
    },
  };
}

/** The schemas of jobs and plans. */
function jobSchemas(): Record<string, unknown> {
  const round = {
    type: 'object',
    required: ['round', 'startedAt', 'endedAt', 'tasks'],
    properties: {
      round: { type: 'integer' },
      startedAt: dateTime,
      endedAt: dateTime,
      tasks: { type: 'array', items: { type: 'object' } },
      changes: {
        type: 'array',
        items: { type: 'object', properties: { path: string, by: string } },
      },
      progress: { type: 'boolean' },
    },
  };
  const jobBase = {
    id: string,
    kind: string,
    name: string,
    action: { enum: ['create', 'patch', 'delete'] },
    state: { enum: ['held', 'queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'] },
    actor: ref('Actor'),
    createdAt: dateTime,
    startedAt: dateTime,
    endedAt: dateTime,
    updates: { type: 'array', items: ref('Update') },
    failure: ref('Failure'),
    rollback: {
      type: 'object',
      description: "a failed create's rollback",
      properties: { state: string, rounds: { type: 'array', items: ref('Round') } },
    },
    cancelRequested: { type: 'object', properties: { by: ref('Actor'), at: dateTime } },
    expiresAt: { ...dateTime, description: 'while the job runs: when its TTL ends it (RFC 3339)' },
    batch: { type: 'string', description: 'the batch the job belongs to' },
    links: {
      type: 'object',
      properties: { self: string, events: string, node: string },
    },
  };
  const jobRequired = ['id', 'kind', 'name', 'action', 'state', 'actor', 'createdAt', 'updates', 'links'];
  return {
    Round: round,
    Job: {
      type: 'object',
      required: [...jobRequired, 'rounds', 'conditions'],
      properties: {
        ...jobBase,
        rounds: { type: 'array', items: ref('Round') },
        conditions: { type: 'array', items: ref('Condition') },
      },
    },
    JobSummary: {
      type: 'object',
      required: [...jobRequired, 'roundCount'],
      properties: { ...jobBase, roundCount: { type: 'integer' } },
    },
    JobPage: page(ref('JobSummary'), 'jobs, newest first'),
    Plan: {
      type: 'object',
      required: ['outcome', 'rounds', 'later', 'blockedOn'],
      properties: {
        outcome: { enum: ['succeeded', 'failed', 'blocked'] },
        rounds: { type: 'array', items: ref('Round') },
        later: { type: 'array', items: { type: 'object', properties: { path: string, provider: string } } },
        blockedOn: { type: 'array', items: ref('Condition') },
        reason: string,
        failure: ref('Failure'),
      },
    },
    Explanation: {
      type: 'object',
      description: 'what a change would do, round by round; nothing was changed',
      required: ['explain', 'kind', 'name', 'action', 'updates', 'plan'],
      properties: {
        explain: { const: true },
        kind: string,
        name: string,
        action: { enum: ['create', 'patch', 'delete'] },
        updates: { type: 'array', items: ref('Update') },
        plan: ref('Plan'),
      },
    },
  };
}

/** The schemas of nodes, search, audit, tokens and kinds. */
function inventorySchemas(): Record<string, unknown> {
  return {
    Node: {
      type: 'object',
      required: ['kind', 'name', 'revision', 'attrs', 'createdAt', 'updatedAt'],
      properties: {
        kind: string,
        name: string,
        revision: { type: 'integer', description: 'grows by one on every write; the ETag' },
        attrs: { type: 'object' },
        createdAt: dateTime,
        updatedAt: dateTime,
        unchanged: { const: true, description: 'a patch that changed nothing' },
      },
    },
    SearchResult: {
      type: 'object',
      required: ['items'],
      properties: {
        items: { type: 'array', items: ref('Node') },
        truncated: { const: true, description: 'more nodes match than limit' },
      },
    },
    AuditEntry: {
      type: 'object',
      required: ['at', 'actor', 'action', 'kind', 'name', 'job', 'before', 'after', 'links'],
      properties: {
        at: dateTime,
        actor: ref('Actor'),
        action: { type: 'string', description: 'the action and how its job ended: patch:succeeded' },
        kind: string,
        name: string,
        job: nullable(string),
        before: nullable({ type: 'object' }),
        after: nullable({ type: 'object' }),
        links: { type: 'object', properties: { node: string, job: string, hook: string } },
      },
    },
    AuditPage: page(ref('AuditEntry'), 'audit entries, newest first'),
    Token: {
      type: 'object',
      required: ['id', 'role', 'description', 'createdAt', 'expiresAt'],
      properties: {
        id: string,
        role: { enum: ['reader', 'operator', 'admin'] },
        description: nullable(string),
        createdAt: dateTime,
        expiresAt: nullable(dateTime),
      },
    },
    Kinds: {
      type: 'object',
      required: ['kinds'],
      properties: {
        kinds: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              name: string,
              description: string,
              attributes: { type: 'array', items: string },
              providers: { type: 'array', items: string },
              links: { type: 'object', properties: { schema: string } },
            },
          },
        },
      },
    },
  };
}

/** Parameters more than one route takes. */
function commonParameters(): Record<string, unknown> {
  return {
    Limit: query('limit', 'page size, a whole number from 1 (defaults and maximum differ per list)', {
      type: 'integer',
      minimum: 1,
    }),
    Cursor: query('cursor', 'the `next` of the previous page'),
    Wait: query('wait', 'wait up to this long for the job to end: 30s, 500ms, 2m (at most 10m)', {
      type: 'string',
      pattern: '^[0-9]+(ms|s|m)?$',
    }),
    Explain: query('explain', 'true: answer the plan round by round and change nothing (a reader may)', {
      enum: ['true', 'false'],
    }),
    IfMatch: {
      name: 'If-Match',
      in: 'header',
      required: false,
      description: 'apply only at this revision: "3" (or *)',
      schema: string,
    },
    IfNoneMatch: {
      name: 'If-None-Match',
      in: 'header',
      required: false,
      description: 'an ETag from an earlier answer: 304 when unchanged',
      schema: string,
    },
    JobId: pathParam('id', 'the job id'),
  };
}

/** The routes that do not depend on the kinds. */
function commonPaths(): Record<string, unknown> {
  const open = { security: [] };
  return {
    '/healthz': {
      get: {
        ...open,
        summary: 'Liveness',
        tags: ['health'],
        responses: { 200: ok('alive', { type: 'object' }) },
      },
    },
    '/readyz': {
      get: {
        ...open,
        summary: 'Readiness: the store is reachable and plugins are loaded',
        tags: ['health'],
        responses: { 200: ok('ready', { type: 'object' }), default: problem },
      },
    },
    '/metrics': {
      get: {
        ...open,
        summary: 'Prometheus metrics',
        tags: ['health'],
        responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: string } } } },
      },
    },
    '/api/schema': {
      get: {
        summary: 'Every kind with its attributes and providers',
        tags: ['schema'],
        responses: { 200: ok('kinds', ref('Kinds')), default: problem },
      },
    },
    '/api/schema/{kind}': {
      get: {
        summary: "One kind's compiled JSON Schema (authority, watchers, list types as x- keywords)",
        tags: ['schema'],
        parameters: [pathParam('kind', 'a kind: host, subnet, ...'), param('IfNoneMatch')],
        responses: {
          200: {
            description: 'JSON Schema 2020-12',
            content: { 'application/schema+json': { schema: { type: 'object' } } },
          },
          304: { description: 'unchanged since the ETag given' },
          default: problem,
        },
      },
    },
    '/api/openapi.json': {
      get: {
        summary: 'This document',
        tags: ['schema'],
        responses: { 200: ok('OpenAPI 3.1', { type: 'object' }), default: problem },
      },
    },
    '/api/search': {
      get: {
        summary: 'Search every kind with the query language',
        tags: ['inventory'],
        parameters: [
          { ...query('q', 'kind=host and datacenter=pek1 and puppet_roles has nginx'), required: true },
          param('Limit'),
        ],
        responses: { 200: ok('nodes', ref('SearchResult')), default: problem },
      },
    },
  };
}

/** The paths of jobs and the audit log. */
function jobPaths(): Record<string, unknown> {
  return {
    '/api/jobs': {
      get: {
        summary: 'List jobs, newest first',
        tags: ['jobs'],
        parameters: [
          query('state', 'comma separated: queued,running,succeeded,failed,expired,cancelled'),
          query('kind', 'only jobs of this kind'),
          query('name', 'only jobs of this node'),
          param('Limit'),
          param('Cursor'),
        ],
        responses: { 200: ok('a page of jobs', ref('JobPage')), default: problem },
      },
    },
    '/api/jobs/{id}': {
      get: {
        summary: 'One job with every round',
        tags: ['jobs'],
        parameters: [param('JobId'), param('Wait')],
        responses: { 200: ok('the job', ref('Job')), default: problem },
      },
    },
    '/api/jobs/{id}/events': {
      get: {
        summary: "A job's events as Server-Sent Events, from Last-Event-ID on; ends after `ended`",
        tags: ['jobs'],
        parameters: [
          param('JobId'),
          {
            name: 'Last-Event-ID',
            in: 'header',
            required: false,
            description: 'the last event seen',
            schema: string,
          },
        ],
        responses: {
          200: { description: 'the event stream', content: { 'text/event-stream': { schema: string } } },
          default: problem,
        },
      },
    },
    '/api/jobs/{id}/cancel': {
      post: {
        summary: 'Ask the master to cancel a job',
        tags: ['jobs'],
        parameters: [param('JobId')],
        responses: { 202: ok('cancel requested', ref('Job')), default: problem },
      },
    },
    '/api/audit': {
      get: {
        summary: 'The audit log: every ended change, newest first',
        tags: ['audit'],
        parameters: AUDIT_QUERY.map((name) =>
          name === 'limit' || name === 'cursor'
            ? param(name === 'limit' ? 'Limit' : 'Cursor')
            : query(
                name,
                {
                  kind: 'only changes of this kind',
                  name: 'only changes of nodes with this name',
                  actor: 'only changes by this token id',
                  job: 'only the change of this job',
                }[name],
              ),
        ),
        responses: { 200: ok('a page of audit entries', ref('AuditPage')), default: problem },
      },
    },
  };
}

/** The paths of tokens and the caller. */
function tokenPaths(): Record<string, unknown> {
  return {
    '/api/tokens': {
      get: {
        summary: 'List the tokens (admin), never their secrets',
        tags: ['tokens'],
        responses: {
          200: ok('tokens', {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: ref('Token') } },
          }),
          default: problem,
        },
      },
      post: {
        summary: 'Make a token (admin); its secret is shown once',
        tags: ['tokens'],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['role'],
            properties: {
              role: { enum: ['reader', 'operator', 'admin'] },
              description: { type: 'string', maxLength: 200 },
              ttlSeconds: { type: 'integer', minimum: 1 },
            },
          }),
        },
        responses: {
          201: ok('the token with its secret', {
            allOf: [ref('Token'), { type: 'object', required: ['token'], properties: { token: string } }],
          }),
          default: problem,
        },
      },
    },
    '/api/tokens/{id}': {
      delete: {
        summary: 'Revoke a token (admin): it stops working at once',
        tags: ['tokens'],
        parameters: [pathParam('id', 'the token id')],
        responses: {
          200: ok('the revoked token', {
            allOf: [ref('Token'), { type: 'object', properties: { revoked: { const: true } } }],
          }),
          default: problem,
        },
      },
    },
    '/api/whoami': {
      get: {
        summary: 'The calling token',
        tags: ['tokens'],
        responses: {
          200: ok('who is calling', {
            type: 'object',
            required: ['id', 'role'],
            properties: { id: string, role: { enum: ['reader', 'operator', 'admin'] } },
          }),
          default: problem,
        },
      },
    },
  };
}

/** A kind's name as a schema name: `hypervisor` -> `Hypervisor`, `load-balancer` -> `LoadBalancer`. */
function titleOf(kind: string): string {
  return kind.charAt(0).toUpperCase() + kind.slice(1).replace(/-./g, (m) => (m[1] ?? '').toUpperCase());
}

/** Where the document says the API is. */
export interface OpenApiOptions {
  /** The URL clients reach the API at (the request's origin); the paths start with `/api`. */
  readonly serverUrl?: string;
}

/** Builds the OpenAPI document of this server's kinds. */
export function openApiDocument(
  kinds: Kinds,
  version: string,
  options: OpenApiOptions = {},
): Record<string, unknown> {
  const schemas = { ...commonSchemas(), ...jobSchemas(), ...inventorySchemas() };
  const paths = { ...commonPaths(), ...jobPaths(), ...tokenPaths() };
  Object.assign(paths, fleetPaths());
  Object.assign(paths, hookPaths());
  for (const [kind, runtime] of kinds) {
    const title = titleOf(kind);
    const document = Object.fromEntries(
      Object.entries(runtime.schema.document).filter(([k]) => k !== '$schema'),
    );
    schemas[`${title}Attrs`] = document;
    schemas[title] = {
      allOf: [
        ref('Node'),
        { type: 'object', properties: { kind: { const: kind }, attrs: ref(`${title}Attrs`) } },
      ],
    };
    const changed = {
      200: {
        description:
          'with wait: the job once ended; with explain: the plan; a patch that changes nothing: the node',
        content: json({ oneOf: [ref('Job'), ref('Explanation'), ref(title)] }),
      },
      202: {
        description: 'job accepted; Location names it',
        headers: { Location: { description: 'the job', schema: string } },
        content: json(ref('Job')),
      },
      default: problem,
    };
    const nameParam = pathParam('name', `the ${kind}'s name`);
    paths[`/api/inventory/${kind}`] = {
      get: {
        summary: `List ${kind} nodes in name order (NetBox-style filters, cursor pagination)`,
        tags: ['inventory'],
        parameters: [
          param('Limit'),
          param('Cursor'),
          query('fields', 'comma separated attributes to show'),
          {
            name: 'filters',
            in: 'query',
            required: false,
            description:
              'attribute filters, NetBox style: datacenter=pek1, hwspec__n=large, name__isw=web, interfaces.ip__cidr=10.1.0.0/16',
            style: 'form',
            explode: true,
            schema: { type: 'object', additionalProperties: string },
          },
        ],
        responses: {
          200: {
            description: 'a page; Link names the next',
            headers: { Link: { description: 'rel="next"', schema: string } },
            content: json(page(ref(title), `${kind} nodes`)),
          },
          default: problem,
        },
      },
      post: {
        summary: `Create a ${kind}`,
        tags: ['inventory'],
        parameters: [param('Explain'), param('Wait')],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['name'],
            properties: { name: string, attrs: ref(`${title}Attrs`) },
            additionalProperties: false,
          }),
        },
        responses: changed,
      },
    };
    paths[`/api/inventory/${kind}/{name}`] = {
      get: {
        summary: `One ${kind}`,
        tags: ['inventory'],
        parameters: [
          nameParam,
          query('show', 'authority: which provider owns each value, observations and drift', {
            enum: ['authority'],
          }),
          param('IfNoneMatch'),
        ],
        responses: {
          200: {
            description: 'the node; ETag is its revision',
            headers: { ETag: { description: 'the revision', schema: string } },
            content: json(ref(title)),
          },
          304: { description: 'unchanged since the ETag given' },
          default: problem,
        },
      },
      patch: {
        summary: `Change a ${kind}`,
        tags: ['inventory'],
        parameters: [nameParam, param('Explain'), param('Wait'), param('IfMatch')],
        requestBody: {
          required: true,
          content: {
            [MERGE_PATCH]: { schema: { type: 'object' } },
            [JSON_PATCH]: { schema: { type: 'array', items: { type: 'object' } } },
            [UPDATES]: { schema: ref('Updates') },
          },
        },
        responses: changed,
      },
      delete: {
        summary: `Delete a ${kind}: every provider removes what it owns`,
        tags: ['inventory'],
        parameters: [nameParam, param('Explain'), param('Wait'), param('IfMatch')],
        responses: changed,
      },
    };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Consortium API',
      version,
      description: 'Inventory reads; changes become jobs; every error is application/problem+json.',
    },
    servers: [{ url: options.serverUrl ?? '/', description: 'this server' }],
    tags: ['inventory', 'jobs', 'audit', 'schema', 'tokens', 'health'].map((name) => ({ name })),
    components: {
      schemas,
      parameters: commonParameters(),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Problem: {
          description: 'an error',
          content: { 'application/problem+json': { schema: ref('Problem') } },
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
