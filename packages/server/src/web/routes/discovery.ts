/**
 * Discovery and adoption: `GET /api/discovery?kind=host` asks every provider that can `discover()` what its
 * backend holds, merges what several providers found under one name into one entry listing them, and sorts the
 * entries into known (a node exists; with drift), adoptable (no node, and Consortium never had one) and orphaned
 * (no node, but Consortium made, changed or adopted one of that name: deleted behind its back, or a create that
 * never finished). The groups are decided here, from the store, so every provider's objects are sorted alike.
 * `POST /api/discovery/adopt` creates nodes from the observed values without writing to any backend: the node and
 * each provider's observation are written to the store only.
 */
import express from 'express';
import type {
  Attrs,
  DiscoveredObject,
  DiscoveryView,
  JsonValue,
  KindSchema,
  KnownView,
  Path,
  Store,
  UnmanagedView,
} from '@consortium/core';
import {
  CancelledError,
  ConflictError,
  InputError,
  NotFoundError,
  TimeoutError,
  isJsonObject,
  parsePath,
} from '@consortium/core';
import { exists } from '../../intake.js';
import type { KindRuntime } from '../../plugins.js';
import { adoptionEvent } from '../../hooks.js';
import { intakeLockKey } from '../../protocol.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { runtimeOf, single } from '../shared.js';
import { driftOf } from '../views.js';

/** What each provider found, by object name, then by provider name (providers in name order). */
type Found = Map<string, Map<string, Attrs>>;

/** Asks every provider of the kind that can discover, at once; a backend that cannot be read fails the request. */
async function discoverAll(
  deps: Pick<WebDeps, 'logger' | 'clock'>,
  runtime: KindRuntime,
  kind: string,
): Promise<Found> {
  const providers = [...runtime.providers].filter(([, p]) => p.discover !== undefined).sort(byName);
  const answers = await Promise.all(
    providers.map(async ([name, provider]): Promise<[string, readonly DiscoveredObject[]]> => [
      name,
      (await provider.discover?.(kind, {
        logger: deps.logger.child({ discover: name }),
        signal: AbortSignal.timeout(60_000),
        fencingToken: '0',
        now: () => deps.clock.now(),
      })) ?? [],
    ]),
  );
  const found: Found = new Map();
  for (const [provider, objects] of answers) {
    for (const object of objects) {
      const byProvider = found.get(object.name) ?? new Map<string, Attrs>();
      byProvider.set(provider, object.attrs);
      found.set(object.name, byProvider);
    }
  }
  return found;
}

const byName = <T>([a]: [string, T], [b]: [string, T]): number => (a < b ? -1 : a > b ? 1 : 0);

/** The provider with authority over `path`, or undefined for a path the kind does not have. */
function ownerOf(schema: KindSchema, path: Path): string | undefined {
  try {
    return schema.authorityOf(path);
  } catch {
    return undefined;
  }
}

/**
 * Merges one provider's observed value at `path` into what others observed: map lists item by item (libvirt's
 * `interfaces[eth0].mac` beside ipam's `interfaces[eth0].ip`), objects field by field, and a leaf the provider's
 * when it has authority over it (or nobody else gave one).
 */
function mergeObserved(
  schema: KindSchema,
  path: Path,
  current: JsonValue | undefined,
  incoming: JsonValue,
  provider: string,
): JsonValue {
  if (current === undefined) return incoming;
  const list = schema.listSemanticsAt(path);
  if (list?.type === 'map' && Array.isArray(current) && Array.isArray(incoming)) {
    const items = new Map<string, JsonValue>();
    const keyOf = (item: JsonValue): string | undefined =>
      isJsonObject(item) && typeof item[list.key] === 'string' ? (item[list.key] as string) : undefined;
    for (const item of current as readonly JsonValue[]) items.set(keyOf(item) ?? JSON.stringify(item), item);
    for (const item of incoming as readonly JsonValue[]) {
      const key = keyOf(item);
      if (key === undefined) continue;
      items.set(key, mergeObserved(schema, [...path, { key }], items.get(key), item, provider));
    }
    return [...items.values()];
  }
  if (isJsonObject(current) && isJsonObject(incoming)) {
    const merged: Record<string, JsonValue> = { ...current };
    for (const [field, value] of Object.entries(incoming))
      merged[field] = mergeObserved(schema, [...path, { prop: field }], merged[field], value, provider);
    return merged;
  }
  return ownerOf(schema, path) === provider ? incoming : current;
}

/** The node a set of observations makes: each value from the provider with authority over it, `present` set. */
export function adoptedAttrs(schema: KindSchema, observed: ReadonlyMap<string, Attrs>): Attrs {
  const attrs: Record<string, JsonValue> = { present: true };
  for (const [provider, values] of observed) {
    for (const [key, value] of Object.entries(values)) {
      attrs[key] = mergeObserved(schema, parsePath(key), attrs[key], value, provider);
    }
  }
  return attrs;
}

/** True when Consortium ever had a node of this name: a job or an audit entry (an adoption has no job). */
async function hadNode(store: Store, kind: string, name: string): Promise<boolean> {
  if ((await store.listJobs({ kind, name, limit: 1 })).items.length > 0) return true;
  return (await store.listAudit({ kind, name, limit: 1 })).items.length > 0;
}

