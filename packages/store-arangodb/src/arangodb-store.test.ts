/**
 * The store contract on a real ArangoDB. None can be installed on the machines this was written on, so the suite
 * runs only when `CONSORTIUM_TEST_ARANGODB_URL` names a server (`http://root:pw@127.0.0.1:8529`); otherwise it is
 * registered skipped, under a name that says so. The file makes its databases itself and drops them after. The
 * stores talk to the server through a TCP proxy on loopback, so that the connection-cut case can sever them.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { Database } from 'arangojs';
import { afterAll, beforeAll, describe } from 'vitest';
import { describeStoreContract } from '@consortium/testkit';
import { openArangoStore, splitCredentials } from './arangodb-store.js';
import { Collections } from './migrations.js';

const url = process.env['CONSORTIUM_TEST_ARANGODB_URL'] ?? '';

/** A TCP proxy to the server; `cut` destroys every connection through it (new ones still work). */
async function startProxy(target: URL): Promise<{ url: string; cut: () => void; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(
      Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
      target.hostname,
    );
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxied = new URL(target.toString());
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as AddressInfo).port);
  return {
    url: proxied.toString(),
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

describe.skipIf(url === '')(
  url === ''
    ? 'ArangoDB store contract: SKIPPED, CONSORTIUM_TEST_ARANGODB_URL is not set'
    : 'ArangoDB store contract',
  () => {
    const name = (): string => `consortium_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    const database = name();
    const databases = [database];
    let system: Database | undefined;
    let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;

    beforeAll(async () => {
      const { endpoint, auth } = splitCredentials({ url });
      system = new Database({ url: endpoint, ...(auth === undefined ? {} : { auth }) });
      await system.createDatabase(database);
      proxy = await startProxy(new URL(url));
    });

    afterAll(async () => {
      await proxy?.stop();
      for (const db of databases) await system?.dropDatabase(db).catch(() => undefined);
      system?.close();
    });

    const through = (): string => proxy?.url ?? url;

    describeStoreContract(
      'arangodb',
      async () => {
        const store = await openArangoStore({ url: through(), database });
        return {
          store,
          reopen: () => openArangoStore({ url: through(), database }),
          cut: () => {
            proxy?.cut();
            return Promise.resolve();
          },
          // Empties every collection but `meta`, so that the next test opens a migrated, empty store.
          cleanup: async () => {
            await store.close();
            const db = system?.database(database);
            for (const collection of Object.values(Collections)) {
              if (collection !== Collections.meta) await db?.collection(collection).truncate();
            }
          },
        };
      },
      {
        secondInstance: true,
        cut: true,
        freshDatabase: async () => {
          const fresh = name();
          databases.push(fresh);
          await system?.createDatabase(fresh);
          return {
            open: () => openArangoStore({ url, database: fresh }),
            appliedMigrations: async () => {
              const db = system?.database(fresh);
              const cursor = await db?.query<number>({
                query:
                  'FOR m IN @@meta FILTER STARTS_WITH(m._key, "migration-") SORT m.version RETURN m.version',
                bindVars: { '@meta': Collections.meta },
              });
              return (await cursor?.all()) ?? [];
            },
            cleanup: async () => {
              await system?.dropDatabase(fresh);
            },
          };
        },
      },
    );
  },
);
