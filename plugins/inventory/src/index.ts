/**
 * @consortium/plugin-inventory: the basic kinds (host, hypervisor, subnet, vlan, vip) and the plain attributes
 * no backend owns; Consortium's own store acts as the CMDB for them (DESIGN.md §6).
 */
import type { JsonSchema } from '@consortium/plugin-api';
import { definePlugin, InputError } from '@consortium/plugin-api';
import { recordProvider } from './record-provider.js';
import type { OptionalHostAttribute } from './schemas.js';
import {
  HOST_ATTRIBUTES,
  INVENTORY_KINDS,
  KIND_ATTRIBUTES,
  OPTIONAL_HOST_ATTRIBUTE_SCHEMAS,
  OPTIONAL_HOST_ATTRIBUTES,
} from './schemas.js';

export { INVENTORY_PROVIDER } from './record-provider.js';
export type { OptionalHostAttribute } from './schemas.js';
export { DNS_NAME_PATTERN, IPV4_CIDR_PATTERN, IPV4_PATTERN, OPTIONAL_HOST_ATTRIBUTES } from './schemas.js';

/** The inventory plugin's config. */
export interface InventoryConfig {
  /**
   * Which of the optional host attributes inventory claims (default: all). Leave out those another plugin owns,
   * such as netbox's datacenter, subcluster, owner, status and puppet_roles.
   */
  readonly hostAttributes?: readonly OptionalHostAttribute[];
}

const configSchema: JsonSchema = {
  type: 'object',
  description: "Plain attributes no backend owns, kept in Consortium's own store.",
  properties: {
    hostAttributes: {
      type: 'array',
      description: 'the optional host attributes inventory claims; default all of them',
      items: { type: 'string', enum: [...OPTIONAL_HOST_ATTRIBUTES] },
      uniqueItems: true,
    },
  },
  additionalProperties: false,
};

/** The host attributes inventory claims under `config`; throws `InputError` for an unknown optional attribute. */
function hostAttributes(config: InventoryConfig): Record<string, JsonSchema> {
  const chosen = config.hostAttributes ?? OPTIONAL_HOST_ATTRIBUTES;
  const attributes: Record<string, JsonSchema> = { ...HOST_ATTRIBUTES };
  for (const name of chosen) {
    if (!OPTIONAL_HOST_ATTRIBUTES.includes(name)) {
      throw new InputError(
        `inventory: unknown host attribute "${name}" in hostAttributes (known: ${OPTIONAL_HOST_ATTRIBUTES.join(', ')})`,
      );
    }
    attributes[name] = OPTIONAL_HOST_ATTRIBUTE_SCHEMAS[name];
  }
  return attributes;
}

/** The inventory plugin: one `inventory` provider per kind it defines. */
export const plugin = definePlugin<InventoryConfig>({
  id: 'inventory',
  configSchema,
  kinds: INVENTORY_KINDS,
  providers: (config) => [
    recordProvider('host', hostAttributes(config)),
    ...Object.entries(KIND_ATTRIBUTES).map(([kind, attributes]) => recordProvider(kind, attributes)),
  ],
});
