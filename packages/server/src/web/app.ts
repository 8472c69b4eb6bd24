/**
 * The HTTP API (DESIGN.md §7): inventory reads from the store, changes become jobs (202 + Location), jobs and
 * their event streams, schemas and OpenAPI, health and metrics. Every error is problem+json with a stable code.
 */
import { createHash, randomBytes } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { createSession } from 'better-sse';
import type {
  Clock,
  Filter,
  KindSchema,
  Coordinator,
  JobAction,
  JobRecord,
  JobState,
  JsonValue,
  StoredNode,
  Store,
  UpdateRequest,
} from '@consortium/core';
import {
  ConflictError,
  InputError,
  NotFoundError,
  PreconditionFailedError,
  UnsupportedMediaTypeError,
  assertNodeName,
  diffToUpdates,
  explainPlan,
  bindFilter,
  filterFields,
  isJsonObject,
  jsonPatchToUpdates,
  mergePatchToUpdates,
  parseSearch,
  splitKinds,
} from '@consortium/core';
import type winston from 'winston';
import { JOB_QUEUE, jobTopic } from '../master.js';
import type { Metrics } from '../metrics.js';
import type { KindRuntime, Kinds } from '../plugins.js';
import { createToken } from '../tokens.js';
import { authenticate, callerOf, requireRole } from './auth.js';
import { filtersFromQuery } from './filters.js';
import { openApiDocument } from './openapi.js';
import { problemHandler, sendProblem } from './problem.js';
import { authorityMap, driftOf, jobView, nodeView } from './views.js';

/** Dependencies of the web role. */
export interface WebDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly bodyLimit: string;
  readonly version: string;
  /** True when the process can serve: store reachable, plugins loaded. */
  readonly ready: () => Promise<boolean>;
}

const MERGE_PATCH = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
/** A list of proposed updates, as `consort` sends them (`key+=value` needs `add`). */
const UPDATES = 'application/vnd.consortium.updates+json';
const TERMINAL: readonly JobState[] = ['succeeded', 'failed', 'expired', 'cancelled'];
const MAX_WAIT_MS = 10 * 60_000;

/** Parses `?wait=30s` (also `500ms`, `2m`, or plain seconds); throws `InputError`. */
export function parseWait(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? /^(\d+)(ms|s|m)?$/.exec(value) : null;
  if (match === null)
    throw new InputError(`wait must look like 30s, 500ms or 2m, not ${JSON.stringify(value)}`);
  const amount = Number(match[1]);
  const ms = match[2] === 'ms' ? amount : match[2] === 'm' ? amount * 60_000 : amount * 1000;
  if (ms > MAX_WAIT_MS) throw new InputError(`wait is at most ${MAX_WAIT_MS / 60_000}m`);
  return ms;
}

function parseLimit(value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const limit = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new InputError(`limit must be a whole number from 1 to ${max}`);
  }
  return limit;
}

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InputError(`query parameter ${name} may appear only once`);
  return value;
}

/** Parses `If-Match`: a revision ETag (`"3"`, `W/"3"`) or `*`; throws `PreconditionFailedError` for anything else. */
function parseIfMatch(header: string | undefined): number | '*' | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  const match = /^\s*(?:W\/)?"(\d+)"\s*$/.exec(header);
  if (match === null)
    throw new PreconditionFailedError(`If-Match must be an ETag such as "3", not ${header}`);
  return Number(match[1]);
}

/** Refuses `__proto__` keys anywhere in a body: they would reach the prototype of merged objects. */
function reviver(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new SyntaxError('the key "__proto__" is not allowed');
  return value;
}

