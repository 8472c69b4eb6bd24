/**
 * The decision of a hypervisor provider, written once: libvirt and the sandbox's simulated hypervisor are two
 * `VmBackend`s behind it. The provider has authority over `hwspec` (the VM size), `power`, `hypervisor` and
 * `interfaces[<interface>].mac`. On `hwspec` the backend places and defines a VM and the provider reports its
 * hypervisor and MAC; `power: on` waits for PXE registration (`netboot: true`) before the first boot; deleting the
 * host powers the VM off and undefines it. Every task reads the backend first (define only if absent, start only if
 * not running, power off only if running), so running it again converges.
 */
import type { JsonValue, NodeProvider, ProposedUpdate } from '@consortium/core';
import { interfaceFieldOf, interfaceOf } from '@consortium/core';
import type { VmSize } from './placement.js';
import { vmHostClaims } from './host-attributes.js';
import type { TaskRun } from './task-run.js';
import { decisionProvider } from './task-run.js';

/** A VM as the decision sees it; a backend's own type extends it. */
export interface VmFacts {
  /** The name of the hypervisor it is defined on, as reported in `hypervisor`. */
  readonly hypervisor: string;
  readonly memoryMib: number;
  readonly vcpus: number;
  /** The MAC of its interface, when it has one. */
  readonly mac: string | undefined;
  /** True while it runs (holds its memory). */
  readonly running: boolean;
  /** Whether it ever booted: only the first boot installs over PXE. */
  readonly booted: boolean;
}

/** What to define: the host's VM of one size, on `pinned` when the request names a hypervisor, with `mac` if known. */
export interface VmDefinition {
  readonly host: string;
  readonly hwspec: string;
  readonly size: VmSize;
  readonly pinned: string | undefined;
  readonly mac: string | undefined;
}

/** Placement cannot decide yet: it needs `waitFor` on the host (set by another provider in this job). */
export interface PlacementWait {
  readonly waitFor: string;
  readonly reason: string;
}

/**
 * A hypervisor as the decision uses it. Writes go through `run.operation` (skipped in explain); a backend may keep
 * what one task read (keyed by its `run`) to avoid reading it again.
 */
export interface VmBackend<Vm extends VmFacts> {
  /** The provider's name. */
  readonly provider: string;
  /** The one interface of a VM, whose MAC the provider reports. */
  readonly interface: string;
  /** The sizes `hwspec` names. */
  readonly hwspecs: Readonly<Record<string, VmSize>>;
  /** What reasons call the VM (`VM`, `simulated VM`). */
  readonly noun: string;
  /** A label prefixed to claim descriptions (the sandbox's `[simulated]`). */
  readonly label?: string;
  /** The configured hypervisors, in order of preference on ties. */
  readonly hypervisors: readonly string[];
  /** The host's VM, asked of `hint` first when given; null when there is none. */
  locate(run: TaskRun, host: string, hint: string | undefined): Promise<Vm | null>;
  /** In explain: the VM an earlier round of the same plan defines on `hypervisor`, or null if it is unknown. */
  planned(host: string, hypervisor: string, size: VmSize, mac: string | undefined): Vm | null;
  /**
   * Places and defines the VM (or finds the one defined meanwhile); a string says why there is no room, a wait
   * names the host attribute placement needs first (its datacenter, when hypervisors are in datacenters).
   */
  define(run: TaskRun, definition: VmDefinition): Promise<Vm | string | PlacementWait>;
  /** Gives the VM a new size where it is; a string says why there is no room. */
  resize(run: TaskRun, vm: Vm, hwspec: string, size: VmSize): Promise<Vm | string>;
  /** Starts the VM and records that it booted. */
  start(run: TaskRun, vm: Vm): Promise<void>;
  /** Records that a running VM booted (it was started behind the provider's back); not in explain. */
  markBooted(run: TaskRun, vm: Vm): Promise<void>;
  /** Powers the VM off. */
  powerOff(run: TaskRun, vm: Vm): Promise<void>;
  /** Undefines the (stopped) VM. */
  undefine(run: TaskRun, vm: Vm): Promise<void>;
}

