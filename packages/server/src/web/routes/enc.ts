/**
 * The Puppet external node classifier: `GET /api/enc/:name` answers YAML with `classes` (the node's
 * `puppet_roles`) and `parameters` (its other attributes), as Puppet's `external_nodes` script must print it.
 */
import express from 'express';
import type { Attrs } from '@consortium/core';
import { InputError, PRESENT_ATTR } from '@consortium/core';
import { stringify } from 'yaml';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { nodeOf, runtimeOf, single } from '../shared.js';

/** The attribute whose items are Puppet classes. */
export const PUPPET_ROLES_ATTR = 'puppet_roles';

/** Puppet's ENC document for a node's attributes: `classes` from `puppet_roles`, `parameters` from the rest. */
export function encDocument(attrs: Attrs): { classes: string[]; parameters: Attrs } {
  const roles = attrs[PUPPET_ROLES_ATTR];
  const classes = Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [];
  const parameters = Object.fromEntries(
    Object.entries(attrs).filter(([key]) => key !== PUPPET_ROLES_ATTR && key !== PRESENT_ATTR),
  );
  return { classes, parameters };
}

/** The router of `/api/enc`. */
export function encRouter(deps: Pick<WebDeps, 'store' | 'kinds'>): express.Router {
  const { store, kinds } = deps;
  const router = express.Router();
  router.get('/enc/:name', async (req, res) => {
    requireRole(res, 'reader');
    const kind = single(req.query['kind'], 'kind') ?? 'host';
    const unknown = Object.keys(req.query).filter((key) => key !== 'kind');
    if (unknown.length > 0)
      throw new InputError(`unknown query parameter(s) ${unknown.join(', ')} (known: kind)`);
    runtimeOf(kinds, kind);
    const node = await nodeOf(store, kind, req.params['name']);
    // Puppet reads YAML; plain scalars only, never YAML tags or anchors a classifier could misread.
    res.type('application/yaml').send(stringify(encDocument(node.attrs), { aliasDuplicateObjects: false }));
  });
  return router;
}
