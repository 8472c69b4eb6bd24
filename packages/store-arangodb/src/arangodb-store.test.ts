/**
 * The store contract on a real ArangoDB. None can be installed on the machines this was written on, so the suite
 * runs only when `CONSORTIUM_TEST_ARANGODB_URL` names a server (`http://root:pw@127.0.0.1:8529`); otherwise it is
 * registered skipped, under a name that says so. The file makes one database for itself and drops it after.
 */
import { randomBytes } from 'node:crypto';
import { Database } from 'arangojs';
import { afterAll, beforeAll, describe } from 'vitest';
import { describeStoreContract } from '@consortium/testkit';
import { openArangoStore, splitCredentials } from './arangodb-store.js';
import { Collections } from './migrations.js';

const url = process.env['CONSORTIUM_TEST_ARANGODB_URL'] ?? '';

describe.skipIf(url === '')(
  url === ''
    ? 'ArangoDB store contract: SKIPPED, CONSORTIUM_TEST_ARANGODB_URL is not set'
    : 'ArangoDB store contract',
  () => {
    const database = `consortium_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    let system: Database | undefined;

    beforeAll(async () => {
      const { endpoint, auth } = splitCredentials({ url });
      system = new Database({ url: endpoint, ...(auth === undefined ? {} : { auth }) });
      await system.createDatabase(database);
    });

    afterAll(async () => {
      await system?.dropDatabase(database);
      system?.close();
    });

    describeStoreContract('arangodb', async () => {
      const store = await openArangoStore({ url, database });
      return {
        store,
        // Empties every collection but `meta`, so that the next test opens a migrated, empty store.
        cleanup: async () => {
          await store.close();
          const db = system?.database(database);
          for (const name of Object.values(Collections)) {
            if (name !== Collections.meta) await db?.collection(name).truncate();
          }
        },
      };
    });
  },
);
