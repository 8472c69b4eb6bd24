/** The store registry, store config from the environment, and `store copy` between two real SQLite stores. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store, StoreRecordType } from '@consortium/core';
import { BackendUnavailableError, ConflictError, InputError, STORE_RECORD_TYPES } from '@consortium/core';
import { openSqliteStore } from '@consortium/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { canonicalJson, copyStore, storeChecksum, transferable } from './store-copy.js';
import { openConfiguredStore, storeLocation } from './stores.js';
import { BINARY, tempDir } from './test-support/dev-server.js';

const dirs: { remove(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

function dataDir(): string {
  const d = tempDir();
  dirs.push(d);
  return d.dir;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error as Error,
  );
}

const T0 = 1_700_000_000_000;

/** Fills a store with one record of every type (and a node with an observation). */
async function fill(store: Store, prefix: string): Promise<void> {
  await store.insertNode('subnet', `${prefix}-net`, { cidr: '10.1.2.0/24' }, T0);
  const host = await store.insertNode('host', `${prefix}-01`, { hwspec: 'small' }, T0);
  await store.updateNode('host', host.name, { hwspec: 'medium', power: 'on' }, T0 + 5, 1);
  await store.putObservation('host', host.name, 'sandbox-vm', { power: 'off' }, T0 + 7);
  await store.createJob({
    id: `${prefix}-job`,
    kind: 'host',
    name: host.name,
    action: 'create',
    state: 'succeeded',
    actor: 'tok-1',
    updates: [{ path: 'hwspec', op: 'set', value: 'small' }],
    before: null,
    createdAt: T0,
    updatedAt: T0 + 9,
  });
  await store.appendEvent(`${prefix}-job`, 'round', { round: 1 }, T0 + 1);
  await store.appendEvent(`${prefix}-job`, 'ended', { state: 'succeeded' }, T0 + 2);
  await store.appendAudit({
    at: T0 + 3,
    actor: 'tok-1',
    action: 'create',
    kind: 'host',
    name: host.name,
    jobId: `${prefix}-job`,
    before: null,
    after: { hwspec: 'small' },
  });
  await store.putToken({ id: `${prefix}-tok`, hash: `${prefix}-hash`, role: 'admin', createdAt: T0 });
  await store.reserve(`subnet/${prefix}-net`, '10.1.2.10', `host/${prefix}-01`);
}

describe('store config', () => {
  it('CONSORTIUM_STORE_URL picks the driver from its scheme', () => {
    const pg = loadConfig({}, { CONSORTIUM_STORE_URL: 'postgres://consortium@db.example:5432/consortium' });
    expect(pg.store).toEqual({ driver: 'postgres', url: 'postgres://consortium@db.example:5432/consortium' });
    const arango = loadConfig({}, { CONSORTIUM_STORE_URL: 'https://arango.example:8529' });
    expect(arango.store.driver).toBe('arangodb');
    expect(() => loadConfig({}, { CONSORTIUM_STORE_URL: 'mysql://x' })).toThrow(
      new InputError(
        'CONSORTIUM_STORE_URL must start with postgres:// (PostgreSQL) or http(s):// (ArangoDB), not "mysql"',
      ),
    );
  });

  it('a cluster store needs a URL, and a password never sits in the config file', () => {
    const dir = dataDir();
    const write = (text: string): string => {
      const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(path, text);
      return path;
    };
    expect(() => loadConfig({ configFile: write('store: { driver: postgres }\n') }, {})).toThrow(
      'invalid configuration: store.driver postgres needs store.url (or CONSORTIUM_STORE_URL)',
    );
    expect(() =>
      loadConfig({ configFile: write("store: { driver: postgres, url: 'postgres://u:secret@h/db' }\n") }, {}),
    ).toThrow(
      'invalid configuration: store.url must not hold a password; put it in CONSORTIUM_STORE_PASSWORD or store.passwordFile',
    );
    expect(() => loadConfig({ configFile: write('store: { driver: mongodb }\n') }, {})).toThrow(
      'invalid configuration: /store/driver: must be equal to one of the allowed values',
    );
  });
});

describe('the store registry', () => {
  it('opens SQLite in the data dir by default', async () => {
    const config = loadConfig({ dataDir: dataDir() }, {});
    const store = await openConfiguredStore(config, {});
    try {
      await store.insertNode('vlan', 'v1', {}, T0);
      expect((await store.getNode('vlan', 'v1'))?.revision).toBe(1);
      expect(storeLocation(config)).toBe(join(config.dataDir, 'consortium.db'));
    } finally {
      await store.close();
    }
  });

  it('a missing adapter package is a one-line error naming it', async () => {
    const config = loadConfig({}, { CONSORTIUM_STORE_URL: 'postgres://consortium@127.0.0.1:1/consortium' });
    const missing = Object.assign(new Error("Cannot find package '@consortium/store-postgres'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const error = await rejection(openConfiguredStore(config, {}, () => Promise.reject(missing)));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(
      'store driver postgres needs the package @consortium/store-postgres, which is not installed',
    );
  });

  it('an adapter that cannot reach its store is BACKEND_UNAVAILABLE naming the store without the password', async () => {
    const config = loadConfig({}, { CONSORTIUM_STORE_URL: 'postgres://consortium@127.0.0.1:1/consortium' });
    const adapter = {
      openPostgresStore: (options: { url: string }) => {
        expect(options.url).toBe('postgres://consortium:s3cret@127.0.0.1:1/consortium');
        return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
      },
    };
    const error = await rejection(
      openConfiguredStore(config, { CONSORTIUM_STORE_PASSWORD: 's3cret' }, () => Promise.resolve(adapter)),
    );
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.message).toBe(
      'cannot open the postgres store at postgres://consortium@127.0.0.1:1/consortium: connect ECONNREFUSED 127.0.0.1:1',
    );
  });
});

