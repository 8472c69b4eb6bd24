/**
 * The express app: NetBox's REST routes for the served subset, token authentication with DRF's and NetBox's
 * exact refusals, maintenance mode, and injected faults in front of everything (as a reverse proxy or a broken
 * NetBox would answer).
 */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { NetboxHttpError, noRoute, notFound } from './errors.js';
import type { FilterSet, PaginationSettings } from './query.js';
import {
  applyFilters,
  choiceFilter,
  idOf,
  modelFilter,
  numberFilter,
  paginate,
  tagFilter,
  textFilter,
} from './query.js';
import { Serializer } from './serialize.js';
import type { BaseRecord, NetboxState, Table } from './state.js';
import { CLUSTER_STATUSES, VM_STATUSES } from './state.js';
import { writeTag, writeVirtualMachine } from './validate.js';

/** The NetBox release the test server imitates; it appears in the `API-Version` header and 500 bodies. */
export const NETBOX_VERSION = '4.6.8';

/** A fault to inject: the next `times` matching requests get `status` and `body` (after `delayMs`). */
export interface Fault {
  /** Only requests with this method (any when absent). */
  readonly method?: string;
  /** Only requests whose path starts with this (or matches this expression); any when absent. */
  readonly path?: string | RegExp;
  /** The status to answer; without it the request is only delayed, then served normally. */
  readonly status?: number;
  /** The body: an object is sent as JSON, a string as HTML; a typical one for the status when absent. */
  readonly body?: unknown;
  /** Wait this long before answering (to make clients time out). */
  readonly delayMs?: number;
  /** How many matching requests get the fault (default 1). */
  readonly times?: number;
}

/** An injected fault with its uses left and what to call when a request first meets it. */
export interface FaultEntry {
  readonly fault: Fault;
  left: number;
  readonly onHit: () => void;
}

/** What the app needs besides the state. */
export interface AppOptions {
  readonly state: NetboxState;
  readonly tokens: () => ReadonlySet<string>;
  readonly readOnlyTokens: () => ReadonlySet<string>;
  readonly faults: FaultEntry[];
  readonly pagination: PaginationSettings;
}

type Json = Record<string, unknown>;

