/**
 * The decision of a PXE install provider, written once: Cobbler and the sandbox's simulated PXE service are two
 * `PxeBackend`s behind it. The provider has authority over `profile` and `netboot` and watches `hostname` and
 * `interfaces`; once the host's interface has a MAC and an IP it registers (or updates) a system with them and
 * reports `netboot`, which lets a hypervisor provider boot the machine; deleting the host removes the system. Every
 * task reads the backend first, so a task that runs again converges instead of writing again.
 */
import type {
  Attrs,
  DiscoveredObject,
  NodeProvider,
  ProposedUpdate,
  ProviderContext,
} from '@consortium/core';
import { interfaceOf, isNodeName } from '@consortium/core';
import { pxeHostClaims } from './host-attributes.js';
import type { TaskRun } from './task-run.js';
import { decisionProvider } from './task-run.js';

/** What a PXE backend holds for one host, as far as the decision needs it. */
export interface PxeSystemState {
  /** Undefined when the backend has none (Cobbler's empty string). */
  readonly profile: string | undefined;
  readonly netboot: boolean;
}

/** What the system of a host should look like. In explain, a value another provider fills in later is `<field from provider>`. */
export interface DesiredPxeSystem {
  readonly hostname: string;
  readonly profile: string;
  readonly netboot: boolean;
  readonly mac: string;
  readonly ip: string;
  readonly netmask: string | undefined;
  readonly gateway: string | undefined;
}

/** One difference between a backend's system and the desired one, in the backend's own field names. */
export interface PxeChange {
  readonly field: string;
  readonly from: string;
  readonly to: string;
}

