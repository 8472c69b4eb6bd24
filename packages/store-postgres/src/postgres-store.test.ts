import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BackendError,
  BackendUnavailableError,
  ConflictError,
  InternalError,
  LeaseLostError,
  STORE_RECORD_TYPES,
  TimeoutError,
} from '@consortium/core';
import type { Filter, StoreRecord } from '@consortium/core';
import { describeStoreContract, startPostgres } from '@consortium/testkit';
import type { PostgresHarness } from '@consortium/testkit';
import { MIGRATION_LOCK_KEY, latestPostgresVersion } from './migrations.js';
import type { PostgresStoreHandle } from './postgres-store.js';
import { listNodesQuery, migratePostgres, openPostgresStore, postgresPoolConfig } from './postgres-store.js';

const T0 = 1_700_000_000_000;
const TABLES = 'nodes, observations, jobs, job_events, audit, tokens, reservations, hooks, deliveries';

/** Every schema version, oldest first. */
function allVersions(): number[] {
  return Array.from({ length: latestPostgresVersion() }, (_, i) => i + 1);
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Asserts that `promise` rejects with an instance of `type` with exactly `message`. */
async function expectReject(promise: Promise<unknown>, type: ErrorClass, message: string): Promise<void> {
  const outcome = await promise.then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) expect.fail(`expected a ${type.name} "${message}", got a result`);
  expect(outcome.error).toBeInstanceOf(type);
  expect((outcome.error as Error).message).toBe(message);
}

