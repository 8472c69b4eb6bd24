/**
 * The records a host should have, as plain data: its DNS name in a forward zone, an A record per interface
 * address, and a PTR record per address in the reverse zone derived from the subnet that holds it.
 */
import type { Attrs, Ipv4Network, JsonValue } from '@consortium/plugin-api';
import { isJsonObject, parseIpv4 } from '@consortium/plugin-api';

/** One record; names lowercase without the final dot. */
export interface DnsRecord {
  readonly name: string;
  readonly type: 'A' | 'PTR';
  readonly content: string;
}

/** A record as `dns_records` lists it: `web-01.example.com A 10.1.2.10`. */
export function formatRecord(record: DnsRecord): string {
  return `${record.name} ${record.type} ${record.content}`;
}

/** The record of a `dns_records` entry, or undefined for anything else. */
export function parseRecord(text: string): DnsRecord | undefined {
  const [name, type, content, ...rest] = text.split(' ');
  if (name === undefined || content === undefined || rest.length > 0) return undefined;
  if (type !== 'A' && type !== 'PTR') return undefined;
  return { name, type, content };
}

/** The records a node reports in `dns_records` (what the provider made, as it last knew). */
export function recordedRecords(node: Attrs): DnsRecord[] {
  const list = node['dns_records'];
  if (!Array.isArray(list)) return [];
  return (list as readonly JsonValue[])
    .filter((item): item is string => typeof item === 'string')
    .map(parseRecord)
    .filter((record): record is DnsRecord => record !== undefined);
}

/** The distinct interface addresses of a node, sorted. */
export function addressesOf(node: Attrs): string[] {
  const list = node['interfaces'];
  if (!Array.isArray(list)) return [];
  const ips = (list as readonly JsonValue[])
    .filter(isJsonObject)
    .map((item) => item['ip'])
    .filter((ip): ip is string => typeof ip === 'string' && parseIpv4(ip) !== undefined);
  return [...new Set(ips)].sort(compareAddresses);
}

/** Orders dotted quads numerically. */
export function compareAddresses(a: string, b: string): number {
  return (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0);
}

/** The PTR name of an address: `10.2.1.10.in-addr.arpa` for 10.1.2.10. */
export function reverseName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** The address a PTR name stands for, or undefined when it is not one. */
export function addressOfReverseName(name: string): string | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(name);
  if (match === null) return undefined;
  const ip = [match[4], match[3], match[2], match[1]].join('.');
  return parseIpv4(ip) === undefined ? undefined : ip;
}

/**
 * The reverse zone of an address: the whole octets of the prefix of the most specific subnet that holds it
 * (10.1.0.0/16 → 1.10.in-addr.arpa; a /26 is inside its /24 zone), or its /24 when no subnet holds it.
 */
export function reverseZone(ip: string, subnet: Ipv4Network | undefined): string {
  const octets = Math.min(3, Math.max(1, Math.floor((subnet?.prefix ?? 24) / 8)));
  return `${ip.split('.').slice(0, octets).reverse().join('.')}.in-addr.arpa`;
}

/** Whether `name` lies in `zone` (is the apex or below it). */
export function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * The host's DNS name in `zone`: `base` itself when it lies in the zone, `base.<zone>` when it is a single label;
 * anything else is outside the zone and gets a reason. `source` names where `base` came from, for the reason.
 */
export function fqdnIn(base: string, zone: string, source: string): string | { readonly reason: string } {
  const name = base.toLowerCase().replace(/\.$/, '');
  if (inZone(name, zone)) return name;
  if (!name.includes('.')) return `${name}.${zone}`;
  return {
    reason: `${source} "${base}" is not in the forward zone ${zone}: give a single label or a name ending in .${zone}`,
  };
}

/** The A and PTR records of a host named `fqdn` with `addresses`, sorted as `dns_records` lists them. */
export function recordsOf(fqdn: string, addresses: readonly string[]): DnsRecord[] {
  const records: DnsRecord[] = [
    ...addresses.map((ip): DnsRecord => ({ name: fqdn, type: 'A', content: ip })),
    ...addresses.map((ip): DnsRecord => ({ name: reverseName(ip), type: 'PTR', content: fqdn })),
  ];
  return sortRecords(records);
}

/** Records in the order `dns_records` lists them: by name, type and content. */
export function sortRecords(records: readonly DnsRecord[]): DnsRecord[] {
  return [...records].sort((a, b) => {
    const x = formatRecord(a);
    const y = formatRecord(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}
