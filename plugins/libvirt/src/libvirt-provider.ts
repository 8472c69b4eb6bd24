/**
 * The `libvirt` provider: VMs for hosts on libvirt hypervisors, driven by `virsh` over SSH. It has authority over
 * `hwspec` (the VM size), `power`, `hypervisor` and `interfaces[<interface>].mac`. On `hwspec` it places the VM on
 * the hypervisor with the most free memory that fits (free = configured capacity minus the memory of the domains
 * defined there), defines a diskless domain that boots from the network with a deterministic MAC, and reports the
 * hypervisor and the MAC; `power: on` waits for PXE registration (`netboot: true`) before the first boot; deleting
 * the host destroys and undefines the domain. Every task reads libvirt first (define only if absent, start only if
 * not running, destroy only if running, undefine "not found" is done), so running it again converges.
 */
import type {
  AttributeClaim,
  ExplainOutcome,
  JsonValue,
  NodeProvider,
  NodeRef,
  Observation,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/plugin-api';
import type { DomainMetadata, NetworkConfig } from './domain-xml.js';
import { domainXml } from './domain-xml.js';
import { OutcomeBuilder, interfaceFieldOf, interfaceOf } from '@consortium/plugin-api';
import type { HypervisorUsage, VmSize } from './placement.js';
import { describeFree, describeSize, fits, hwspecOf, macFor, place } from './placement.js';
import type { RemoteShell } from './ssh-session.js';
import type { DomainState, Virsh } from './virsh.js';

/** The name of the libvirt provider. */
export const LIBVIRT_PROVIDER = 'libvirt';

const MAC_PATTERN = '^([0-9a-f]{2}:){5}[0-9a-f]{2}$';

/** One hypervisor as the provider uses it. */
export interface Hypervisor {
  /** The name reported in `hypervisor`. */
  readonly name: string;
  readonly virsh: Virsh;
  /** The connection `virsh` runs over; closed by `close()`. */
  readonly shell: RemoteShell;
  /** What it may give to VMs; vcpus count only when set. */
  readonly capacity: { readonly memoryMib: number; readonly vcpus?: number };
  readonly domainType: 'kvm' | 'qemu';
  readonly network: NetworkConfig;
}

/** Settings of the libvirt provider. */
export interface LibvirtProviderOptions {
  /** In order of preference on ties. */
  readonly hypervisors: readonly Hypervisor[];
  /** The VM sizes `hwspec` names. */
  readonly hwspecs: Readonly<Record<string, VmSize>>;
  /** The one interface of a VM, whose MAC the provider reports (e.g. eth0). */
  readonly interface: string;
  /** The QEMU machine type (e.g. pc). */
  readonly machine: string;
}

/** The provider, with a way to close its SSH connections. */
export interface LibvirtProvider extends NodeProvider {
  /** Closes every SSH connection; later tasks open new ones. */
  close(): void;
}

/** What the libvirt provider claims on hosts, for the given sizes. */
export function libvirtClaims(hwspecs: Readonly<Record<string, VmSize>>): AttributeClaim[] {
  return [
    {
      path: 'hwspec',
      schema: {
        type: 'string',
        enum: Object.keys(hwspecs),
        description: `VM size: ${Object.entries(hwspecs)
          .map(([name, size]) => describeSize(name, size).replace(':', ' ='))
          .join('; ')}`,
      },
    },
    { path: 'power', schema: { type: 'string', enum: ['on', 'off'], description: 'whether the VM runs' } },
    {
      path: 'hypervisor',
      schema: { type: 'string', minLength: 1, description: 'the libvirt hypervisor the VM is defined on' },
    },
    {
      path: 'interfaces[*].mac',
      schema: { type: 'string', pattern: MAC_PATTERN, description: 'the MAC address of the VM interface' },
    },
  ];
}

/** A host's domain where the provider found it. */
interface Vm {
  readonly hypervisor: Hypervisor;
  readonly state: DomainState;
  /** The MAC of its (first) interface. */
  readonly mac: string | undefined;
  /** Whether it ever booted: only the first boot installs over PXE. Domains the plugin did not define count. */
  readonly booted: boolean;
}

/** Every hypervisor's domains, read in one pass. */
interface Scan {
  /** The value of the provider's placement count when the scan was read. */
  readonly generation: number;
  readonly usages: ReadonlyMap<string, HypervisorUsage>;
  readonly macs: ReadonlySet<string>;
  readonly found: Vm | null;
}

const asString = (value: JsonValue | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

/** Makes the libvirt provider over the configured hypervisors. */
export function libvirtProvider(options: LibvirtProviderOptions): LibvirtProvider {
  const { hwspecs } = options;
  const iface = options.interface;
  const macPath = `interfaces[${iface}].mac`;
  const byName = new Map(options.hypervisors.map((hv) => [hv.name, hv]));
  const names = options.hypervisors.map((hv) => hv.name).join(', ');
  /** Where each host's domain was last seen, so that observe and tasks ask that hypervisor first. */
  const seenOn = new Map<string, string>();
  // Placement reads free memory and then defines; creates in this process take turns so that two hosts cannot
  // both take the last room on a hypervisor.
  let placementTurn: Promise<unknown> = Promise.resolve();
  /** Counts defines and resizes in this process: a scan taken at the current count still shows the room left. */
  let placements = 0;
  const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    const turn = placementTurn.then(fn);
    placementTurn = turn.catch(() => undefined);
    return turn;
  };

  const isHwspec = (value: unknown): value is string =>
    typeof value === 'string' && Object.hasOwn(hwspecs, value);

  /**
   * True when a domain found on `hv` belongs there: the plugin's metadata names `hv` (or a hypervisor that is no
   * longer configured), or it has none. Two configured names for one libvirt then do not both claim its domains.
   */
  const belongs = (state: DomainState, hv: Hypervisor): boolean => {
    const recorded = state.metadata?.hypervisor;
    return recorded === undefined || recorded === hv.name || !byName.has(recorded);
  };

  const vmOf = (hv: Hypervisor, state: DomainState): Vm => ({
    hypervisor: hv,
    state,
    mac: state.interfaces.find((i) => i.mac !== undefined)?.mac,
    booted: state.metadata?.booted ?? true,
  });

  /** Reads every hypervisor; throws when one cannot be read (it might hold the host's domain). */
  async function scan(host: string, signal: AbortSignal): Promise<Scan> {
    const generation = placements;
    const all = await Promise.all(
      options.hypervisors.map(async (hv) => ({ hv, domains: await hv.virsh.domains({ signal }) })),
    );
    const usages = new Map<string, HypervisorUsage>();
    const macs = new Set<string>();
    const found: Vm[] = [];
    for (const { hv, domains } of all) {
      usages.set(hv.name, { name: hv.name, capacity: hv.capacity, domains });
      for (const domain of domains) {
        for (const item of domain.interfaces) if (item.mac !== undefined) macs.add(item.mac);
        if (domain.name === host) found.push(vmOf(hv, domain));
      }
    }
    // One libvirt configured under two names shows its domains under both: the metadata says which one placed
    // it. A domain moved by hand to another hypervisor keeps stale metadata and is still found where it is.
    const vm =
      found.find((v) => v.state.metadata?.hypervisor === v.hypervisor.name) ??
      found.find((v) => belongs(v.state, v.hypervisor)) ??
      found[0] ??
      null;
    if (vm === null) seenOn.delete(host);
    else seenOn.set(host, vm.hypervisor.name);
    return { generation, usages, macs, found: vm };
  }

  /** The host's domain: asked of `preferred` first, else of every hypervisor. */
  async function locate(
    host: string,
    preferred: string | undefined,
    signal: AbortSignal,
  ): Promise<{ vm: Vm | null; scan?: Scan }> {
    const hv = preferred === undefined ? undefined : byName.get(preferred);
    if (hv !== undefined) {
      const state = await hv.virsh.domain(host, { signal });
      if (state !== null && belongs(state, hv)) {
        seenOn.set(host, hv.name);
        return { vm: vmOf(hv, state) };
      }
    }
    const result = await scan(host, signal);
    return { vm: result.found, scan: result };
  }

  async function decide(task: ProviderTask, context: ProviderContext, dry: boolean): Promise<ExplainOutcome> {
    const out = new OutcomeBuilder();
    const host = task.name;
    const { signal } = context;
    const call = { signal };
    const nodeHypervisor = asString(task.node['hypervisor']);
    const nodeMac = asString(interfaceOf(task.node, iface)?.['mac']);
    /** Runs a backend action (skipped in explain) and records it as an operation. */
    const act = async (
      action: string,
      hv: string,
      detail: string,
      fn: () => Promise<void>,
    ): Promise<void> => {
      const started = context.now();
      if (!dry) {
        await fn();
        context.logger.info(`libvirt: ${detail}`, { host, hypervisor: hv, action });
      }
      out.operations.push({ action, target: `${hv}/${host}`, detail, durationMs: context.now() - started });
    };

    if (task.node['present'] === undefined) {
      // The host is being deleted (every update of this task is a sync saying so): remove its domain.
      const { vm } = await locate(host, nodeHypervisor ?? seenOn.get(host), signal);
      if (vm !== null) {
        const hv = vm.hypervisor;
        if (vm.state.active) {
          await act('destroy', hv.name, `powered off domain ${host}`, () => hv.virsh.destroy(host, call));
        }
        await act('undefine', hv.name, `undefined domain ${host}`, () => hv.virsh.undefine(host, call));
        if (!dry) seenOn.delete(host);
      }
      for (const path of ['hwspec', 'power', 'hypervisor'])
        if (task.node[path] !== undefined) out.unset.push(path);
      if (nodeMac !== undefined) out.unset.push(macPath);
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
      else if (interfaceFieldOf(update.path, 'mac') === iface) macUpdate = update;
      else out.reject(`a libvirt VM has one interface, ${iface} (plugin config "interface")`, update);
    }
    const others = [powerUpdate, hypervisorUpdate, macUpdate];
    if (hwspecUpdate !== undefined && (hwspecUpdate.op !== 'set' || !isHwspec(hwspecUpdate.value))) {
      out.reject(
        'hwspec cannot be unset while the host exists; delete the host to remove its VM',
        hwspecUpdate,
        ...others,
      );
      return out.build(dry);
    }
    for (const [update, what] of [
      [hypervisorUpdate, 'hypervisor'],
      [macUpdate, 'the MAC'],
    ] as const) {
      if (update !== undefined && (update.op !== 'set' || typeof update.value !== 'string')) {
        out.reject(`${what} cannot be unset while the host exists; delete the host to remove its VM`, update);
      }
    }
    const pinned = asString(hypervisorUpdate?.value);
    if (pinned !== undefined && !byName.has(pinned)) {
      out.reject(
        `there is no hypervisor "${pinned}" (configured: ${names})`,
        hypervisorUpdate,
        hwspecUpdate,
        ...others,
      );
      return out.build(dry);
    }
    const wanted = isHwspec(hwspecUpdate?.value) ? hwspecUpdate.value : task.node['hwspec'];

    let { vm, scan: scanned } = await locate(host, nodeHypervisor ?? seenOn.get(host), signal);
    const planned = nodeHypervisor === undefined ? undefined : byName.get(nodeHypervisor);
    if (vm === null && dry && planned !== undefined && isHwspec(wanted)) {
      // In explain, a domain defined by an earlier round of the same plan exists only as the reported hypervisor.
      const size = hwspecs[wanted] as VmSize;
      const mac = nodeMac ?? macFor(host, new Set());
      vm = {
        hypervisor: planned,
        mac,
        booted: false,
        state: {
          name: host,
          uuid: undefined,
          memoryMib: size.memoryMib,
          vcpus: size.vcpus,
          interfaces: [{ type: planned.network.type, mac, source: planned.network.source }],
          metadata: { hypervisor: planned.name, booted: false },
          active: false,
        },
      };
    }

    if (vm === null && isHwspec(wanted)) {
      // Define the domain: place it, then define it, in one turn.
      const size = hwspecs[wanted] as VmSize;
      const define = async (): Promise<Vm | string> => {
        // The scan `locate` read is used again unless a define or resize in this process came after it.
        const fresh =
          scanned !== undefined && (dry || scanned.generation === placements)
            ? scanned
            : await scan(host, signal);
        scanned = fresh;
        if (fresh.found !== null) return fresh.found;
        const usages = [...fresh.usages.values()];
        const chosen = pinned ?? place(usages, size);
        const usage = chosen === undefined ? undefined : fresh.usages.get(chosen);
        if (chosen === undefined || usage === undefined || !fits(usage, size)) {
          const where = pinned === undefined ? 'no hypervisor has' : `hypervisor ${pinned} has no`;
          const free = (pinned === undefined ? usages : usages.filter((u) => u.name === pinned))
            .map((u) => describeFree(u))
            .join('; ');
          return `${where} room for a ${describeSize(wanted, size)} VM: ${free}`;
        }
        const hv = byName.get(chosen) as Hypervisor;
        const mac = asString(macUpdate?.value) ?? nodeMac ?? macFor(host, fresh.macs);
        const metadata: DomainMetadata = { hypervisor: hv.name, booted: false };
        const xml = domainXml({
          name: host,
          domainType: hv.domainType,
          machine: options.machine,
          vcpus: size.vcpus,
          memoryMib: size.memoryMib,
          mac,
          network: hv.network,
          metadata,
        });
        await act(
          'define',
          hv.name,
          `defined domain ${host} (${describeSize(wanted, size)}, mac ${mac}) on ${describeFree(usage)}`,
          () => hv.virsh.define(host, xml, call),
        );
        if (!dry) {
          placements++;
          seenOn.set(host, hv.name);
        }
        return {
          hypervisor: hv,
          mac,
          booted: false,
          state: {
            name: host,
            uuid: undefined,
            memoryMib: size.memoryMib,
            vcpus: size.vcpus,
            interfaces: [{ type: hv.network.type, mac, source: hv.network.source }],
            metadata,
            active: false,
          },
        };
      };
      const defined = dry ? await define() : await inTurn(define);
      if (typeof defined === 'string') {
        out.reject(defined, hwspecUpdate, ...others);
        return out.build(dry);
      }
      vm = defined;
    } else if (vm !== null && hwspecUpdate !== undefined && isHwspec(wanted)) {
      // Resize in place when the size changes; a running VM gets the new size at its next boot.
      const size = hwspecs[wanted] as VmSize;
      const current = vm;
      if (current.state.memoryMib !== size.memoryMib || current.state.vcpus !== size.vcpus) {
        const hv = current.hypervisor;
        const usage = scanned?.usages.get(hv.name) ?? {
          name: hv.name,
          capacity: hv.capacity,
          domains: await hv.virsh.domains(call),
        };
        if (!fits(usage, size, host)) {
          out.reject(
            `hypervisor ${hv.name} has no room to resize ${host} to ${describeSize(wanted, size)}: ${describeFree(usage, host)}`,
            hwspecUpdate,
            ...others,
          );
          return out.build(dry);
        }
        const mac = current.mac ?? macFor(host, new Set());
        const xml = domainXml({
          name: host,
          ...(current.state.uuid === undefined ? {} : { uuid: current.state.uuid }),
          domainType: hv.domainType,
          machine: options.machine,
          vcpus: size.vcpus,
          memoryMib: size.memoryMib,
          mac,
          network: hv.network,
          metadata: { hypervisor: hv.name, booted: current.booted },
        });
        const later = current.state.active ? ' (takes effect at its next boot)' : '';
        await act(
          'redefine',
          hv.name,
          `resized domain ${host} to ${describeSize(wanted, size)}${later}`,
          async () => {
            await hv.virsh.define(host, xml, call);
            placements++;
          },
        );
        vm = { ...current, mac, state: { ...current.state, memoryMib: size.memoryMib, vcpus: size.vcpus } };
      }
    }
    out.accept(hwspecUpdate);

    if (vm === null) {
      // No domain and no size to define one with.
      const reason = 'waiting for hwspec to define the VM';
      if (powerUpdate?.op === 'set' && powerUpdate.value === 'on') out.defer(reason, ['hwspec'], powerUpdate);
      out.accept(powerUpdate);
      out.defer(reason, ['hwspec'], hypervisorUpdate, macUpdate);
      return out.build(dry);
    }

    // Values the domain determines; an operator may state them, but only as they are.
    const reportable: [string, ProposedUpdate | undefined, string | undefined, string | undefined, string][] =
      [
        [
          'hypervisor',
          hypervisorUpdate,
          vm.hypervisor.name,
          nodeHypervisor,
          `${host} is defined on ${vm.hypervisor.name}; moving a VM to another hypervisor is not supported (delete the host and create it again)`,
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
      const hv = vm.hypervisor;
      const on = powerUpdate.op === 'set' && powerUpdate.value === 'on';
      const off = powerUpdate.op === 'set' && powerUpdate.value === 'off';
      const markBooted = async (): Promise<void> => {
        if (!dry && !vm.booted) await hv.virsh.setMetadata(host, { hypervisor: hv.name, booted: true }, call);
      };
      if (on && !vm.state.active) {
        // Only the first boot installs over PXE; later boots come from the installed disk.
        if (!vm.booted && task.node['netboot'] !== true) {
          out.defer('waiting for PXE registration (netboot)', ['netboot'], powerUpdate);
        } else {
          await act('start', hv.name, `started domain ${host}`, async () => {
            await hv.virsh.start(host, call);
            await markBooted();
          });
        }
      } else if (on) {
        await markBooted();
      } else if (off && vm.state.active) {
        await act('destroy', hv.name, `powered off domain ${host}`, () => hv.virsh.destroy(host, call));
      }
      out.accept(powerUpdate);
    }
    return out.build(dry);
  }

  async function observe(ref: NodeRef, context: ProviderContext): Promise<Observation> {
    if (ref.kind !== 'host') return null;
    const { vm } = await locate(ref.name, seenOn.get(ref.name), context.signal);
    if (vm === null) return null;
    const hwspec = hwspecOf(hwspecs, vm.state.memoryMib, vm.state.vcpus);
    return {
      ...(hwspec === undefined ? {} : { hwspec }),
      power: vm.state.active ? 'on' : 'off',
      hypervisor: vm.hypervisor.name,
      ...(vm.mac === undefined ? {} : { interfaces: [{ name: iface, mac: vm.mac }] }),
    };
  }

  return {
    name: LIBVIRT_PROVIDER,
    kind: 'host',
    claims: libvirtClaims(hwspecs),
    apply: (task, context) => decide(task, context, false),
    explain: (task, context) => decide(task, context, true),
    observe,
    close: () => {
      for (const hv of options.hypervisors) hv.shell.close();
    },
  };
}