/** One SQL statement on `url` through its own connection. */
async function sql(url: string, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** Polls until a backend of `database` waits for a lock, and returns its pid. */
async function waitingBackend(server: PostgresHarness, database: string): Promise<number> {
  for (;;) {
    const rows = await server.query(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
      [database],
    );
    if (rows[0] !== undefined) return rows[0]['pid'] as number;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let server: PostgresHarness;
/** The database of the contract suite, migrated once and emptied before every test. */
let contractUrl: string;
let contractDb: string;

beforeAll(async () => {
  server = await startPostgres();
  contractUrl = await server.createDatabase();
  contractDb = new URL(contractUrl).pathname.slice(1);
  await migratePostgres({ url: contractUrl });
}, 60_000);

afterAll(async () => {
  await server.stop();
});

const terminateAll = async (): Promise<void> => {
  await server.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [contractDb],
  );
};

describeStoreContract(
  'postgres',
  async () => {
    await sql(contractUrl, `TRUNCATE ${TABLES} RESTART IDENTITY`);
    const store = await openPostgresStore({ url: contractUrl, poolSize: 4 });
    return {
      store,
      reopen: () => openPostgresStore({ url: contractUrl, poolSize: 4 }),
      cut: terminateAll,
      cleanup: () => store.close(),
    };
  },
  {
    secondInstance: true,
    cut: true,
    freshDatabase: async () => {
      const url = await server.createDatabase();
      return {
        open: () => openPostgresStore({ url, poolSize: 2 }),
        appliedMigrations: async () =>
          (await sql(url, 'SELECT version FROM schema_migrations ORDER BY version')).map(
            (row) => row['version'] as number,
          ),
        cleanup: () => server.dropDatabase(url),
      };
    },
  },
);

describe('PostgresStore', () => {
  let url: string;
  const open: PostgresStoreHandle[] = [];
  const track = async (promise: Promise<PostgresStoreHandle>): Promise<PostgresStoreHandle> => {
    const store = await promise;
    open.push(store);
    return store;
  };

  beforeEach(async () => {
    url = await server.createDatabase();
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    await server.dropDatabase(url);
  });

  describe('opening', () => {
    it('names host:port and never the password when the server is unreachable', async () => {
      // Port 1 on loopback: nothing listens there.
      const closed = `postgres://postgres:s3cret@127.0.0.1:1/consortium`;
      await expectReject(
        openPostgresStore({ url: closed, connectTimeoutMs: 2000 }),
        BackendUnavailableError,
        'The PostgreSQL store at 127.0.0.1:1/consortium is unavailable: connect ECONNREFUSED 127.0.0.1:1',
      );
    });

    it('reports a wrong password as unavailable, without the password', async () => {
      const wrong = new URL(url);
      wrong.password = 'wrong-pass';
      const error = await openPostgresStore({ url: wrong.toString() }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).message).toBe(
        `The PostgreSQL store at 127.0.0.1:${server.port}${new URL(url).pathname} is unavailable: ` +
          'password authentication failed for user "postgres"',
      );
      expect((error as Error).message).not.toContain('wrong-pass');
    });

    it('reports a server without TLS when TLS is required', async () => {
      await expectReject(
        openPostgresStore({ url, ssl: { rejectUnauthorized: true } }),
        BackendUnavailableError,
        `The PostgreSQL store at 127.0.0.1:${server.port}${new URL(url).pathname} is unavailable: ` +
          'The server does not support SSL connections',
      );
    });

    it('keeps explicit TLS options over the URL’s sslmode', () => {
      const ssl = { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', servername: 'db.example' };
      const config = postgresPoolConfig({
        url: 'postgres://consortium:pw@db.example:5433/inventory?sslmode=verify-full&application_name=x',
        ssl,
      });
      // What the driver will actually use (not in its typings): the URL's sslmode would have replaced it with {}.
      const used = (new pg.Client(config) as unknown as { connectionParameters: Record<string, unknown> })
        .connectionParameters;
      expect(used['ssl']).toStrictEqual(ssl);
      expect([used['host'], used['port'], used['database']]).toEqual(['db.example', 5433, 'inventory']);
      expect(config.statement_timeout).toBe(30_000);
    });

    it('refuses a schema that is behind without runMigrations, then opens once migrated', async () => {
      await expectReject(
        openPostgresStore({ url, runMigrations: false }),
        BackendError,
        `The PostgreSQL store at 127.0.0.1:${server.port}${new URL(url).pathname} is at schema version 0, ` +
          `this Consortium needs ${latestPostgresVersion()}: run \`consortium store migrate\``,
      );
      expect(await sql(url, "SELECT to_regclass('nodes') AS t")).toEqual([{ t: null }]);
      expect(await migratePostgres({ url })).toEqual({ applied: allVersions() });
      expect(await migratePostgres({ url })).toEqual({ applied: [] });
      const store = await track(openPostgresStore({ url, runMigrations: false }));
      expect(await store.schemaVersion()).toBe(latestPostgresVersion());
    });

    it('refuses a schema newer than it knows', async () => {
      await migratePostgres({ url });
      await sql(url, "INSERT INTO schema_migrations VALUES (99, 'future', 0)");
      await expectReject(
        openPostgresStore({ url }),
        BackendError,
        `The database schema is at version 99, newer than the newest this Consortium knows (${latestPostgresVersion()}); ` +
          'upgrade Consortium to open it',
      );
    });

    it('refuses calls after close', async () => {
      const store = await openPostgresStore({ url });
      await store.close();
      await expectReject(
        store.getNode('host', 'a'),
        InternalError,
        `The PostgreSQL store at 127.0.0.1:${server.port}${new URL(url).pathname} is closed`,
      );
    });
  });

  describe('transfer', () => {
    it('exports every record and imports it exactly into another database', async () => {
      const from = await track(openPostgresStore({ url }));
      await from.insertNode('host', 'web-01', { a: [1, { b: null }], ü: 'ß' }, T0);
      await from.updateNode('host', 'web-01', { a: 2 }, T0 + 1);
      await from.putObservation('host', 'web-01', 'libvirt', { power: 'on' }, T0 + 2);
      await from.putObservation('host', 'web-01', 'netbox', null, T0 + 3);
      for (let i = 0; i < 3; i += 1) await from.insertNode('vm', `vm-${i}`, { i }, T0);
      await from.createJob({
        id: 'job-1',
        kind: 'host',
        name: 'web-01',
        action: 'patch',
        state: 'running',
        actor: 'dev',
        updates: [],
        before: null,
        createdAt: T0,
        updatedAt: T0,
        fence: '7',
      });
      await from.appendEvent('job-1', 'accepted', { by: 'dev' }, T0);
      await from.appendEvent('job-1', 'round', { n: 1 }, T0 + 1);
      await from.appendAudit({
        at: T0,
        actor: 'dev',
        action: 'patch',
        kind: 'host',
        name: 'web-01',
        before: null,
        after: { a: 2 },
      });
      await from.putToken({ id: 'tok-1', hash: 'h1', role: 'admin', createdAt: T0, expiresAt: T0 + 1 });
      await from.reserve('subnet/a', '10.0.0.1', 'host/web-01');
      const exported: StoreRecord[] = [];
      for (const type of STORE_RECORD_TYPES) {
        for await (const batch of from.exportRecords(type)) exported.push(...batch);
      }
      expect(exported.map((record) => record.type)).toEqual([
        'node',
        'node',
        'node',
        'node',
        'job',
        'event',
        'event',
        'audit',
        'token',
        'reservation',
      ]);
      const otherUrl = await server.createDatabase();
      try {
        const to = await track(openPostgresStore({ url: otherUrl }));
        await to.importRecords(exported);
        expect(await to.countRecords()).toEqual(await from.countRecords());
        const again: StoreRecord[] = [];
        for (const type of STORE_RECORD_TYPES) {
          for await (const batch of to.exportRecords(type)) again.push(...batch);
        }
        expect(again).toStrictEqual(exported);
        // The job's event counter came along: the next event is number 3.
        expect((await to.appendEvent('job-1', 'ended', {}, T0 + 5)).seq).toBe(3);
        await expectReject(
          to.importRecords(exported.slice(0, 1)),
          ConflictError,
          'Node host/web-01 already exists in the target store',
        );
        await to.close();
      } finally {
        await server.dropDatabase(otherUrl);
      }
    });
  });

  describe('indexes', () => {
    it('answers eq, in, has, CIDR and reference hops from the value index, not by walking every node', async () => {
      const store = await track(openPostgresStore({ url }));
      await sql(
        url,
        `INSERT INTO nodes (kind, name, attrs, revision, created_at, updated_at)
         SELECT 'subnet', 'net-' || i, jsonb_build_object('vlan', 100 + i), 1, 0, 0 FROM generate_series(0, 49) AS i`,
      );
      await sql(
        url,
        `INSERT INTO nodes (kind, name, attrs, revision, created_at, updated_at)
         SELECT 'host', 'host-' || lpad(i::text, 5, '0'),
                jsonb_build_object('datacenter', 'dc-' || (i % 50), 'roles', jsonb_build_array('role-' || (i % 40), 'base'),
                  'subnet', 'net-' || (i % 50),
                  'interfaces', jsonb_build_array(jsonb_build_object('name', 'eth0',
                    'ip', '10.' || (i / 65536) || '.' || ((i / 256) % 256) || '.' || (i % 256)))),
                1, 0, 0
         FROM generate_series(1, 5000) AS i`,
      );
      await sql(url, 'ANALYZE nodes');
      await sql(url, 'ANALYZE node_values');
      const plans = async (options: Parameters<typeof listNodesQuery>[1]): Promise<string> => {
        const query = listNodesQuery('host', options);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          // Without sequential scans the planner must show an index if one can serve the filter; with no usable
          // index it would still fall back to a (penalised) sequential scan, which the assertions would catch.
          await client.query('SET enable_seqscan = off');
          const rows = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query.sql}`, query.params);
          return rows.rows.map((row) => row['QUERY PLAN']).join('\n');
        } finally {
          await client.end();
        }
      };
      const filters: Filter[] = [
        { op: 'eq', field: 'datacenter', value: 'dc-7' },
        { op: 'in', field: 'datacenter', values: ['dc-7', 'dc-8'] },
        { op: 'has', field: 'roles', value: 'role-3' },
        { op: 'cidr', field: 'interfaces.ip', cidr: '10.0.3.0/28' },
        { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value: 107 } },
      ];
      for (const filter of filters) {
        const plan = await plans({ limit: 100, filter });
        expect(plan).toMatch(/Index (Only )?Scan using node_values_pkey on node_values/);
        expect(plan).not.toContain('Seq Scan');
        const names = (await store.listNodes('host', { limit: 1000, filter })).items.map((n) => n.name);
        expect(names.length).toBeGreaterThan(0);
      }
      // Only dotted quads are indexed as addresses: anything else is kept as text, never cast (which would fail).
      await store.insertNode(
        'host',
        'odd',
        { present: true, interfaces: [{ name: 'eth0', ip: '10x0x3x1' }] },
        0,
      );
      const odd = { op: 'cidr', field: 'interfaces.ip', cidr: '10.0.3.0/24' } as const;
      expect(
        (await store.listNodes('host', { limit: 1000, filter: odd })).items.map((n) => n.name),
      ).not.toContain('odd');
      await store.deleteNode('host', 'odd');
      // A reference hop finds the referenced nodes through the value index too.
      const hop = await plans({ limit: 100, filter: filters[4] as Filter });
      expect(hop.match(/Scan using node_values_pkey on node_values/g)?.length).toBeGreaterThanOrEqual(2);
      const page = await store.listNodes('host', {
        limit: 3,
        filter: { op: 'has', field: 'roles', value: 'role-3' },
      });
      expect(page.items.map((node) => node.name)).toEqual(['host-00003', 'host-00043', 'host-00083']);
      // The same table exports in keyset-ordered batches.
      const sizes: number[] = [];
      let previous = '';
      for await (const batch of store.exportRecords('node')) {
        sizes.push(batch.length);
        for (const record of batch) {
          const name = record.type === 'node' ? record.node.name : '';
          expect(name > previous).toBe(true);
          previous = name;
        }
      }
      // 50 subnets, then 5,000 hosts.
      expect(sizes).toEqual([...Array.from({ length: 10 }, () => 500), 50]);
    });
  });

  describe('faults', () => {
    it('cuts a write mid-statement without a half-write: the event counter rolls back with the event', async () => {
      const store = await track(openPostgresStore({ url, poolSize: 2 }));
      await store.createJob({
        id: 'job-y',
        kind: 'host',
        name: 'web-01',
        action: 'patch',
        state: 'running',
        actor: 'dev',
        updates: [],
        before: null,
        createdAt: T0,
        updatedAt: T0,
      });
      // An uncommitted event with the number the store will take: the store's statement bumps the job's counter,
      // then waits on this row's unique key, in the middle of its write.
      const blocker = new pg.Client({ connectionString: url });
      blocker.on('error', () => undefined);
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(
          "INSERT INTO job_events (job_id, seq, at, type, data) VALUES ('job-y', 1, 0, 'blocker', '{}')",
        );
        // Settled into a value right away, so that the rejection is never unhandled while the test waits.
        const append = store.appendEvent('job-y', 'tick', { n: 1 }, T0 + 1).catch((e: unknown) => e);
        const pid = await waitingBackend(server, new URL(url).pathname.slice(1));
        await server.query('SELECT pg_terminate_backend($1)', [pid]);
        const error = await append;
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).toMatch(
          /^The PostgreSQL store at 127\.0\.0\.1:\d+\/test_\d+_\d+ is unavailable: /,
        );
        await blocker.query('ROLLBACK');
      } finally {
        await blocker.end();
      }
      // Nothing of the cut statement stayed: the next event is number 1.
      expect((await store.appendEvent('job-y', 'tick', { n: 2 }, T0 + 2)).seq).toBe(1);
      expect(await store.listEvents('job-y', 0)).toStrictEqual([
        { jobId: 'job-y', seq: 1, at: T0 + 2, type: 'tick', data: { n: 2 } },
      ]);
    });

    it('maps the statement timeout to a TimeoutError and keeps working', async () => {
      const store = await track(openPostgresStore({ url, statementTimeoutMs: 300, poolSize: 2 }));
      await store.insertNode('host', 'web-01', { a: 1 }, T0);
      const blocker = new pg.Client({ connectionString: url });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query("SELECT * FROM nodes WHERE kind = 'host' AND name = 'web-01' FOR UPDATE");
        await expectReject(
          store.updateNode('host', 'web-01', { a: 2 }, T0 + 1),
          TimeoutError,
          `A statement on the PostgreSQL store at 127.0.0.1:${server.port}${new URL(url).pathname} ran longer ` +
            'than the statement timeout (300 ms) and was cancelled',
        );
        await blocker.query('ROLLBACK');
      } finally {
        await blocker.end();
      }
      expect((await store.updateNode('host', 'web-01', { a: 3 }, T0 + 2)).revision).toBe(2);
    });

    it('waits for a migration another process holds, and applies nothing twice', async () => {
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        const opening = openPostgresStore({ url });
        await waitingBackend(server, new URL(url).pathname.slice(1));
        await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
        await track(opening);
      } finally {
        await holder.end();
      }
      expect(await sql(url, 'SELECT version FROM schema_migrations ORDER BY version')).toEqual(
        allVersions().map((version) => ({ version })),
      );
    });

    it('is unavailable while PostgreSQL restarts and recovers without reopening', async () => {
      const idleErrors: Error[] = [];
      const store = await track(
        openPostgresStore({ url, poolSize: 3, onIdleError: (error) => idleErrors.push(error) }),
      );
      await store.insertNode('host', 'web-01', { a: 1 }, T0);
      // Fill the pool with idle connections, which the shutdown then breaks.
      await Promise.all([1, 2, 3].map(() => store.getNode('host', 'web-01')));
      await server.kill('SIGINT');
      const down = await store.getNode('host', 'web-01').catch((e: unknown) => e);
      expect(down).toBeInstanceOf(BackendUnavailableError);
      expect((down as Error).message).toMatch(
        new RegExp(`^The PostgreSQL store at 127\\.0\\.0\\.1:${server.port}/\\S+ is unavailable: `),
      );
      expect((down as BackendUnavailableError).retryable).toBe(true);
      await server.restart();
      // The same store object: broken connections are dropped and new ones opened on demand.
      let node: Awaited<ReturnType<typeof store.getNode>>;
      for (let attempt = 0; ; attempt += 1) {
        try {
          node = await store.getNode('host', 'web-01');
          break;
        } catch (error) {
          expect(error).toBeInstanceOf(BackendUnavailableError);
          if (attempt >= 20) throw error;
        }
      }
      expect(node?.attrs).toEqual({ a: 1 });
      expect((await store.updateNode('host', 'web-01', { a: 2 }, T0 + 1, 1)).revision).toBe(2);
      expect(idleErrors.length).toBeGreaterThan(0);
    });

    it('fences a job across two stores even when they write at once', async () => {
      const a = await track(openPostgresStore({ url, poolSize: 4 }));
      const b = await track(openPostgresStore({ url, poolSize: 4 }));
      await a.createJob({
        id: 'job-r',
        kind: 'host',
        name: 'web-01',
        action: 'patch',
        state: 'running',
        actor: 'dev',
        updates: [],
        before: null,
        createdAt: T0,
        updatedAt: T0,
      });
      const writes = Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).updateJob('job-r', { startedAt: i }, T0 + i, String(i)),
      );
      const results = await Promise.allSettled(writes);
      for (const result of results) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(LeaseLostError);
      }
      const final = await a.getJob('job-r');
      // The newest master's write always lands last: nobody with a smaller token overwrote it.
      expect(final?.fence).toBe('19');
      expect(final?.startedAt).toBe(19);
    });
  });
});
