/**
 * Hooks (admin only): subscribe a URL to events, list and delete subscriptions, read a hook's deliveries, enable a
 * hook again after it was disabled. The secret is shown once, in the answer to the create; never again.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import type { DeliveryRecord, HookEvent, HookRecord, KindSchema } from '@consortium/core';
import {
  HOOK_EVENTS,
  InputError,
  NotFoundError,
  bindFilter,
  filterFields,
  isHookEvent,
  parseSearch,
  splitKinds,
} from '@consortium/core';
import type { Kinds } from '../../plugins.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { assertNoProtoKeys, parseLimit, requireBody, single } from '../shared.js';

/** The fields of a hook's create request. */
const CREATE_FIELDS = ['url', 'events', 'kind', 'filter', 'secret'] as const;

/** A hook as the API shows it: everything but its secret. */
export function hookView(hook: HookRecord): Record<string, unknown> {
  return {
    id: hook.id,
    url: hook.url,
    events: hook.events,
    kind: hook.kind ?? null,
    filter: hook.filter ?? null,
    enabled: hook.enabled,
    consecutiveFailures: hook.consecutiveFailures,
    createdAt: new Date(hook.createdAt).toISOString(),
    actor: hook.actor,
    links: { self: `/api/hooks/${hook.id}`, deliveries: `/api/hooks/${hook.id}/deliveries` },
  };
}

/** A delivery as the API shows it, with every attempt logged. */
export function deliveryView(delivery: DeliveryRecord): Record<string, unknown> {
  const iso = (ms: number | undefined): string | null =>
    ms === undefined ? null : new Date(ms).toISOString();
  return {
    id: delivery.id,
    hookId: delivery.hookId,
    event: delivery.event,
    eventId: delivery.eventId,
    status: delivery.status,
    attempts: delivery.attempts,
    lastStatus: delivery.lastStatus ?? null,
    lastError: delivery.lastError ?? null,
    createdAt: iso(delivery.createdAt),
    updatedAt: iso(delivery.updatedAt),
    deliveredAt: iso(delivery.deliveredAt),
    log: delivery.log.map((a) => ({
      at: iso(a.at),
      status: a.status ?? null,
      error: a.error ?? null,
      durationMs: a.durationMs,
    })),
    payload: delivery.payload,
  };
}

