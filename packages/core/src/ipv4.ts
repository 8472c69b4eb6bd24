/**
 * IPv4 arithmetic for allocation and search: addresses as unsigned 32-bit numbers, networks in CIDR notation. Small pure
 * functions because no address library is a dependency; IPv6 is out of scope.
 */

/** An IPv4 network: its first address, prefix length and last address. */
export interface Ipv4Network {
  readonly network: number;
  readonly prefix: number;
  readonly broadcast: number;
}

const OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/;

/** Parses a dotted-quad address (no leading zeros); undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => OCTET.test(part))) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

/** Formats an address as a dotted quad. */
export function formatIpv4(address: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join('.');
}

/** The netmask of a prefix length as a number: 24 → 255.255.255.0. */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix);
}

/**
 * Parses `a.b.c.d/n`; undefined when it is not one. Host bits are cleared (`10.1.2.5/24` is `10.1.2.0/24`), as
 * Python's `ip_network(strict=False)` does.
 */
export function parseCidr(text: string): Ipv4Network | undefined {
  const match = /^([0-9.]+)\/(3[0-2]|[12]?[0-9])$/.exec(text);
  if (match === null) return undefined;
  const address = parseIpv4(match[1] ?? '');
  if (address === undefined) return undefined;
  const prefix = Number(match[2]);
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  return { network, prefix, broadcast: network + size - 1 };
}

/** The network in CIDR notation. */
export function formatCidr(net: Ipv4Network): string {
  return `${formatIpv4(net.network)}/${net.prefix}`;
}

/** True when the address lies in the network. */
export function networkContains(net: Ipv4Network, address: number): boolean {
  return address >= net.network && address <= net.broadcast;
}

/**
 * The addresses of a network that can go to hosts, lowest first: all but the network and broadcast addresses,
 * except in /31 and /32 networks, where every address is usable (RFC 3021).
 */
export function* hostAddresses(net: Ipv4Network): Generator<number> {
  const [first, last] =
    net.prefix >= 31 ? [net.network, net.broadcast] : [net.network + 1, net.broadcast - 1];
  for (let address = first; address <= last; address++) yield address;
}

/** True when the address can go to a host of the network (see `hostAddresses`). */
export function isHostAddress(net: Ipv4Network, address: number): boolean {
  if (!networkContains(net, address)) return false;
  return net.prefix >= 31 || (address !== net.network && address !== net.broadcast);
}
