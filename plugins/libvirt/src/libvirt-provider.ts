/**
 * The `libvirt` provider: VMs for hosts on libvirt hypervisors, driven by `virsh` over SSH. It has authority over
 * `hwspec` (the VM size), `power`, `hypervisor` and `interfaces[<interface>].mac`. The decision is the plugin API's
 * `vmProvider`; this file is the libvirt backend behind it. It places a VM on the hypervisor with the most free
 * memory that fits (free = configured capacity minus the memory of the domains defined there), defines a diskless
 * domain that boots from the network with a deterministic MAC, starts it, destroys it and undefines it. Every task
 * reads libvirt first (define only if absent, start only if not running, destroy only if running, undefine "not
 * found" is done), so running it again converges.
 */
import type {
  AttributeClaim,
  Attrs,
  DiscoveredObject,
  NodeProvider,
  NodeRef,
  Observation,
  PlacementWait,
  ProviderContext,
  TaskRun,
  VmBackend,
  VmDefinition,
  VmFacts,
} from '@consortium/plugin-api';
import { isNodeName, vmHostClaims, vmProvider } from '@consortium/plugin-api';
import type { DomainMetadata, NetworkConfig } from './domain-xml.js';
import { domainXml } from './domain-xml.js';
import type { HypervisorUsage, VmSize } from './placement.js';
import { describeFree, describeSize, fits, hwspecOf, macFor, place } from './placement.js';
import type { RemoteShell } from './ssh-session.js';
import type { DomainState, Virsh } from './virsh.js';
import type { DomainEvents } from './virsh-session.js';

/** The name of the libvirt provider. */
export const LIBVIRT_PROVIDER = 'libvirt';

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
  /**
   * The `hypervisor` nodes of the inventory (read for each placement): a configured hypervisor is placed on only
   * while its node exists and is schedulable, and only for hosts of its datacenter. Absent: every configured one.
   */
  readonly hypervisorNodes?: (signal: AbortSignal) => Promise<ReadonlyMap<string, HypervisorNode>>;
}

/** What placement reads of a `hypervisor` node. */
export interface HypervisorNode {
  readonly datacenter?: string;
  /** False while draining. */
  readonly schedulable?: boolean;
}

/** The provider, with a way to close its SSH connections. */
export interface LibvirtProvider extends NodeProvider {
  /** Closes every SSH connection; later tasks open new ones. */
  close(): void;
  /** A configured hypervisor's usage as its placement view holds it (reading what changed), or null if unknown. */
  usage(name: string, signal: AbortSignal): Promise<HypervisorUsage | null>;
}

/** What the libvirt provider claims on hosts, for the given sizes: the plugin API's standard VM claims. */
export function libvirtClaims(hwspecs: Readonly<Record<string, VmSize>>): AttributeClaim[] {
  return vmHostClaims(hwspecs);
}

/** A host's domain where the provider found it. */
interface Vm extends VmFacts {
  readonly hv: Hypervisor;
  readonly state: DomainState;
}

/** One hypervisor's domains as the provider last read them, kept current by its domain events. */
interface View {
  domains: Map<string, DomainState>;
  /** Domains an event named since they were read. */
  readonly dirty: Set<string>;
  /** An event arrived since the stream was opened: it is registered. */
  proven: boolean;
  /** `domains` (with `dirty` read again) is what the hypervisor holds. */
  trusted: boolean;
  events: DomainEvents | undefined;
}

/** Every hypervisor's domains, read in one pass. */
interface Scan {
  /** The value of the provider's placement count when the scan was read. */
  readonly generation: number;
  readonly usages: ReadonlyMap<string, HypervisorUsage>;
  readonly macs: ReadonlySet<string>;
  readonly found: Vm | null;
}

const vmOf = (hv: Hypervisor, state: DomainState): Vm => ({
  hv,
  state,
  hypervisor: hv.name,
  memoryMib: state.memoryMib,
  vcpus: state.vcpus,
  running: state.active,
  mac: state.interfaces.find((i) => i.mac !== undefined)?.mac,
  booted: state.metadata?.booted ?? true,
});

