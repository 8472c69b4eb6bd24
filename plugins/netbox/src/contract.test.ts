/**
 * The provider contract for NetBox against the NetBox test server: writes are the requests that are not GETs,
 * counted from the server's request log; a transient fault is a 503 from the proxy in front of it.
 */
import type { PluginServices } from '@consortium/plugin-api';
import { silentLogger } from '@consortium/plugin-api';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import { describeProviderContract } from '@consortium/testkit';
import { afterAll, beforeAll } from 'vitest';
import { plugin } from './index.js';

const TOKEN = '0123456789abcdef0123456789abcdef01234567';

let server: NetboxServer;

beforeAll(async () => {
  server = await startNetboxServer({ tokens: [TOKEN] });
  server.seed({
    sites: [{ name: 'Beijing 1', slug: 'pek1' }],
    clusters: [{ name: 'web', type: 'kvm', site: 'pek1' }],
  });
});

afterAll(async () => {
  await server.stop();
});

describeProviderContract('netbox (NetBox test server)', () => {
  const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;
  const [provider] = plugin.providers({ url: server.url, token: TOKEN }, services);
  if (provider === undefined) throw new Error('netbox has no provider');
  return Promise.resolve({
    provider,
    create: () => ({
      node: { present: true },
      updates: [
        { path: 'datacenter', op: 'set', value: 'pek1' },
        { path: 'subcluster', op: 'set', value: 'web' },
        { path: 'status', op: 'set', value: 'planned' },
        { path: 'puppet_roles', op: 'add', value: 'nginx' },
      ],
    }),
    listSemanticsAt: (path) => {
      const [head] = path;
      return path.length === 1 && head !== undefined && 'prop' in head && head.prop === 'puppet_roles'
        ? { type: 'set' }
        : undefined;
    },
    writes: () => Promise.resolve(server.state.requests.filter((r) => r.method !== 'GET').length),
    holds: (name) => {
      const vms = server.state.vmsByName(name);
      return Promise.resolve(vms.length === 0 ? null : vms.map((vm) => vm.id));
    },
    injectTransientFault: () => {
      server.injectFault({ status: 503, times: 1000 });
      return Promise.resolve();
    },
    clearFaults: () => {
      server.clearFaults();
      return Promise.resolve();
    },
    cleanup: () => Promise.resolve(),
  });
});
