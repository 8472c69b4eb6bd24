/**
 * The ipam provider of hosts: allocates the address of one interface from the host's `subnet` node and reports
 * it with the netmask and gateway. The store's `reserve` is the one source of truth for who holds an address: it
 * is atomic, so two jobs racing for the same address on different hosts cannot both win, and the loser moves on
 * to the next candidate.
 */
import type {
  AttributeClaim,
  Attrs,
  JsonValue,
  NodeProvider,
  OutcomeBuilder,
  ProposedUpdate,
  PluginStore,
  TaskRun,
} from '@consortium/plugin-api';
import { decisionProvider, DNS_NAME_PATTERN, ipv4Schema, parsePath } from '@consortium/plugin-api';
import type { Ipv4Network } from '@consortium/plugin-api';
import {
  networkContains,
  formatCidr,
  formatIpv4,
  hostAddresses,
  isHostAddress,
  parseCidr,
  parseIpv4,
  prefixMask,
} from '@consortium/plugin-api';
import { interfaceOf } from '@consortium/plugin-api';

/** The name of the provider. */
export const IPAM_PROVIDER = 'ipam';

/** What ipam claims on hosts; `interfaces` itself belongs to another provider (inventory). */
export const IPAM_CLAIMS: readonly AttributeClaim[] = [
  {
    path: 'subnet',
    schema: {
      type: 'string',
      maxLength: 253,
      pattern: DNS_NAME_PATTERN,
      'x-ref': 'subnet',
      description: 'the name of the subnet node the host takes its address from',
    },
  },
  {
    path: 'interfaces[*].ip',
    schema: ipv4Schema('the IPv4 address'),
  },
  {
    path: 'interfaces[*].netmask',
    schema: ipv4Schema("the netmask of the subnet's network"),
  },
  {
    path: 'interfaces[*].gateway',
    schema: ipv4Schema("the subnet's default gateway"),
  },
];

const FIELDS = ['ip', 'netmask', 'gateway'] as const;
type Field = (typeof FIELDS)[number];

/** A subnet node as allocation needs it. */
interface Subnet {
  readonly name: string;
  readonly net: Ipv4Network;
  readonly gateway: string | undefined;
  /** Addresses that never go to hosts: the gateway and the subnet's `reserved` list. */
  readonly excluded: ReadonlySet<number>;
}

/** The reservation namespace of a subnet. */
export function reservationNamespace(subnet: string): string {
  return `ipam/${subnet}`;
}

function interfaceField(path: string): { readonly iface: string; readonly field: Field } | undefined {
  const [attribute, item, field] = parsePath(path);
  if (attribute === undefined || !('prop' in attribute) || attribute.prop !== 'interfaces') return undefined;
  if (item === undefined || !('key' in item) || field === undefined || !('prop' in field)) return undefined;
  const name = FIELDS.find((f) => f === field.prop);
  return name === undefined ? undefined : { iface: item.key, field: name };
}

type Allocation =
  | { readonly ip: string; readonly reused: boolean; readonly released: readonly string[] }
  | { readonly reason: string };

