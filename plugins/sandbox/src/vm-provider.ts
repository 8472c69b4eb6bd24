/**
 * SIMULATION. `sandbox-vm`: a simulated hypervisor for hosts, a `VmBackend` in memory behind the plugin API's
 * hypervisor decision (the same one libvirt's provider runs). On `hwspec` it defines a simulated VM on the
 * simulated hypervisor with the most free memory and reports the hypervisor and a generated MAC; `power: on`
 * waits for PXE registration (`netboot`) before the first boot. State lives in memory only.
 */
import type { AttributeClaim, NodeProvider, TaskRun, VmBackend, VmSize } from '@consortium/plugin-api';
import {
  describeSize,
  fits,
  hwspecOf,
  macFor,
  place,
  vmHostClaims,
  vmProvider as vmDecision,
} from '@consortium/plugin-api';
import { SIMULATED } from './pxe-provider.js';
import type { SandboxWorld, SimulatedVm } from './simulation.js';
import { HWSPECS, simulatedDelay } from './simulation.js';

/** The name of the simulated hypervisor provider. */
export const SANDBOX_VM_PROVIDER = 'sandbox-vm';

/** What `sandbox-vm` claims on hosts: the plugin API's standard VM claims, labelled as simulated. */
export const SANDBOX_VM_CLAIMS: readonly AttributeClaim[] = vmHostClaims(HWSPECS, SIMULATED);

/** Settings of the simulated hypervisor provider. */
export interface VmProviderOptions {
  readonly delayMs: number;
  readonly interface: string;
}

/** The simulated hypervisors of a sandbox world, as a VM backend. */
function sandboxVmBackend(world: SandboxWorld, options: VmProviderOptions): VmBackend<SimulatedVm> {
  const work = (run: TaskRun): Promise<void> => simulatedDelay(options.delayMs, run.signal);
  const vmOn = (host: string, hypervisor: string, size: VmSize, mac: string): SimulatedVm => ({
    host,
    hypervisor,
    memoryMib: size.memoryMib,
    vcpus: size.vcpus,
    mac,
    running: false,
    booted: false,
  });
  /** Runs a simulated write as an operation on `hypervisor/host`. */
  const act = (run: TaskRun, action: string, vm: SimulatedVm, detail: string, effect: () => Promise<void>) =>
    run.operation({ action, target: `${vm.hypervisor}/${vm.host}` }, `${SIMULATED} ${detail}`, effect);

  return {
    provider: SANDBOX_VM_PROVIDER,
    interface: options.interface,
    hwspecs: HWSPECS,
    noun: 'simulated VM',
    label: SIMULATED,
    hypervisors: [...world.hypervisors.keys()],
    locate: (_run, host) => {
      world.reach();
      return Promise.resolve(world.vms.get(host) ?? null);
    },
    planned: (host, hypervisor, size, mac) =>
      world.hypervisors.has(hypervisor) ? vmOn(host, hypervisor, size, mac ?? macFor(host, new Set())) : null,

    async define(run, { host, hwspec, size, pinned, mac }) {
      // Placement and definition happen in one step, before any await, so concurrent hosts cannot both take the
      // last room on a hypervisor.
      const existing = world.vms.get(host);
      if (existing !== undefined) return existing;
      const usages = world.usages();
      const hypervisor = pinned ?? place(usages, size);
      const usage = usages.find((u) => u.name === hypervisor);
      if (hypervisor === undefined || usage === undefined || !fits(usage, size)) {
        const where =
          pinned === undefined ? 'no simulated hypervisor has' : `simulated hypervisor ${pinned} has no`;
        return `${where} room for a ${describeSize(hwspec, size)} VM`;
      }
      const vm = vmOn(host, hypervisor, size, mac ?? macFor(host, world.macsBut(host)));
      await act(
        run,
        'define',
        vm,
        `defined VM ${host} (${describeSize(hwspec, size)}) on ${hypervisor}`,
        () => {
          world.vms.set(host, vm);
          return work(run);
        },
      );
      return vm;
    },

    async resize(run, vm, hwspec, size) {
      const usage = world.usages().find((u) => u.name === vm.hypervisor);
      if (usage === undefined || !fits(usage, size, vm.host)) {
        return `simulated hypervisor ${vm.hypervisor} has no room for a ${describeSize(hwspec, size)} VM`;
      }
      const resized = { ...vm, memoryMib: size.memoryMib, vcpus: size.vcpus };
      await act(
        run,
        'redefine',
        vm,
        `resized VM ${vm.host} (${describeSize(hwspec, size)}) on ${vm.hypervisor}`,
        () => {
          world.vms.set(vm.host, resized);
          return work(run);
        },
      );
      return resized;
    },

    async start(run, vm) {
      await act(run, 'start', vm, `started VM ${vm.host}`, async () => {
        await work(run);
        world.vms.set(vm.host, { ...vm, running: true, booted: true });
      });
    },

    markBooted(_run, vm) {
      world.vms.set(vm.host, { ...vm, booted: true });
      return Promise.resolve();
    },

    async powerOff(run, vm) {
      await act(run, 'stop', vm, `stopped VM ${vm.host}`, async () => {
        await work(run);
        world.vms.set(vm.host, { ...vm, running: false });
      });
    },

    async undefine(run, vm) {
      await act(run, 'undefine', vm, `undefined VM ${vm.host}`, () => {
        world.vms.delete(vm.host);
        return Promise.resolve();
      });
    },
  };
}

/** Makes the simulated hypervisor provider over a sandbox world. */
export function vmProvider(world: SandboxWorld, options: VmProviderOptions): NodeProvider {
  return vmDecision(sandboxVmBackend(world, options), {
    observe: (ref) => {
      const vm = ref.kind === 'host' ? world.vms.get(ref.name) : undefined;
      if (vm === undefined) return Promise.resolve(null);
      const hwspec = hwspecOf(HWSPECS, vm.memoryMib, vm.vcpus);
      return Promise.resolve({
        ...(hwspec === undefined ? {} : { hwspec }),
        power: vm.running ? 'on' : 'off',
        hypervisor: vm.hypervisor,
        interfaces: [{ name: options.interface, mac: vm.mac }],
      });
    },
  });
}
