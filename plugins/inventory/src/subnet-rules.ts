/**
 * What a subnet must hold beyond its schema: its network written without host bits, its gateway and reserved
 * addresses host addresses inside it, and the hosts that name it keeping their addresses inside it.
 */
import type { Attrs, Ipv4Network, KindInvariant, ReferrerInvariant } from '@consortium/plugin-api';
import { formatCidr, isHostAddress, isJsonObject, parseCidr, parseIpv4 } from '@consortium/plugin-api';

/** A string attribute, or undefined. */
function text(attrs: Attrs, name: string): string | undefined {
  const value = attrs[name];
  return typeof value === 'string' ? value : undefined;
}

/** The subnet's network, when `cidr` is one. */
function networkOf(attrs: Attrs): Ipv4Network | undefined {
  const cidr = text(attrs, 'cidr');
  return cidr === undefined ? undefined : parseCidr(cidr);
}

/** The addresses among `texts` that are not host addresses of `net`. */
function outside(net: Ipv4Network, texts: readonly string[]): string[] {
  return texts.filter((t) => {
    const address = parseIpv4(t);
    return address !== undefined && !isHostAddress(net, address);
  });
}

/** The invariants of a subnet node. */
export const SUBNET_INVARIANTS: readonly KindInvariant[] = [
  {
    path: 'cidr',
    check: (attrs) => {
      const net = networkOf(attrs);
      const cidr = text(attrs, 'cidr');
      if (net === undefined || formatCidr(net) === cidr) return undefined;
      return `${cidr ?? ''} has host bits set; the network is ${formatCidr(net)}`;
    },
  },
  {
    path: 'gateway',
    check: (attrs) => {
      const net = networkOf(attrs);
      const gateway = text(attrs, 'gateway');
      if (net === undefined || gateway === undefined || outside(net, [gateway]).length === 0)
        return undefined;
      return `${gateway} is not a host address of ${formatCidr(net)}`;
    },
  },
  {
    path: 'reserved',
    check: (attrs) => {
      const net = networkOf(attrs);
      const list = attrs['reserved'];
      if (net === undefined || !Array.isArray(list)) return undefined;
      const bad = outside(
        net,
        list.filter((t): t is string => typeof t === 'string'),
      );
      if (bad.length === 0) return undefined;
      return `${bad.join(', ')} ${bad.length === 1 ? 'is not a host address' : 'are not host addresses'} of ${formatCidr(net)}`;
    },
  },
];

/** A host that names the subnet must keep its interface addresses inside the subnet's network. */
export const subnetKeepsItsHosts: ReferrerInvariant = (attrs, referrer) => {
  const net = networkOf(attrs);
  const interfaces = referrer.attrs['interfaces'];
  if (net === undefined || !Array.isArray(interfaces)) return undefined;
  const addresses = interfaces.flatMap((item) =>
    isJsonObject(item) && typeof item['ip'] === 'string' ? [item['ip']] : [],
  );
  const bad = outside(net, addresses);
  return bad.length === 0 ? undefined : `${bad.join(', ')} outside ${formatCidr(net)}`;
};
