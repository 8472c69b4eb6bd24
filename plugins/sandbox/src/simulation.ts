/**
 * SIMULATION. The in-memory world behind the sandbox providers: simulated hypervisors with capacity, simulated
 * VMs placed on them, and simulated PXE systems. Nothing here touches a real machine; it exists so that
 * `consortium dev` can show the whole provisioning flow with nothing installed. One world per plugin instance.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { HypervisorUsage, VmFacts } from '@consortium/plugin-api';
import { BackendUnavailableError, CancelledError } from '@consortium/plugin-api';

/** The VM sizes a host's `hwspec` names. */
export const HWSPECS = {
  small: { vcpus: 2, memoryMib: 4096 },
  medium: { vcpus: 4, memoryMib: 8192 },
  large: { vcpus: 8, memoryMib: 16384 },
} as const;

/** A VM size. */
export type Hwspec = keyof typeof HWSPECS;

/** What a simulated hypervisor can give to VMs. */
export interface SimulatedCapacity {
  readonly vcpus: number;
  readonly memoryMib: number;
}

/** A simulated VM. `booted` records whether it ever started, since only a first boot needs PXE. */
export interface SimulatedVm extends VmFacts {
  readonly host: string;
  readonly mac: string;
}

/** A simulated PXE system record. */
export interface SimulatedSystem {
  readonly host: string;
  readonly hostname: string;
  readonly mac: string;
  readonly ip: string;
  /** Always set; optional only in the PXE backend's view of systems in general. */
  readonly profile: string;
  readonly netboot: boolean;
}

/** The simulated hypervisors, VMs and PXE systems of one plugin instance. */
export class SandboxWorld {
  /** Simulated VMs by host name. */
  readonly vms = new Map<string, SimulatedVm>();
  /** Simulated PXE systems by host name. */
  readonly systems = new Map<string, SimulatedSystem>();

  /** While true every simulated read and write fails as a backend outage would (for demos and tests of retries). */
  unavailable = false;

  /** Makes a world with the given simulated hypervisors, in order of preference on ties. */
  constructor(readonly hypervisors: ReadonlyMap<string, SimulatedCapacity>) {}

  /** Throws a retryable `BackendUnavailableError` during a simulated outage. */
  reach(): void {
    if (this.unavailable) throw new BackendUnavailableError('[simulated] the sandbox backend is unavailable');
  }

  /** What each simulated hypervisor can give and what its VMs take, for the plugin API's placement rules. */
  usages(): HypervisorUsage[] {
    return [...this.hypervisors].map(([name, capacity]) => ({
      name,
      capacity,
      domains: [...this.vms.values()]
        .filter((vm) => vm.hypervisor === name)
        .map((vm) => ({ name: vm.host, memoryMib: vm.memoryMib, vcpus: vm.vcpus })),
    }));
  }

  /** Every simulated VM's MAC but that of `host`'s VM. */
  macsBut(host: string): Set<string> {
    return new Set([...this.vms.values()].filter((vm) => vm.host !== host).map((vm) => vm.mac));
  }

  /** What a new system for `host` with `mac` and `ip` would clash with: `MAC … is already registered to system …`. */
  clash(host: string, mac: string, ip: string): string | undefined {
    const other = [...this.systems.values()].find((s) => s.host !== host && (s.mac === mac || s.ip === ip));
    if (other === undefined) return undefined;
    return `${other.mac === mac ? `MAC ${mac}` : `IP ${ip}`} is already registered to system ${other.host}`;
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
