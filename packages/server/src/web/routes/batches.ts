/**
 * Batches: `POST /api/batches` makes one job per selected node (or explains them all with `?explain=true`),
 * `GET /api/batches/:id` shows the counts, state and every node's job, `POST /api/batches/:id/cancel` stops it.
 * Every check that can refuse the request comes before the first job is written.
 */
import express from 'express';
import type { JobAction, JobRecord, UpdateRequest } from '@consortium/core';
import { ConflictError, InputError, isJsonObject } from '@consortium/core';
import type { BatchRequest, BatchSelector, BatchView } from '../../batches.js';
import {
  BATCH_TOPIC,
  DEFAULT_BATCH_CONCURRENCY,
  batchJobs,
  batchOfJobId,
  batchView,
  createBatch,
  explainBatch,
  parseFailureBudget,
} from '../../batches.js';
import { Intake } from '../../intake.js';
import { encodeJobNotice, jobTopic } from '../../protocol.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { TERMINAL, parseLimit, requireBody, runtimeOf, single, updatesFromBody } from '../shared.js';

const BODY_FIELDS = ['kind', 'selector', 'updates', 'delete', 'concurrency', 'failureBudget'];

/** Reads a batch body; throws `InputError` before anything is looked up. */
function batchRequestOf(body: unknown, actor: string): BatchRequest {
  if (!isJsonObject(body)) throw new InputError('the body must be a JSON object');
  const extra = Object.keys(body).filter((key) => !BODY_FIELDS.includes(key));
  if (extra.length > 0)
    throw new InputError(
      `unknown field(s) in the body: ${extra.join(', ')} (known: ${BODY_FIELDS.join(', ')})`,
    );
  const { kind, selector, updates, delete: remove, concurrency, failureBudget } = body;
  if (typeof kind !== 'string') throw new InputError('kind must be a string such as "host"');
  let chosen: BatchSelector;
  if (typeof selector === 'string') chosen = { query: selector };
  else if (Array.isArray(selector) && selector.every((n) => typeof n === 'string'))
    chosen = { names: selector };
  else throw new InputError('selector must be a search query (a string) or a list of node names');
  if (remove !== undefined && remove !== true) throw new InputError('delete, when given, must be true');
  const action: Extract<JobAction, 'patch' | 'delete'> = remove === true ? 'delete' : 'patch';
  if (action === 'delete' && updates !== undefined)
    throw new InputError('a batch either deletes (delete: true) or changes (updates), not both');
  let changes: UpdateRequest[] = [];
  if (action === 'patch') {
    if (updates === undefined)
      throw new InputError('a batch needs updates [{path, op, value}] or delete: true');
    changes = updatesFromBody(updates);
    if (changes.length === 0) throw new InputError('updates must hold at least one update');
  }
  if (
    concurrency !== undefined &&
    (typeof concurrency !== 'number' ||
      !Number.isInteger(concurrency) ||
      concurrency < 1 ||
      concurrency > 1000)
  )
    throw new InputError('concurrency must be a whole number from 1 to 1000');
  return {
    kind,
    selector: chosen,
    action,
    updates: changes,
    concurrency: concurrency ?? DEFAULT_BATCH_CONCURRENCY,
    failureBudget: failureBudget === undefined ? { percent: 100 } : parseFailureBudget(failureBudget),
    actor,
  };
}

/** The router of `/api/batches`. */
export function batchesRouter(deps: WebDeps): express.Router {
  const { store, kinds, clock, coordinator } = deps;
  const intake = new Intake(deps);
  const router = express.Router();

  router.post('/batches', async (req, res) => {
    const caller = requireRole(res, 'operator');
    requireBody(req, ['application/json']);
    const explain = single(req.query['explain'], 'explain');
    if (explain !== undefined && explain !== 'true' && explain !== 'false')
      throw new InputError('explain must be true or false');
    const request = batchRequestOf(req.body, caller.id);
    runtimeOf(kinds, request.kind);
    if (explain === 'true') {
      res.json({
        explain: true,
        kind: request.kind,
        action: request.action,
        ...(await explainBatch({ store, kinds, intake }, request)),
      });
      return;
    }
    const { id } = await createBatch(
      { store, kinds, clock, announce: () => coordinator.notify(BATCH_TOPIC, { batch: 'new' }) },
      request,
    );
    res
      .status(202)
      .location(`/api/batches/${id}`)
      .json(batchView(await batchJobs(store, id)));
  });

  router.get('/batches', async (req, res) => {
    requireRole(res, 'reader');
    const limit = parseLimit(req.query['limit'], 20, 100);
    // Batches are their jobs: the newest jobs name the newest batches.
    const seen = new Set<string>();
    let cursor: string | undefined;
    let scanned = 0;
    do {
      const page = await store.listJobs({ limit: 500, ...(cursor === undefined ? {} : { cursor }) });
      for (const job of page.items) {
        const id = job.batch?.id ?? batchOfJobId(job.id);
        if (id !== undefined && seen.size < limit) seen.add(id);
      }
      scanned += page.items.length;
      cursor = page.next;
    } while (cursor !== undefined && seen.size < limit && scanned < 5000);
    const items = [];
    for (const id of seen) {
      const view: BatchView = batchView(await batchJobs(store, id));
      items.push(Object.fromEntries(Object.entries(view).filter(([key]) => key !== 'nodes')));
    }
    res.json({ items });
  });

  router.get('/batches/:id', async (req, res) => {
    requireRole(res, 'reader');
    res.json(batchView(await batchJobs(store, req.params['id'])));
  });

  router.post('/batches/:id/cancel', async (req, res) => {
    const caller = requireRole(res, 'operator');
    const jobs = await batchJobs(store, req.params['id']);
    const open = jobs.filter((job: JobRecord) => !TERMINAL.includes(job.state));
    if (open.length === 0) throw new ConflictError(`batch ${req.params['id']} has already ended`);
    const now = clock.now();
    // Held jobs are ended by the batch runner; queued and running ones are cancelled by the master, as any job.
    for (const job of open) {
      await store.updateJob(job.id, { cancelRequested: { by: caller.id, at: now } }, now);
      // Also for a held job: the runner may be releasing it right now, and the master then needs the notice.
      await coordinator.notify(jobTopic(job.id), encodeJobNotice({ kind: 'cancel' }));
    }
    await coordinator.notify(BATCH_TOPIC, { batch: 'cancel' });
    res.status(202).json(batchView(await batchJobs(store, req.params['id'])));
  });
  return router;
}
