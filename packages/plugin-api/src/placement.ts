/**
 * Placement decisions every hypervisor provider shares, pure: VM sizes (`hwspec`), free capacity of a hypervisor
 * from the VMs defined on it, the hypervisor with the most free memory that fits a VM, and the deterministic MAC
 * of a host's VM. libvirt places real domains with them and the sandbox its simulated VMs.
 */
import { createHash } from 'node:crypto';

/** What one `hwspec` gives a VM. */
export interface VmSize {
  readonly vcpus: number;
  readonly memoryMib: number;
}

/** `small: 1 vcpus, 1024 MiB`. */
export function describeSize(hwspec: string, size: VmSize): string {
  return `${hwspec}: ${size.vcpus} vcpus, ${size.memoryMib} MiB`;
}

/** The hwspec whose size a domain has: memory and vcpus if one matches both, else memory alone. */
export function hwspecOf(
  hwspecs: Readonly<Record<string, VmSize>>,
  memoryMib: number,
  vcpus: number,
): string | undefined {
  const entries = Object.entries(hwspecs);
  return (
    entries.find(([, size]) => size.memoryMib === memoryMib && size.vcpus === vcpus)?.[0] ??
    entries.find(([, size]) => size.memoryMib === memoryMib)?.[0]
  );
}

/** What a hypervisor can give and what its defined domains take. */
export interface HypervisorUsage {
  readonly name: string;
  readonly capacity: { readonly memoryMib: number; readonly vcpus?: number };
  /** Domains defined on it (running or not), by name. */
  readonly domains: readonly { readonly name: string; readonly memoryMib: number; readonly vcpus: number }[];
}

/** What is free on a hypervisor, not counting the domain named `except` (a VM being resized in place). */
export function freeOn(
  usage: HypervisorUsage,
  except?: string,
): { readonly memoryMib: number; readonly vcpus: number | undefined } {
  let memoryMib = usage.capacity.memoryMib;
  let vcpus = usage.capacity.vcpus;
  for (const domain of usage.domains) {
    if (domain.name === except) continue;
    memoryMib -= domain.memoryMib;
    if (vcpus !== undefined) vcpus -= domain.vcpus;
  }
  return { memoryMib, vcpus };
}

/** True when a VM of `size` fits on the hypervisor (in place of `except`); vcpus count only when capped. */
export function fits(usage: HypervisorUsage, size: VmSize, except?: string): boolean {
  const free = freeOn(usage, except);
  return free.memoryMib >= size.memoryMib && (free.vcpus === undefined || free.vcpus >= size.vcpus);
}

/** The hypervisor with the most free memory that fits a VM of `size`; the first one on ties. */
export function place(usages: readonly HypervisorUsage[], size: VmSize): string | undefined {
  let best: { name: string; memoryMib: number } | undefined;
  for (const usage of usages) {
    if (!fits(usage, size)) continue;
    const { memoryMib } = freeOn(usage);
    if (best === undefined || memoryMib > best.memoryMib) best = { name: usage.name, memoryMib };
  }
  return best?.name;
}

/** `hv-1 has 512 MiB free of 4096 MiB` (and vcpus when capped), for reasons and operation details. */
export function describeFree(usage: HypervisorUsage, except?: string): string {
  const free = freeOn(usage, except);
  const vcpus =
    free.vcpus === undefined || usage.capacity.vcpus === undefined
      ? ''
      : ` and ${free.vcpus} of ${usage.capacity.vcpus} vcpus`;
  return `${usage.name} has ${free.memoryMib} MiB free of ${usage.capacity.memoryMib} MiB${vcpus}`;
}

/**
 * The MAC of a host's VM: `52:54:00` (QEMU's prefix) and three bytes of a SHA-256 of the name, so the same host
 * always gets the same MAC; rehashed with a counter in the unlikely case another domain has it.
 */
export function macFor(host: string, taken: ReadonlySet<string>): string {
  for (let attempt = 0; ; attempt++) {
    const digest = createHash('sha256')
      .update(attempt === 0 ? host : `${host}#${attempt}`)
      .digest();
    const mac = [
      '52',
      '54',
      '00',
      ...[0, 1, 2].map((i) => (digest[i] ?? 0).toString(16).padStart(2, '0')),
    ].join(':');
    if (!taken.has(mac)) return mac;
  }
}
