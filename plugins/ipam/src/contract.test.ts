/**
 * The provider contract for ipam against the real SQLite store: its writes are the reservations and releases that
 * change what the store holds, counted through a wrapper that can also make the store unavailable. (ipam reserves
 * an address it already holds once more to confirm the hold before reporting it; the store answers that without a
 * change, so it is not counted.)
 */
import type { PluginStore } from '@consortium/plugin-api';
import { BackendUnavailableError, silentLogger } from '@consortium/plugin-api';
import { openSqliteStore } from '@consortium/store-sqlite';
import { describeProviderContract } from '@consortium/testkit';
import { plugin } from './index.js';

describeProviderContract('ipam (SQLite store)', async () => {
  const store = await openSqliteStore({ path: ':memory:' });
  await store.insertNode(
    'subnet',
    'contract',
    { present: true, cidr: '10.7.0.0/24', gateway: '10.7.0.1' },
    0,
  );
  let writes = 0;
  let unavailable = false;
  /** Runs a store call, or fails as an unreachable store does. */
  const reach = async <T>(call: () => Promise<T>, namespace?: string): Promise<T> => {
    if (unavailable) throw new BackendUnavailableError('store unavailable (injected)');
    if (namespace === undefined) return call();
    const before = JSON.stringify(await store.listReservations(namespace));
    const result = await call();
    if (JSON.stringify(await store.listReservations(namespace)) !== before) writes++;
    return result;
  };
  const counted: PluginStore = {
    getNode: (kind, name) => reach(() => store.getNode(kind, name)),
    listNodes: (kind, options) => reach(() => store.listNodes(kind, options)),
    listReservations: (namespace, owner) => reach(() => store.listReservations(namespace, owner)),
    reserve: (namespace, key, owner) => reach(() => store.reserve(namespace, key, owner), namespace),
    release: (namespace, owner, key) => reach(() => store.release(namespace, owner, key), namespace),
  };
  const [provider] = plugin.providers({}, { logger: silentLogger, store: counted, now: () => 0 });
  if (provider === undefined) throw new Error('ipam has no provider');
  return {
    provider,
    create: () => ({ node: { present: true }, updates: [{ path: 'subnet', op: 'set', value: 'contract' }] }),
    writes: () => Promise.resolve(writes),
    holds: async (name) => {
      const held = (await store.listReservations('ipam/contract')).filter((r) => r.owner === `host/${name}`);
      return held.length === 0 ? null : held.map((r) => r.key);
    },
    injectTransientFault: () => {
      unavailable = true;
      return Promise.resolve();
    },
    clearFaults: () => {
      unavailable = false;
      return Promise.resolve();
    },
    cleanup: () => store.close(),
  };
});
