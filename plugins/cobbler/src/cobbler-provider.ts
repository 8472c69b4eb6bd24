/**
 * The `cobbler` provider: registers a host as a Cobbler system for PXE installation. It has authority over
 * `profile` and `netboot` and watches `hostname` and `interfaces`; once the host's interface has a MAC and an IP
 * it creates or updates the system (name = node name, MAC, IP, netmask, gateway, DNS name, profile) with netboot
 * enabled and reports `netboot: true`, which lets the hypervisor provider boot the machine. The decision is the
 * plugin API's `pxeProvider`; this file is the Cobbler backend behind it: reads, Cobbler's own refusals, and the
 * XML-RPC writes. Every step reads Cobbler first, so a task that runs again converges instead of duplicating the
 * system; except that a read of a system this provider edited through a handle and did not manage to save is not
 * trusted (cobblerd answers reads from memory, unsaved edits included), so the next task writes it again and saves.
 */
import type {
  AttributeClaim,
  DesiredPxeSystem,
  NodeProvider,
  PxeBackend,
  PxeChange,
  PxeSystemState,
  TaskRun,
} from '@consortium/plugin-api';
import { describePxeSystem, pxeHostClaims, pxeProvider } from '@consortium/plugin-api';
import type { CobblerClient, CobblerSystem } from './cobbler-client.js';

/** The name of the Cobbler provider. */
export const COBBLER_PROVIDER = 'cobbler';

/** What the Cobbler provider claims on hosts: the plugin API's standard PXE claims. */
export const COBBLER_CLAIMS: readonly AttributeClaim[] = pxeHostClaims();

/**
 * When to run a full `cobbler sync` after a change. Saving a system rewrites its own PXE files but never deletes
 * the `pxelinux.cfg/01-<mac>` file of a MAC it no longer has; only a full sync does (and restarts the DHCP and DNS
 * services Cobbler manages). `never`: not at all; `mac-change`: after a change of MAC (and after a rewrite of
 * unsaved edits, which may have changed it); `always`: after every change.
 */
export type SyncPolicy = 'never' | 'mac-change' | 'always';

/** Settings of the Cobbler provider. */
export interface CobblerProviderOptions {
  /** The interface registered in Cobbler (its MAC and IP come from the node). */
  readonly interface: string;
  /** The profile of hosts that do not name one. */
  readonly defaultProfile: string;
  /** When to run a full `cobbler sync`. */
  readonly sync: SyncPolicy;
}

/** A Cobbler system as the PXE decision reads it. */
interface CobblerState extends PxeSystemState {
  readonly system: CobblerSystem;
  /** This provider edited the live system through a handle and its save did not go through. */
  readonly unsaved: boolean;
  /** Why a full sync this system's change needed has not run yet (it failed), if one has not. */
  readonly syncPending: string | undefined;
}

/** The change that stands for unsaved handle edits: every field is written again, then saved. */
const UNSAVED: PxeChange = {
  field: 'save_system',
  from: 'pending (an earlier update stopped before it)',
  to: 'rewrite and save',
};

/** The change that stands for a full sync that failed after this system's change: it runs again. */
const SYNC_PENDING: PxeChange = {
  field: 'sync',
  from: 'failed after the last change',
  to: 'run again',
};

const onOff = (value: boolean): string => (value ? 'on' : 'off');

/** What differs between the system in Cobbler and the desired one, field by field in Cobbler's names. */
function changesOf(existing: CobblerSystem, desired: DesiredPxeSystem, iface: string): PxeChange[] {
  const current = existing.interfaces[iface];
  const pairs: [string, string, string | undefined][] = [
    ['profile', existing.profile, desired.profile],
    ['hostname', existing.hostname, desired.hostname],
    ['netboot_enabled', onOff(existing.netbootEnabled), onOff(desired.netboot)],
    ['gateway', existing.gateway, desired.gateway],
    [`mac_address-${iface}`, current?.macAddress ?? '', desired.mac],
    [`ip_address-${iface}`, current?.ipAddress ?? '', desired.ip],
    [`netmask-${iface}`, current?.netmask ?? '', desired.netmask],
    [`dns_name-${iface}`, current?.dnsName ?? '', desired.hostname],
  ];
  return pairs
    .filter((pair): pair is [string, string, string] => pair[2] !== undefined && pair[1] !== pair[2])
    .map(([field, from, to]) => ({ field, from: from === '' ? '(none)' : from, to }));
}

