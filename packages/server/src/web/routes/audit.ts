/** The audit log: every ended change with who made it, when, which job, and the node before and after. */
import express from 'express';
import type { AuditEntry } from '@consortium/core';
import { InputError } from '@consortium/core';
import type { ActorNames } from '../actors.js';
import { actorNames } from '../actors.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { parseLimit, single } from '../shared.js';

/** The query parameters of `GET /api/audit`. */
export const AUDIT_QUERY = ['kind', 'name', 'actor', 'job', 'limit', 'cursor'] as const;

/** An audit entry as the API shows it. */
export function auditView(entry: AuditEntry, actors: ActorNames): Record<string, unknown> {
  return {
    at: new Date(entry.at).toISOString(),
    actor: actors(entry.actor),
    action: entry.action,
    kind: entry.kind,
    name: entry.name,
    job: entry.jobId ?? null,
    before: entry.before,
    after: entry.after,
    links: {
      // Hooks are audited under the kind `hook` (not a node kind): their entries link to the hook.
      ...(entry.kind === 'hook'
        ? { hook: `/api/hooks/${entry.name}` }
        : { node: `/api/inventory/${entry.kind}/${entry.name}` }),
      ...(entry.jobId === undefined ? {} : { job: `/api/jobs/${entry.jobId}` }),
    },
  };
}

/** The router of `/api/audit`. */
export function auditRouter(deps: Pick<WebDeps, 'store' | 'coordinator' | 'clock'>): express.Router {
  const { store } = deps;
  const router = express.Router();
  router.get('/audit', async (req, res) => {
    requireRole(res, 'reader');
    const query = req.query as Record<string, unknown>;
    const known: readonly string[] = AUDIT_QUERY;
    const unknown = Object.keys(query).filter((k) => !known.includes(k));
    if (unknown.length > 0)
      throw new InputError(`unknown filter(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
    const value = (name: string): string | undefined => {
      const text = single(query[name], name);
      if (text === '') throw new InputError(`${name} must not be empty`);
      return text;
    };
    const kind = value('kind');
    const name = value('name');
    const actor = value('actor');
    const job = value('job');
    const cursor = value('cursor');
    const page = await store.listAudit({
      limit: parseLimit(query['limit'], 50, 500),
      ...(kind === undefined ? {} : { kind }),
      ...(name === undefined ? {} : { name }),
      ...(actor === undefined ? {} : { actor }),
      ...(job === undefined ? {} : { jobId: job }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    const actors = await actorNames(
      deps,
      page.items.map((entry) => entry.actor),
    );
    res.json({
      items: page.items.map((entry) => auditView(entry, actors)),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });
  return router;
}
