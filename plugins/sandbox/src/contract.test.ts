/** The provider contract for both simulated providers, over one simulated world whose writes are counted. */
import type { JsonValue } from '@consortium/plugin-api';
import { macFor } from '@consortium/plugin-api';
import type { ProviderContractSubject } from '@consortium/testkit';
import { describeProviderContract } from '@consortium/testkit';
import { pxeProvider, SandboxWorld, vmProvider } from './index.js';

/** A world with two simulated hypervisors whose map writes are counted. */
function countedWorld(): { world: SandboxWorld; writes: () => number } {
  const world = new SandboxWorld(
    new Map([
      ['hv-1', { vcpus: 64, memoryMib: 131072 }],
      ['hv-2', { vcpus: 64, memoryMib: 131072 }],
    ]),
  );
  let writes = 0;
  for (const map of [world.vms, world.systems] as Map<string, unknown>[]) {
    const set = map.set.bind(map);
    const remove = map.delete.bind(map);
    map.set = (key, value) => {
      writes++;
      return set(key, value);
    };
    map.delete = (key) => {
      writes++;
      return remove(key);
    };
  }
  return { world, writes: () => writes };
}

/** What the world holds for `name` through `map`, as JSON. */
const held = (map: ReadonlyMap<string, object>, name: string): JsonValue | null =>
  (map.get(name) as JsonValue | undefined) ?? null;

function subject(which: 'vm' | 'pxe'): ProviderContractSubject {
  const { world, writes } = countedWorld();
  const options = { delayMs: 0, interface: 'eth0', profile: 'sandbox-debian-12' };
  let ips = 0;
  return {
    provider: which === 'vm' ? vmProvider(world, options) : pxeProvider(world, options),
    create: (name) =>
      which === 'vm'
        ? {
            node: { present: true, netboot: true },
            updates: [
              { path: 'hwspec', op: 'set', value: 'small' },
              { path: 'power', op: 'set', value: 'on' },
            ],
          }
        : {
            node: {
              present: true,
              interfaces: [{ name: 'eth0', mac: macFor(name, new Set()), ip: `10.9.0.${String(++ips)}` }],
            },
            updates: [{ path: 'netboot', op: 'set', value: true }],
          },
    writes: () => Promise.resolve(writes()),
    holds: (name) => Promise.resolve(held(which === 'vm' ? world.vms : world.systems, name)),
    injectTransientFault: () => {
      world.unavailable = true;
      return Promise.resolve();
    },
    clearFaults: () => {
      world.unavailable = false;
      return Promise.resolve();
    },
    cleanup: () => Promise.resolve(),
  };
}

describeProviderContract('sandbox-vm', () => Promise.resolve(subject('vm')));
describeProviderContract('sandbox-pxe', () => Promise.resolve(subject('pxe')));