/** Makes the Cobbler provider over a client. */
export function cobblerProvider(client: CobblerClient, options: CobblerProviderOptions): NodeProvider {
  return pxeProvider(cobblerBackend(client, options));
}

/** Cobbler as a PXE backend: XML-RPC reads and writes, and the checks Cobbler itself would make. */
function cobblerBackend(client: CobblerClient, options: CobblerProviderOptions): PxeBackend<CobblerState> {
  const iface = options.interface;
  /**
   * Systems edited through a handle whose `save_system` has not succeeded. A handle edits cobblerd's live object,
   * so a failure between the first `modify_system` and the save leaves edits that every read shows (or, after
   * `modify_interface` alone, hides behind the dict cache) but that are not on disk, in the PXE files or kept
   * over a cobblerd restart. The mark lives as long as this provider (one Consortium process).
   */
  const unsaved = new Set<string>();
  /**
   * Systems whose change needed a full sync (`mac-change` policy: to delete an old MAC's PXE file) that failed,
   * with why it was needed. Saving succeeded, so the next read converges; without this the sync would never run.
   * Any successful sync clears them all (a sync is global).
   */
  const syncPending = new Map<string, string>();

  /** The interface fields `modify_interface` takes, for the whole desired interface or only what changed. */
  function interfaceFields(
    desired: DesiredPxeSystem,
    changes?: readonly PxeChange[],
  ): Record<string, string> {
    const all: Record<string, string | undefined> = {
      [`mac_address-${iface}`]: desired.mac,
      [`ip_address-${iface}`]: desired.ip,
      [`netmask-${iface}`]: desired.netmask,
      [`dns_name-${iface}`]: desired.hostname,
    };
    const fields: Record<string, string> = {};
    for (const [key, value] of Object.entries(all)) {
      if (value !== undefined && (changes === undefined || changes.some((c) => c.field === key)))
        fields[key] = value;
    }
    return fields;
  }

  /**
   * Runs a full `cobbler sync` after a change when the policy asks for it; `staleFile` says why a PXE file may be
   * left behind by this change (undefined: none can be).
   */
  async function syncAfter(run: TaskRun, host: string, staleFile: string | undefined): Promise<void> {
    if (options.sync === 'never' || (options.sync === 'mac-change' && staleFile === undefined)) return;
    const why = options.sync === 'always' ? 'after every change' : `to delete the PXE file of ${staleFile}`;
    await run.operation({ action: 'sync', target: 'cobbler' }, `ran cobbler sync ${why}`, async () => {
      // Marked before, cleared after: a sync that fails is remembered (explain runs none of this).
      if (staleFile !== undefined) syncPending.set(host, staleFile);
      await client.sync(run.signal);
      syncPending.clear();
    });
  }

  const stateOf = (system: CobblerSystem): CobblerState => ({
    system,
    profile: system.profile === '' ? undefined : system.profile,
    netboot: system.netbootEnabled,
    unsaved: unsaved.has(system.name),
    syncPending: syncPending.get(system.name),
  });

  return {
    provider: COBBLER_PROVIDER,
    interface: iface,
    defaultProfile: options.defaultProfile,

    async get(host, signal) {
      const system = await client.getSystem(host, signal);
      return system === null ? null : stateOf(system);
    },

    async list(signal) {
      // One get_systems call: read only, no token, no write (discovery must leave Cobbler as it is).
      const systems = await client.systems(signal);
      return new Map(systems.map((system) => [system.name, stateOf(system)]));
    },

    changes: (existing, desired) => {
      const changes = changesOf(existing.system, desired, iface);
      if (existing.unsaved) return [UNSAVED, ...changes];
      return existing.syncPending === undefined ? changes : [...changes, SYNC_PENDING];
    },

    /** Why Cobbler would refuse the desired system, checked before any write so that explain sees it too. */
    async refusal(host, existing, desired, changes, signal) {
      const changed = (field: string): boolean =>
        changes === undefined || changes.some((c) => c.field === field);
      if (changed('profile')) {
        const profiles = await client.profiles(signal);
        if (!profiles.includes(desired.profile)) {
          const known = profiles.length === 0 ? 'none' : profiles.sort().join(', ');
          return `Cobbler has no profile "${desired.profile}" (profiles: ${known})`;
        }
      }
      // Like Cobbler (allow_duplicate_macs/ips/hostnames off), refuse a MAC, an IP or a DNS name another system
      // already has; find_system looks these up exactly in Cobbler's indexes. Values that another provider fills in
      // later (explain placeholders) cannot be checked yet.
      const checks: [string, string, string, string][] = [
        ['mac_address', `mac_address-${iface}`, desired.mac, 'MAC'],
        ['ip_address', `ip_address-${iface}`, desired.ip, 'IP'],
        ['dns_name', `dns_name-${iface}`, desired.hostname, 'DNS name'],
      ];
      for (const [criterion, field, value, what] of checks) {
        if (!changed(field) || value.startsWith('<')) continue;
        const owners = (await client.findSystems({ [criterion]: value }, signal)).filter(
          (name) => name !== (existing?.system.name ?? host),
        );
        if (owners.length > 0) {
          return `${what} ${value} is already registered to Cobbler system ${owners.join(', ')}`;
        }
      }
      return undefined;
    },

    async create(run, host, desired) {
      const { signal } = run;
      await run.operation(
        { action: 'add-system', target: `system/${host}` },
        `registered system ${host} (${describePxeSystem(desired)})`,
        async () => {
          const handle = await client.newSystem(signal);
          await client.modifySystem(handle, 'name', host, signal);
          await client.modifySystem(handle, 'hostname', desired.hostname, signal);
          await client.modifySystem(handle, 'profile', desired.profile, signal);
          await client.modifySystem(handle, 'modify_interface', interfaceFields(desired), signal);
          if (desired.gateway !== undefined)
            await client.modifySystem(handle, 'gateway', desired.gateway, signal);
          await client.modifySystem(handle, 'netboot_enabled', desired.netboot, signal);
          await client.saveSystem(handle, 'new', signal);
          run.logger.info('registered Cobbler system', {
            system: host,
            profile: desired.profile,
            netboot: desired.netboot,
          });
        },
      );
      await syncAfter(run, host, undefined);
    },

    async update(run, host, desired, changes) {
      const { signal } = run;
      const pending = changes.includes(SYNC_PENDING) ? syncPending.get(host) : undefined;
      if (changes.length === 1 && pending !== undefined) {
        // Only the sync is left to do: the system itself is saved.
        await syncAfter(run, host, pending);
        return;
      }
      await run.operation(
        { action: 'edit-system', target: `system/${host}` },
        `updated system ${host}: ${changes
          .filter((c) => c !== SYNC_PENDING)
          .map((c) => `${c.field} ${c.from} -> ${c.to}`)
          .join(', ')}`,
        async () => {
          // A handle from get_system_handle edits the live system; save_system (bypass) persists it and rewrites
          // its PXE files. Until the save succeeds the system is marked unsaved, and while it is, every field is
          // written again: the read it was compared with may show edits that never reached the disk.
          const handle = await client.systemHandle(host, signal);
          const rewrite = changes.includes(UNSAVED);
          const has = (field: string): boolean => rewrite || changes.some((c) => c.field === field);
          unsaved.add(host);
          if (has('hostname')) await client.modifySystem(handle, 'hostname', desired.hostname, signal);
          if (has('profile')) await client.modifySystem(handle, 'profile', desired.profile, signal);
          const fields = interfaceFields(desired, rewrite ? undefined : changes);
          if (Object.keys(fields).length > 0)
            await client.modifySystem(handle, 'modify_interface', fields, signal);
          if (has('gateway') && desired.gateway !== undefined) {
            await client.modifySystem(handle, 'gateway', desired.gateway, signal);
          }
          if (has('netboot_enabled'))
            await client.modifySystem(handle, 'netboot_enabled', desired.netboot, signal);
          await client.saveSystem(handle, 'bypass', signal);
          unsaved.delete(host);
          run.logger.info('updated Cobbler system', {
            system: host,
            profile: desired.profile,
            netboot: desired.netboot,
          });
        },
      );
      const macChange = changes.some((c) => c.field === `mac_address-${iface}`);
      await syncAfter(
        run,
        host,
        macChange
          ? 'the old MAC'
          : changes.includes(UNSAVED)
            ? 'a MAC the unsaved edits may have changed'
            : pending,
      );
    },

    async remove(run, host) {
      await run.operation(
        { action: 'remove-system', target: `system/${host}` },
        `removed system ${host}`,
        () => client.removeSystem(host, run.signal),
      );
      unsaved.delete(host);
      // Removing deletes the files of the system's current MACs, so it leaves none behind; a sync an earlier
      // change of this system still needs runs now.
      await syncAfter(run, host, syncPending.get(host));
    },
  };
}
