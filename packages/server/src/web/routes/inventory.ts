/**
 * The inventory: reads come from the store; a create, a patch or a delete goes through the intake and becomes a
 * job (202 + Location) that the master runs. Every check that can refuse a request (role, content type, query
 * options, If-Match, the body) comes before the intake, and the intake writes only an admitted job.
 */
import express from 'express';
import type { Request, Response } from 'express';
import type { KindSchema, Role, StoredNode, UpdateRequest } from '@consortium/core';
import {
  BOOLEAN_WORDS_HELP,
  InputError,
  PreconditionFailedError,
  assertNodeName,
  diffToUpdates,
  isJsonObject,
  jsonPatchToUpdates,
  mergePatchToUpdates,
  parseBooleanWord,
} from '@consortium/core';
import type { ChangeRequest } from '../../intake.js';
import { Intake } from '../../intake.js';
import { traceJob } from '../../trace.js';
import { actorNames, jobActors } from '../actors.js';
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
import { authorityMap, driftOf, jobView, nodeView, observedView, roundsView } from '../views.js';

/** How a change request asks to be handled: explained only, or applied and waited for up to `wait` ms. */
interface ChangeOptions {
  readonly explain: boolean;
  readonly wait: number | undefined;
}

/** Reads `?explain=` and `?wait=`; throws `InputError` before anything is looked up or written. */
function changeOptions(req: Request): ChangeOptions {
  const text = single(req.query['explain'], 'explain');
  const explain = text === undefined ? false : parseBooleanWord(text);
  if (explain === undefined) throw new InputError(`explain must be ${BOOLEAN_WORDS_HELP}`);
  return { explain, wait: parseWait(single(req.query['wait'], 'wait')) };
}

/** The role a change request needs: explaining changes nothing, so a reader may; applying needs an operator. */
function roleFor(options: ChangeOptions): Role {
  return options.explain ? 'reader' : 'operator';
}

/** The revision `If-Match` names, checked against the node as read (412 at once when already stale). */
function expectedRevision(req: Request, node: StoredNode): number | undefined {
  const expected = parseIfMatch(req.headers['if-match']);
  if (expected === undefined || expected === '*') return undefined;
  if (expected !== node.revision) {
    throw new PreconditionFailedError(
      `${node.kind}/${node.name} is at revision ${node.revision}, not ${expected}`,
      { details: { revision: node.revision } },
    );
  }
  return expected;
}

/** Reads a create body `{ "name": ..., "attrs": {...} }` into the node's name and its updates; throws a 4xx. */
function createOf(body: unknown, schema: KindSchema): { name: string; updates: UpdateRequest[] } {
  if (!isJsonObject(body))
    throw new InputError('the body must be a JSON object { "name": ..., "attrs": {...} }');
  const { name, attrs = {}, ...rest } = body as { name?: unknown; attrs?: unknown };
  const extra = Object.keys(rest);
  if (extra.length > 0)
    throw new InputError(`unknown field(s) in the body: ${extra.join(', ')} (expected name and attrs)`);
  assertNodeName(name);
  if (!isJsonObject(attrs)) throw new InputError('attrs must be a JSON object');
  return {
    name,
    updates: [{ path: 'present', op: 'set', value: true }, ...diffToUpdates(schema, {}, attrs)],
  };
}

/** The router of `/api/inventory`. */
export function inventoryRouter(deps: WebDeps): express.Router {
  const { store, kinds } = deps;
  const intake = new Intake(deps);
  const router = express.Router();

  /** Explains a change, or submits it through the intake and answers with its job (202, or 200 once ended). */
  const change = async (res: Response, request: ChangeRequest, options: ChangeOptions): Promise<void> => {
    if (options.explain) {
      const plan = await intake.explain(request);
      const { kind, name, action, updates } = request;
      res.json({
        explain: true,
        kind,
        name,
        action,
        updates,
        plan: { ...plan, rounds: roundsView(plan.rounds) },
      });
      return;
    }
    const job = await intake.submit(request);
    traceJob(job.id, 'web.submitted');
    res.status(202).location(`/api/jobs/${job.id}`);
    const { wait } = options;
    const shown = wait === undefined || wait === 0 ? job : await waitForJob(deps, job.id, wait);
    if (TERMINAL.includes(shown.state)) res.status(200);
    traceJob(job.id, 'web.answered');
    res.json(jobView(shown, await actorNames(deps, jobActors(shown))));
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
      items: page.items.map((n) => nodeView(n, fields, runtime.schema)),
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
      ...nodeView(node, undefined, runtime.schema),
      ...(show === 'authority'
        ? {
            authority: authorityMap(runtime.schema, node.attrs),
            observed: observedView(node),
            drift: driftOf(runtime.schema, node),
          }
        : {}),
    });
  });

  router.post('/inventory/:kind', async (req, res) => {
    const kind = req.params['kind'];
    const runtime = runtimeOf(kinds, kind);
    const options = changeOptions(req);
    const caller = requireRole(res, roleFor(options));
    requireBody(req, ['application/json']);
    const { name, updates } = createOf(req.body, runtime.schema);
    await change(res, { kind, name, action: 'create', updates, actor: caller.id }, options);
  });

  router.patch('/inventory/:kind/:name', async (req, res) => {
    const kind = req.params['kind'];
    const runtime = runtimeOf(kinds, kind);
    const options = changeOptions(req);
    const caller = requireRole(res, roleFor(options));
    requireBody(req, [MERGE_PATCH, JSON_PATCH, UPDATES]);
    const node = await nodeOf(store, kind, req.params['name']);
    const expected = expectedRevision(req, node);
    let updates: UpdateRequest[];
    if (req.is(MERGE_PATCH) !== false) updates = mergePatchToUpdates(runtime.schema, node.attrs, req.body);
    else if (req.is(JSON_PATCH) !== false) updates = jsonPatchToUpdates(runtime.schema, node.attrs, req.body);
    else updates = updatesFromBody(req.body);
    if (updates.length === 0) {
      res.setHeader('ETag', `"${node.revision}"`);
      res.json({ ...nodeView(node), unchanged: true });
      return;
    }
    await change(
      res,
      {
        kind,
        name: node.name,
        action: 'patch',
        updates,
        actor: caller.id,
        ...(expected === undefined ? {} : { expectedRevision: expected }),
      },
      options,
    );
  });

  router.delete('/inventory/:kind/:name', async (req, res) => {
    const kind = req.params['kind'];
    runtimeOf(kinds, kind);
    const options = changeOptions(req);
    const caller = requireRole(res, roleFor(options));
    const node = await nodeOf(store, kind, req.params['name']);
    const expected = expectedRevision(req, node);
    await change(
      res,
      {
        kind,
        name: node.name,
        action: 'delete',
        updates: [{ path: 'present', op: 'unset' }],
        actor: caller.id,
        ...(expected === undefined ? {} : { expectedRevision: expected }),
      },
      options,
    );
  });
  return router;
}