/** A PXE service as the decision uses it: reads, the checks the service would make, and the writes. */
export interface PxeBackend<System extends PxeSystemState> {
  /** The provider's name, as in `cobbler does not provide ...`. */
  readonly provider: string;
  /** The interface registered (its MAC and IP come from the node). */
  readonly interface: string;
  /** The profile of hosts that do not name one. */
  readonly defaultProfile: string;
  /** A label prefixed to claim descriptions (the sandbox's `[simulated]`). */
  readonly label?: string;
  /** The system of `host`, or null. */
  get(host: string, signal: AbortSignal): Promise<System | null>;
  /** Every system the service holds, by name, read only (for discovery); a backend without it discovers nothing. */
  list?(signal: AbortSignal): Promise<ReadonlyMap<string, System>>;
  /** What differs between the system and `desired`; empty when they agree. */
  changes(existing: System, desired: DesiredPxeSystem): readonly PxeChange[];
  /** Why the service would refuse `desired` (`changes` undefined: a new system), checked before any write. */
  refusal(
    host: string,
    existing: System | null,
    desired: DesiredPxeSystem,
    changes: readonly PxeChange[] | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined>;
  /** Registers a new system, through `run.operation`. */
  create(run: TaskRun, host: string, desired: DesiredPxeSystem): Promise<void>;
  /** Applies `changes` to the existing system, through `run.operation`. */
  update(run: TaskRun, host: string, desired: DesiredPxeSystem, changes: readonly PxeChange[]): Promise<void>;
  /** Removes the system, through `run.operation`. */
  remove(run: TaskRun, host: string): Promise<void>;
}

const WAIT_FOR_ADDRESSES = 'waiting for a MAC and an IP';

/** `mac 52:54:00:.., ip 10.1.2.4, profile debian-12, netboot on`, for operation details. */
export function describePxeSystem(system: DesiredPxeSystem): string {
  return `mac ${system.mac}, ip ${system.ip}, profile ${system.profile}, netboot ${system.netboot ? 'on' : 'off'}`;
}

/** Answers one task of a PXE provider over `backend`. */
async function decidePxe<System extends PxeSystemState>(
  backend: PxeBackend<System>,
  run: TaskRun,
): Promise<void> {
  const { task, out, signal } = run;
  const host = task.name;
  const existing = await backend.get(host, signal);

  if (task.node['present'] === undefined) {
    // The host is being deleted (every update of this task is a sync saying so): remove its system.
    if (existing !== null) await backend.remove(run, host);
    for (const path of ['profile', 'netboot']) if (task.node[path] !== undefined) out.unset.push(path);
    out.accept(...task.updates);
    return;
  }

  const syncs: ProposedUpdate[] = [];
  let profileUpdate: ProposedUpdate | undefined;
  let netbootUpdate: ProposedUpdate | undefined;
  for (const update of task.updates) {
    if (update.op === 'sync') syncs.push(update);
    else if (update.path === 'profile') profileUpdate = update;
    else if (update.path === 'netboot') netbootUpdate = update;
    else out.reject(`${backend.provider} does not provide ${update.path}`, update);
  }
  if (
    profileUpdate !== undefined &&
    (profileUpdate.op !== 'set' || typeof profileUpdate.value !== 'string')
  ) {
    out.reject('profile cannot be unset; set another profile', profileUpdate);
    return;
  }
  if (netbootUpdate !== undefined && netbootUpdate.op !== 'set' && netbootUpdate.op !== 'unset') {
    out.reject(`netboot takes set or unset, not ${netbootUpdate.op}`, netbootUpdate);
    return;
  }
  const nodeProfile = typeof task.node['profile'] === 'string' ? task.node['profile'] : undefined;
  const profile =
    (profileUpdate?.value as string | undefined) ??
    nodeProfile ??
    existing?.profile ??
    backend.defaultProfile;
  const netboot = netbootUpdate === undefined ? (existing?.netboot ?? true) : netbootUpdate.value === true;

  // In explain, a value another provider fills in later stands as a placeholder naming that provider.
  const iface = backend.interface;
  const item = interfaceOf(task.node, iface);
  const field = (name: string): string | undefined => {
    const value = item?.[name];
    if (typeof value === 'string') return value;
    const from = task.later?.[`interfaces[${iface}].${name}`];
    return from === undefined ? undefined : `<${name} from ${from}>`;
  };
  const mac = field('mac');
  const ip = field('ip');
  const all = [...syncs, profileUpdate, netbootUpdate];
  if (mac === undefined || ip === undefined) {
    if (existing === null && !netboot && syncs.length === 0 && profileUpdate === undefined) {
      // Turning netboot off for a host that was never registered: nothing to do.
      out.accept(netbootUpdate);
    }
    // A watched change without both addresses leaves nothing to register yet; the change that completes them
    // sends a new sync. An explicit profile or netboot request has to wait for the system to exist, and so does a
    // nudge (a sync of profile or netboot: another provider waits for them), naming the address that is missing so
    // that a job which never gets it fails saying so.
    const nudges = syncs.filter((update) => update.path === 'profile' || update.path === 'netboot');
    out.accept(...syncs.filter((update) => !nudges.includes(update)));
    const missing = [
      ...(mac === undefined ? [`interfaces[${iface}].mac`] : []),
      ...(ip === undefined ? [`interfaces[${iface}].ip`] : []),
    ];
    out.defer(WAIT_FOR_ADDRESSES, ['interfaces'], profileUpdate, netbootUpdate);
    out.defer(WAIT_FOR_ADDRESSES, missing, ...nudges);
    return;
  }

  const desired: DesiredPxeSystem = {
    hostname: typeof task.node['hostname'] === 'string' ? task.node['hostname'] : host,
    profile,
    netboot,
    mac: mac.toLowerCase(),
    ip,
    netmask: field('netmask'),
    gateway: field('gateway'),
  };
  const changes = existing === null ? undefined : backend.changes(existing, desired);
  if (changes === undefined || changes.length > 0) {
    const reason = await backend.refusal(host, existing, desired, changes, signal);
    if (reason !== undefined) {
      out.reject(reason, ...all);
      return;
    }
    if (changes === undefined) await backend.create(run, host, desired);
    else await backend.update(run, host, desired, changes);
  }
  if (profileUpdate === undefined && nodeProfile !== profile) out.set['profile'] = profile;
  if (netbootUpdate === undefined && task.node['netboot'] !== netboot) out.set['netboot'] = netboot;
  out.accept(...all);
}

/** What a PXE provider observes of a system: the values of the paths it provides. */
function observedOf(system: PxeSystemState): Attrs {
  return {
    ...(system.profile === undefined ? {} : { profile: system.profile }),
    netboot: system.netboot,
  };
}

/** A PXE provider for hosts over `backend`: claims `profile` and `netboot`, watches `interfaces` and `hostname`. */
export function pxeProvider<System extends PxeSystemState>(backend: PxeBackend<System>): NodeProvider {
  return decisionProvider(
    {
      name: backend.provider,
      kind: 'host',
      claims: pxeHostClaims(backend.label),
      watches: ['interfaces', 'hostname'],
      observe: async (ref, context) => {
        if (ref.kind !== 'host') return null;
        const system = await backend.get(ref.name, context.signal);
        return system === null ? null : observedOf(system);
      },
      ...(backend.list === undefined
        ? {}
        : {
            discover: async (kind: string, context: ProviderContext): Promise<DiscoveredObject[]> => {
              if (kind !== 'host' || backend.list === undefined) return [];
              const systems = await backend.list(context.signal);
              // A node name is a lowercase DNS name; a system named otherwise maps to no node.
              return [...systems]
                .filter(([name]) => isNodeName(name))
                .map(([name, system]) => ({ name, attrs: observedOf(system) }));
            },
          }),
    },
    (run) => decidePxe(backend, run),
  );
}