const asString = (value: JsonValue | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

/** The updates of a VM task by path. */
interface VmUpdates {
  readonly hwspec: ProposedUpdate | undefined;
  readonly power: ProposedUpdate | undefined;
  readonly hypervisor: ProposedUpdate | undefined;
  readonly mac: ProposedUpdate | undefined;
}

/** Sorts the updates of a task by path; accepts syncs and rejects paths the provider does not have. */
function sortUpdates(run: TaskRun, iface: string, noun: string): VmUpdates {
  const found: Record<keyof VmUpdates, ProposedUpdate | undefined> = {
    hwspec: undefined,
    power: undefined,
    hypervisor: undefined,
    mac: undefined,
  };
  for (const update of run.task.updates) {
    if (update.op === 'sync') run.out.accept(update);
    else if (update.path === 'hwspec' || update.path === 'power' || update.path === 'hypervisor')
      found[update.path] = update;
    else if (interfaceFieldOf(update.path, 'mac') === iface) found.mac = update;
    else run.out.reject(`a ${noun} has one interface, ${iface} (plugin config "interface")`, update);
  }
  return found;
}

/** Answers one task of a hypervisor provider over `backend`. */
async function decideVm<Vm extends VmFacts>(backend: VmBackend<Vm>, run: TaskRun): Promise<void> {
  const { task, out } = run;
  const host = task.name;
  const iface = backend.interface;
  const macPath = `interfaces[${iface}].mac`;
  const nodeHypervisor = asString(task.node['hypervisor']);
  const nodeMac = asString(interfaceOf(task.node, iface)?.['mac']);
  const isHwspec = (value: unknown): value is string =>
    typeof value === 'string' && Object.hasOwn(backend.hwspecs, value);
  const sizeOf = (hwspec: string): VmSize => backend.hwspecs[hwspec] as VmSize;

  if (task.node['present'] === undefined) {
    // The host is being deleted (every update of this task is a sync saying so): remove its VM.
    const vm = await backend.locate(run, host, nodeHypervisor);
    if (vm !== null) {
      if (vm.running) await backend.powerOff(run, vm);
      await backend.undefine(run, vm);
    }
    for (const path of ['hwspec', 'power', 'hypervisor'])
      if (task.node[path] !== undefined) out.unset.push(path);
    if (nodeMac !== undefined) out.unset.push(macPath);
    out.accept(...task.updates);
    return;
  }

  const updates = sortUpdates(run, iface, backend.noun);
  const { hwspec: hwspecUpdate, power: powerUpdate, hypervisor: hypervisorUpdate, mac: macUpdate } = updates;
  const others = [powerUpdate, hypervisorUpdate, macUpdate];
  const gone = `delete the host to remove its ${backend.noun}`;
  if (hwspecUpdate !== undefined && (hwspecUpdate.op !== 'set' || !isHwspec(hwspecUpdate.value))) {
    out.reject(`hwspec cannot be unset while the host exists; ${gone}`, hwspecUpdate, ...others);
    return;
  }
  for (const [update, what] of [
    [hypervisorUpdate, 'hypervisor'],
    [macUpdate, 'the MAC'],
  ] as const) {
    if (update !== undefined && (update.op !== 'set' || typeof update.value !== 'string')) {
      out.reject(`${what} cannot be unset while the host exists; ${gone}`, update);
    }
  }
  const pinned = asString(hypervisorUpdate?.value);
  if (pinned !== undefined && !backend.hypervisors.includes(pinned)) {
    out.reject(
      `there is no hypervisor "${pinned}" (configured: ${backend.hypervisors.join(', ')})`,
      hypervisorUpdate,
      hwspecUpdate,
      ...others,
    );
    return;
  }
  const wanted = isHwspec(hwspecUpdate?.value) ? hwspecUpdate.value : task.node['hwspec'];

  let vm = await backend.locate(run, host, nodeHypervisor);
  if (vm === null && run.explain && nodeHypervisor !== undefined && isHwspec(wanted)) {
    // In explain, a VM defined by an earlier round of the same plan exists only as the reported hypervisor.
    vm = backend.planned(host, nodeHypervisor, sizeOf(wanted), nodeMac);
  }
  if (vm === null && isHwspec(wanted)) {
    const mac = asString(macUpdate?.value) ?? nodeMac;
    const defined = await backend.define(run, { host, hwspec: wanted, size: sizeOf(wanted), pinned, mac });
    if (typeof defined === 'string') {
      out.reject(defined, hwspecUpdate, ...others);
      return;
    }
    if ('waitFor' in defined) {
      out.defer(defined.reason, [defined.waitFor], hwspecUpdate, ...others);
      return;
    }
    vm = defined;
  } else if (vm !== null && hwspecUpdate !== undefined && isHwspec(wanted)) {
    // Resize in place when the size changes; a running VM gets the new size at its next boot.
    const size = sizeOf(wanted);
    if (vm.memoryMib !== size.memoryMib || vm.vcpus !== size.vcpus) {
      const resized = await backend.resize(run, vm, wanted, size);
      if (typeof resized === 'string') {
        out.reject(resized, hwspecUpdate, ...others);
        return;
      }
      vm = resized;
    }
  }
  out.accept(hwspecUpdate);

  if (vm === null) {
    // No VM and no size to define one with.
    const reason = `waiting for hwspec to define the ${backend.noun}`;
    if (powerUpdate?.op === 'set' && powerUpdate.value === 'on') out.defer(reason, ['hwspec'], powerUpdate);
    out.accept(powerUpdate);
    out.defer(reason, ['hwspec'], hypervisorUpdate, macUpdate);
    return;
  }

  // Values the VM determines; an operator may state them, but only as they are.
  const reportable: [string, ProposedUpdate | undefined, string | undefined, string | undefined, string][] = [
    [
      'hypervisor',
      hypervisorUpdate,
      vm.hypervisor,
      nodeHypervisor,
      `${host} is defined on ${vm.hypervisor}; moving a VM to another hypervisor is not supported (delete the host and create it again)`,
    ],
    [
      macPath,
      macUpdate,
      vm.mac,
      nodeMac,
      `the MAC of ${host} is ${vm.mac ?? 'unknown'}; the MAC of an existing VM cannot be changed`,
    ],
  ];
  for (const [path, update, actual, reported, reason] of reportable) {
    if (update !== undefined) {
      if (update.op === 'set' && update.value === actual) out.accept(update);
      else out.reject(reason, update);
    } else if (actual !== undefined && reported !== actual) out.set[path] = actual;
  }

  if (powerUpdate !== undefined) {
    const on = powerUpdate.op === 'set' && powerUpdate.value === 'on';
    const off = powerUpdate.op === 'set' && powerUpdate.value === 'off';
    if (on && !vm.running) {
      // Only the first boot installs over PXE; later boots come from the installed disk.
      if (!vm.booted && task.node['netboot'] !== true) {
        out.defer('waiting for PXE registration (netboot)', ['netboot'], powerUpdate);
      } else await backend.start(run, vm);
    } else if (on) {
      if (!run.explain && !vm.booted) await backend.markBooted(run, vm);
    } else if (off && vm.running) await backend.powerOff(run, vm);
    out.accept(powerUpdate);
  }
}

/** A hypervisor provider for hosts over `backend`; `extra` adds to it (libvirt's `close`, an `observe`). */
export function vmProvider<Vm extends VmFacts, Extra extends Partial<NodeProvider>>(
  backend: VmBackend<Vm>,
  extra: Extra,
): NodeProvider & Extra {
  return decisionProvider(
    {
      name: backend.provider,
      kind: 'host',
      claims: vmHostClaims(backend.hwspecs, backend.label),
      ...extra,
    },
    (run) => decideVm(backend, run),
  );
}
