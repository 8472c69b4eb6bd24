/**
 * @consortium/plugin-libvirt: VMs for hosts on libvirt hypervisors, with `virsh` over SSH (DESIGN.md §6). One
 * provider for hosts, `libvirt`, with authority over `hwspec`, `power`, `hypervisor` and `interfaces[*].mac`. The
 * hypervisors come from the plugin config: how to reach each one over SSH, its verified host key and its capacity.
 */
import { readFileSync } from 'node:fs';
import type { JsonSchema, Logger, NodeProvider, PluginStore, SeedNode } from '@consortium/plugin-api';
import {
  definePlugin,
  HYPERVISOR_KIND,
  hypervisorCapacityProvider,
  InputError,
} from '@consortium/plugin-api';
// ssh2 is CommonJS and Node cannot name `utils` as an ESM export; the default import is its module.exports.
import ssh2 from 'ssh2';
import type { NetworkConfig } from './domain-xml.js';
import { parseHostKey } from './host-key.js';
import type { Hypervisor, HypervisorNode, LibvirtProvider } from './libvirt-provider.js';
import { LIBVIRT_PROVIDER, libvirtProvider } from './libvirt-provider.js';
import type { VmSize } from './placement.js';
import { DEFAULT_HWSPECS } from './placement.js';
import { SshSession } from './ssh-session.js';
import { Virsh } from './virsh.js';

export type { DomainFacts, DomainMetadata, DomainSpec, NetworkConfig } from './domain-xml.js';
export { domainXml, METADATA_NS, parseDomainXml } from './domain-xml.js';
export type { ExpectedHostKey } from './host-key.js';
export { fingerprintOf, parseHostKey } from './host-key.js';
export type {
  Hypervisor,
  HypervisorNode,
  LibvirtProvider,
  LibvirtProviderOptions,
} from './libvirt-provider.js';
export { LIBVIRT_PROVIDER, libvirtClaims, libvirtProvider } from './libvirt-provider.js';
export type { HypervisorUsage, VmSize } from './placement.js';
export { DEFAULT_HWSPECS, describeFree, fits, freeOn, hwspecOf, macFor, place } from './placement.js';
export type {
  ChannelHandlers,
  CommandResult,
  ExecOptions,
  RemoteChannel,
  RemoteShell,
  SshSessionOptions,
} from './ssh-session.js';
export { answerOf, DomainEvents, VirshSession } from './virsh-session.js';
export { SshSession } from './ssh-session.js';
export type { DomainState } from './virsh.js';
export { shellQuote, Virsh, virshMessage } from './virsh.js';

/** One hypervisor in the plugin config. */
export interface LibvirtHypervisorConfig {
  /** Its name in Consortium: the value of a host's `hypervisor`. */
  readonly name: string;
  /** The SSH address (DNS name or IP). */
  readonly host: string;
  /** The SSH port (default 22). */
  readonly port?: number;
  /** The SSH user; it must be allowed to run `virsh -c <uri>` (e.g. in group libvirt). */
  readonly user: string;
  /** The private key itself (OpenSSH or PEM); or `privateKeyFile`, or `privateKeyEnv`. */
  readonly privateKey?: string;
  /** A file holding the private key. */
  readonly privateKeyFile?: string;
  /** An environment variable holding the private key. */
  readonly privateKeyEnv?: string;
  /** The expected host key: an OpenSSH public key line or a `SHA256:` fingerprint. */
  readonly hostKey: string;
  /** The libvirt URI on the hypervisor (default qemu:///system). */
  readonly uri?: string;
  /** Memory VMs may use in total, in MiB. */
  readonly memoryMib: number;
  /** vCPUs VMs may use in total; no limit when absent. */
  readonly vcpus?: number;
  /** `kvm` (default) or `qemu` (TCG emulation, for machines without KVM). */
  readonly domainType?: 'kvm' | 'qemu';
  /** Where VM interfaces connect (default the libvirt network `default`). */
  readonly network?: NetworkConfig;
  /** The datacenter it is in, written to its `hypervisor` node when the plugin creates it (seeding). */
  readonly datacenter?: string;
}

/** The libvirt plugin's config. */
export interface LibvirtConfig {
  readonly hypervisors: readonly LibvirtHypervisorConfig[];
  /** VM sizes by hwspec name (default small 1 vcpu/1 GiB, medium 2/4 GiB, large 4/8 GiB). */
  readonly hwspecs?: Readonly<Record<string, VmSize>>;
  /** The one interface of a VM, whose MAC the plugin reports (default eth0). */
  readonly interface?: string;
  /** The QEMU machine type (default pc). */
  readonly machine?: string;
  /** Longest the SSH connect and handshake may take, in milliseconds (default 10000). */
  readonly connectTimeoutMs?: number;
  /** Longest one virsh command may take, in milliseconds (default 60000). */
  readonly commandTimeoutMs?: number;
}

