/**
 * The standard host attributes that more than one provider can own (a hypervisor's `hwspec`, `power`, `hypervisor`
 * and `interfaces[*].mac`; a PXE service's `profile` and `netboot`; a DNS service's `fqdn` and `dns_records`), and
 * the patterns of addresses. Alternative providers of one attribute (libvirt or the sandbox, Cobbler or the
 * sandbox) claim it with the schema made here, so a host's schema does not depend on which of them a deployment
 * loads; only the description may carry a label.
 */
import type { AttributeClaim, JsonSchema } from '@consortium/core';
import type { VmSize } from './placement.js';
import { describeSize } from './placement.js';

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';

/** A dotted-quad IPv4 address, each octet 0–255 without leading zeros. */
export const IPV4_PATTERN = `^${OCTET}(\\.${OCTET}){3}$`;

/** An IPv4 network in CIDR notation: `10.1.2.0/24`. */
export const IPV4_CIDR_PATTERN = `^${OCTET}(\\.${OCTET}){3}/(3[0-2]|[12]?[0-9])$`;

/** A MAC address in lowercase, colon-separated: `52:54:00:12:ab:cd`. */
export const MAC_PATTERN = '^([0-9a-f]{2}:){5}[0-9a-f]{2}$';

/** A lowercase DNS name, as node names are. */
export const DNS_NAME_PATTERN =
  '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';

/** An IPv4 address attribute's schema. */
export function ipv4Schema(description: string): JsonSchema {
  return { type: 'string', pattern: IPV4_PATTERN, description };
}

const labelled = (label: string | undefined, description: string): string =>
  label === undefined ? description : `${label} ${description}`;

/**
 * The claims of a hypervisor provider on hosts: `hwspec` (one of `hwspecs`), `power`, `hypervisor` and
 * `interfaces[*].mac`. `label` prefixes every description (the sandbox says `[simulated]`).
 */
export function vmHostClaims(hwspecs: Readonly<Record<string, VmSize>>, label?: string): AttributeClaim[] {
  const sizes = Object.entries(hwspecs)
    .map(([name, size]) => describeSize(name, size).replace(':', ' ='))
    .join('; ');
  return [
    {
      path: 'hwspec',
      schema: {
        type: 'string',
        enum: Object.keys(hwspecs),
        description: labelled(label, `VM size: ${sizes}`),
      },
    },
    {
      path: 'power',
      schema: { type: 'string', enum: ['on', 'off'], description: labelled(label, 'whether the VM runs') },
    },
    {
      path: 'hypervisor',
      schema: {
        type: 'string',
        minLength: 1,
        maxLength: 253,
        pattern: DNS_NAME_PATTERN,
        'x-ref': 'hypervisor',
        description: labelled(label, 'the hypervisor node the VM is defined on'),
      },
    },
    {
      path: 'interfaces[*].mac',
      schema: {
        type: 'string',
        pattern: MAC_PATTERN,
        description: labelled(label, 'the MAC address of the VM interface'),
      },
    },
  ];
}

/** The kind every hypervisor provider places VMs on; also defined by inventory (the first definition wins). */
export const HYPERVISOR_KIND = {
  name: 'hypervisor',
  description: 'a machine that runs virtual machines',
} as const;

/**
 * The claims of a hypervisor provider on `hypervisor` nodes: the capacity it observes there (memory for VMs in
 * total and free, vCPUs, defined domains). They are `readOnly`: the API shows the provider's last observation, and
 * a change of them is refused.
 */
export function hypervisorCapacityClaims(label?: string): AttributeClaim[] {
  const count = (description: string): JsonSchema => ({
    type: 'integer',
    readOnly: true,
    description: labelled(label, description),
  });
  return [
    { path: 'memory_total_mib', schema: count('memory VMs may use in total, in MiB (observed)') },
    {
      path: 'memory_free_mib',
      schema: count('memory not taken by defined VMs, in MiB (observed; negative when overcommitted)'),
    },
    { path: 'vcpus', schema: count('virtual CPUs VMs may use in total (observed)') },
    { path: 'domains', schema: count('VMs defined there, running or not (observed)') },
  ];
}

/** The claims of a PXE install service on hosts: `profile` and `netboot`; `label` prefixes the descriptions. */
export function pxeHostClaims(label?: string): AttributeClaim[] {
  return [
    {
      path: 'profile',
      schema: {
        type: 'string',
        minLength: 1,
        description: labelled(label, 'the profile the host installs from over PXE'),
      },
    },
    {
      path: 'netboot',
      schema: {
        type: 'boolean',
        description: labelled(label, 'whether the host installs over PXE when it next boots'),
      },
    },
  ];
}

/** A DNS record as a DNS provider reports it in `dns_records`: `web-01.example.com A 10.1.2.10`. */
export const DNS_RECORD_PATTERN = '^[a-z0-9.-]+ (A|PTR) [a-z0-9.-]+$';

/**
 * The claims of a DNS provider on hosts: `fqdn`, the name the host's addresses resolve from, and `dns_records`,
 * the A and PTR records it keeps for them (what it observes there shows as drift); `label` prefixes the
 * descriptions.
 */
export function dnsHostClaims(label?: string): AttributeClaim[] {
  return [
    {
      path: 'fqdn',
      schema: {
        type: 'string',
        maxLength: 253,
        pattern: DNS_NAME_PATTERN,
        description: labelled(label, 'the DNS name the host’s addresses resolve from, and back to'),
      },
    },
    {
      path: 'dns_records',
      schema: {
        type: 'array',
        items: { type: 'string', pattern: DNS_RECORD_PATTERN },
        description: labelled(label, 'the A and PTR records kept for the host, "<name> <type> <content>"'),
      },
    },
  ];
}
