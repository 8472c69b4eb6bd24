/**
 * @consortium/plugin-ipam: allocates the IPv4 address of a host's interface from its `subnet` node, never the same
 * address to two hosts (DESIGN.md §6).
 */
import type { JsonSchema } from '@consortium/plugin-api';
import { definePlugin } from '@consortium/plugin-api';
import { ipamProvider } from './ipam-provider.js';

export { IPAM_CLAIMS, IPAM_PROVIDER, reservationNamespace } from './ipam-provider.js';

/** The ipam plugin's config. */
export interface IpamConfig {
  /** The interface whose address ipam manages (default `eth0`). */
  readonly interface?: string;
}

const configSchema: JsonSchema = {
  type: 'object',
  description: 'Allocates interface addresses from subnet nodes kept in the store.',
  properties: {
    interface: {
      type: 'string',
      pattern: '^[a-z0-9]+$',
      default: 'eth0',
      description: 'the interface whose address ipam manages',
    },
  },
  additionalProperties: false,
};

/** The ipam plugin: one provider for hosts, over the store's subnet nodes and reservations. */
export const plugin = definePlugin<IpamConfig>({
  id: 'ipam',
  configSchema,
  providers: (config, services) => [ipamProvider(services.store, config.interface ?? 'eth0')],
});