describe('store copy', () => {
  async function sqlite(): Promise<Store> {
    return openSqliteStore({ path: join(dataDir(), 'consortium.db') });
  }

  it('copies every record exactly and verifies counts and checksum', async () => {
    const from = transferable(await sqlite(), 'source');
    const to = transferable(await sqlite(), 'target');
    try {
      await fill(from, 'a');
      const seen: StoreRecordType[] = [];
      const report = await copyStore(from, to, {
        progress: {
          start: (total) => {
            expect(total).toBe(8);
          },
          advance: (_n, type) => seen.push(type),
          stop: () => undefined,
        },
      });
      expect(report.copied).toEqual({ node: 2, job: 1, event: 2, audit: 1, token: 1, reservation: 1 });
      expect(report.checksumVerified).toBe(true);
      expect(seen).toEqual(['node', 'job', 'event', 'audit', 'token', 'reservation']);
      expect(await storeChecksum(to)).toBe(report.checksum);
      const host = await to.getNode('host', 'a-01');
      expect(host).toEqual(await from.getNode('host', 'a-01'));
      expect(host?.revision).toBe(2);
      expect(host?.observed['sandbox-vm']).toEqual({ attrs: { power: 'off' }, at: T0 + 7 });
      expect(await to.listEvents('a-job', 0)).toEqual(await from.listEvents('a-job', 0));
      expect(await to.getJob('a-job')).toEqual(await from.getJob('a-job'));
      expect(await to.listAudit({ limit: 10 })).toEqual(await from.listAudit({ limit: 10 }));
      expect(await to.findToken('a-hash')).toEqual(await from.findToken('a-hash'));
      expect(await to.listReservations('subnet/a-net')).toEqual([{ key: '10.1.2.10', owner: 'host/a-01' }]);
      // The copy goes on as a store: the next event and revision follow the copied ones.
      expect((await to.appendEvent('a-job', 'note', {}, T0 + 10)).seq).toBe(3);
      expect((await to.updateNode('host', 'a-01', { hwspec: 'large' }, T0 + 11, 2)).revision).toBe(3);
    } finally {
      await from.close();
      await to.close();
    }
  });

  it('refuses a target that is not empty unless forced, and then refuses records that collide', async () => {
    const from = transferable(await sqlite(), 'source');
    const to = transferable(await sqlite(), 'target');
    try {
      await fill(from, 'a');
      await fill(to, 'b');
      const refused = await rejection(copyStore(from, to));
      expect(refused).toBeInstanceOf(ConflictError);
      expect(refused.message).toBe(
        'the target store is not empty (2 nodes, 1 jobs, 2 events, 1 audits, 1 tokens, 1 reservations); pass --force to copy into it anyway',
      );
      expect((await to.countRecords()).node).toBe(2);
      const merged = await copyStore(from, to, { force: true });
      expect(merged.checksumVerified).toBe(false);
      expect(await to.countRecords()).toEqual({
        node: 4,
        job: 2,
        event: 4,
        audit: 2,
        token: 2,
        reservation: 2,
      });
      const again = await rejection(copyStore(from, to, { force: true }));
      expect(again).toBeInstanceOf(ConflictError);
      expect(again.message).toBe('Node host/a-01 already exists in the target store');
    } finally {
      await from.close();
      await to.close();
    }
  });

  it('checksums ignore key order but not values', () => {
    expect(canonicalJson({ b: 1, a: [{ y: 2, x: null }] })).toBe('{"a":[{"x":null,"y":2}],"b":1}');
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
    expect(STORE_RECORD_TYPES).toEqual(['node', 'job', 'event', 'audit', 'token', 'reservation']);
  });

  it('consortium store copy and store migrate from the command line', () => {
    const source = dataDir();
    const target = join(dataDir(), 'copy.db');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [BINARY, ...args], { encoding: 'utf8', timeout: 30_000 });
    const token = run('token', 'create', '--role', 'reader', '--data-dir', source);
    expect(token.status).toBe(0);
    const migrate = run('store', 'migrate', '--data-dir', source);
    expect(migrate.stderr).toBe('');
    expect(migrate.stdout).toBe(`${join(source, 'consortium.db')}: up to date\n`);
    const copy = run(
      'store',
      'copy',
      '--from',
      join(source, 'consortium.db'),
      '--to',
      target,
      '--data-dir',
      source,
    );
    expect(copy.status).toBe(0);
    expect(copy.stdout).toMatch(
      new RegExp(
        `^copied 0 nodes, 0 jobs, 0 events, 0 audits, 1 tokens, 0 reservations to ${target}; checksum [0-9a-f]{64} verified\\n$`,
      ),
    );
    expect(copy.stderr).toContain('copying 1 records');
    const twice = run('store', 'copy', '--from', join(source, 'consortium.db'), '--to', target);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toBe(
      'consortium: the target store is not empty (0 nodes, 0 jobs, 0 events, 0 audits, 1 tokens, 0 reservations); pass --force to copy into it anyway\n',
    );
    const same = run('store', 'copy', '--from', target, '--to', target);
    expect(same.status).toBe(2);
    expect(same.stderr).toBe('consortium: the source and the target are the same store\n');
  }, 90_000);
});
