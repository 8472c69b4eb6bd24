/** Search across kinds: one query, bound to each kind's schema, answered from the store. */
import express from 'express';
import type { Filter, KindSchema, NodeView } from '@consortium/core';
import { InputError, bindFilter, filterFields, parseSearch, splitKinds } from '@consortium/core';
import type { KindRuntime } from '../../plugins.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { parseLimit, runtimeOf, single } from '../shared.js';
import { nodeView } from '../views.js';

/** The router of `/api/search`. */
export function searchRouter(deps: Pick<WebDeps, 'store' | 'kinds'>): express.Router {
  const { store, kinds } = deps;
  const router = express.Router();
  router.get('/search', async (req, res) => {
    requireRole(res, 'reader');
    const q = single(req.query['q'], 'q');
    if (q === undefined)
      throw new InputError('search needs a query: /api/search?q=kind=host and datacenter=pek1');
    const limit = parseLimit(req.query['limit'], 100, 1000);
    const { kinds: named, rest } = splitKinds(parseSearch(q));
    for (const kind of named ?? []) runtimeOf(kinds, kind);
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
    const items: NodeView[] = [];
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
      items.push(...page.items.map((n) => nodeView(n, undefined, kinds.get(kind)?.schema)));
      if (page.next !== undefined) truncated = true;
    }
    res.json({ items, ...(truncated ? { truncated: true } : {}) });
  });
  return router;
}
