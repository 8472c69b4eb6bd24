/**
 * SIMULATION. The in-memory world behind the sandbox providers: simulated hypervisors with capacity, simulated
 * VMs placed on them, and simulated PXE systems. Nothing here touches a real machine; it exists so that
 * `consortium dev` can show the whole provisioning flow with nothing installed. One world per plugin instance.
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { CancelledError } from '@consortium/plugin-api';

/** The VM sizes a host's `hwspec` names. */
export const HWSPECS = {
  small: { vcpus: 2, memoryMib: 4096 },
  medium: { vcpus: 4, memoryMib: 8192 },
  large: { vcpus: 8, memoryMib: 16384 },
} as const;

/** A VM size. */
export type Hwspec = keyof typeof HWSPECS;

/** True when `value` names a VM size. */
export function isHwspec(value: unknown): value is Hwspec {
  return typeof value === 'string' && Object.hasOwn(HWSPECS, value);
}

/** What a simulated hypervisor can give to VMs. */
export interface SimulatedCapacity {
  readonly vcpus: number;
  readonly memoryMib: number;
}

/** A simulated VM. `booted` records whether it ever started, since only a first boot needs PXE. */
export interface SimulatedVm {
  readonly host: string;
  readonly hypervisor: string;
  readonly hwspec: Hwspec;
  readonly mac: string;
  readonly running: boolean;
  readonly booted: boolean;
}

/** A simulated PXE system record. */
export interface SimulatedSystem {
  readonly host: string;
  readonly hostname: string;
  readonly mac: string;
  readonly ip: string;
  readonly profile: string;
  readonly netboot: boolean;
}

/** The simulated hypervisors, VMs and PXE systems of one plugin instance. */
export class SandboxWorld {
  /** Simulated VMs by host name. */
  readonly vms = new Map<string, SimulatedVm>();
  /** Simulated PXE systems by host name. */
  readonly systems = new Map<string, SimulatedSystem>();

  /** Makes a world with the given simulated hypervisors, in order of preference on ties. */
  constructor(readonly hypervisors: ReadonlyMap<string, SimulatedCapacity>) {}

  /** What a simulated hypervisor has left, not counting the VM of `except`. */
  free(hypervisor: string, except?: string): SimulatedCapacity {
    const capacity = this.hypervisors.get(hypervisor) ?? { vcpus: 0, memoryMib: 0 };
    let { vcpus, memoryMib } = capacity;
    for (const vm of this.vms.values()) {
      if (vm.hypervisor !== hypervisor || vm.host === except) continue;
      vcpus -= HWSPECS[vm.hwspec].vcpus;
      memoryMib -= HWSPECS[vm.hwspec].memoryMib;
    }
    return { vcpus, memoryMib };
  }

  /** True when a VM of `hwspec` fits on the hypervisor (replacing the VM of `except`, if it is there). */
  fits(hypervisor: string, hwspec: Hwspec, except?: string): boolean {
    const free = this.free(hypervisor, except);
    return free.vcpus >= HWSPECS[hwspec].vcpus && free.memoryMib >= HWSPECS[hwspec].memoryMib;
  }

  /** The hypervisor with the most free memory that fits a VM of `hwspec`; the first one on ties. */
  place(hwspec: Hwspec): string | undefined {
    let best: { name: string; memoryMib: number } | undefined;
    for (const name of this.hypervisors.keys()) {
      if (!this.fits(name, hwspec)) continue;
      const { memoryMib } = this.free(name);
      if (best === undefined || memoryMib > best.memoryMib) best = { name, memoryMib };
    }
    return best?.name;
  }

  /**
   * The MAC of a host's VM: `52:54:00` (QEMU's prefix) and three bytes of a hash of the name, so the same host
   * always gets the same MAC; rehashed with a counter in the unlikely case another VM has it.
   */
  macFor(host: string): string {
    const taken = new Set([...this.vms.values()].filter((vm) => vm.host !== host).map((vm) => vm.mac));
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
}

/** Waits `ms` of simulated work; throws `CancelledError` when `signal` aborts first. */
export async function simulatedDelay(ms: number, signal: AbortSignal): Promise<void> {
  try {
    if (signal.aborted || ms > 0) await delay(ms, undefined, { signal });
  } catch (error) {
    throw new CancelledError('[simulated] operation cancelled', { cause: error });
  }
}
