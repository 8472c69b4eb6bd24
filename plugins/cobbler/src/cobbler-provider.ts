/**
 * The `cobbler` provider: registers a host as a Cobbler system for PXE installation. It has authority over
 * `profile` and `netboot` and watches `hostname` and `interfaces`; once the host's interface has a MAC and an IP
 * it creates or updates the system (name = node name, MAC, IP, netmask, gateway, DNS name, profile) with netboot
 * enabled and reports `netboot: true`, which lets the hypervisor provider boot the machine. Every step reads
 * Cobbler first, so a task that runs again converges instead of duplicating the system.
 */
import type {
  AttributeClaim,
  ExplainOutcome,
  NodeProvider,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/plugin-api';
import type { CobblerClient, CobblerSystem } from './cobbler-client.js';
import { OutcomeBuilder, interfaceOf } from '@consortium/plugin-api';

/** The name of the Cobbler provider. */
export const COBBLER_PROVIDER = 'cobbler';

/** What the Cobbler provider claims on hosts. */
export const COBBLER_CLAIMS: readonly AttributeClaim[] = [
  {
    path: 'profile',
    schema: {
      type: 'string',
      minLength: 1,
      description: 'the Cobbler profile the host installs from over PXE',
    },
  },
  {
    path: 'netboot',
    schema: {
      type: 'boolean',
      description: 'whether the host installs over PXE when it next boots (Cobbler netboot_enabled)',
    },
  },
];

/** Settings of the Cobbler provider. */
export interface CobblerProviderOptions {
  /** The interface registered in Cobbler (its MAC and IP come from the node). */
  readonly interface: string;
  /** The profile of hosts that do not name one. */
  readonly defaultProfile: string;
  /** Run a full `cobbler sync` after every change. */
  readonly sync: boolean;
}

const WAIT_FOR_ADDRESSES = 'waiting for a MAC and an IP';

/** What the system should look like in Cobbler. */
interface DesiredSystem {
  readonly hostname: string;
  readonly profile: string;
  readonly netboot: boolean;
  readonly mac: string;
  readonly ip: string;
  readonly netmask: string | undefined;
  readonly gateway: string | undefined;
}

/** One difference between Cobbler and the desired system. */
interface Change {
  readonly field: string;
  readonly from: string;
  readonly to: string;
}

const onOff = (value: boolean): string => (value ? 'on' : 'off');

function describe(host: string, system: DesiredSystem): string {
  return `system ${host} (mac ${system.mac}, ip ${system.ip}, profile ${system.profile}, netboot ${onOff(system.netboot)})`;
}

/** What differs between the system in Cobbler and the desired one, field by field in Cobbler's names. */
function changesOf(existing: CobblerSystem, desired: DesiredSystem, iface: string): Change[] {
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
  const iface = options.interface;

  /** The interface fields `modify_interface` takes, for the whole desired interface or only what changed. */
  function interfaceFields(desired: DesiredSystem, changes?: readonly Change[]): Record<string, string> {
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

  /** Why Cobbler would refuse the desired system, checked before any write so that explain sees it too. */
  async function refusal(
    host: string,
    existing: CobblerSystem | null,
    desired: DesiredSystem,
    changes: readonly Change[] | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const changed = (field: string): boolean =>
      changes === undefined || changes.some((c) => c.field === field);
    if (changed('profile')) {
      const profiles = await client.profiles(signal);
      if (!profiles.includes(desired.profile)) {
        const known = profiles.length === 0 ? 'none' : profiles.sort().join(', ');
        return `Cobbler has no profile "${desired.profile}" (profiles: ${known})`;
      }
    }
    // Like Cobbler (allow_duplicate_macs/ips off), refuse a MAC or an IP another system already has. Values that
    // another provider fills in later (explain placeholders) cannot be checked yet.
    const checks: [string, string, string][] = [
      ['mac_address', `mac_address-${iface}`, desired.mac],
      ['ip_address', `ip_address-${iface}`, desired.ip],
    ];
    for (const [criterion, field, value] of checks) {
      if (!changed(field) || value.startsWith('<')) continue;
      const owners = (await client.findSystems({ [criterion]: value }, signal)).filter(
        (name) => name !== (existing?.name ?? host),
      );
      if (owners.length > 0) {
        const what = criterion === 'mac_address' ? 'MAC' : 'IP';
        return `${what} ${value} is already registered to Cobbler system ${owners.join(', ')}`;
      }
    }
    return undefined;
  }

  async function create(host: string, desired: DesiredSystem, signal: AbortSignal): Promise<void> {
    const handle = await client.newSystem(signal);
    await client.modifySystem(handle, 'name', host, signal);
    await client.modifySystem(handle, 'hostname', desired.hostname, signal);
    await client.modifySystem(handle, 'profile', desired.profile, signal);
    await client.modifySystem(handle, 'modify_interface', interfaceFields(desired), signal);
    if (desired.gateway !== undefined) await client.modifySystem(handle, 'gateway', desired.gateway, signal);
    await client.modifySystem(handle, 'netboot_enabled', desired.netboot, signal);
    await client.saveSystem(handle, 'new', signal);
  }

  async function update(
    host: string,
    desired: DesiredSystem,
    changes: readonly Change[],
    signal: AbortSignal,
  ): Promise<void> {
    // A handle from get_system_handle edits the live system; save_system (bypass) persists it and rewrites its
    // PXE files.
    const handle = await client.systemHandle(host, signal);
    const has = (field: string): boolean => changes.some((c) => c.field === field);
    if (has('hostname')) await client.modifySystem(handle, 'hostname', desired.hostname, signal);
    if (has('profile')) await client.modifySystem(handle, 'profile', desired.profile, signal);
    const fields = interfaceFields(desired, changes);
    if (Object.keys(fields).length > 0) await client.modifySystem(handle, 'modify_interface', fields, signal);
    if (has('gateway') && desired.gateway !== undefined) {
      await client.modifySystem(handle, 'gateway', desired.gateway, signal);
    }
    if (has('netboot_enabled')) await client.modifySystem(handle, 'netboot_enabled', desired.netboot, signal);
    await client.saveSystem(handle, 'bypass', signal);
  }

  async function decide(task: ProviderTask, context: ProviderContext, dry: boolean): Promise<ExplainOutcome> {
    const out = new OutcomeBuilder();
    const host = task.name;
    const target = `system/${host}`;
    const { signal } = context;
    const existing = await client.getSystem(host, signal);

    const syncAfter = async (): Promise<void> => {
      if (!options.sync) return;
      const started = context.now();
      if (!dry) await client.sync(signal);
      out.operations.push({
        action: 'sync',
        target: 'cobbler',
        detail: 'ran cobbler sync',
        durationMs: context.now() - started,
      });
    };

    if (task.node['present'] === undefined) {
      // The host is being deleted (every update of this task is a sync saying so): remove its system.
      if (existing !== null) {
        const started = context.now();
        if (!dry) await client.removeSystem(host, signal);
        out.operations.push({
          action: 'remove-system',
          target,
          detail: `removed system ${host}`,
          durationMs: context.now() - started,
        });
        await syncAfter();
      }
      for (const path of ['profile', 'netboot']) if (task.node[path] !== undefined) out.unset.push(path);
      out.accept(...task.updates);
      return out.build(dry);
    }

    const syncs: ProposedUpdate[] = [];
    let profileUpdate: ProposedUpdate | undefined;
    let netbootUpdate: ProposedUpdate | undefined;
    for (const update of task.updates) {
      if (update.op === 'sync') syncs.push(update);
      else if (update.path === 'profile') profileUpdate = update;
      else if (update.path === 'netboot') netbootUpdate = update;
      else out.reject(`cobbler does not provide ${update.path}`, update);
    }
    if (
      profileUpdate !== undefined &&
      (profileUpdate.op !== 'set' || typeof profileUpdate.value !== 'string')
    ) {
      out.reject('profile cannot be unset; set another profile', profileUpdate);
      return out.build(dry);
    }
    if (netbootUpdate !== undefined && netbootUpdate.op !== 'set' && netbootUpdate.op !== 'unset') {
      out.reject(`netboot takes set or unset, not ${netbootUpdate.op}`, netbootUpdate);
      return out.build(dry);
    }
    const nodeProfile = typeof task.node['profile'] === 'string' ? task.node['profile'] : undefined;
    const existingProfile = existing?.profile === '' ? undefined : existing?.profile;
    const profile =
      (profileUpdate?.value as string | undefined) ??
      nodeProfile ??
      existingProfile ??
      options.defaultProfile;
    const netboot =
      netbootUpdate === undefined ? (existing?.netbootEnabled ?? true) : netbootUpdate.value === true;

    // In explain, a value another provider fills in later stands as a placeholder naming that provider.
    const eth = interfaceOf(task.node, iface);
    const field = (name: string): string | undefined => {
      const value = eth?.[name];
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
      // sends a new sync. Only an explicit profile or netboot request has to wait for the system to exist.
      out.accept(...syncs);
      out.defer(WAIT_FOR_ADDRESSES, ['interfaces'], profileUpdate, netbootUpdate);
      return out.build(dry);
    }

    const desired: DesiredSystem = {
      hostname: typeof task.node['hostname'] === 'string' ? task.node['hostname'] : host,
      profile,
      netboot,
      mac: mac.toLowerCase(),
      ip,
      netmask: field('netmask'),
      gateway: field('gateway'),
    };
    const changes = existing === null ? undefined : changesOf(existing, desired, iface);
    if (changes === undefined || changes.length > 0) {
      const reason = await refusal(host, existing, desired, changes, signal);
      if (reason !== undefined) {
        out.reject(reason, ...all);
        return out.build(dry);
      }
      const started = context.now();
      if (changes === undefined) {
        if (!dry) await create(host, desired, signal);
        out.operations.push({
          action: 'add-system',
          target,
          detail: `registered ${describe(host, desired)}`,
          durationMs: context.now() - started,
        });
      } else {
        if (!dry) await update(host, desired, changes, signal);
        out.operations.push({
          action: 'edit-system',
          target,
          detail: `updated system ${host}: ${changes.map((c) => `${c.field} ${c.from} -> ${c.to}`).join(', ')}`,
          durationMs: context.now() - started,
        });
      }
      if (!dry) {
        context.logger.info(`${changes === undefined ? 'registered' : 'updated'} Cobbler system`, {
          system: host,
          profile,
          netboot,
        });
      }
      await syncAfter();
    }
    if (profileUpdate === undefined && nodeProfile !== profile) out.set['profile'] = profile;
    if (netbootUpdate === undefined && task.node['netboot'] !== netboot) out.set['netboot'] = netboot;
    out.accept(...all);
    return out.build(dry);
  }

  return {
    name: COBBLER_PROVIDER,
    kind: 'host',
    claims: COBBLER_CLAIMS,
    watches: ['interfaces', 'hostname'],
    apply: (task, context) => decide(task, context, false),
    explain: (task, context) => decide(task, context, true),
    observe: async (ref, context) => {
      if (ref.kind !== 'host') return null;
      const system = await client.getSystem(ref.name, context.signal);
      return system === null ? null : { profile: system.profile, netboot: system.netbootEnabled };
    },
  };
}
