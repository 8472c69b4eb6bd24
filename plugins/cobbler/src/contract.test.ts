/**
 * The provider contract for Cobbler against the Cobbler 3.3.7 test server: writes are the XML-RPC calls that change
 * Cobbler (new, modify, save, remove, sync), counted from the server's call log; a transient fault is a 503 from
 * the proxy in front of it.
 */
import type { Store } from '@consortium/plugin-api';
import { macFor, silentLogger } from '@consortium/plugin-api';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import { describeProviderContract } from '@consortium/testkit';
import { afterAll, beforeAll } from 'vitest';
import { plugin } from './index.js';

const WRITES = /^(new_system|modify_system|save_system|remove_system|sync)$/;
/** Every method the provider calls, so that a fault meets the first call of a task whatever it is. */
const METHODS = ['login', 'get_system', 'find_system', 'get_profiles', 'new_system', 'get_system_handle'];

let server: CobblerTestServer;
/** Addresses stay unique across tests: the server keeps every system a test leaves. */
let ips = 0;

beforeAll(async () => {
  server = await startCobblerServer({ users: { consortium: 'pxe-secret' }, profiles: ['debian12'] });
});

afterAll(async () => {
  await server.stop();
});

describeProviderContract('cobbler (Cobbler 3.3.7 test server)', () => {
  const [provider] = plugin.providers(
    {
      url: server.url,
      username: 'consortium',
      password: 'pxe-secret',
      defaultProfile: 'debian12',
      sync: true,
    },
    { logger: silentLogger, store: {} as Store, now: () => Date.now() },
  );
  if (provider === undefined) throw new Error('cobbler has no provider');
  return Promise.resolve({
    provider,
    create: (name) => ({
      node: {
        present: true,
        interfaces: [
          {
            name: 'eth0',
            mac: macFor(name, new Set()),
            ip: `10.8.0.${String(++ips + 10)}`,
            netmask: '255.255.255.0',
            gateway: '10.8.0.1',
          },
        ],
      },
      updates: [{ path: 'profile', op: 'set', value: 'debian12' }],
    }),
    writes: () => Promise.resolve(server.calls.filter((c) => WRITES.test(c.method)).length),
    holds: (name) => Promise.resolve(server.system(name) === undefined ? null : name),
    injectTransientFault: () => {
      for (const method of METHODS) server.injectFault(method, { kind: 'http', status: 503 }, Infinity);
      return Promise.resolve();
    },
    clearFaults: () => {
      server.clearFaults();
      return Promise.resolve();
    },
    cleanup: () => Promise.resolve(),
  });
});
