/**
 * The provider contract for inventory's host provider. Its backend is Consortium's own store, written by the master,
 * so the provider writes nothing itself: every write count must stay at zero, and there is nothing to fail.
 */
import { silentLogger } from '@consortium/plugin-api';
import type { PluginServices } from '@consortium/plugin-api';
import { describeProviderContract } from '@consortium/testkit';
import { plugin } from './index.js';

describeProviderContract('inventory (hosts)', () => {
  const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;
  const host = plugin.providers({}, services).find((p) => p.kind === 'host');
  if (host === undefined) throw new Error('inventory has no host provider');
  return Promise.resolve({
    provider: host,
    create: () => ({
      node: { present: true },
      updates: [
        { path: 'hostname', op: 'set', value: 'web.example.com' },
        { path: 'interfaces', op: 'set', value: [{ name: 'eth0' }] },
      ],
    }),
    writes: () => Promise.resolve(0),
    cleanup: () => Promise.resolve(),
  });
});