/** Makes the ipam provider over the store, for the interface named `iface`. */
export function ipamProvider(store: PluginStore, iface: string): NodeProvider {
  const path = (field: Field): string => `interfaces[${iface}].${field}`;

  async function loadSubnet(name: string): Promise<Subnet | string> {
    const node = await store.getNode('subnet', name);
    if (node === undefined) return `subnet "${name}" does not exist`;
    const cidr = node.attrs['cidr'];
    const net = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
    if (net === undefined)
      return `subnet "${name}" has no valid cidr (found ${JSON.stringify(cidr ?? null)})`;
    const excluded = new Set<number>();
    const gatewayText = node.attrs['gateway'];
    const gateway = typeof gatewayText === 'string' ? parseIpv4(gatewayText) : undefined;
    if (gateway !== undefined) excluded.add(gateway);
    const reserved = node.attrs['reserved'];
    for (const text of Array.isArray(reserved) ? (reserved as readonly JsonValue[]) : []) {
      const address = typeof text === 'string' ? parseIpv4(text) : undefined;
      if (address !== undefined) excluded.add(address);
    }
    return { name, net, gateway: gateway === undefined ? undefined : formatIpv4(gateway), excluded };
  }

  const usable = (subnet: Subnet, address: number): boolean =>
    isHostAddress(subnet.net, address) && !subnet.excluded.has(address);

  /**
   * Gives `owner` one address of the subnet: `requested` if given, else the one it already holds, else the lowest
   * free one. Releases any other address the owner held there. In `dry` mode it only predicts.
   */
  async function allocate(
    subnet: Subnet,
    owner: string,
    requested: string | undefined,
    dry: boolean,
  ): Promise<Allocation> {
    const namespace = reservationNamespace(subnet.name);
    const reservations = await store.listReservations(namespace);
    const held = reservations.filter((r) => r.owner === owner).map((r) => r.key);
    const others = new Map(reservations.filter((r) => r.owner !== owner).map((r) => [r.key, r.owner]));
    const where = `subnet "${subnet.name}" (${formatCidr(subnet.net)})`;
    let chosen: string | undefined;
    if (requested !== undefined) {
      const address = parseIpv4(requested);
      if (address === undefined || !networkContains(subnet.net, address))
        return { reason: `${requested} is not in ${where}` };
      if (!usable(subnet, address)) {
        return {
          reason: `${requested} is the network, broadcast, gateway or a reserved address of ${where}`,
        };
      }
      const holder = others.get(requested);
      if (holder !== undefined)
        return { reason: `${requested} in ${where} is already allocated to ${holder}` };
      if (!dry && !(await store.reserve(namespace, requested, owner))) {
        return { reason: `${requested} in ${where} was just allocated to someone else` };
      }
      chosen = requested;
    } else {
      const kept = held
        .map((key) => parseIpv4(key))
        .filter((address): address is number => address !== undefined && usable(subnet, address))
        .sort((a, b) => a - b)[0];
      // Reserving again is a no-op for the owner; it confirms the hold before the address is reported.
      if (kept !== undefined && (dry || (await store.reserve(namespace, formatIpv4(kept), owner)))) {
        chosen = formatIpv4(kept);
      } else {
        for (const address of hostAddresses(subnet.net)) {
          const key = formatIpv4(address);
          if (!usable(subnet, address) || others.has(key)) continue;
          if (dry || (await store.reserve(namespace, key, owner))) {
            chosen = key;
            break;
          }
        }
      }
      if (chosen === undefined) return { reason: `subnet "${subnet.name}" has no free address` };
    }
    const released = held.filter((key) => key !== chosen);
    if (!dry) for (const key of released) await store.release(namespace, owner, key);
    return { ip: chosen, reused: held.includes(chosen), released };
  }

  /** Releases everything `owner` holds in a subnet and logs it; returns nothing when it held nothing. */
  async function releaseAll(subnet: string, owner: string, dry: boolean, out: OutcomeBuilder): Promise<void> {
    const namespace = reservationNamespace(subnet);
    const held = (await store.listReservations(namespace)).filter((r) => r.owner === owner).map((r) => r.key);
    if (held.length === 0) return;
    if (!dry) await store.release(namespace, owner);
    out.operations.push({
      action: 'release-ip',
      target: `subnet/${subnet}`,
      detail: `${held.join(', ')} of ${owner}`,
    });
  }

  function unsetOwned(node: Attrs, out: OutcomeBuilder): void {
    const item = interfaceOf(node, iface);
    for (const field of FIELDS) if (item?.[field] !== undefined) out.unset.push(path(field));
  }

  async function decide(run: TaskRun): Promise<void> {
    const { task, context, out, explain: dry } = run;
    const started = context.now();
    const owner = `${task.kind}/${task.name}`;
    const current = typeof task.node['subnet'] === 'string' ? task.node['subnet'] : undefined;

    if (task.node['present'] === undefined) {
      // The node is being deleted: give its addresses back and forget them.
      if (current !== undefined) await releaseAll(current, owner, dry, out);
      unsetOwned(task.node, out);
      out.accept(...task.updates);
      return;
    }

    let subnetUpdate: ProposedUpdate | undefined;
    const fields = new Map<Field, ProposedUpdate>();
    const nudges: ProposedUpdate[] = [];
    for (const update of task.updates) {
      // A sync of an address field is a nudge: another provider waits for the address.
      if (update.op === 'sync' && interfaceField(update.path)?.iface === iface) nudges.push(update);
      else if (update.op === 'sync') out.accept(update);
      else if (update.path === 'subnet') subnetUpdate = update;
      else {
        const located = interfaceField(update.path);
        if (located === undefined) out.reject(`ipam does not provide ${update.path}`, update);
        else if (located.iface !== iface) {
          out.reject(
            `ipam manages the addresses of interface ${iface} only (plugin config "interface")`,
            update,
          );
        } else fields.set(located.field, update);
      }
    }
    const ipUpdate = fields.get('ip');
    const derivedUpdates = [fields.get('netmask'), fields.get('gateway')];

    // Giving the address up: the subnet or the address itself is unset.
    if (subnetUpdate?.op === 'unset' || ipUpdate?.op === 'unset') {
      if (ipUpdate?.op === 'set')
        out.reject('an address needs a subnet: the request unsets subnet', ipUpdate);
      if (current !== undefined) await releaseAll(current, owner, dry, out);
      unsetOwned(task.node, out);
      out.accept(subnetUpdate, ipUpdate, ...derivedUpdates.filter((u) => u?.op === 'unset'));
      out.reject(
        `${path('netmask')} and ${path('gateway')} follow the subnet; the host has no address`,
        ...derivedUpdates,
      );
      return;
    }
    if (subnetUpdate !== undefined && (subnetUpdate.op !== 'set' || typeof subnetUpdate.value !== 'string')) {
      out.reject(
        `subnet takes set or unset with a subnet name, not ${subnetUpdate.op}`,
        subnetUpdate,
        ...fields.values(),
      );
      return;
    }
    const target = subnetUpdate === undefined ? current : (subnetUpdate.value as string);
    if (target === undefined) {
      out.reject('the host has no subnet: set subnet too', ...fields.values());
      // Whoever waits for the address waits for a subnet: say so, so that a job nobody gives one fails naming it.
      out.defer('the host has no subnet', ['subnet'], ...nudges);
      return;
    }
    out.accept(...nudges);
    const subnet = await loadSubnet(target);
    if (typeof subnet === 'string') {
      out.reject(subnet, subnetUpdate, ...fields.values());
      return;
    }
    const netmask = formatIpv4(prefixMask(subnet.net.prefix));

    if (subnetUpdate !== undefined || ipUpdate !== undefined) {
      const requested =
        ipUpdate?.op === 'set' && typeof ipUpdate.value === 'string' ? ipUpdate.value : undefined;
      if (ipUpdate !== undefined && requested === undefined) {
        out.reject(
          `${ipUpdate.path} takes set or unset with an address, not ${ipUpdate.op}`,
          ...fields.values(),
        );
        out.reject('rejected with the address', subnetUpdate);
        return;
      }
      const allocation = await allocate(subnet, owner, requested, dry);
      if ('reason' in allocation) {
        out.reject(allocation.reason, subnetUpdate, ...fields.values());
        return;
      }
      if (current !== undefined && current !== subnet.name) await releaseAll(current, owner, dry, out);
      const subnetRef = `subnet/${subnet.name}`;
      if (dry && !allocation.reused && requested === undefined) {
        // Which address is free is only certain once it is reserved.
        out.later.push(path('ip'));
        out.operations.push({
          action: 'allocate-ip',
          target: subnetRef,
          detail: `the lowest free address of ${formatCidr(subnet.net)} for ${owner} (now ${allocation.ip})`,
        });
      } else {
        if (ipUpdate === undefined) out.set[path('ip')] = allocation.ip;
        out.operations.push({
          action: 'allocate-ip',
          target: subnetRef,
          detail: `${allocation.ip} for ${owner}${allocation.reused ? ' (already held)' : ''}`,
          durationMs: context.now() - started,
        });
      }
      if (allocation.released.length > 0) {
        out.operations.push({
          action: 'release-ip',
          target: subnetRef,
          detail: `${allocation.released.join(', ')} of ${owner}`,
        });
      }
      out.set[path('netmask')] = netmask;
      if (subnet.gateway !== undefined) out.set[path('gateway')] = subnet.gateway;
      else if (interfaceOf(task.node, iface)?.['gateway'] !== undefined) out.unset.push(path('gateway'));
      out.accept(subnetUpdate, ipUpdate);
    }

    // Netmask and gateway follow the subnet: an operator may state them, but only as they are.
    const derived: Record<'netmask' | 'gateway', string | undefined> = { netmask, gateway: subnet.gateway };
    for (const field of ['netmask', 'gateway'] as const) {
      const update = fields.get(field);
      if (update === undefined) continue;
      if (update.op === 'set' && update.value === derived[field]) {
        delete out.set[path(field)];
        out.accept(update);
      } else {
        out.reject(
          `${path(field)} follows subnet "${subnet.name}" (${derived[field] ?? 'none'}); change the subnet instead`,
          update,
        );
      }
    }
  }

  return decisionProvider({ name: IPAM_PROVIDER, kind: 'host', claims: IPAM_CLAIMS }, decide);
}
