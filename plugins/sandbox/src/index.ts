/**
 * @consortium/plugin-sandbox: a SIMULATED hypervisor (`sandbox-vm`) and PXE service (`sandbox-pxe`), kept in
 * memory, so that `consortium dev` shows the whole provisioning flow on a machine with nothing installed
 * (DESIGN.md §6). Every operation it reports says `[simulated]`; no real machine is touched.
 */
import type { JsonSchema, SeedNode } from '@consortium/plugin-api';
import { definePlugin, HYPERVISOR_KIND, hypervisorCapacityProvider } from '@consortium/plugin-api';
import { pxeProvider } from './pxe-provider.js';
import type { SimulatedCapacity } from './simulation.js';
import { SandboxWorld } from './simulation.js';
import { SANDBOX_VM_PROVIDER, vmProvider } from './vm-provider.js';

export type { PxeProviderOptions } from './pxe-provider.js';
export { pxeProvider, SANDBOX_PXE_CLAIMS, SANDBOX_PXE_PROVIDER } from './pxe-provider.js';
export type { Hwspec, SimulatedCapacity, SimulatedSystem, SimulatedVm } from './simulation.js';
export { HWSPECS, SandboxWorld } from './simulation.js';
export type { VmProviderOptions } from './vm-provider.js';
export { SANDBOX_VM_CLAIMS, SANDBOX_VM_PROVIDER, vmProvider } from './vm-provider.js';

/** The sandbox plugin's config; every field has a default. */
export interface SandboxConfig {
  /** Names of the simulated hypervisors, in order of preference on ties (default sandbox-hv-1 and sandbox-hv-2). */
  readonly hypervisors?: readonly string[];
  /** What each simulated hypervisor can give to VMs (default 16 vcpus, 32768 MiB). */
  readonly capacity?: { readonly vcpus: number; readonly memory_mib: number };
  /** How long each simulated operation takes, in milliseconds (default 300). */
  readonly delayMs?: number;
  /** The PXE profile of hosts that do not name one (default sandbox-debian-12). */
  readonly profile?: string;
  /** The one interface of a simulated VM (default eth0). */
  readonly interface?: string;
}

/** The defaults of the config. */
export const SANDBOX_DEFAULTS = {
  hypervisors: ['sandbox-hv-1', 'sandbox-hv-2'],
  capacity: { vcpus: 16, memory_mib: 32768 },
  delayMs: 300,
  profile: 'sandbox-debian-12',
  interface: 'eth0',
} as const;

const configSchema: JsonSchema = {
  type: 'object',
  description:
    'SIMULATION ONLY: an in-memory hypervisor and PXE service for trying Consortium with nothing installed. ' +
    'No real VM or PXE system is created; state is lost when the process exits.',
  properties: {
    hypervisors: {
      type: 'array',
      description: 'names of the simulated hypervisors',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      uniqueItems: true,
      default: [...SANDBOX_DEFAULTS.hypervisors],
    },
    capacity: {
      type: 'object',
      description: 'what each simulated hypervisor can give to VMs',
      properties: {
        vcpus: { type: 'integer', minimum: 1 },
        memory_mib: { type: 'integer', minimum: 1 },
      },
      required: ['vcpus', 'memory_mib'],
      additionalProperties: false,
      default: { ...SANDBOX_DEFAULTS.capacity },
    },
    delayMs: {
      type: 'integer',
      minimum: 0,
      description: 'how long each simulated operation takes, in milliseconds',
      default: SANDBOX_DEFAULTS.delayMs,
    },
    profile: {
      type: 'string',
      minLength: 1,
      description: 'the simulated PXE profile of hosts that do not name one',
      default: SANDBOX_DEFAULTS.profile,
    },
    interface: {
      type: 'string',
      pattern: '^[a-z0-9]+$',
      description: 'the one interface of a simulated VM',
      default: SANDBOX_DEFAULTS.interface,
    },
  },
  additionalProperties: false,
};

/**
 * The sandbox plugin. Each call of `providers` makes one simulated world shared by its two providers, so a
 * process that loads the plugin once has one simulation.
 */
export const plugin = definePlugin<SandboxConfig>({
  id: 'sandbox',
  configSchema,
  kinds: [HYPERVISOR_KIND],
  // Each simulated hypervisor is a `hypervisor` node, so `consort list hypervisor` shows them and their capacity.
  seeds: (config): SeedNode[] =>
    (config.hypervisors ?? SANDBOX_DEFAULTS.hypervisors).map((name) => ({
      kind: 'hypervisor',
      name,
      attrs: { description: '[simulated] a sandbox hypervisor (no real machine)', schedulable: true },
    })),
  providers: (config) => {
    const capacity = config.capacity ?? SANDBOX_DEFAULTS.capacity;
    const each: SimulatedCapacity = { vcpus: capacity.vcpus, memoryMib: capacity.memory_mib };
    const world = new SandboxWorld(
      new Map((config.hypervisors ?? SANDBOX_DEFAULTS.hypervisors).map((name) => [name, each])),
    );
    const delayMs = config.delayMs ?? SANDBOX_DEFAULTS.delayMs;
    const iface = config.interface ?? SANDBOX_DEFAULTS.interface;
    return [
      vmProvider(world, { delayMs, interface: iface }),
      pxeProvider(world, { delayMs, interface: iface, profile: config.profile ?? SANDBOX_DEFAULTS.profile }),
      hypervisorCapacityProvider({
        provider: SANDBOX_VM_PROVIDER,
        label: '[simulated]',
        usage: (name) => {
          world.reach();
          const usage = world.usages().find((u) => u.name === name);
          return Promise.resolve(usage === undefined ? null : { usage });
        },
      }),
    ];
  },
});
