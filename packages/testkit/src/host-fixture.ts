/**
 * Realistic host claims for the schema, merge and patch tests: inventory owns the host record and the
 * `interfaces` map list, libvirt and ipam own the MAC and the IP of each interface, vault owns the BMC password,
 * cobbler watches `hostname` and `interfaces`. Test-only; not exported by the package.
 */
import type { JsonSchema, KindDefinition, KindSchema, ProviderDeclaration } from '@consortium/core';
import { buildKindSchemas, kindSchemaOf } from '@consortium/core';

/** The pattern libvirt's MACs follow. */
export const MAC_PATTERN = '^([0-9a-f]{2}:){5}[0-9a-f]{2}$';
/** The pattern ipam's addresses follow. */
export const IPV4_PATTERN = '^([0-9]{1,3}\\.){3}[0-9]{1,3}$';

/** The host kind. */
export const HOST: KindDefinition = { name: 'host', description: 'a physical or virtual machine' };

/** Inventory's claim on `interfaces`: a map list keyed by `name`, closed items (sub-path claims add fields). */
export const INTERFACES_SCHEMA: JsonSchema = {
  type: 'array',
  'x-list-type': 'map',
  'x-list-map-keys': ['name'],
  items: {
    type: 'object',
    properties: { name: { type: 'string' }, vlan: { type: 'integer', minimum: 1, maximum: 4094 } },
    required: ['name'],
    additionalProperties: false,
  },
};

/** Fresh declarations of the host providers, safe to modify. */
export function hostDeclarations(): ProviderDeclaration[] {
  return [
    {
      name: 'inventory',
      kind: 'host',
      claims: [
        { path: 'hostname', schema: { type: 'string' } },
        { path: 'datacenter', schema: { type: 'string' } },
        { path: 'puppet_roles', schema: { type: 'array', items: { type: 'string' }, 'x-list-type': 'set' } },
        { path: 'ntp_servers', schema: { type: 'array', items: { type: 'string' } } },
        { path: 'interfaces', schema: INTERFACES_SCHEMA },
        {
          path: 'bmc',
          schema: {
            type: 'object',
            properties: { address: { type: 'string' }, user: { type: 'string' } },
            additionalProperties: false,
          },
        },
      ],
    },
    {
      name: 'libvirt',
      kind: 'host',
      claims: [
        { path: 'hwspec', schema: { enum: ['small', 'medium', 'large'] } },
        { path: 'power', schema: { enum: ['on', 'off'] } },
        { path: 'hypervisor', schema: { type: 'string' } },
        { path: 'interfaces[*].mac', schema: { type: 'string', pattern: MAC_PATTERN } },
        { path: 'hostname', authority: false },
      ],
    },
    {
      name: 'ipam',
      kind: 'host',
      claims: [
        { path: 'subnet', schema: { type: 'string' } },
        { path: 'interfaces[*].ip', schema: { type: 'string', pattern: IPV4_PATTERN } },
      ],
    },
    {
      name: 'cobbler',
      kind: 'host',
      claims: [
        { path: 'netboot', schema: { type: 'boolean' } },
        { path: 'profile', schema: { type: 'string' } },
      ],
      watches: ['hostname', 'interfaces'],
    },
    {
      name: 'vault',
      kind: 'host',
      claims: [{ path: 'bmc.password', schema: { type: 'string', minLength: 8 } }],
    },
  ];
}

/** The compiled host schema of `declarations` (by default the host providers above). */
export function hostSchema(declarations: readonly ProviderDeclaration[] = hostDeclarations()): KindSchema {
  return kindSchemaOf(buildKindSchemas([HOST], declarations), HOST.name);
}
