/**
 * Placement for libvirt: the rules every hypervisor provider shares (sizes, free capacity, most free memory, the
 * deterministic MAC) live in the plugin API; they are re-exported here as part of the plugin's own API.
 */
import type { VmSize } from '@consortium/plugin-api';

export type { HypervisorUsage, VmSize } from '@consortium/plugin-api';
export { describeFree, describeSize, fits, freeOn, hwspecOf, macFor, place } from '@consortium/plugin-api';

/** The default sizes: small 1 vcpu and 1 GiB, medium 2 and 4 GiB, large 4 and 8 GiB. */
export const DEFAULT_HWSPECS: Readonly<Record<string, VmSize>> = {
  small: { vcpus: 1, memoryMib: 1024 },
  medium: { vcpus: 2, memoryMib: 4096 },
  large: { vcpus: 4, memoryMib: 8192 },
};
