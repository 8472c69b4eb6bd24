/**
 * Discovery and adoption: `GET /api/discovery?kind=host` asks every provider that can `discover()` what its
 * backend holds and sorts it into known (a node exists; with drift), adoptable (no node, never one) and orphaned (no
 * node, but Consortium made or changed one of that name). `POST /api/discovery/adopt` creates nodes from the observed
 * values without writing to any backend: the node and each provider's observation are written to the store only.
 */
import express from 'express';
import type { Attrs, DiscoveredObject, JsonValue } from '@consortium/core';
import {
  ConflictError,
  InputError,
  NotFoundError,
  deepEqual,
  isJsonObject,
  parsePath,
} from '@consortium/core';
import { exists } from '../../intake.js';
import type { KindRuntime } from '../../plugins.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { runtimeOf, single } from '../shared.js';

/** What each provider found for one name. */
type Found = Map<string, Map<string, Attrs>>;

async function discoverAll(
  deps: Pick<WebDeps, 'logger' | 'clock'>,
  runtime: KindRuntime,
  kind: string,
): Promise<Found> {
  const found: Found = new Map();
  for (const [name, provider] of runtime.providers) {
    if (provider.discover === undefined) continue;
    const objects: readonly DiscoveredObject[] = await provider.discover(kind, {
      logger: deps.logger.child({ discover: name }),
      signal: AbortSignal.timeout(60_000),
      fencingToken: '0',
      now: () => deps.clock.now(),
    });
    for (const object of objects) {
      const byProvider = found.get(object.name) ?? new Map<string, Attrs>();
      byProvider.set(name, object.attrs);
      found.set(object.name, byProvider);
    }
  }
  return found;
}

/** The node a set of observations makes: the authority's value for each path, `present` set. */
function adoptedAttrs(runtime: KindRuntime, observed: Map<string, Attrs>): Attrs {
  const attrs: Record<string, JsonValue> = { present: true };
  for (const [provider, values] of observed) {
    for (const [key, value] of Object.entries(values)) {
      let owner: string | undefined;
      try {
        owner = runtime.schema.authorityOf(parsePath(key));
      } catch {
        owner = undefined;
      }
      if (attrs[key] === undefined || owner === provider) attrs[key] = value;
    }
  }
  return attrs;
}

/** The router of `/api/discovery`. */
export function discoveryRouter(deps: WebDeps): express.Router {
  const { store, kinds, clock } = deps;
  const router = express.Router();

  const report = async (kind: string) => {
    const runtime = runtimeOf(kinds, kind);
    const found = await discoverAll(deps, runtime, kind);
    const known: { name: string; providers: string[]; drift: unknown[] }[] = [];
    const adoptable: { name: string; providers: string[]; attrs: Attrs }[] = [];
    const orphaned: { name: string; providers: string[]; attrs: Attrs }[] = [];
    for (const [name, observed] of [...found].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const node = await store.getNode(kind, name);
      const providers = [...observed.keys()];
      if (exists(node)) {
        const drift = [];
        for (const [provider, values] of observed)
          for (const [path, value] of Object.entries(values))
            if (!deepEqual(node.attrs[path] ?? null, value))
              drift.push({ path, provider, node: node.attrs[path] ?? null, observed: value });
        known.push({ name, providers, drift });
        continue;
      }
      const history = (await store.listJobs({ kind, name, limit: 1 })).items.length > 0;
      (history ? orphaned : adoptable).push({ name, providers, attrs: adoptedAttrs(runtime, observed) });
    }
    return { runtime, found, known, adoptable, orphaned };
  };

  router.get('/discovery', async (req, res) => {
    requireRole(res, 'reader');
    const kind = single(req.query['kind'], 'kind');
    if (kind === undefined) throw new InputError('discovery needs ?kind=, such as ?kind=host');
    const { known, adoptable, orphaned } = await report(kind);
    res.json({ kind, known, adoptable, orphaned });
  });

  router.post('/discovery/adopt', async (req, res) => {
    const caller = requireRole(res, 'operator');
    const body: unknown = req.body;
    if (!isJsonObject(body) || typeof body['kind'] !== 'string')
      throw new InputError('the body must be {"kind": ..., "names": [...]} or {"kind": ..., "all": true}');
    const kind = body['kind'];
    const names = body['names'];
    const all = body['all'] === true;
    if (all === Array.isArray(names)) throw new InputError('give exactly one of names or all: true');
    const { runtime, found, adoptable, orphaned } = await report(kind);
    const candidates = new Set([...adoptable, ...orphaned].map((o) => o.name));
    const chosen = all ? adoptable.map((o) => o.name) : (names as unknown[]).map(String);
    for (const name of chosen) {
      if (!found.has(name)) throw new NotFoundError(`no backend holds a ${kind} named ${name}`);
      if (!candidates.has(name)) throw new ConflictError(`${kind}/${name} already exists; nothing to adopt`);
    }
    const adopted = [];
    for (const name of chosen) {
      const observed = found.get(name) as Map<string, Attrs>;
      const attrs = adoptedAttrs(runtime, observed);
      const now = clock.now();
      // The store refuses a node that appeared meanwhile (ConflictError); no backend is written.
      await store.insertNode(kind, name, attrs, now);
      for (const [provider, values] of observed)
        await store.putObservation(kind, name, provider, values, now);
      await store.appendAudit({
        at: now,
        actor: caller.id,
        action: 'adopt',
        kind,
        name,
        before: null,
        after: attrs,
      });
      adopted.push({ name, attrs });
    }
    res.status(201).json({ kind, adopted });
  });
  return router;
}
