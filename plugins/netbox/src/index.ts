/**
 * @consortium/plugin-netbox: the CMDB in NetBox (DESIGN.md §6). Hosts are NetBox virtual machines; netbox has
 * authority over `datacenter` (site), `subcluster` (cluster), `owner` (tenant), `status` and `puppet_roles`
 * (tags or a custom field). Configure inventory with `hostAttributes: []` so that it leaves those to netbox.
 */
import { definePlugin } from '@consortium/plugin-api';
import type { NetboxConfig } from './config.js';
import { configSchema, resolveSettings } from './config.js';
import { netboxHostProvider } from './host-provider.js';

export type { NetboxConfig, NetboxSettings, RolesField, RolesStorage } from './config.js';
export { configSchema, resolveSettings } from './config.js';
export { describeErrorBody, NetboxClient } from './client.js';
export { NETBOX_PROVIDER, netboxHostProvider, tagSlug } from './host-provider.js';
export type { HostStatus, HostValues, NetboxPath } from './host-values.js';
export { NETBOX_CLAIMS, NETBOX_PATHS, STATUS_TO_NETBOX } from './host-values.js';

/** The netbox plugin: one provider for hosts; throws `InputError` for a bad url or a missing token. */
export const plugin = definePlugin<NetboxConfig>({
  id: 'netbox',
  configSchema,
  providers: (config) => [netboxHostProvider(resolveSettings(config))],
});
