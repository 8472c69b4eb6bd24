/**
 * The attribute schemas of the plain data inventory keeps: what an operator types into a CMDB and no backend
 * owns. Other plugins hang their own fields under these (ipam's `interfaces[*].ip`, a MAC from a hypervisor), so
 * object items stay open.
 */
import type { JsonSchema, KindDefinition } from '@consortium/plugin-api';
import { DNS_NAME_PATTERN, IPV4_CIDR_PATTERN, IPV4_PATTERN, ipv4Schema } from '@consortium/plugin-api';
import { SUBNET_INVARIANTS, subnetKeepsItsHosts } from './subnet-rules.js';

// The address and name patterns are the plugin API's, shared with ipam and every provider of host attributes.
export { DNS_NAME_PATTERN, IPV4_CIDR_PATTERN, IPV4_PATTERN } from '@consortium/plugin-api';

/** The kinds inventory defines. */
export const INVENTORY_KINDS: readonly KindDefinition[] = [
  { name: 'host', description: 'a physical or virtual machine' },
  { name: 'hypervisor', description: 'a machine that runs virtual machines' },
  {
    name: 'subnet',
    description: 'an IPv4 network that interface addresses are allocated from',
    invariants: SUBNET_INVARIANTS,
    referrerInvariant: subnetKeepsItsHosts,
  },
  { name: 'vlan', description: 'an 802.1Q virtual LAN in one datacenter' },
  { name: 'vip', description: 'a virtual IP address served by a set of hosts' },
];

const text = (description: string): JsonSchema => ({ type: 'string', minLength: 1, description });
const dnsName = (description: string): JsonSchema => ({
  type: 'string',
  minLength: 1,
  maxLength: 253,
  pattern: DNS_NAME_PATTERN,
  description,
});
const ipv4 = ipv4Schema;
const stringSet = (
  description: string,
  items: JsonSchema = { type: 'string', minLength: 1 },
): JsonSchema => ({
  type: 'array',
  'x-list-type': 'set',
  items,
  description,
});
const vlanId = (description: string): JsonSchema => ({
  type: 'integer',
  minimum: 1,
  maximum: 4094,
  description,
});

/** The host attributes another plugin (netbox) may own instead; inventory claims those listed in its config. */
export const OPTIONAL_HOST_ATTRIBUTES = [
  'datacenter',
  'subcluster',
  'owner',
  'status',
  'puppet_roles',
] as const;

/** One of the optional host attributes. */
export type OptionalHostAttribute = (typeof OPTIONAL_HOST_ATTRIBUTES)[number];

/** The host attributes inventory always claims. */
export const HOST_ATTRIBUTES: Readonly<Record<string, JsonSchema>> = {
  hostname: dnsName('the fully qualified host name'),
  description: text('free text for operators'),
  interfaces: {
    type: 'array',
    'x-list-type': 'map',
    'x-list-map-keys': ['name'],
    description: 'network interfaces, keyed by name; other plugins fill in their fields (mac, ip, ...)',
    items: {
      type: 'object',
      properties: {
        name: { type: 'string', pattern: '^[a-z0-9]+$', description: 'the interface name, e.g. eth0' },
      },
      required: ['name'],
    },
  },
  tags: stringSet('free-form labels'),
};

/** The schemas of the optional host attributes. */
export const OPTIONAL_HOST_ATTRIBUTE_SCHEMAS: Readonly<Record<OptionalHostAttribute, JsonSchema>> = {
  datacenter: text('the datacenter (site) the host is in'),
  subcluster: text('the cluster the host belongs to'),
  owner: text('the team responsible for the host'),
  status: {
    type: 'string',
    enum: ['planned', 'active', 'offline', 'decommissioning'],
    description: 'the lifecycle status',
  },
  puppet_roles: stringSet('the Puppet roles applied to the host'),
};

/** The attributes of every other kind. */
export const KIND_ATTRIBUTES: Readonly<Record<string, Readonly<Record<string, JsonSchema>>>> = {
  subnet: {
    cidr: { type: 'string', pattern: IPV4_CIDR_PATTERN, description: 'the network, e.g. 10.1.2.0/24' },
    gateway: ipv4('the default gateway of the network'),
    vlan: vlanId('the VLAN id the network is carried on'),
    datacenter: text('the datacenter the network is in'),
    reserved: stringSet('addresses never allocated to hosts', { type: 'string', pattern: IPV4_PATTERN }),
    description: text('free text for operators'),
  },
  vlan: {
    vid: vlanId('the 802.1Q VLAN id'),
    datacenter: text('the datacenter the VLAN is in'),
    description: text('free text for operators'),
  },
  vip: {
    address: ipv4('the virtual IP address'),
    port: { type: 'integer', minimum: 1, maximum: 65535, description: 'the TCP or UDP port served' },
    members: stringSet('the hosts serving the address', {
      type: 'string',
      'x-ref': 'host',
      pattern: DNS_NAME_PATTERN,
      maxLength: 253,
    }),
  },
  hypervisor: {
    address: {
      type: 'string',
      minLength: 1,
      maxLength: 253,
      description: 'the address (IP or DNS name) to reach it over SSH',
    },
    ssh_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'its SSH port (22 when absent)' },
    ssh_user: text('the SSH user Consortium logs in as'),
    host_key_fingerprint: {
      type: 'string',
      pattern: '^SHA256:[A-Za-z0-9+/]{43}$',
      description: 'the SHA256 fingerprint of its SSH host key, as ssh-keygen -l prints it',
    },
    datacenter: text('the datacenter the hypervisor is in; VMs of hosts in a datacenter are placed there'),
    schedulable: {
      type: 'boolean',
      description: 'false while draining: no new VM is placed here (true when absent)',
    },
    description: text('free text for operators'),
  },
};