/** Makes the libvirt provider over the configured hypervisors. */
export function libvirtProvider(options: LibvirtProviderOptions): LibvirtProvider {
  const { hwspecs } = options;
  const iface = options.interface;
  const byName = new Map(options.hypervisors.map((hv) => [hv.name, hv]));
  /** Where each host's domain was last seen, so that observe and tasks ask that hypervisor first. */
  const seenOn = new Map<string, string>();
  /** The scan a task's look-up read, used again by its define unless a placement came after it. */
  const scans = new WeakMap<TaskRun, Scan>();
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

  /**
   * True when a domain found on `hv` belongs there: the plugin's metadata names `hv` (or a hypervisor that is no
   * longer configured), or it has none. Two configured names for one libvirt then do not both claim its domains.
   */
  const belongs = (state: DomainState, hv: Hypervisor): boolean => {
    const recorded = state.metadata?.hypervisor;
    return recorded === undefined || recorded === hv.name || !byName.has(recorded);
  };

  /**
   * What the provider knows of each hypervisor's domains. A view is trusted (read from instead of libvirt) only
   * while its event stream runs and when it was read in full after that stream proved it was registered (an event
   * arrived); from then on every define, undefine, start or stop anywhere on the hypervisor names its domain, and
   * only those domains are read again. Without events (a shell that cannot keep a command open, a stream that
   * ended) every scan reads every domain, as before.
   */
  const views = new Map<string, View>();
  const viewOf = (hv: Hypervisor): View => {
    let view = views.get(hv.name);
    if (view === undefined) {
      const created: View = {
        domains: new Map(),
        dirty: new Set(),
        proven: false,
        trusted: false,
        events: undefined,
      };
      created.events = hv.virsh.events(
        (domain) => {
          created.proven = true;
          created.dirty.add(domain);
        },
        () => {
          created.proven = false;
          created.trusted = false;
        },
      );
      views.set(hv.name, created);
      view = created;
    }
    view.events?.listen();
    return view;
  };

  const trusted = (view: View): boolean => view.trusted;

  /**
   * The domains of `hv`: from its trusted view (reading again only the domains events named, and `host`, whose
   * change a moment ago may not have sent its event yet, if given), else read in full.
   */
  async function domainsOf(
    hv: Hypervisor,
    host: string | undefined,
    signal: AbortSignal,
  ): Promise<readonly DomainState[]> {
    const view = viewOf(hv);
    if (view.trusted) {
      const names = [...new Set([...view.dirty, ...(host === undefined ? [] : [host])])];
      view.dirty.clear();
      try {
        const states = await Promise.all(names.map((name) => hv.virsh.domain(name, { signal })));
        names.forEach((name, i) => {
          const state = states[i];
          if (state === null || state === undefined) view.domains.delete(name);
          else view.domains.set(name, state);
        });
      } catch (error) {
        for (const name of names) view.dirty.add(name);
        throw error;
      }
      // The stream may have ended while the domains were read.
      if (trusted(view)) return [...view.domains.values()];
    }
    // Events after this point mark domains again; a read that starts after the stream proved itself is complete.
    const proven = view.proven;
    view.dirty.clear();
    const domains = await hv.virsh.domains({ signal });
    view.domains = new Map(domains.map((d) => [d.name, d]));
    view.trusted = proven && view.proven && view.events?.listening === true;
    return domains;
  }

  /** A domain the provider just changed is read again before the view is used (its event may come later). */
  const touched = (hv: Hypervisor, name: string): void => {
    views.get(hv.name)?.dirty.add(name);
  };

  /**
   * Which of the domains of one name on several hypervisors is the host's. One libvirt configured under two names
   * shows its domains under both: the metadata says which one placed it. A domain moved by hand to another
   * hypervisor keeps stale metadata and is still found where it is.
   */
  const chosen = (found: readonly Vm[]): Vm | null =>
    found.find((v) => v.state.metadata?.hypervisor === v.hv.name) ??
    found.find((v) => belongs(v.state, v.hv)) ??
    found[0] ??
    null;

  /** Reads every hypervisor; throws when one cannot be read (it might hold the host's domain). */
  async function scan(host: string, signal: AbortSignal): Promise<Scan> {
    const generation = placements;
    const all = await Promise.all(
      options.hypervisors.map(async (hv) => ({ hv, domains: await domainsOf(hv, host, signal) })),
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
    const vm = chosen(found);
    if (vm === null) seenOn.delete(host);
    else seenOn.set(host, vm.hv.name);
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
      // Read from libvirt, not the view: a change made a moment ago may not have sent its event yet.
      const state = await hv.virsh.domain(host, { signal });
      if (state !== null && belongs(state, hv)) {
        seenOn.set(host, hv.name);
        return { vm: vmOf(hv, state) };
      }
    }
    const result = await scan(host, signal);
    return { vm: result.found, scan: result };
  }

  /** A domain as it stands once defined with `size` and `metadata` on `hv`. */
  const definedVm = (hv: Hypervisor, host: string, size: VmSize, mac: string, metadata: DomainMetadata): Vm =>
    vmOf(hv, {
      name: host,
      uuid: undefined,
      memoryMib: size.memoryMib,
      vcpus: size.vcpus,
      interfaces: [{ type: hv.network.type, mac, source: hv.network.source }],
      metadata,
      active: false,
    });

  /** Runs a virsh write (skipped in explain) as an operation on `hv/host`, and logs it. */
  const act = (run: TaskRun, action: string, hv: string, detail: string, fn: () => Promise<void>) =>
    run.operation({ action, target: `${hv}/${run.task.name}` }, detail, async () => {
      await fn();
      run.logger.info(`libvirt: ${detail}`, { host: run.task.name, hypervisor: hv, action });
    });

  /** Places and defines a domain in one turn: a fresh scan unless the task's own is still current. */
  async function define(run: TaskRun, request: VmDefinition): Promise<Vm | string | PlacementWait> {
    const { host, hwspec, size, pinned } = request;
    const scanned = scans.get(run);
    const fresh =
      scanned !== undefined && (run.explain || scanned.generation === placements)
        ? scanned
        : await scan(host, run.signal);
    scans.set(run, fresh);
    if (fresh.found !== null) return fresh.found;
    const nodes = await options.hypervisorNodes?.(run.signal);
    const datacenter = run.task.node['datacenter'];
    const host_dc = typeof datacenter === 'string' ? datacenter : undefined;
    if (nodes !== undefined && host_dc === undefined) {
      const centers = [...new Set([...nodes.values()].flatMap((n) => n.datacenter ?? []))].sort();
      if (centers.length > 0) {
        return {
          waitFor: 'datacenter',
          reason: `waiting for the host's datacenter to place the VM (hypervisors are in ${centers.join(', ')})`,
        };
      }
    }
    /** Why a configured hypervisor cannot take the VM, or undefined when it can. */
    const barred = (name: string): string | undefined => {
      if (nodes === undefined) return undefined;
      const node = nodes.get(name);
      if (node === undefined) return `${name} has no hypervisor node`;
      if (node.schedulable === false) return `${name} is not schedulable (draining)`;
      if (host_dc !== undefined && node.datacenter !== undefined && node.datacenter !== host_dc)
        return `${name} is in datacenter ${node.datacenter}`;
      return undefined;
    };
    if (pinned !== undefined) {
      const why = barred(pinned);
      if (why !== undefined) return `cannot place ${host} on hypervisor ${pinned}: ${why}`;
    }
    const usages = [...fresh.usages.values()].filter((u) => barred(u.name) === undefined);
    if (usages.length === 0) {
      const reasons = [...fresh.usages.keys()].map((name) => barred(name)).join('; ');
      const where = host_dc === undefined ? '' : ` in datacenter ${host_dc}`;
      return `no schedulable hypervisor${where} for ${host}: ${reasons}`;
    }
    const chosen = pinned ?? place(usages, size);
    const usage = chosen === undefined ? undefined : fresh.usages.get(chosen);
    if (chosen === undefined || usage === undefined || !fits(usage, size)) {
      const where = pinned === undefined ? 'no hypervisor has' : `hypervisor ${pinned} has no`;
      const free = (pinned === undefined ? usages : usages.filter((u) => u.name === pinned))
        .map((u) => describeFree(u))
        .join('; ');
      return `${where} room for a ${describeSize(hwspec, size)} VM: ${free}`;
    }
    const hv = byName.get(chosen) as Hypervisor;
    const mac = request.mac ?? macFor(host, fresh.macs);
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
      run,
      'define',
      hv.name,
      `defined domain ${host} (${describeSize(hwspec, size)}, mac ${mac}) on ${describeFree(usage)}`,
      async () => {
        try {
          await hv.virsh.define(host, xml, { signal: run.signal });
        } finally {
          touched(hv, host);
        }
        placements++;
        seenOn.set(host, hv.name);
      },
    );
    return definedVm(hv, host, size, mac, metadata);
  }

  const backend: VmBackend<Vm> = {
    provider: LIBVIRT_PROVIDER,
    interface: iface,
    hwspecs,
    noun: 'VM',
    hypervisors: options.hypervisors.map((hv) => hv.name),

    async locate(run, host, hint) {
      const found = await locate(host, hint ?? seenOn.get(host), run.signal);
      if (found.scan !== undefined) scans.set(run, found.scan);
      return found.vm;
    },

    planned(host, hypervisor, size, mac) {
      const hv = byName.get(hypervisor);
      if (hv === undefined) return null;
      return definedVm(hv, host, size, mac ?? macFor(host, new Set()), {
        hypervisor: hv.name,
        booted: false,
      });
    },

    define: (run, request) => (run.explain ? define(run, request) : inTurn(() => define(run, request))),

    async resize(run, vm, hwspec, size) {
      const host = run.task.name;
      const { hv } = vm;
      const usage = scans.get(run)?.usages.get(hv.name) ?? {
        name: hv.name,
        capacity: hv.capacity,
        domains: await hv.virsh.domains({ signal: run.signal }),
      };
      if (!fits(usage, size, host)) {
        return `hypervisor ${hv.name} has no room to resize ${host} to ${describeSize(hwspec, size)}: ${describeFree(usage, host)}`;
      }
      const mac = vm.mac ?? macFor(host, new Set());
      const xml = domainXml({
        name: host,
        ...(vm.state.uuid === undefined ? {} : { uuid: vm.state.uuid }),
        domainType: hv.domainType,
        machine: options.machine,
        vcpus: size.vcpus,
        memoryMib: size.memoryMib,
        mac,
        network: hv.network,
        metadata: { hypervisor: hv.name, booted: vm.booted },
      });
      const later = vm.running ? ' (takes effect at its next boot)' : '';
      await act(
        run,
        'redefine',
        hv.name,
        `resized domain ${host} to ${describeSize(hwspec, size)}${later}`,
        async () => {
          try {
            await hv.virsh.define(host, xml, { signal: run.signal });
          } finally {
            touched(hv, host);
          }
          placements++;
        },
      );
      const state = { ...vm.state, memoryMib: size.memoryMib, vcpus: size.vcpus };
      return { ...vm, mac, state, memoryMib: size.memoryMib, vcpus: size.vcpus };
    },

    async start(run, vm) {
      const host = run.task.name;
      await act(run, 'start', vm.hv.name, `started domain ${host}`, async () => {
        try {
          await vm.hv.virsh.start(host, { signal: run.signal });
        } finally {
          touched(vm.hv, host);
        }
        await backend.markBooted(run, vm);
      });
    },

    async markBooted(run, vm) {
      if (vm.booted) return;
      try {
        await vm.hv.virsh.setMetadata(
          run.task.name,
          { hypervisor: vm.hv.name, booted: true },
          { signal: run.signal },
        );
      } finally {
        touched(vm.hv, run.task.name);
      }
    },

    async powerOff(run, vm) {
      const host = run.task.name;
      await act(run, 'destroy', vm.hv.name, `powered off domain ${host}`, async () => {
        try {
          await vm.hv.virsh.destroy(host, { signal: run.signal });
        } finally {
          touched(vm.hv, host);
        }
      });
    },

    async undefine(run, vm) {
      const host = run.task.name;
      await act(run, 'undefine', vm.hv.name, `undefined domain ${host}`, async () => {
        try {
          await vm.hv.virsh.undefine(host, { signal: run.signal });
        } finally {
          touched(vm.hv, host);
        }
        seenOn.delete(host);
      });
    },
  };

  /** What the provider observes of a host's domain: the values of the paths it has authority over. */
  const observedOf = (vm: Vm): Attrs => {
    const hwspec = hwspecOf(hwspecs, vm.memoryMib, vm.vcpus);
    return {
      ...(hwspec === undefined ? {} : { hwspec }),
      power: vm.running ? 'on' : 'off',
      hypervisor: vm.hypervisor,
      ...(vm.mac === undefined ? {} : { interfaces: [{ name: iface, mac: vm.mac }] }),
    };
  };

  async function observe(ref: NodeRef, context: ProviderContext): Promise<Observation> {
    if (ref.kind !== 'host') return null;
    const { vm } = await locate(ref.name, seenOn.get(ref.name), context.signal);
    return vm === null ? null : observedOf(vm);
  }

  /**
   * Every domain on every configured hypervisor whose name is a node name, each with what observe would report:
   * read through the placement view (its trusted view, or one full read per hypervisor), never written.
   */
  async function discover(kind: string, context: ProviderContext): Promise<DiscoveredObject[]> {
    if (kind !== 'host') return [];
    const all = await Promise.all(
      options.hypervisors.map(async (hv) => ({
        hv,
        domains: await domainsOf(hv, undefined, context.signal),
      })),
    );
    const byHost = new Map<string, Vm[]>();
    for (const { hv, domains } of all) {
      for (const domain of domains) {
        // A node name is a lowercase DNS name; a domain named otherwise maps to no node.
        if (!isNodeName(domain.name)) continue;
        byHost.set(domain.name, [...(byHost.get(domain.name) ?? []), vmOf(hv, domain)]);
      }
    }
    const found: DiscoveredObject[] = [];
    for (const [host, vms] of [...byHost].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const vm = chosen(vms);
      if (vm === null) continue;
      seenOn.set(host, vm.hv.name);
      found.push({ name: host, attrs: observedOf(vm) });
    }
    return found;
  }

  return vmProvider(backend, {
    observe,
    discover,
    usage: async (name: string, signal: AbortSignal): Promise<HypervisorUsage | null> => {
      const hv = byName.get(name);
      if (hv === undefined) return null;
      return { name, capacity: hv.capacity, domains: await domainsOf(hv, name, signal) };
    },
    close: () => {
      for (const view of views.values()) view.events?.close();
      views.clear();
      for (const hv of options.hypervisors) {
        hv.virsh.close();
        hv.shell.close();
      }
    },
  });
}
