/**
 * The inventory: reads come from the store; a create, a patch or a delete becomes a job (202 + Location) that the
 * master runs.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import type { Request, Response } from 'express';
import type { JobAction, JobRecord, StoredNode, UpdateRequest } from '@consortium/core';
import {
  ConflictError,
  InputError,
  PreconditionFailedError,
  assertNodeName,
  assertReferentialIntegrity,
  attrsAfter,
  diffToUpdates,
  explainPlan,
  isJsonObject,
  jsonPatchToUpdates,
  mergePatchToUpdates,
} from '@consortium/core';
import { JOB_QUEUE } from '../../protocol.js';
import { requireRole } from '../auth.js';
import { filtersFromQuery } from '../filters.js';
import type { WebDeps } from '../shared.js';
import {
  JSON_PATCH,
  MERGE_PATCH,
  TERMINAL,
  UPDATES,
  nodeOf,
  parseIfMatch,
  parseLimit,
  parseWait,
  requireBody,
  runtimeOf,
  single,
  updatesFromBody,
  waitForJob,
} from '../shared.js';
import { authorityMap, driftOf, jobView, nodeView } from '../views.js';

function newJobId(now: number): string {
  return `j-${now.toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** The router of `/api/inventory`. */
export function inventoryRouter(deps: WebDeps): express.Router {
  const { store, coordinator, kinds, clock, logger } = deps;
  const router = express.Router();
  const schemas = new Map([...kinds].map(([kind, runtime]) => [kind, runtime.schema]));

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
    const runtime = runtimeOf(kinds, kind);
    const now = clock.now();
    const input = { jobId: 'validate', kind, name, current: current?.attrs ?? {}, updates };
    runtime.planner.start(input, now);
    // Nodes that name this one (x-ref) must not be left pointing at nothing, or outside it: refused with IN_USE.
    await assertReferentialIntegrity(
      store,
      schemas,
      kind,
      name,
      attrsAfter(runtime.schema, input.current, updates),
    );
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
    const shown = wait === undefined || wait === 0 ? job : await waitForJob(deps, job.id, wait);
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

  router.get('/inventory/:kind', async (req, res) => {
    requireRole(res, 'reader');
    const kind = req.params['kind'];
    const runtime = runtimeOf(kinds, kind);
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

  router.get('/inventory/:kind/:name', async (req, res) => {
    requireRole(res, 'reader');
    const kind = req.params['kind'];
    const runtime = runtimeOf(kinds, kind);
    const node = await nodeOf(store, kind, req.params['name']);
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

  router.post('/inventory/:kind', async (req, res) => {
    const kind = req.params['kind'];
    const runtime = runtimeOf(kinds, kind);
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

  router.patch('/inventory/:kind/:name', async (req, res) => {
    const kind = req.params['kind'];
    const runtime = runtimeOf(kinds, kind);
    requireBody(req, [MERGE_PATCH, JSON_PATCH, UPDATES]);
    const node = await nodeOf(store, kind, req.params['name']);
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

  router.delete('/inventory/:kind/:name', async (req, res) => {
    const kind = req.params['kind'];
    runtimeOf(kinds, kind);
    const node = await nodeOf(store, kind, req.params['name']);
    await checkIfMatch(req, node);
    await accept(req, res, kind, node.name, 'delete', [{ path: 'present', op: 'unset' }], node);
  });
  return router;
}
