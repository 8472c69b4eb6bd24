/**
 * What can be checked without an ArangoDB server: connecting to nothing, credentials, and the store's requests and
 * retries against a scripted HTTP server that answers as ArangoDB's HTTP API is documented to (cursor, stream
 * transaction, collection and index endpoints). The scripted answers are assumptions from the documentation, not
 * a server's behaviour; the contract suite in arangodb-store.test.ts is the real check.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BackendError,
  BackendUnavailableError,
  ConflictError,
  PreconditionFailedError,
} from '@consortium/core';
import type { ArangoStore } from './arangodb-store.js';
import { openArangoStore, splitCredentials } from './arangodb-store.js';
import { arangoMigrations, latestVersion } from './migrations.js';
import { nodeKey } from './references.js';

const LATEST = latestVersion(arangoMigrations);

/** One request as the scripted server saw it. */
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly trx: string | undefined;
  readonly authorization: string | undefined;
  readonly query?: string;
  readonly bindVars?: Record<string, unknown>;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

type Script = (seen: Seen) => Answer | undefined;

const ok = (result: unknown): Answer => ({
  status: 201,
  body: { error: false, code: 201, result, hasMore: false, cached: false, extra: {} },
});
const fail = (status: number, errorNum: number, errorMessage: string): Answer => ({
  status,
  body: { error: true, code: status, errorNum, errorMessage },
});

/** Answers everything opening a migrated store asks; `script` may answer first. */
function answer(seen: Seen, script: Script): Answer {
  const scripted = script(seen);
  if (scripted !== undefined) return scripted;
  if (seen.method === 'GET' && seen.path.includes('/_api/collection/')) {
    return { status: 200, body: { error: false, code: 200, name: seen.path.split('/').pop() } };
  }
  if (seen.path.includes('/_api/index'))
    return { status: 200, body: { error: false, code: 200, isNewlyCreated: false } };
  if (seen.path.endsWith('/_api/transaction/begin'))
    return ok({ id: `trx-${seen.path.length}`, status: 'running' });
  if (seen.path.includes('/_api/transaction/')) {
    return ok({ id: seen.path.split('/').pop(), status: seen.method === 'PUT' ? 'committed' : 'aborted' });
  }
  if (seen.query?.includes('RETURN m.version') === true) return ok([LATEST]);
  if (seen.query?.includes('RETURN { map: m.map }') === true) return ok([{ map: {} }]);
  return ok([]);
}

const servers: Server[] = [];
const stores: ArangoStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
});

/** Starts the scripted server on a free loopback port; returns its URL and the requests it has seen. */
async function scripted(script: Script): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body =
        text === '' ? {} : (JSON.parse(text) as { query?: unknown; bindVars?: Record<string, unknown> });
      const entry: Seen = {
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0] ?? '',
        trx: req.headers['x-arango-trx-id'] as string | undefined,
        authorization: req.headers.authorization,
        ...(typeof body.query === 'string' ? { query: body.query, bindVars: body.bindVars ?? {} } : {}),
      };
      seen.push(entry);
      const { status, body: reply } = answer(entry, script);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function open(
  url: string,
  extra: { conflictRetryMs?: number; runMigrations?: boolean } = {},
): Promise<ArangoStore> {
  const store = await openArangoStore({ url, database: 'inventory', ...extra });
  stores.push(store);
  return store;
}

