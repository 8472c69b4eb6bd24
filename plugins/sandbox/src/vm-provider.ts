/**
 * SIMULATION. `sandbox-vm`: a simulated hypervisor for hosts. On `hwspec` it defines a simulated VM on the
 * simulated hypervisor with the most free memory and reports the hypervisor and a generated MAC; `power: on`
 * waits for PXE registration (`netboot`) before the first boot. State lives in memory only.
 */
import type {
  AttributeClaim,
  ExplainOutcome,
  NodeProvider,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/plugin-api';
import { OutcomeBuilder, interfaceFieldOf, interfaceOf } from '@consortium/plugin-api';
import type { Hwspec, SandboxWorld, SimulatedVm } from './simulation.js';
import { HWSPECS, isHwspec, simulatedDelay } from './simulation.js';

/** The name of the simulated hypervisor provider. */
export const SANDBOX_VM_PROVIDER = 'sandbox-vm';

const MAC_PATTERN = '^([0-9a-f]{2}:){5}[0-9a-f]{2}$';

/** What `sandbox-vm` claims on hosts. */
export const SANDBOX_VM_CLAIMS: readonly AttributeClaim[] = [
  {
    path: 'hwspec',
    schema: {
      type: 'string',
      enum: Object.keys(HWSPECS),
      description: `[simulated] VM size: ${Object.entries(HWSPECS)
        .map(([name, spec]) => `${name} = ${spec.vcpus} vcpus, ${spec.memoryMib} MiB`)
        .join('; ')}`,
    },
  },
  {
    path: 'power',
    schema: { type: 'string', enum: ['on', 'off'], description: '[simulated] whether the VM runs' },
  },
  {
    path: 'hypervisor',
    schema: { type: 'string', description: '[simulated] the hypervisor the VM is placed on' },
  },
  {
    path: 'interfaces[*].mac',
    schema: { type: 'string', pattern: MAC_PATTERN, description: '[simulated] the MAC address' },
  },
];

/** Settings of the simulated hypervisor provider. */
export interface VmProviderOptions {
  readonly delayMs: number;
  readonly interface: string;
}

const describeSpec = (hwspec: Hwspec): string =>
  `${hwspec}: ${HWSPECS[hwspec].vcpus} vcpus, ${HWSPECS[hwspec].memoryMib} MiB`;

/** Makes the simulated hypervisor provider over a sandbox world. */
export function vmProvider(world: SandboxWorld, options: VmProviderOptions): NodeProvider {
  const macPath = `interfaces[${options.interface}].mac`;

  async function decide(task: ProviderTask, context: ProviderContext, dry: boolean): Promise<ExplainOutcome> {
    const out = new OutcomeBuilder();
    const host = task.name;
    let vm = world.vms.get(host);
    const started = context.now();
    const work = async (): Promise<number> => {
      if (!dry) await simulatedDelay(options.delayMs, context.signal);
      return context.now() - started;
    };

    if (task.node['present'] === undefined) {
      // The host is being deleted: stop and undefine its VM, forget what was reported.
      if (vm !== undefined) {
        const target = `${vm.hypervisor}/${host}`;
        if (vm.running) {
          const durationMs = await work();
          out.operations.push({
            action: 'stop',
            target,
            detail: `[simulated] stopped VM ${host}`,
            durationMs,
          });
        }
        if (!dry) world.vms.delete(host);
        out.operations.push({
          action: 'undefine',
          target,
          detail: `[simulated] undefined VM ${host}`,
          durationMs: 0,
        });
      }
      for (const path of ['hwspec', 'power', 'hypervisor'])
        if (task.node[path] !== undefined) out.unset.push(path);
      if (interfaceOf(task.node, options.interface)?.['mac'] !== undefined) out.unset.push(macPath);
      out.accept(...task.updates);
      return out.build(dry);
    }

    let hwspecUpdate: ProposedUpdate | undefined;
    let powerUpdate: ProposedUpdate | undefined;
    let hypervisorUpdate: ProposedUpdate | undefined;
    let macUpdate: ProposedUpdate | undefined;
    for (const update of task.updates) {
      if (update.op === 'sync') out.accept(update);
      else if (update.path === 'hwspec') hwspecUpdate = update;
      else if (update.path === 'power') powerUpdate = update;
      else if (update.path === 'hypervisor') hypervisorUpdate = update;
      else if (interfaceFieldOf(update.path, 'mac') === options.interface) macUpdate = update;
      else {
        out.reject(
          `[simulated] the sandbox VM has one interface, ${options.interface} (plugin config "interface")`,
          update,
        );
      }
    }
    const others = [powerUpdate, hypervisorUpdate, macUpdate];

    if (hwspecUpdate !== undefined && (hwspecUpdate.op !== 'set' || !isHwspec(hwspecUpdate.value))) {
      const reason =
        'hwspec cannot be unset while the host exists; delete the host to remove its simulated VM';
      out.reject(reason, hwspecUpdate, ...others);
      return out.build(dry);
    }
    const wanted = hwspecUpdate?.value ?? task.node['hwspec'];
    // In explain, a VM about to be defined has a hypervisor and a MAC only once it really is.
    let predicted = false;

    // Define the VM when it is missing, or resize it when hwspec changes.
    if (isHwspec(wanted) && (vm === undefined || (hwspecUpdate !== undefined && vm.hwspec !== wanted))) {
      // In explain, a VM defined by an earlier round of the same plan exists only as a promised hypervisor.
      const definedEarlier = dry && vm === undefined && task.later?.['hypervisor'] === SANDBOX_VM_PROVIDER;
      if (!definedEarlier) {
        const hypervisor =
          vm === undefined
            ? world.place(wanted)
            : world.fits(vm.hypervisor, wanted, host)
              ? vm.hypervisor
              : undefined;
        if (hypervisor === undefined) {
          const where =
            vm === undefined ? 'no simulated hypervisor has' : `simulated hypervisor ${vm.hypervisor} has no`;
          out.reject(`${where} room for a ${describeSpec(wanted)} VM`, hwspecUpdate, ...others);
          return out.build(dry);
        }
        const resized = vm !== undefined;
        const next: SimulatedVm = {
          host,
          hypervisor,
          hwspec: wanted,
          mac: vm?.mac ?? world.macFor(host),
          running: vm?.running ?? false,
          booted: vm?.booted ?? false,
        };
        // Placement and definition happen in one step, before any await, so concurrent hosts cannot both take
        // the last room on a hypervisor.
        if (!dry) world.vms.set(host, next);
        vm = next;
        const durationMs = await work();
        out.operations.push({
          action: resized ? 'redefine' : 'define',
          target: `${hypervisor}/${host}`,
          detail: `[simulated] ${resized ? 'resized' : 'defined'} VM ${host} (${describeSpec(wanted)}) on ${hypervisor}`,
          durationMs,
        });
        if (dry && !resized) {
          predicted = true;
          out.later.push('hypervisor', macPath);
        }
      }
    }
    out.accept(hwspecUpdate);

    if (vm === undefined && !isHwspec(wanted)) {
      if (powerUpdate?.op === 'set' && powerUpdate.value === 'on') {
        out.defer('waiting for hwspec to define the simulated VM', ['hwspec'], powerUpdate);
      }
      out.accept(powerUpdate);
      out.defer('waiting for hwspec to define the simulated VM', ['hwspec'], hypervisorUpdate, macUpdate);
      return out.build(dry);
    }

    // Values the VM determines; an operator may state them, but only as they are.
    const reportable: [string, ProposedUpdate | undefined, string | undefined][] = [
      ['hypervisor', hypervisorUpdate, vm?.hypervisor],
      [macPath, macUpdate, vm?.mac],
    ];
    for (const [path, update, actual] of reportable) {
      if (update !== undefined) {
        if (update.op === 'set' && (actual === undefined || update.value === actual)) out.accept(update);
        else
          out.reject(
            `[simulated] ${path} is chosen by the simulated hypervisor (${actual ?? 'unknown'}); it cannot be changed`,
            update,
          );
      }
      const reported =
        path === 'hypervisor' ? task.node['hypervisor'] : interfaceOf(task.node, options.interface)?.['mac'];
      if (update === undefined && !predicted && actual !== undefined && reported !== actual)
        out.set[path] = actual;
    }

    if (powerUpdate !== undefined) {
      const target = `${vm?.hypervisor ?? '(planned)'}/${host}`;
      const on = powerUpdate.op === 'set' && powerUpdate.value === 'on';
      const off = powerUpdate.op === 'set' && powerUpdate.value === 'off';
      if (on && vm?.running !== true) {
        // Only the first boot installs over PXE; later boots come from the simulated disk.
        if (vm?.booted !== true && task.node['netboot'] !== true) {
          out.defer('waiting for PXE registration (netboot)', ['netboot'], powerUpdate);
        } else {
          const durationMs = await work();
          if (!dry && vm !== undefined) world.vms.set(host, { ...vm, running: true, booted: true });
          out.operations.push({
            action: 'start',
            target,
            detail: `[simulated] started VM ${host}`,
            durationMs,
          });
        }
      } else if (off && vm?.running === true) {
        const durationMs = await work();
        if (!dry) world.vms.set(host, { ...vm, running: false });
        out.operations.push({ action: 'stop', target, detail: `[simulated] stopped VM ${host}`, durationMs });
      }
      out.accept(powerUpdate);
    }
    return out.build(dry);
  }

  return {
    name: SANDBOX_VM_PROVIDER,
    kind: 'host',
    claims: SANDBOX_VM_CLAIMS,
    apply: (task, context) => decide(task, context, false),
    explain: (task, context) => decide(task, context, true),
    observe: (ref) => {
      const vm = ref.kind === 'host' ? world.vms.get(ref.name) : undefined;
      if (vm === undefined) return Promise.resolve(null);
      return Promise.resolve({
        hwspec: vm.hwspec,
        power: vm.running ? 'on' : 'off',
        hypervisor: vm.hypervisor,
        interfaces: [{ name: options.interface, mac: vm.mac }],
      });
    },
  };
}
