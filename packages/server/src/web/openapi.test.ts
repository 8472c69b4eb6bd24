/**
 * The OpenAPI document: valid OpenAPI 3.1 by @readme/openapi-parser (the specification's JSON Schema plus the
 * checks a schema cannot make: path parameters declared and required, unique parameters), and complete: every
 * route the express app answers is in it, and everything in it is a route. A route added without its description
 * fails here.
 */
import type express from 'express';
import { compileErrors, validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '@consortium/core';
import { Metrics } from '../metrics.js';
import type { Api } from '../test-support/dev-server.js';
import { startInProcess } from '../test-support/dev-server.js';
import { createApp } from './app.js';

let api: Api;
let app: express.Express;
let kinds: readonly string[];
let stop: () => Promise<void>;

beforeAll(async () => {
  const started = await startInProcess();
  api = started.api;
  stop = () => started.stop();
  const { store, coordinator, logger } = started.parts;
  kinds = [...started.parts.kinds.keys()];
  app = createApp({
    store,
    coordinator,
    kinds: started.parts.kinds,
    logger,
    clock: systemClock,
    metrics: new Metrics(coordinator, () => true),
    bodyLimit: '1mb',
    version: 'test',
    ready: () => Promise.resolve(true),
  });
}, 60_000);

afterAll(async () => {
  await stop();
});

/** The part of express's router a walk needs: a layer is a route or a mounted router. */
interface Layer {
  readonly rawPath?: unknown;
  readonly route?: { readonly path: string; readonly methods: Record<string, boolean> };
  readonly handle: { readonly stack?: readonly Layer[] };
}

/** Every `METHOD /path` the app routes, with express's `:param` path syntax. */
function routesOf(stack: readonly unknown[], prefix = ''): string[] {
  // Express's types leave out what its router keeps at run time (a route's methods, a mount's raw path).
  return stack.flatMap((item) => {
    const layer = item as Layer;
    if (layer.route !== undefined) {
      const { path, methods } = layer.route;
      return Object.keys(methods).map((method) => `${method.toUpperCase()} ${prefix}${path}`);
    }
    if (layer.handle.stack === undefined) return [];
    const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
    return routesOf(layer.handle.stack, `${prefix}${mount}`);
  });
}

/** Every `METHOD /path` the document describes. */
function documented(document: { paths: Record<string, Record<string, unknown>> }): string[] {
  const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((key) => methods.includes(key))
      .map((method) => `${method.toUpperCase()} ${path}`),
  );
}

/** A route as the document has it: one path per kind for `:kind` under /api/inventory, `{param}` for the rest. */
function asDocumented(route: string): string[] {
  const expanded = route.includes('/inventory/:kind') ? kinds.map((k) => route.replace(':kind', k)) : [route];
  return expanded.map((r) => r.replace(/:([A-Za-z_]+)/g, '{$1}'));
}

describe('/api/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document with servers, by @readme/openapi-parser', async () => {
    const answer = await api.request('GET', '/api/openapi.json');
    expect(answer.status).toBe(200);
    const document = answer.body;
    expect(document.openapi).toBe('3.1.0');
    expect(document.servers).toEqual([{ url: api.url, description: 'this server' }]);
    const result = await validate(structuredClone(document));
    expect(result.valid ? '' : compileErrors(result)).toBe('');
    expect(result.warnings).toEqual([]);
  });

  it('the validator catches what the old document got wrong: an undeclared path parameter', async () => {
    const document = (await api.request('GET', '/api/openapi.json')).body;
    document.paths['/api/jobs/{id}'].get.parameters = [];
    const result = await validate(document);
    expect(result.valid).toBe(false);
    expect(compileErrors(result)).toContain('/api/jobs/{id}');
  });

  it('describes every route the app answers, and no route it does not', async () => {
    const document = (await api.request('GET', '/api/openapi.json')).body;
    const routes = routesOf(app.router.stack);
    // The walk itself must find the routes: a broken walk would make the comparison vacuous.
    expect(routes).toEqual(
      expect.arrayContaining(['GET /healthz', 'GET /api/audit', 'PATCH /api/inventory/:kind/:name']),
    );
    // The web console's page (`/`, `/index.html`) is the console, not the API: it is not in the document.
    const apiRoutes = routes.filter((route) => route !== 'GET /,/index.html');
    expect(apiRoutes).toHaveLength(routes.length - 1);
    const expected = [...new Set(apiRoutes.flatMap(asDocumented))].sort();
    expect(documented(document).sort()).toEqual(expected);
  });

  it('covers query parameters, list responses and the updates media type', async () => {
    const document = (await api.request('GET', '/api/openapi.json')).body;
    const names = (path: string, method: string): string[] =>
      (document.paths[path][method].parameters as { $ref?: string; name?: string }[]).map(
        (p) => p.name ?? document.components.parameters[(p.$ref as string).split('/').pop() as string].name,
      );
    expect(names('/api/audit', 'get')).toEqual(['kind', 'name', 'actor', 'job', 'limit', 'cursor']);
    expect(names('/api/jobs', 'get')).toEqual(['state', 'kind', 'name', 'limit', 'cursor']);
    expect(names('/api/inventory/host', 'get')).toEqual(['limit', 'cursor', 'fields', 'filters']);
    expect(names('/api/inventory/host/{name}', 'patch')).toEqual(['name', 'explain', 'wait', 'If-Match']);
    expect(names('/api/search', 'get')).toEqual(['q', 'limit']);
    expect(Object.keys(document.paths['/api/inventory/host/{name}'].patch.requestBody.content)).toEqual([
      'application/merge-patch+json',
      'application/json-patch+json',
      'application/vnd.consortium.updates+json',
    ]);
    expect(document.paths['/api/audit'].get.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/AuditPage',
    });
    expect(document.components.schemas.AuditPage.required).toEqual(['items']);
    expect(document.components.schemas.HostAttrs.properties.power['x-authority']).toBe('sandbox-vm');
  });
});