/** A port nothing listens on: one the kernel just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) expect.fail('expected a rejection');
  return outcome;
}

describe('opening', () => {
  it('reports a server that is not there as unavailable, naming it', async () => {
    const port = await closedPort();
    const error = await rejection(
      openArangoStore({ url: `http://127.0.0.1:${port}`, database: 'inventory' }),
    );
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.message).toBe(
      `ArangoDB at http://127.0.0.1:${port} (database inventory) is unreachable: ` +
        `Fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  it('sends the credentials of the URL as basic auth and keeps them out of messages', async () => {
    const { url, seen } = await scripted(() => fail(401, 401, 'not authorized to execute this request'));
    const withCredentials = url.replace('http://', 'http://root:s3cret@');
    const error = await rejection(openArangoStore({ url: withCredentials, database: 'inventory' }));
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toBe(
      `ArangoDB at ${url} (database inventory) refused the credentials: ` +
        'not authorized to execute this request (error 401)',
    );
    expect(seen[0]?.authorization).toBe(`Basic ${Buffer.from('root:s3cret').toString('base64')}`);
  });

  it('refuses a database that a newer schema migrated', async () => {
    const { url } = await scripted((seen) =>
      seen.query?.includes('RETURN m.version') === true ? ok([7]) : undefined,
    );
    const error = await rejection(openArangoStore({ url, database: 'inventory' }));
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toBe(
      `The ArangoDB schema is at version 7, newer than the newest this Consortium knows (${LATEST}); upgrade Consortium to open it`,
    );
  });

  it('creates the collections and indexes a fresh database lacks, and records the version', async () => {
    const { url, seen } = await scripted((request) => {
      if (request.method === 'GET' && request.path.includes('/_api/collection/')) {
        return fail(404, 1203, 'collection or view not found');
      }
      if (request.query?.includes('RETURN m.version') === true) return ok([]);
      return undefined;
    });
    await open(url);
    const created = seen.filter((s) => s.method === 'POST' && s.path.endsWith('/_api/collection'));
    // Every collection (meta first) and every index of every migration.
    expect(created).toHaveLength(10);
    expect(seen.filter((s) => s.path.endsWith('/_api/index'))).toHaveLength(14);
    const upsert = seen.find((s) => s.query?.startsWith('UPSERT') === true);
    expect(upsert?.bindVars).toMatchObject({ key: 'schema', version: 1, '@meta': 'meta' });
  });
});

describe('opening together with another process', () => {
  it('retries a version write that raced another process, and opens', async () => {
    let upserts = 0;
    const { url } = await scripted((request) => {
      if (request.query?.includes('RETURN m.version') === true) return ok([]);
      if (request.query?.startsWith('UPSERT') === true) {
        upserts += 1;
        return upserts === 1 ? fail(409, 1200, 'write-write conflict') : undefined;
      }
      return undefined;
    });
    await open(url);
    // One version write per migration, and the one that raced again.
    expect(upserts).toBe(LATEST + 1);
  });
});

describe('opening without running DDL', () => {
  it('refuses a schema that is behind, naming the command that migrates it', async () => {
    const { url, seen } = await scripted((request) =>
      request.query?.includes('RETURN m.version') === true ? ok([]) : undefined,
    );
    const error = await rejection(openArangoStore({ url, database: 'inventory', runMigrations: false }));
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toBe(
      `The ArangoDB schema of inventory is at version 0, this Consortium needs ${LATEST}; run \`consortium store migrate\` first`,
    );
    expect(seen.some((s) => s.method === 'POST' && s.path.endsWith('/_api/collection'))).toBe(false);
  });

  it('opens a current schema without creating anything', async () => {
    const { url, seen } = await scripted(() => undefined);
    await open(url, { runMigrations: false });
    expect(seen.some((s) => s.method === 'POST' && s.path.endsWith('/_api/collection'))).toBe(false);
    expect(seen.some((s) => s.path.endsWith('/_api/index'))).toBe(false);
  });

  it('says that TLS client options need undici, which is not installed here', async () => {
    const error = await rejection(
      openArangoStore({ url: 'https://127.0.0.1:9', database: 'inventory', tls: { ca: 'x' } }),
    );
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toBe(
      'TLS client options for ArangoDB need the undici package (arangojs passes them to an undici Agent); ' +
        'install undici beside @consortium/store-arangodb',
    );
  });
});

describe('splitCredentials', () => {
  it('takes the user and password out of the URL', () => {
    expect(splitCredentials({ url: 'http://root:p%40ss@db.example:8529/' })).toStrictEqual({
      endpoint: 'http://db.example:8529',
      auth: { username: 'root', password: 'p@ss' },
    });
  });

  it('prefers the options and allows no credentials', () => {
    expect(splitCredentials({ url: 'https://u:p@db:8529', username: 'admin', password: 'x' })).toStrictEqual({
      endpoint: 'https://db:8529',
      auth: { username: 'admin', password: 'x' },
    });
    expect(splitCredentials({ url: 'http://db:8529' })).toStrictEqual({ endpoint: 'http://db:8529' });
  });

  it('refuses what is not an http(s) URL without echoing a password', () => {
    expect(() => splitCredentials({ url: 'tcp://db:8529' })).toThrow(
      new BackendError('The ArangoDB URL must be http:// or https://, not tcp://'),
    );
    expect(() => splitCredentials({ url: 'root:pw@db:8529' })).toThrow(BackendError);
    expect(() => splitCredentials({ url: '//root:pw@ db' })).toThrow(
      new BackendError('The ArangoDB URL is not a URL: "// db"'),
    );
  });
});

describe('writes against a scripted server', () => {
  const node = {
    _key: 'k',
    _id: 'nodes/k',
    _rev: '_r1',
    kind: 'host',
    name: 'web-01',
    attrs: { a: 1 },
    revision: 1,
    observed: {},
    createdAt: 1,
    updatedAt: 1,
  };

  it('runs an update in a stream transaction, retries it after a write-write conflict and commits once', async () => {
    let replaces = 0;
    const { url, seen } = await scripted((request) => {
      if (request.query?.startsWith('FOR n IN @@value0 FILTER n._key ==') === true) return ok([node]);
      if (request.query?.startsWith('REPLACE') === true) {
        replaces += 1;
        if (replaces === 1) return fail(409, 1200, 'write-write conflict');
        return ok([{ ...node, _rev: '_r2', attrs: { a: 2 }, revision: 2, updatedAt: 5 }]);
      }
      return undefined;
    });
    const store = await open(url);
    const opened = seen.length;
    const updated = await store.updateNode('host', 'web-01', { a: 2 }, 5, 1);
    expect(updated).toStrictEqual({
      kind: 'host',
      name: 'web-01',
      attrs: { a: 2 },
      revision: 2,
      observed: {},
      createdAt: 1,
      updatedAt: 5,
    });
    const calls = seen.slice(opened).map((s) => `${s.method} ${s.path.replace(/^\/_db\/inventory/, '')}`);
    expect(calls).toEqual([
      'POST /_api/transaction/begin',
      'POST /_api/cursor',
      'POST /_api/cursor',
      'DELETE /_api/transaction/trx-37',
      'POST /_api/transaction/begin',
      'POST /_api/cursor',
      'POST /_api/cursor',
      'PUT /_api/transaction/trx-37',
    ]);
    // Every query of the transaction carried its id; the replace carried the _rev it read.
    const queries = seen.slice(opened).filter((s) => s.query !== undefined);
    expect(queries.map((s) => s.trx)).toEqual(['trx-37', 'trx-37', 'trx-37', 'trx-37']);
    expect(queries[1]?.query).toBe('REPLACE @value0 IN @@value1 OPTIONS { ignoreRevs: false } RETURN NEW');
    expect(queries[1]?.bindVars?.['value0']).toMatchObject({
      _key: nodeKey('host', 'web-01'),
      _rev: '_r1',
      revision: 2,
    });
  });

  it('refuses a stale revision without writing', async () => {
    const { url, seen } = await scripted((request) =>
      request.query?.startsWith('FOR n IN @@value0 FILTER n._key ==') === true
        ? ok([{ ...node, revision: 3 }])
        : undefined,
    );
    const store = await open(url);
    const error = await rejection(store.updateNode('host', 'web-01', { a: 2 }, 5, 1));
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect(error.message).toBe('Node host/web-01 is at revision 3, not 1');
    expect(seen.some((s) => s.query?.startsWith('REPLACE') === true)).toBe(false);
    expect(seen[seen.length - 1]?.method).toBe('DELETE');
  });

  it('gives up on conflicts after conflictRetryMs with a ConflictError', async () => {
    const { url } = await scripted((request) =>
      request.query?.startsWith('INSERT') === true ? fail(409, 1200, 'write-write conflict') : undefined,
    );
    const store = await open(url, { conflictRetryMs: 50 });
    const error = await rejection(
      store.createJob({
        id: 'job-1',
        kind: 'host',
        name: 'web-01',
        action: 'patch',
        state: 'queued',
        actor: 'dev',
        updates: [],
        before: null,
        createdAt: 1,
        updatedAt: 1,
      }),
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toMatch(
      /^Concurrent writes kept changing the same data in ArangoDB for \d+ ms; try again$/,
    );
  });

  it('decides a reservation by the unique index, then by the holder it finds', async () => {
    const { url, seen } = await scripted((request) => {
      if (request.query?.startsWith('INSERT') === true) return fail(409, 1210, 'unique constraint violated');
      if (request.query?.includes('RETURN r.owner') === true) return ok(['host/web-01']);
      return undefined;
    });
    const store = await open(url);
    expect(await store.reserve('10.1.0.0/24', '10.1.0.5', 'host/web-01')).toBe(true);
    expect(await store.reserve('10.1.0.0/24', '10.1.0.5', 'host/web-02')).toBe(false);
    const inserts = seen.filter((s) => s.query?.startsWith('INSERT') === true);
    expect(inserts[0]?.query).toBe(
      'INSERT { namespace: @value0, key: @value1, owner: @value2 } INTO @@value3',
    );
  });
});

describe('store copy against a scripted server', () => {
  const node = {
    kind: 'host',
    name: 'web-01',
    attrs: { subnet: 'net-a' },
    revision: 4,
    observed: { libvirt: { attrs: null, at: 3 } },
    createdAt: 1,
    updatedAt: 2,
  };

  it('imports in one stream transaction, one query per run of a type, with the edges of the nodes', async () => {
    const { url, seen } = await scripted(() => undefined);
    const store = await openArangoStore({
      url,
      database: 'inventory',
      references: { host: { subnet: 'subnet' } },
    });
    stores.push(store);
    const opened = seen.length;
    await store.importRecords([
      { type: 'node', node },
      { type: 'reservation', namespace: 'net-a', reservation: { key: '10.1.0.5', owner: 'host/web-01' } },
      { type: 'reservation', namespace: 'net-a', reservation: { key: '10.1.0.6', owner: 'host/web-02' } },
    ]);
    const calls = seen.slice(opened);
    expect(calls.map((s) => s.query ?? `${s.method} ${s.path.replace(/^\/_db\/inventory/, '')}`)).toEqual([
      'POST /_api/transaction/begin',
      'FOR d IN @value0 INSERT d INTO @@value1',
      'FOR e IN @value0 INSERT e INTO @@value1',
      'FOR d IN @value0 INSERT d INTO @@value1',
      'PUT /_api/transaction/trx-37',
    ]);
    expect(calls[1]?.bindVars).toStrictEqual({
      value0: [{ _key: nodeKey('host', 'web-01'), ...node }],
      '@value1': 'nodes',
    });
    expect(calls[2]?.bindVars?.['value0']).toStrictEqual([
      {
        _from: `nodes/${nodeKey('host', 'web-01')}`,
        _to: `nodes/${nodeKey('subnet', 'net-a')}`,
        fromKind: 'host',
        field: 'subnet',
        toKind: 'subnet',
        toName: 'net-a',
      },
    ]);
    expect((calls[3]?.bindVars?.['value0'] as unknown[]).length).toBe(2);
    expect(calls.slice(1, 4).every((s) => s.trx === 'trx-37')).toBe(true);
  });

  it('aborts an import that meets an existing record and names it', async () => {
    const { url, seen } = await scripted((request) => {
      if (request.query?.startsWith('FOR d IN @value0 INSERT') === true) {
        return fail(409, 1210, 'unique constraint violated - in index primary of type primary over _key');
      }
      if (request.query?.startsWith('FOR d IN @@value0 FILTER d._key ==') === true) return ok([1]);
      return undefined;
    });
    const store = await open(url);
    const error = await rejection(store.importRecords([{ type: 'node', node }]));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe('Node host/web-01 already exists in the target store');
    expect(seen.some((s) => s.method === 'DELETE' && s.path.includes('/_api/transaction/'))).toBe(true);
    expect(seen.some((s) => s.method === 'PUT' && s.path.includes('/_api/transaction/'))).toBe(false);
  });

  it('exports records as the port has them: absent optional fields stay absent', async () => {
    const { url } = await scripted((request) => {
      if (request.query?.includes('RETURN { at: d.at') === true) {
        return ok([
          {
            at: 1,
            actor: 'a',
            action: 'patch',
            kind: 'host',
            name: 'x',
            jobId: null,
            before: null,
            after: {},
          },
          {
            at: 2,
            actor: 'a',
            action: 'patch',
            kind: 'host',
            name: 'x',
            jobId: 'job-1',
            before: {},
            after: null,
          },
        ]);
      }
      if (request.query?.includes('RETURN { id: d.id') === true) {
        return ok([{ id: 't', hash: 'h', role: 'reader', description: null, createdAt: 1, expiresAt: null }]);
      }
      return undefined;
    });
    const store = await open(url);
    const all = async (type: 'audit' | 'token'): Promise<unknown[]> => {
      const out: unknown[] = [];
      for await (const batch of store.exportRecords(type)) out.push(...batch);
      return out;
    };
    expect(await all('audit')).toStrictEqual([
      {
        type: 'audit',
        entry: { at: 1, actor: 'a', action: 'patch', kind: 'host', name: 'x', before: null, after: {} },
      },
      {
        type: 'audit',
        entry: {
          at: 2,
          actor: 'a',
          action: 'patch',
          kind: 'host',
          name: 'x',
          before: {},
          after: null,
          jobId: 'job-1',
        },
      },
    ]);
    expect(await all('token')).toStrictEqual([
      { type: 'token', token: { id: 't', hash: 'h', role: 'reader', createdAt: 1 } },
    ]);
  });

  it('counts the documents of every collection', async () => {
    const { url } = await scripted((request) =>
      request.path.endsWith('/count')
        ? { status: 200, body: { error: false, code: 200, count: request.path.length } }
        : undefined,
    );
    const store = await open(url);
    const counts = await store.countRecords();
    expect(Object.keys(counts)).toEqual(['node', 'job', 'event', 'audit', 'token', 'reservation']);
    expect(Object.values(counts).every((n) => typeof n === 'number' && n > 0)).toBe(true);
  });
});