/** Throws `InputError` (with `details.field`) unless the request is a hook Consortium can keep; writes nothing. */
export function parseHookRequest(
  body: unknown,
  kinds: Kinds,
): { url: string; events: HookEvent[]; kind?: string; filter?: string; secret?: string } {
  assertNoProtoKeys(body);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InputError('a hook is a JSON object: {"url", "events", "kind"?, "filter"?, "secret"?}');
  const fields = body as Record<string, unknown>;
  const bad = (field: string, message: string): InputError => new InputError(message, { details: { field } });
  const unknown = Object.keys(fields).filter((k) => !(CREATE_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw bad(
      unknown[0] ?? '',
      `unknown field(s) ${unknown.join(', ')} (known: ${CREATE_FIELDS.join(', ')})`,
    );
  const { url, events, kind, filter, secret } = fields;
  if (typeof url !== 'string' || !isHttpUrl(url)) throw bad('url', 'url must be an http:// or https:// URL');
  if (!Array.isArray(events) || events.length === 0)
    throw bad('events', `events must be a non-empty list of ${HOOK_EVENTS.join(', ')}`);
  const unknownEvent: unknown = (events as unknown[]).find((e) => !isHookEvent(e));
  if (unknownEvent !== undefined)
    throw bad('events', `unknown event ${JSON.stringify(unknownEvent)} (known: ${HOOK_EVENTS.join(', ')})`);
  if (kind !== undefined && (typeof kind !== 'string' || !kinds.has(kind)))
    throw bad('kind', `unknown kind ${JSON.stringify(kind)} (known: ${[...kinds.keys()].join(', ')})`);
  if (filter !== undefined) {
    if (typeof filter !== 'string' || filter.trim() === '')
      throw bad('filter', 'filter must be a search query');
    checkFilter(filter, kind, kinds);
  }
  if (secret !== undefined && (typeof secret !== 'string' || secret.length < 16 || secret.length > 256))
    throw bad('secret', 'secret must be a string of 16 to 256 characters');
  return {
    url,
    events: [...new Set(events as HookEvent[])],
    ...(kind === undefined ? {} : { kind: kind }),
    ...(filter === undefined ? {} : { filter: filter }),
    ...(secret === undefined ? {} : { secret: secret }),
  };
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Refuses a filter that does not parse, or names a field that no kind it can match has (as search does). */
function checkFilter(filter: string, kind: string | undefined, kinds: Kinds): void {
  const withField = (error: unknown): never => {
    if (error instanceof InputError)
      throw new InputError(`filter: ${error.message}`, { details: { field: 'filter' } });
    throw error;
  };
  const { kinds: named, rest } = (() => {
    try {
      return splitKinds(parseSearch(filter));
    } catch (error) {
      return withField(error);
    }
  })();
  const candidates = (named ?? (kind === undefined ? [...kinds.keys()] : [kind])).filter(
    (k) => kind === undefined || k === kind,
  );
  const unknownKind = (named ?? []).find((k) => !kinds.has(k));
  if (unknownKind !== undefined || candidates.length === 0) {
    throw new InputError(`filter: it can match no node of ${kind ?? 'any kind'}`, {
      details: { field: 'filter' },
    });
  }
  if (rest === undefined) return;
  const schemaOf = (k: string): KindSchema | undefined => kinds.get(k)?.schema;
  const unknownEverywhere = new Set(filterFields(rest));
  for (const k of candidates) {
    const schema = schemaOf(k);
    if (schema !== undefined)
      for (const field of bindFilter(rest, schema, schemaOf).known) unknownEverywhere.delete(field);
  }
  unknownEverywhere.delete('name');
  const missing = [...unknownEverywhere][0];
  if (missing !== undefined) {
    throw new InputError(`filter: no ${candidates.join(' or ')} has the attribute "${missing}"`, {
      details: { field: 'filter' },
    });
  }
}

/** The router of `/api/hooks`. */
export function hooksRouter(deps: Pick<WebDeps, 'store' | 'kinds' | 'clock'>): express.Router {
  const { store, kinds, clock } = deps;
  const router = express.Router();
  const hookOf = async (id: string | undefined): Promise<HookRecord> => {
    const hook = id === undefined ? undefined : await store.getHook(id);
    if (hook === undefined) throw new NotFoundError(`Hook ${id ?? ''} not found`);
    return hook;
  };
  router.post('/hooks', async (req, res) => {
    const caller = requireRole(res, 'admin');
    requireBody(req, ['application/json']);
    const request = parseHookRequest(req.body, kinds);
    const now = clock.now();
    const { secret: given, ...rest } = request;
    const secret = given ?? `whsec_${randomBytes(24).toString('hex')}`;
    const hook: HookRecord = {
      id: `h-${now.toString(36)}-${randomBytes(5).toString('hex')}`,
      ...rest,
      secret,
      enabled: true,
      consecutiveFailures: 0,
      createdAt: now,
      actor: caller.id,
    };
    await store.createHook(hook);
    await store.appendAudit(hookAudit(hook, 'hook:create', caller.id, now, null, hookView(hook)));
    res
      .status(201)
      .location(`/api/hooks/${hook.id}`)
      .json({ ...hookView(hook), secret });
  });
  router.get('/hooks', async (_req, res) => {
    requireRole(res, 'admin');
    res.json({ items: (await store.listHooks()).map(hookView) });
  });
  router.get('/hooks/:id', async (req, res) => {
    requireRole(res, 'admin');
    res.json(hookView(await hookOf(req.params['id'])));
  });
  router.delete('/hooks/:id', async (req, res) => {
    const caller = requireRole(res, 'admin');
    const hook = await hookOf(req.params['id']);
    await store.deleteHook(hook.id);
    await store.appendAudit(hookAudit(hook, 'hook:delete', caller.id, clock.now(), hookView(hook), null));
    res.json({ ...hookView(hook), deleted: true });
  });
  router.post('/hooks/:id/enable', async (req, res) => {
    const caller = requireRole(res, 'admin');
    const before = await hookOf(req.params['id']);
    const hook = await store.setHookEnabled(before.id, true);
    await store.appendAudit(
      hookAudit(hook, 'hook:enable', caller.id, clock.now(), hookView(before), hookView(hook)),
    );
    res.json(hookView(hook));
  });
  router.get('/hooks/:id/deliveries', async (req, res) => {
    requireRole(res, 'admin');
    const hook = await hookOf(req.params['id']);
    const known = ['limit', 'cursor'];
    const unknown = Object.keys(req.query).filter((k) => !known.includes(k));
    if (unknown.length > 0)
      throw new InputError(`unknown parameter(s) ${unknown.join(', ')} (known: limit, cursor)`);
    const cursor = single(req.query['cursor'], 'cursor');
    const page = await store.listDeliveries(hook.id, {
      limit: parseLimit(req.query['limit'], 50, 500),
      ...(cursor === undefined ? {} : { cursor }),
    });
    res.json({
      items: page.items.map(deliveryView),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });
  return router;
}

/** The audit entry of a change to a hook (its secret never in it). */
function hookAudit(
  hook: HookRecord,
  action: string,
  actor: string,
  at: number,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): Parameters<WebDeps['store']['appendAudit']>[0] {
  const plain = (view: Record<string, unknown> | null): Record<string, never> | null =>
    view === null ? null : (JSON.parse(JSON.stringify(view)) as Record<string, never>);
  return { at, actor, action, kind: 'hook', name: hook.id, before: plain(before), after: plain(after) };
}