interface Collection<R extends BaseRecord> {
  readonly table: Table<R>;
  readonly filters: FilterSet<R>;
  show(serializer: Serializer, record: R): Json;
  create?(body: unknown): R;
  update?(record: R, body: unknown): R;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const PROXY_TITLES: Readonly<Record<number, string>> = {
  502: '502 Bad Gateway',
  503: '503 Service Temporarily Unavailable',
  504: '504 Gateway Time-out',
};

/** The body NetBox (or the nginx in front of it) typically sends with a status. */
function typicalBody(status: number): unknown {
  const title = PROXY_TITLES[status];
  if (title !== undefined) {
    return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  }
  if (status >= 500) return internalError('injected fault', 'Exception');
  return { detail: `injected fault (${status})` };
}

/** NetBox's `handle_rest_api_exception` body (utilities/error_handlers.py), always with status 500. */
function internalError(error: string, exception: string): Json {
  return { error, exception, netbox_version: NETBOX_VERSION, python_version: '3.12.3' };
}

function send(res: Response, status: number, body: unknown): void {
  if (typeof body === 'string') res.status(status).type('html').send(body);
  else if (body === undefined) res.status(status).end();
  else res.status(status).json(body);
}

/** Builds the app over `options.state`. */
export function createApp(options: AppOptions): express.Express {
  const { state } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const collections: Record<string, Collection<BaseRecord>> = {};
  const register = <R extends BaseRecord>(path: string, collection: Collection<R>): void => {
    collections[path] = collection as unknown as Collection<BaseRecord>;
  };

  register('dcim/sites', {
    table: state.sites,
    filters: {
      id: numberFilter('id', idOf),
      name: textFilter((s) => s.name),
      slug: textFilter((s) => s.slug),
      q: (values) => (s) => values.some((v) => s.name.toLowerCase().includes(v.toLowerCase())),
    },
    show: (z, s) => z.site(s),
  });
  register('virtualization/cluster-types', {
    table: state.clusterTypes,
    filters: {
      id: numberFilter('id', idOf),
      name: textFilter((t) => t.name),
      slug: textFilter((t) => t.slug),
    },
    show: (z, t) => z.clusterTypeBrief(t),
  });
  register('virtualization/clusters', {
    table: state.clusters,
    filters: {
      id: numberFilter('id', idOf),
      name: textFilter((c) => c.name),
      type_id: modelFilter(
        'type_id',
        () => state.clusterTypes.all(),
        idOf,
        (c) => c.typeId,
      ),
      type: modelFilter(
        'type',
        () => state.clusterTypes.all(),
        (t) => t.slug,
        (c) => c.typeId,
      ),
      site_id: modelFilter(
        'site_id',
        () => state.sites.all(),
        idOf,
        (c) => c.siteId,
      ),
      site: modelFilter(
        'site',
        () => state.sites.all(),
        (s) => s.slug,
        (c) => c.siteId,
      ),
      status: choiceFilter('status', CLUSTER_STATUSES, (c) => c.status),
      q: (values) => (c) => values.some((v) => c.name.toLowerCase().includes(v.toLowerCase())),
    },
    show: (z, c) => z.cluster(c),
  });
  register('tenancy/tenants', {
    table: state.tenants,
    filters: {
      id: numberFilter('id', idOf),
      name: textFilter((t) => t.name),
      slug: textFilter((t) => t.slug),
    },
    show: (z, t) => z.tenant(t),
  });
  register('extras/tags', {
    table: state.tags,
    filters: {
      id: numberFilter('id', idOf),
      name: textFilter((t) => t.name),
      slug: textFilter((t) => t.slug),
    },
    show: (z, t) => z.tag(t),
    create: (body) => {
      const values = writeTag(state, body);
      return state.tags.insert((id, now) => ({ id, created: now, last_updated: now, ...values }));
    },
  });
  register('virtualization/virtual-machines', {
    table: state.virtualMachines,
    filters: {
      id: numberFilter('id', idOf),
      name: textFilter((v) => v.name, true),
      status: choiceFilter('status', VM_STATUSES, (v) => v.status),
      site_id: modelFilter(
        'site_id',
        () => state.sites.all(),
        idOf,
        (v) => v.siteId,
      ),
      site: modelFilter(
        'site',
        () => state.sites.all(),
        (s) => s.slug,
        (v) => v.siteId,
      ),
      cluster_id: modelFilter(
        'cluster_id',
        () => state.clusters.all(),
        idOf,
        (v) => v.clusterId,
      ),
      cluster: modelFilter(
        'cluster',
        () => state.clusters.all(),
        (c) => c.name,
        (v) => v.clusterId,
      ),
      tenant_id: modelFilter(
        'tenant_id',
        () => state.tenants.all(),
        idOf,
        (v) => v.tenantId,
      ),
      tenant: modelFilter(
        'tenant',
        () => state.tenants.all(),
        (t) => t.slug,
        (v) => v.tenantId,
      ),
      tag: tagFilter(
        'tag',
        () => state.tags.all(),
        (v) => v.tagIds,
      ),
      q: (values) => (v) => values.some((q) => v.name.toLowerCase().includes(q.toLowerCase())),
    },
    show: (z, v) => z.virtualMachine(v),
    create: (body) => {
      const values = writeVirtualMachine(state, body, undefined);
      return state.virtualMachines.insert((id, now) => ({ id, created: now, last_updated: now, ...values }));
    },
    update: (vm, body) => {
      const values = writeVirtualMachine(state, body, vm);
      Object.assign(vm, values, { last_updated: new Date().toISOString() });
      return vm;
    },
  });

  // Log every answer for tests that count requests.
  app.use((req, res, next) => {
    res.on('finish', () => {
      const url = new URL(req.originalUrl, 'http://netbox');
      state.requests.push({
        method: req.method,
        path: url.pathname,
        query: url.search,
        status: res.statusCode,
      });
    });
    res.setHeader('API-Version', NETBOX_VERSION.split('.').slice(0, 2).join('.'));
    next();
  });

  // Injected faults come first: a proxy or a broken NetBox answers before authentication.
  app.use((req, res, next) => {
    const path = new URL(req.originalUrl, 'http://netbox').pathname;
    const entry = options.faults.find(
      ({ fault }) =>
        (fault.method === undefined || fault.method.toUpperCase() === req.method) &&
        (fault.path === undefined ||
          (typeof fault.path === 'string' ? path.startsWith(fault.path) : fault.path.test(path))),
    );
    if (entry === undefined) {
      next();
      return;
    }
    entry.left--;
    entry.onHit();
    if (entry.left <= 0) options.faults.splice(options.faults.indexOf(entry), 1);
    const { status, body, delayMs = 0 } = entry.fault;
    setTimeout(() => {
      if (status === undefined) next();
      else if (!res.destroyed) send(res, status, body ?? typicalBody(status));
    }, delayMs);
  });

  // Django's APPEND_SLASH: API paths end in a slash.
  app.use((req, res, next) => {
    const url = new URL(req.originalUrl, 'http://netbox');
    if (url.pathname.startsWith('/api') && !url.pathname.endsWith('/')) {
      res.redirect(301, `${url.pathname}/${url.search}`);
      return;
    }
    next();
  });

  // Token authentication (DRF TokenAuthentication + NetBox's TokenAuthentication); LOGIN_REQUIRED is on.
  app.use('/api', (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const parts = header.split(/\s+/).filter((p) => p !== '');
    const refuse = (detail: string): void => {
      send(res, 403, { detail });
    };
    if (parts.length === 0 || parts[0]?.toLowerCase() !== 'token') {
      refuse('Authentication credentials were not provided.');
      return;
    }
    if (parts.length === 1) {
      refuse('Invalid token header. No credentials provided.');
      return;
    }
    if (parts.length > 2) {
      refuse('Invalid token header. Token string should not contain spaces.');
      return;
    }
    const key = parts[1] as string;
    const readOnly = options.readOnlyTokens().has(key);
    if (!options.tokens().has(key) && !readOnly) {
      refuse('Invalid token');
      return;
    }
    if (readOnly && UNSAFE.has(req.method)) {
      refuse('You do not have permission to perform this action.');
      return;
    }
    next();
  });

  // MAINTENANCE_MODE: the database session is read-only, so writes fail with NetBox's 500 body.
  app.use('/api', (req, res, next) => {
    if (!state.maintenance || !UNSAFE.has(req.method)) {
      next();
      return;
    }
    const verb = req.method === 'POST' ? 'INSERT' : req.method === 'DELETE' ? 'DELETE' : 'UPDATE';
    send(res, 500, internalError(`cannot execute ${verb} in a read-only transaction\n`, 'InternalError'));
  });

  // DRF's parsers: JSON only in this subset.
  app.use(express.text({ type: () => true, limit: '2mb' }));
  app.use((req, _res, next) => {
    if (req.method !== 'POST' && req.method !== 'PATCH' && req.method !== 'PUT') {
      next();
      return;
    }
    const type = req.get('content-type');
    if (type === undefined || !/^application\/json\b/i.test(type)) {
      throw new NetboxHttpError(415, {
        detail: `Unsupported media type "${type ?? ''}" in request.`,
      });
    }
    const text = typeof req.body === 'string' ? req.body : '';
    try {
      req.body = JSON.parse(text) as unknown;
    } catch (error) {
      throw new NetboxHttpError(400, { detail: `JSON parse error - ${(error as Error).message}` });
    }
    next();
  });

  app.get('/api/', (req, res) => {
    const base = `${req.protocol}://${req.get('host') ?? ''}/api`;
    res.json({
      circuits: `${base}/circuits/`,
      core: `${base}/core/`,
      dcim: `${base}/dcim/`,
      extras: `${base}/extras/`,
      ipam: `${base}/ipam/`,
      plugins: `${base}/plugins/`,
      status: `${base}/status/`,
      tenancy: `${base}/tenancy/`,
      users: `${base}/users/`,
      virtualization: `${base}/virtualization/`,
      vpn: `${base}/vpn/`,
      wireless: `${base}/wireless/`,
    });
  });

  app.get('/api/status/', (_req, res) => {
    res.json({
      'django-version': '6.0.8',
      installed_apps: {},
      'netbox-version': NETBOX_VERSION,
      'netbox-full-version': NETBOX_VERSION,
      plugins: {},
      'python-version': '3.12.3',
      'rq-workers-running': 1,
    });
  });

  const serializerFor = (req: Request): Serializer =>
    new Serializer(state, `${req.protocol}://${req.get('host') ?? ''}`);

  for (const [path, collection] of Object.entries(collections)) {
    const list = `/api/${path}/`;
    const detail = `/api/${path}/:id/`;
    const find = (req: Request): BaseRecord => {
      const text = String(req.params['id']);
      const record = /^\d+$/.test(text) ? collection.table.get(Number(text)) : undefined;
      if (record === undefined) throw notFound();
      return record;
    };

    app.get(list, (req, res) => {
      const url = new URL(req.originalUrl, `${req.protocol}://${req.get('host') ?? ''}`);
      const records = applyFilters(collection.table.all(), url.searchParams, collection.filters);
      const page = paginate(records, url, options.pagination);
      const z = serializerFor(req);
      res.json({ ...page, results: page.results.map((r) => collection.show(z, r)) });
    });
    app.get(detail, (req, res) => {
      res.json(collection.show(serializerFor(req), find(req)));
    });
    const create = collection.create?.bind(collection);
    const update = collection.update?.bind(collection);
    if (create !== undefined) {
      app.post(list, (req, res) => {
        const record = create(req.body);
        res.status(201).json(collection.show(serializerFor(req), record));
      });
    }
    if (update !== undefined) {
      app.patch(detail, (req, res) => {
        const record = update(find(req), req.body);
        res.json(collection.show(serializerFor(req), record));
      });
      app.delete(detail, (req, res) => {
        const record = find(req);
        collection.table.delete(record.id);
        res.status(204).end();
      });
    }
    const notAllowed = (req: Request): never => {
      throw new NetboxHttpError(405, { detail: `Method "${req.method}" not allowed.` });
    };
    app.all(list, notAllowed);
    app.all(detail, notAllowed);
  }

  app.use((req) => {
    throw noRoute(new URL(req.originalUrl, 'http://netbox').pathname);
  });

  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error instanceof NetboxHttpError) {
      send(res, error.status, error.body);
      return;
    }
    const status = (error as { status?: unknown }).status;
    if (status === 413) {
      send(res, 413, { detail: 'Request body too large.' });
      return;
    }
    send(res, 500, internalError((error as Error).message, (error as Error).name));
  });

  return app;
}
