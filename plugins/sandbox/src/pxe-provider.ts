/**
 * SIMULATION. `sandbox-pxe`: a simulated PXE install service for hosts. It watches `interfaces` and `hostname`;
 * once the host's interface has a MAC and an IP it registers a simulated system with them and reports
 * `netboot: true`, which lets `sandbox-vm` boot the VM. State lives in memory only.
 */
import type {
  AttributeClaim,
  ExplainOutcome,
  NodeProvider,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/plugin-api';
import { OutcomeBuilder, interfaceOf } from '@consortium/plugin-api';
import type { SandboxWorld, SimulatedSystem } from './simulation.js';
import { simulatedDelay } from './simulation.js';

/** The name of the simulated PXE provider. */
export const SANDBOX_PXE_PROVIDER = 'sandbox-pxe';

/** What `sandbox-pxe` claims on hosts, and what it watches. */
export const SANDBOX_PXE_CLAIMS: readonly AttributeClaim[] = [
  {
    path: 'profile',
    schema: { type: 'string', minLength: 1, description: '[simulated] the PXE install profile' },
  },
  {
    path: 'netboot',
    schema: { type: 'boolean', description: '[simulated] whether the host installs over PXE on boot' },
  },
];

/** Settings of the simulated PXE provider. */
export interface PxeProviderOptions {
  readonly delayMs: number;
  readonly interface: string;
  /** The profile of hosts that do not name one. */
  readonly profile: string;
}

const WAIT_FOR_ADDRESSES = 'waiting for a MAC and an IP';

const describeSystem = (system: SimulatedSystem): string =>
  `mac ${system.mac}, ip ${system.ip}, profile ${system.profile}, netboot ${system.netboot ? 'on' : 'off'}`;

/** Makes the simulated PXE provider over a sandbox world. */
export function pxeProvider(world: SandboxWorld, options: PxeProviderOptions): NodeProvider {
  async function decide(task: ProviderTask, context: ProviderContext, dry: boolean): Promise<ExplainOutcome> {
    const out = new OutcomeBuilder();
    const host = task.name;
    const existing = world.systems.get(host);
    const target = `system/${host}`;
    const started = context.now();
    const work = async (): Promise<number> => {
      if (!dry) await simulatedDelay(options.delayMs, context.signal);
      return context.now() - started;
    };

    if (task.node['present'] === undefined) {
      // The host is being deleted (every sync of this task says so): remove its system.
      if (existing !== undefined) {
        if (!dry) world.systems.delete(host);
        const durationMs = await work();
        out.operations.push({
          action: 'remove-system',
          target,
          detail: `[simulated] removed system ${host}`,
          durationMs,
        });
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
      else out.reject(`sandbox-pxe does not provide ${update.path}`, update);
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
    const profile =
      (profileUpdate?.value as string | undefined) ?? nodeProfile ?? existing?.profile ?? options.profile;
    const netboot = netbootUpdate === undefined ? (existing?.netboot ?? true) : netbootUpdate.value === true;

    // In explain, a value another provider fills in later stands as a placeholder naming that provider.
    const eth0 = interfaceOf(task.node, options.interface);
    const field = (name: string): string | undefined => {
      const value = eth0?.[name];
      if (typeof value === 'string') return value;
      const from = task.later?.[`interfaces[${options.interface}].${name}`];
      return from === undefined ? undefined : `<${name} from ${from}>`;
    };
    const mac = field('mac');
    const ip = field('ip');
    const all = [...syncs, profileUpdate, netbootUpdate];
    if (mac === undefined || ip === undefined) {
      if (existing === undefined && !netboot && syncs.length === 0 && profileUpdate === undefined) {
        // Turning netboot off for a host that was never registered: nothing to do.
        out.accept(netbootUpdate);
      }
      // A watched change without both addresses leaves nothing to register yet; the change that completes them
      // sends a new sync. Only an explicit profile or netboot request has to wait for the system to exist.
      out.accept(...syncs);
      out.defer(WAIT_FOR_ADDRESSES, ['interfaces'], profileUpdate, netbootUpdate);
      return out.build(dry);
    }

    const hostname = typeof task.node['hostname'] === 'string' ? task.node['hostname'] : host;
    const system: SimulatedSystem = { host, hostname, mac, ip, profile, netboot };
    const unchanged =
      existing !== undefined &&
      existing.hostname === hostname &&
      existing.mac === mac &&
      existing.ip === ip &&
      existing.profile === profile &&
      existing.netboot === netboot;
    if (!unchanged) {
      // Like Cobbler, refuse a MAC or an IP that another system already has.
      const clash = [...world.systems.values()].find(
        (s) => s.host !== host && (s.mac === mac || s.ip === ip),
      );
      if (clash !== undefined) {
        const what = clash.mac === mac ? `MAC ${mac}` : `IP ${ip}`;
        out.reject(`[simulated] ${what} is already registered to system ${clash.host}`, ...all);
        return out.build(dry);
      }
      // Registered before any await, so two hosts racing for one MAC cannot both pass the check.
      if (!dry) world.systems.set(host, system);
      const durationMs = await work();
      const registered = existing === undefined;
      out.operations.push({
        action: registered ? 'add-system' : 'edit-system',
        target,
        detail: `[simulated] ${registered ? 'registered' : 'updated'} system ${host} (${describeSystem(system)})`,
        durationMs,
      });
    }
    if (profileUpdate === undefined && nodeProfile !== profile) out.set['profile'] = profile;
    if (netbootUpdate === undefined && task.node['netboot'] !== netboot) out.set['netboot'] = netboot;
    out.accept(...all);
    return out.build(dry);
  }

  return {
    name: SANDBOX_PXE_PROVIDER,
    kind: 'host',
    claims: SANDBOX_PXE_CLAIMS,
    watches: ['interfaces', 'hostname'],
    apply: (task, context) => decide(task, context, false),
    explain: (task, context) => decide(task, context, true),
    observe: (ref) => {
      const system = ref.kind === 'host' ? world.systems.get(ref.name) : undefined;
      return Promise.resolve(
        system === undefined ? null : { profile: system.profile, netboot: system.netboot },
      );
    },
  };
}
