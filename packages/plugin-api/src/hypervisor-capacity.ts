/**
 * The `hypervisor`-kind side of a hypervisor provider (libvirt, the sandbox): it observes each hypervisor node's
 * capacity (memory for VMs in total and free, vCPUs, defined VMs), which the API shows from that observation, and
 * refuses to have those values set, since only the backend determines them.
 */
import type { NodeProvider, Observation, ProviderContext } from '@consortium/core';
import { freeOn } from './placement.js';
import type { HypervisorUsage } from './placement.js';
import { hypervisorCapacityClaims } from './host-attributes.js';
import { decisionProvider } from './task-run.js';

/** What a backend tells about one hypervisor node. */
export interface HypervisorCapacitySource {
  /** The provider's name (the same as its host provider's). */
  readonly provider: string;
  /** A label prefixed to claim descriptions (the sandbox's `[simulated]`). */
  readonly label?: string;
  /** The hypervisor's usage, its vCPUs when it has no vCPU limit, or null when the backend has no such hypervisor. */
  usage(
    name: string,
    context: ProviderContext,
  ): Promise<{ readonly usage: HypervisorUsage; readonly cpus?: number } | null>;
}

/** The observed capacity attributes of a hypervisor from its usage. */
export function capacityOf(usage: HypervisorUsage, cpus?: number): Observation {
  const vcpus = usage.capacity.vcpus ?? cpus;
  return {
    memory_total_mib: usage.capacity.memoryMib,
    memory_free_mib: freeOn(usage).memoryMib,
    ...(vcpus === undefined ? {} : { vcpus }),
    domains: usage.domains.length,
  };
}

/** A provider for `hypervisor` nodes that observes their capacity through `source`. */
export function hypervisorCapacityProvider(source: HypervisorCapacitySource): NodeProvider {
  const claims = hypervisorCapacityClaims(source.label);
  return decisionProvider(
    {
      name: source.provider,
      kind: 'hypervisor',
      claims,
      observe: async (ref, context) => {
        if (ref.kind !== 'hypervisor') return null;
        const found = await source.usage(ref.name, context);
        return found === null ? null : capacityOf(found.usage, found.cpus);
      },
    },
    (run) => {
      for (const update of run.task.updates) {
        if (update.op === 'sync') run.out.accept(update);
        else {
          run.out.reject(
            `${update.path} is observed from the hypervisor by ${source.provider}; it cannot be set`,
            update,
          );
        }
      }
      return Promise.resolve();
    },
  );
}