/** The defaults of the optional config fields. */
export const LIBVIRT_DEFAULTS = {
  port: 22,
  uri: 'qemu:///system',
  domainType: 'kvm',
  network: { type: 'network', source: 'default' },
  interface: 'eth0',
  machine: 'pc',
  connectTimeoutMs: 10_000,
  commandTimeoutMs: 60_000,
  idleMs: 60_000,
} as const;

const NAME = '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$';

const configSchema: JsonSchema = {
  type: 'object',
  description: 'VMs on libvirt hypervisors, driven by virsh over SSH with a verified host key.',
  properties: {
    hypervisors: {
      type: 'array',
      minItems: 1,
      description: 'the hypervisors VMs are placed on, in order of preference on ties',
      items: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            pattern: NAME,
            description: 'its name: the value of a host\'s "hypervisor"',
          },
          host: { type: 'string', minLength: 1, description: 'the SSH address' },
          port: { type: 'integer', minimum: 1, maximum: 65535, default: LIBVIRT_DEFAULTS.port },
          user: { type: 'string', minLength: 1, description: 'the SSH user, allowed to run virsh' },
          privateKey: { type: 'string', minLength: 1, description: 'the private key (never logged)' },
          privateKeyFile: { type: 'string', minLength: 1, description: 'a file holding the private key' },
          privateKeyEnv: {
            type: 'string',
            pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
            description: 'an environment variable holding the private key',
          },
          hostKey: {
            type: 'string',
            minLength: 1,
            description: 'the expected SSH host key: "ssh-ed25519 AAAA..." or "SHA256:..."',
          },
          uri: {
            type: 'string',
            minLength: 1,
            default: LIBVIRT_DEFAULTS.uri,
            description: 'the libvirt URI',
          },
          memoryMib: { type: 'integer', minimum: 1, description: 'memory VMs may use in total, in MiB' },
          vcpus: {
            type: 'integer',
            minimum: 1,
            description: 'vCPUs VMs may use in total (no limit if absent)',
          },
          domainType: { type: 'string', enum: ['kvm', 'qemu'], default: LIBVIRT_DEFAULTS.domainType },
          datacenter: {
            type: 'string',
            minLength: 1,
            description: 'the datacenter of its hypervisor node, when the plugin creates that node',
          },
          network: {
            type: 'object',
            description:
              'where VM interfaces connect: a host bridge, a libvirt network or QEMU user networking',
            properties: {
              type: { type: 'string', enum: ['bridge', 'network', 'user'] },
              source: { type: 'string', minLength: 1, description: 'the bridge or network name' },
              model: { type: 'string', minLength: 1, description: 'the NIC model (default virtio)' },
            },
            required: ['type'],
            additionalProperties: false,
          },
        },
        required: ['name', 'host', 'user', 'hostKey', 'memoryMib'],
        oneOf: [
          { required: ['privateKey'] },
          { required: ['privateKeyFile'] },
          { required: ['privateKeyEnv'] },
        ],
        additionalProperties: false,
      },
    },
    hwspecs: {
      type: 'object',
      description: 'VM sizes by hwspec name',
      propertyNames: { pattern: '^[a-z][a-z0-9-]*$' },
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        properties: { vcpus: { type: 'integer', minimum: 1 }, memoryMib: { type: 'integer', minimum: 1 } },
        required: ['vcpus', 'memoryMib'],
        additionalProperties: false,
      },
    },
    interface: { type: 'string', pattern: '^[a-z0-9]+$', default: LIBVIRT_DEFAULTS.interface },
    machine: { type: 'string', minLength: 1, default: LIBVIRT_DEFAULTS.machine },
    connectTimeoutMs: { type: 'integer', minimum: 100, default: LIBVIRT_DEFAULTS.connectTimeoutMs },
    commandTimeoutMs: { type: 'integer', minimum: 100, default: LIBVIRT_DEFAULTS.commandTimeoutMs },
  },
  required: ['hypervisors'],
  additionalProperties: false,
};

/** The private key of a hypervisor from config, a file or the environment; throws `InputError` when unusable. */
function privateKeyOf(config: LibvirtHypervisorConfig): string {
  const where = `plugin libvirt, hypervisor ${config.name}`;
  let key: string | undefined;
  if (config.privateKey !== undefined) key = config.privateKey;
  else if (config.privateKeyFile !== undefined) {
    try {
      key = readFileSync(config.privateKeyFile, 'utf8');
    } catch (error) {
      throw new InputError(
        `${where}: cannot read privateKeyFile ${config.privateKeyFile}: ${(error as Error).message}`,
      );
    }
  } else if (config.privateKeyEnv !== undefined) {
    key = process.env[config.privateKeyEnv];
    if (key === undefined || key === '') {
      throw new InputError(
        `${where}: the environment variable ${config.privateKeyEnv} (privateKeyEnv) is not set`,
      );
    }
  }
  if (key === undefined)
    throw new InputError(`${where}: set one of privateKey, privateKeyFile, privateKeyEnv`);
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) {
    // The parser's message says what is wrong with the key (format, passphrase), never its content.
    throw new InputError(`${where}: the private key cannot be used: ${parsed.message}`);
  }
  return key;
}