/** Sorts what the backends hold into the three groups. */
async function sortFound(
  store: Store,
  schema: KindSchema,
  kind: string,
  found: Found,
  now: number,
): Promise<DiscoveryView> {
  const known: KnownView[] = [];
  const adoptable: UnmanagedView[] = [];
  const orphaned: UnmanagedView[] = [];
  for (const [name, observed] of [...found].sort(byName)) {
    const node = await store.getNode(kind, name);
    const providers = [...observed.keys()];
    if (exists(node)) {
      // Drift as `?show=authority` reports it, from what discovery saw just now.
      const fresh = Object.fromEntries([...observed].map(([p, attrs]) => [p, { attrs, at: now }]));
      known.push({ name, providers, drift: driftOf(schema, { ...node, observed: fresh }) });
      continue;
    }
    const entry = { name, providers, attrs: adoptedAttrs(schema, observed) };
    ((await hadNode(store, kind, name)) ? orphaned : adoptable).push(entry);
  }
  return { kind, known, adoptable, orphaned };
}

/** The names an adopt request asks for: `{kind, names: [...]}` or `{kind, all: true}`; throws `InputError`. */
function adoptRequest(body: unknown): { kind: string; names: readonly string[] | 'all' } {
  const shape = 'the body must be {"kind": ..., "names": [...]} or {"kind": ..., "all": true}';
  if (!isJsonObject(body) || typeof body['kind'] !== 'string') throw new InputError(shape);
  const names = body['names'];
  const all = body['all'] === true;
  if (all === Array.isArray(names)) throw new InputError('give exactly one of names or all: true');
  if (all) return { kind: body['kind'], names: 'all' };
  const list = names as JsonValue[];
  if (list.length === 0 || !list.every((n): n is string => typeof n === 'string'))
    throw new InputError('names must be a non-empty list of node names');
  return { kind: body['kind'], names: [...new Set(list)] };
}

/** Throws `ConflictError` while a change of the node is queued or running (a create may be making it now). */
async function refuseBusy(store: Store, kind: string, name: string): Promise<void> {
  const busy = (await store.listJobs({ kind, name, states: ['queued', 'running'], limit: 1 })).items[0];
  if (busy !== undefined)
    throw new ConflictError(`${kind}/${name} is being changed by job ${busy.id}; adopt it once that ends`);
}

/** How long an adoption waits for a node's intake lock (held only for a few store calls at a time). */
const INTAKE_LOCK_WAIT_MS = 30_000;

/**
 * Writes one adopted node, its providers' observations and an audit entry, under the node's intake lock (the lock
 * a create takes), so that no change of it is admitted meanwhile. Writes no backend.
 */
async function adoptOne(
  deps: Pick<WebDeps, 'store' | 'coordinator' | 'clock' | 'hooks'>,
  adoption: { kind: string; entry: UnmanagedView; observed: ReadonlyMap<string, Attrs>; actor: string },
): Promise<void> {
  const { store, coordinator, clock, hooks } = deps;
  const { kind, entry, observed, actor } = adoption;
  const { name } = entry;
  let held;
  try {
    held = await coordinator.lock(intakeLockKey(kind, name), AbortSignal.timeout(INTAKE_LOCK_WAIT_MS));
  } catch (error) {
    if (!(error instanceof CancelledError)) throw error;
    throw new TimeoutError(`${kind}/${name}: another request held the node's intake too long; try again`);
  }
  try {
    await refuseBusy(store, kind, name);
    if (exists(await store.getNode(kind, name)))
      throw new ConflictError(`${kind}/${name} already exists; nothing to adopt`);
    const now = clock.now();
    // A stub left by a failed create makes the store refuse the insert (ConflictError): it is created again instead.
    const node = await store.insertNode(kind, name, entry.attrs, now);
    for (const [provider, values] of observed) await store.putObservation(kind, name, provider, values, now);
    await store.appendAudit({
      at: now,
      actor,
      action: 'adopt',
      kind,
      name,
      before: null,
      after: entry.attrs,
    });
    await hooks?.publish([adoptionEvent(node, actor, now)]);
  } finally {
    await held.release();
  }
}

/** The router of `/api/discovery`. */
export function discoveryRouter(deps: WebDeps): express.Router {
  const { store, kinds, clock } = deps;
  const router = express.Router();

  const report = async (kind: string) => {
    const runtime = runtimeOf(kinds, kind);
    const found = await discoverAll(deps, runtime, kind);
    return { runtime, found, view: await sortFound(store, runtime.schema, kind, found, clock.now()) };
  };

  router.get('/discovery', async (req, res) => {
    requireRole(res, 'reader');
    const kind = single(req.query['kind'], 'kind');
    if (kind === undefined) throw new InputError('discovery needs ?kind=, such as ?kind=host');
    res.json((await report(kind)).view);
  });

  router.post('/discovery/adopt', async (req, res) => {
    const caller = requireRole(res, 'operator');
    const request = adoptRequest(req.body);
    const { kind } = request;
    const { found, view } = await report(kind);
    const candidates = new Map([...view.adoptable, ...view.orphaned].map((o) => [o.name, o]));
    // `all` takes the adoptable only: an orphan's node was deleted on purpose or never finished; name it to adopt.
    const chosen = request.names === 'all' ? view.adoptable.map((o) => o.name) : request.names;
    // Every name is checked before anything is written: a refused request writes nothing.
    for (const name of chosen) {
      if (!found.has(name)) throw new NotFoundError(`no backend holds a ${kind} named ${name}`);
      if (!candidates.has(name)) throw new ConflictError(`${kind}/${name} already exists; nothing to adopt`);
      await refuseBusy(store, kind, name);
    }
    const adopted: UnmanagedView[] = [];
    for (const name of chosen) {
      const entry = candidates.get(name) as UnmanagedView;
      await adoptOne(deps, { kind, entry, observed: found.get(name) ?? new Map(), actor: caller.id });
      adopted.push(entry);
    }
    res.status(201).json({ kind, adopted });
  });
  return router;
}
