/**
 * @consortium/plugin-powerdns: DNS records for every host (DESIGN.md §6). For each interface address an A record at
 * the host's name in its forward zone and a PTR record in the reverse zone derived from the address's subnet, kept
 * through the PowerDNS Authoritative Server's HTTP API. It owns `fqdn` and `dns_records` and watches `hostname`,
 * `interfaces` (and `datacenter` with per-datacenter zones).
 */
import { definePlugin } from '@consortium/plugin-api';
import type { PowerDnsConfig } from './config.js';
import { configSchema, resolveSettings } from './config.js';
import { powerDnsProvider } from './provider.js';

export type { PowerDnsConfig, PowerDnsSettings } from './config.js';
export { configSchema, resolveSettings } from './config.js';
export type { RRset, RRsetChange } from './client.js';
export { PowerDnsClient, ZoneNotFoundError } from './client.js';
export { POWERDNS_CLAIMS, POWERDNS_PROVIDER, powerDnsProvider } from './provider.js';
export type { DnsRecord } from './records.js';
export { fqdnIn, formatRecord, parseRecord, recordsOf, reverseName, reverseZone } from './records.js';

/** The powerdns plugin: one provider for hosts; throws `InputError` for a bad url, a missing key or no zone. */
export const plugin = definePlugin<PowerDnsConfig>({
  id: 'powerdns',
  configSchema,
  providers: (config, services) => [powerDnsProvider(resolveSettings(config), services.store)],
});