/** Builds the hypervisors of a config: one SSH session and virsh client each. Throws `InputError` on bad entries. */
export function hypervisorsOf(config: LibvirtConfig, logger: Logger): Hypervisor[] {
  const seen = new Set<string>();
  return config.hypervisors.map((entry) => {
    if (seen.has(entry.name))
      throw new InputError(`plugin libvirt: hypervisor ${entry.name} is configured twice`);
    seen.add(entry.name);
    const network = entry.network ?? LIBVIRT_DEFAULTS.network;
    if (network.type !== 'user' && network.source === undefined) {
      throw new InputError(
        `plugin libvirt, hypervisor ${entry.name}: network type ${network.type} needs a source`,
      );
    }
    const shell = new SshSession({
      name: entry.name,
      host: entry.host,
      port: entry.port ?? LIBVIRT_DEFAULTS.port,
      user: entry.user,
      privateKey: privateKeyOf(entry),
      hostKey: parseHostKey(entry.hostKey, `plugin libvirt, hypervisor ${entry.name}`),
      connectTimeoutMs: config.connectTimeoutMs ?? LIBVIRT_DEFAULTS.connectTimeoutMs,
      idleMs: LIBVIRT_DEFAULTS.idleMs,
      // Two more channels stay open for the virsh session and its event stream: 8 of sshd's default 10.
      maxChannels: 6,
      logger,
    });
    return {
      name: entry.name,
      shell,
      virsh: new Virsh(
        entry.name,
        shell,
        entry.uri ?? LIBVIRT_DEFAULTS.uri,
        config.commandTimeoutMs ?? LIBVIRT_DEFAULTS.commandTimeoutMs,
      ),
      capacity: { memoryMib: entry.memoryMib, ...(entry.vcpus === undefined ? {} : { vcpus: entry.vcpus }) },
      domainType: entry.domainType ?? LIBVIRT_DEFAULTS.domainType,
      network,
    };
  });
}

/** The `hypervisor` nodes of the inventory, as placement reads them. */
export async function hypervisorNodes(store: PluginStore): Promise<Map<string, HypervisorNode>> {
  const nodes = new Map<string, HypervisorNode>();
  let cursor: string | undefined;
  do {
    const page = await store.listNodes('hypervisor', {
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const node of page.items) {
      if (node.attrs['present'] !== true) continue;
      const { datacenter, schedulable } = node.attrs;
      nodes.set(node.name, {
        ...(typeof datacenter === 'string' ? { datacenter } : {}),
        ...(typeof schedulable === 'boolean' ? { schedulable } : {}),
      });
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return nodes;
}

/** The `hypervisor` node a configured hypervisor seeds: how to reach it, its datacenter, schedulable. */
export function hypervisorSeed(entry: LibvirtHypervisorConfig): SeedNode {
  const where = `plugin libvirt, hypervisor ${entry.name}`;
  return {
    kind: 'hypervisor',
    name: entry.name,
    attrs: {
      address: entry.host,
      ssh_port: entry.port ?? LIBVIRT_DEFAULTS.port,
      ssh_user: entry.user,
      host_key_fingerprint: parseHostKey(entry.hostKey, where).fingerprint,
      ...(entry.datacenter === undefined ? {} : { datacenter: entry.datacenter }),
      schedulable: true,
    },
  };
}

/**
 * The libvirt plugin. Each call of `providers` makes one provider for hosts, with one SSH connection per
 * hypervisor, and one for `hypervisor` nodes that observes their capacity through the same connections. Placement
 * goes to the configured hypervisors whose `hypervisor` node exists and is schedulable (the config seeds them).
 */
export const plugin = definePlugin<LibvirtConfig>({
  id: 'libvirt',
  configSchema,
  kinds: [HYPERVISOR_KIND],
  seeds: (config) => config.hypervisors.map(hypervisorSeed),
  providers: (config, services): NodeProvider[] => {
    const hosts: LibvirtProvider = libvirtProvider({
      hypervisors: hypervisorsOf(config, services.logger),
      hwspecs: config.hwspecs ?? DEFAULT_HWSPECS,
      interface: config.interface ?? LIBVIRT_DEFAULTS.interface,
      machine: config.machine ?? LIBVIRT_DEFAULTS.machine,
      // Tests build providers without a store; placement then takes every configured hypervisor.
      ...((services.store as PluginStore | undefined) === undefined
        ? {}
        : { hypervisorNodes: () => hypervisorNodes(services.store) }),
    });
    return [
      hosts,
      hypervisorCapacityProvider({
        provider: LIBVIRT_PROVIDER,
        usage: async (name, context) => {
          const usage = await hosts.usage(name, context.signal);
          return usage === null ? null : { usage };
        },
      }),
    ];
  },
});
