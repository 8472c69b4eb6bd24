/**
 * SIMULATION. `sandbox-pxe`: a simulated PXE install service for hosts, a `PxeBackend` in memory behind the plugin
 * API's PXE decision (the same one Cobbler's provider runs). Once the host's interface has a MAC and an IP it
 * registers a simulated system with them and reports `netboot: true`, which lets `sandbox-vm` boot the VM.
 */
import type {
  AttributeClaim,
  DesiredPxeSystem,
  NodeProvider,
  PxeBackend,
  TaskRun,
} from '@consortium/plugin-api';
import {
  ConflictError,
  describePxeSystem,
  pxeHostClaims,
  pxeProvider as pxeDecision,
} from '@consortium/plugin-api';
import type { SandboxWorld, SimulatedSystem } from './simulation.js';
import { simulatedDelay } from './simulation.js';

/** The name of the simulated PXE provider. */
export const SANDBOX_PXE_PROVIDER = 'sandbox-pxe';

/** What every simulated claim and operation says first. */
export const SIMULATED = '[simulated]';

/** What `sandbox-pxe` claims on hosts: the plugin API's standard PXE claims, labelled as simulated. */
export const SANDBOX_PXE_CLAIMS: readonly AttributeClaim[] = pxeHostClaims(SIMULATED);

/** Settings of the simulated PXE provider. */
export interface PxeProviderOptions {
  readonly delayMs: number;
  readonly interface: string;
  /** The profile of hosts that do not name one. */
  readonly profile: string;
}

/** The simulated PXE service of a sandbox world, as a PXE backend. */
function sandboxPxeBackend(world: SandboxWorld, options: PxeProviderOptions): PxeBackend<SimulatedSystem> {
  return {
    provider: SANDBOX_PXE_PROVIDER,
    interface: options.interface,
    defaultProfile: options.profile,
    label: SIMULATED,
    get: (host) => {
      world.reach();
      return Promise.resolve(world.systems.get(host) ?? null);
    },
    changes: (existing, desired) =>
      (['hostname', 'mac', 'ip', 'profile', 'netboot'] as const)
        .filter((field) => existing[field] !== desired[field])
        .map((field) => ({ field, from: String(existing[field]), to: String(desired[field]) })),
    refusal: (host, _existing, desired) => {
      // Like Cobbler, refuse a MAC or an IP that another system already has.
      const clash = world.clash(host, desired.mac, desired.ip);
      return Promise.resolve(clash === undefined ? undefined : `${SIMULATED} ${clash}`);
    },
    create: (run, host, desired) => register(run, host, desired, 'add-system', 'registered'),
    update: (run, host, desired) => register(run, host, desired, 'edit-system', 'updated'),
    async remove(run, host) {
      await run.operation(
        { action: 'remove-system', target: `system/${host}` },
        `${SIMULATED} removed system ${host}`,
        async () => {
          world.systems.delete(host);
          await simulatedDelay(options.delayMs, run.signal);
        },
      );
    },
  };

  async function register(
    run: TaskRun,
    host: string,
    desired: DesiredPxeSystem,
    action: string,
    verb: string,
  ): Promise<void> {
    const { hostname, mac, ip, profile, netboot } = desired;
    await run.operation(
      { action, target: `system/${host}` },
      `${SIMULATED} ${verb} system ${host} (${describePxeSystem(desired)})`,
      async () => {
        // Checked again and registered before any await, so two hosts racing for one MAC cannot both have it.
        const clash = world.clash(host, mac, ip);
        if (clash !== undefined) throw new ConflictError(`${SIMULATED} ${clash}`);
        world.systems.set(host, { host, hostname, mac, ip, profile, netboot });
        await simulatedDelay(options.delayMs, run.signal);
      },
    );
  }
}

/** Makes the simulated PXE provider over a sandbox world. */
export function pxeProvider(world: SandboxWorld, options: PxeProviderOptions): NodeProvider {
  return pxeDecision(sandboxPxeBackend(world, options));
}