function newJobId(now: number): string {
  return `j-${now.toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** Builds the express app of the web role. */
export function createApp(deps: WebDeps): express.Express {
  const { store, coordinator, kinds, clock, metrics, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.httpRequest(
        req.method,
        `${req.baseUrl}${route}`,
        res.statusCode,
        (performance.now() - started) / 1000,
      );
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (await deps.ready()) res.json({ status: 'ready' });
    else sendProblem(res, 'BACKEND_UNAVAILABLE', 'not ready');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const api = express.Router();
  api.use(authenticate(store, coordinator, () => clock.now()));
  api.use(
    express.json({
      limit: deps.bodyLimit,
      type: ['application/json', MERGE_PATCH, JSON_PATCH, UPDATES],
      reviver,
    }),
  );

  const runtimeOf = (kind: string): KindRuntime => {
    const runtime = kinds.get(kind);
    if (runtime === undefined) {
      throw new NotFoundError(`unknown kind "${kind}" (known: ${[...kinds.keys()].sort().join(', ')})`, {
        details: { kind },
      });
    }
    return runtime;
  };
  const nodeOf = async (kind: string, name: string): Promise<StoredNode> => {
    const node = await store.getNode(kind, name);
    if (node === undefined)
      throw new NotFoundError(`${kind}/${name} does not exist`, { details: { kind, name } });
    return node;
  };
  const requireBody = (req: Request, types: readonly string[]): void => {
    const type = req.headers['content-type'];
    if (type === undefined || req.is(types as string[]) === false) {
      throw new UnsupportedMediaTypeError(
        `Content-Type must be ${types.join(' or ')}${type === undefined ? '' : `, not ${type}`}`,
      );
    }
  };

  /** Waits until a job ends or `ms` pass; returns the job as it then stands. */
  const waitForJob = async (id: string, ms: number): Promise<JobRecord> => {
    const deadline = clock.now() + ms;
    let wake: (() => void) | undefined;
    const unsubscribe = coordinator.subscribe(jobTopic(id), () => wake?.());
    try {
      for (;;) {
        const job = await store.getJob(id);
        if (job === undefined) throw new NotFoundError(`job ${id} does not exist`);
        const left = deadline - clock.now();
        if (TERMINAL.includes(job.state) || left <= 0) return job;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 1000));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      unsubscribe();
    }
  };

  /**
   * Accepts a change: validates it with the planner (so bad input is a 4xx before anything is written), explains
   * it, or records the job and hands it to the master.
   */
  const accept = async (
    req: Request,
    res: Response,
    kind: string,
    name: string,
    action: JobAction,
    updates: UpdateRequest[],
    current: StoredNode | undefined,
  ): Promise<void> => {
    const caller = requireRole(res, 'operator');
    const runtime = runtimeOf(kind);
    const now = clock.now();
    const input = { jobId: 'validate', kind, name, current: current?.attrs ?? {}, updates };
    runtime.planner.start(input, now);
    const explain = single(req.query['explain'], 'explain');
    if (explain !== undefined && explain !== 'false') {
      if (explain !== 'true') throw new InputError('explain must be true or false');
      const plan = await explainPlan(runtime.planner, { ...input, jobId: 'explain' }, runtime.providers, {
        logger: logger.child({ explain: `${kind}/${name}` }),
        now,
      });
      res.json({ explain: true, kind, name, action, updates, plan });
      return;
    }
    const wait = parseWait(single(req.query['wait'], 'wait'));
    if (action === 'create') {
      try {
        await store.insertNode(kind, name, {}, now);
      } catch (error) {
        if (error instanceof ConflictError) {
          throw new ConflictError(`${kind}/${name} already exists; change it with PATCH`, {
            details: { kind, name },
          });
        }
        throw error;
      }
    }
    const job: JobRecord = {
      id: newJobId(now),
      kind,
      name,
      action,
      state: 'queued',
      actor: caller.id,
      updates,
      before: current?.attrs ?? null,
      createdAt: now,
      updatedAt: now,
    };
    await store.createJob(job);
    await coordinator.queue(JOB_QUEUE).enqueue({ id: job.id, payload: job.id });
    res.status(202).location(`/api/jobs/${job.id}`);
    const shown = wait === undefined || wait === 0 ? job : await waitForJob(job.id, wait);
    if (TERMINAL.includes(shown.state)) res.status(200);
    res.json(jobView(shown));
  };

  /** Bumps the revision when `If-Match` names one, so that exactly one change is accepted per revision. */
  const checkIfMatch = async (req: Request, node: StoredNode): Promise<void> => {
    const expected = parseIfMatch(req.headers['if-match']);
    if (expected === undefined || expected === '*') return;
    if (expected !== node.revision) {
      throw new PreconditionFailedError(
        `${node.kind}/${node.name} is at revision ${node.revision}, not ${expected}`,
        {
          details: { revision: node.revision },
        },
      );
    }
    await store.updateNode(node.kind, node.name, node.attrs, clock.now(), expected);
  };

  api.get('/schema', (_req, res) => {
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
  api.get('/schema/:kind', (req, res) => {
    requireRole(res, 'reader');
    const { document } = runtimeOf(req.params['kind']).schema;
    const etag = `"${createHash('sha1').update(JSON.stringify(document)).digest('base64url')}"`;
    res.setHeader('ETag', etag);
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    res.type('application/schema+json').send(JSON.stringify(document));
  });
  api.get('/openapi.json', (_req, res) => {
    requireRole(res, 'reader');
    res.json(openApiDocument(kinds, deps.version));
  });

  api.get('/inventory/:kind', async (req, res) => {
    requireRole(res, 'reader');
    const kind = req.params['kind'];
    const runtime = runtimeOf(kind);
    const query = req.query as Record<string, unknown>;
    const filter = filtersFromQuery(runtime.schema, query);
    const limit = parseLimit(query['limit'], 100, 1000);
    const cursor = single(query['cursor'], 'cursor');
    const fieldsText = single(query['fields'], 'fields');
    const fields = fieldsText?.split(',').filter((f) => f !== '');
    for (const field of fields ?? []) runtime.schema.resolvePath(field);
    const page = await store.listNodes(kind, {
      limit,
      ...(filter === undefined ? {} : { filter }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    if (page.next !== undefined) {
      const next = new URLSearchParams(
        Object.entries({ ...query, cursor: page.next }).flatMap(([k, v]) =>
          (Array.isArray(v) ? v : [v]).map((x) => [k, String(x)] as [string, string]),
        ),
      );
      res.setHeader('Link', `</api/inventory/${kind}?${next.toString()}>; rel="next"`);
    }
    res.json({
      items: page.items.map((n) => nodeView(n, fields)),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });

  api.get('/search', async (req, res) => {
    requireRole(res, 'reader');
    const q = single(req.query['q'], 'q');
    if (q === undefined)
      throw new InputError('search needs a query: /api/search?q=kind=host and datacenter=pek1');
    const limit = parseLimit(req.query['limit'], 100, 1000);
    const { kinds: named, rest } = splitKinds(parseSearch(q));
    for (const kind of named ?? []) runtimeOf(kind);
    const fields = rest === undefined ? [] : filterFields(rest);
    if (fields.includes('kind'))
      throw new InputError('kind can be restricted only at the top level: kind=host and ...');
    // Each kind gets the query bound to its schema (typed values, hops along references). A kind is searched when
    // it has one of the query's fields; a field it lacks compares as a missing value. A field no kind has is an error.
    const schemaOf = (kind: string): KindSchema | undefined => kinds.get(kind)?.schema;
    const bound: { kind: string; filter: Filter | undefined }[] = [];
    const unknownEverywhere = new Set(fields);
    for (const kind of named ?? [...kinds.keys()]) {
      if (rest === undefined) {
        bound.push({ kind, filter: undefined });
        continue;
      }
      const result = bindFilter(rest, (kinds.get(kind) as KindRuntime).schema, schemaOf);
      for (const field of result.known) unknownEverywhere.delete(field);
      if (result.known.length > 0) bound.push({ kind, filter: result.filter });
    }
    const missing = [...unknownEverywhere][0];
    if (missing !== undefined) {
      throw new InputError(
        `no ${named === undefined ? 'kind' : named.join(' or ')} has the attribute "${missing}"`,
      );
    }
    const items: Record<string, unknown>[] = [];
    let truncated = false;
    for (const { kind, filter } of bound) {
      if (items.length >= limit) {
        truncated = true;
        break;
      }
      const page = await store.listNodes(kind, {
        limit: limit - items.length,
        ...(filter === undefined ? {} : { filter }),
      });
      items.push(...page.items.map((n) => nodeView(n)));
      if (page.next !== undefined) truncated = true;
    }
    res.json({ items, ...(truncated ? { truncated: true } : {}) });
  });

  api.get('/inventory/:kind/:name', async (req, res) => {
    requireRole(res, 'reader');
    const kind = req.params['kind'];
    const runtime = runtimeOf(kind);
    const node = await nodeOf(kind, req.params['name']);
    const etag = `"${node.revision}"`;
    res.setHeader('ETag', etag);
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    const show = single(req.query['show'], 'show');
    if (show !== undefined && show !== 'authority') throw new InputError('show takes only "authority"');
    res.json({
      ...nodeView(node),
      ...(show === 'authority'
        ? {
            authority: authorityMap(runtime.schema, node.attrs),
            observed: node.observed,
            drift: driftOf(runtime.schema, node),
          }
        : {}),
    });
  });

  api.post('/inventory/:kind', async (req, res) => {
    const kind = req.params['kind'];
    const runtime = runtimeOf(kind);
    requireBody(req, ['application/json']);
    const body: unknown = req.body;
    if (!isJsonObject(body))
      throw new InputError('the body must be a JSON object { "name": ..., "attrs": {...} }');
    const { name, attrs = {}, ...rest } = body as { name?: unknown; attrs?: unknown };
    const extra = Object.keys(rest);
    if (extra.length > 0)
      throw new InputError(`unknown field(s) in the body: ${extra.join(', ')} (expected name and attrs)`);
    assertNodeName(name);
    if (!isJsonObject(attrs)) throw new InputError('attrs must be a JSON object');
    const updates: UpdateRequest[] = [
      { path: 'present', op: 'set', value: true },
      ...diffToUpdates(runtime.schema, {}, attrs),
    ];
    const existing = await store.getNode(kind, name);
    if (existing !== undefined) {
      throw new ConflictError(`${kind}/${name} already exists; change it with PATCH`, {
        details: { kind, name },
      });
    }
    await accept(req, res, kind, name, 'create', updates, undefined);
  });

  api.patch('/inventory/:kind/:name', async (req, res) => {
    const kind = req.params['kind'];
    const runtime = runtimeOf(kind);
    requireBody(req, [MERGE_PATCH, JSON_PATCH, UPDATES]);
    const node = await nodeOf(kind, req.params['name']);
    let updates: UpdateRequest[];
    if (req.is(MERGE_PATCH) !== false) updates = mergePatchToUpdates(runtime.schema, node.attrs, req.body);
    else if (req.is(JSON_PATCH) !== false) updates = jsonPatchToUpdates(runtime.schema, node.attrs, req.body);
    else updates = updatesFromBody(req.body);
    if (updates.length === 0) {
      requireRole(res, 'operator');
      res.setHeader('ETag', `"${node.revision}"`);
      res.json({ ...nodeView(node), unchanged: true });
      return;
    }
    await checkIfMatch(req, node);
    await accept(req, res, kind, node.name, 'patch', updates, node);
  });

  api.delete('/inventory/:kind/:name', async (req, res) => {
    const kind = req.params['kind'];
    runtimeOf(kind);
    const node = await nodeOf(kind, req.params['name']);
    await checkIfMatch(req, node);
    await accept(req, res, kind, node.name, 'delete', [{ path: 'present', op: 'unset' }], node);
  });

  api.get('/jobs', async (req, res) => {
    requireRole(res, 'reader');
    const query = req.query as Record<string, unknown>;
    const known = ['state', 'kind', 'name', 'limit', 'cursor'];
    const unknown = Object.keys(query).filter((k) => !known.includes(k));
    if (unknown.length > 0)
      throw new InputError(`unknown filter(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
    const states = single(query['state'], 'state')?.split(',');
    for (const state of states ?? []) {
      if (![...TERMINAL, 'queued', 'running'].includes(state))
        throw new InputError(`unknown job state "${state}"`);
    }
    const kind = single(query['kind'], 'kind');
    const name = single(query['name'], 'name');
    const cursor = single(query['cursor'], 'cursor');
    const page = await store.listJobs({
      limit: parseLimit(query['limit'], 50, 500),
      ...(states === undefined ? {} : { states: states as JobState[] }),
      ...(kind === undefined ? {} : { kind }),
      ...(name === undefined ? {} : { name }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    res.json({
      items: page.items.map((j) => jobView(j, { summary: true })),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });

  const jobOf = async (id: string): Promise<JobRecord> => {
    const job = await store.getJob(id);
    if (job === undefined) throw new NotFoundError(`job ${id} does not exist`);
    return job;
  };

  api.get('/jobs/:id', async (req, res) => {
    requireRole(res, 'reader');
    const wait = parseWait(single(req.query['wait'], 'wait'));
    const job = await jobOf(req.params['id']);
    res.json(jobView(wait === undefined ? job : await waitForJob(job.id, wait)));
  });

  api.post('/jobs/:id/cancel', async (req, res) => {
    const caller = requireRole(res, 'operator');
    const job = await jobOf(req.params['id']);
    if (TERMINAL.includes(job.state))
      throw new ConflictError(`job ${job.id} has already ended (${job.state})`);
    const now = clock.now();
    const updated = await store.updateJob(job.id, { cancelRequested: { by: caller.id, at: now } }, now);
    await coordinator.notify(jobTopic(job.id), { cancel: true });
    res.status(202).json(jobView(updated));
  });

  api.get('/jobs/:id/events', async (req, res) => {
    requireRole(res, 'reader');
    const job = await jobOf(req.params['id']);
    const session = await createSession(req, res, { keepAlive: 15_000 });
    let last = Number(session.lastId === '' ? 0 : session.lastId);
    if (!Number.isInteger(last) || last < 0) last = 0;
    let pumping = Promise.resolve();
    let ended = false;
    const pump = async (): Promise<void> => {
      if (ended) return;
      const events = await store.listEvents(job.id, last);
      for (const event of events) {
        session.push({ ...event, at: new Date(event.at).toISOString() }, event.type, String(event.seq));
        last = event.seq;
        if (event.type === 'ended') ended = true;
      }
      if (ended) res.end();
    };
    const unsubscribe = coordinator.subscribe(jobTopic(job.id), () => {
      pumping = pumping.then(pump).catch((error: unknown) => {
        logger.warn('event stream failed', { job: job.id, error: (error as Error).message });
        res.end();
      });
    });
    res.on('close', unsubscribe);
    pumping = pumping.then(pump);
    await pumping;
  });

  api.post('/tokens', async (req, res) => {
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
  api.get('/tokens', async (_req, res) => {
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
  api.get('/whoami', (_req, res) => {
    res.json(callerOf(res));
  });

  app.use('/api', api);
  app.use((req, res) => {
    sendProblem(res, 'NOT_FOUND', `no route for ${req.method} ${req.path}`);
  });
  app.use(problemHandler(logger));
  return app;
}

/** Reads a body of `application/vnd.consortium.updates+json`: `[{path, op, value?}]`; throws `InputError`. */
function updatesFromBody(body: unknown): UpdateRequest[] {
  if (!Array.isArray(body)) throw new InputError('an updates body must be an array of {path, op, value?}');
  const ops = ['set', 'unset', 'add', 'remove', 'merge'];
  return (body as unknown[]).map((item, i) => {
    if (!isJsonObject(item)) throw new InputError(`update ${i} must be an object`);
    const { path, op, value, ...rest } = item as { path?: unknown; op?: unknown; value?: JsonValue };
    if (Object.keys(rest).length > 0)
      throw new InputError(`update ${i} has unknown field(s) ${Object.keys(rest).join(', ')}`);
    if (typeof path !== 'string') throw new InputError(`update ${i} needs a string path`);
    if (typeof op !== 'string' || !ops.includes(op))
      throw new InputError(`update ${i}: op must be one of ${ops.join(', ')}`);
    return { path, op: op as UpdateRequest['op'], ...(value === undefined ? {} : { value }) };
  });
}
