/**
 * The powerdns provider of hosts. It owns `fqdn` and `dns_records` and watches `hostname` and `interfaces` (and
 * `datacenter` when forward zones are per datacenter): for every interface address it keeps an A record at the
 * host's name in its forward zone and a PTR record in the reverse zone derived from the subnet holding the address.
 * Every task reads PowerDNS first and writes only the difference, one PATCH per zone. The A RRset at the host's
 * name is the host's (replaced whole while it lives, deleted when the host goes or is renamed); a PTR is the
 * host's while it points to the host's name, so one pointed elsewhere (the address went to another host) is left
 * alone. Deleting the host removes its records; what is already gone is done.
 */
import type {
  Attrs,
  Ipv4Network,
  JsonValue,
  NodeProvider,
  NodeRef,
  PluginStore,
  ProposedUpdate,
  ProviderContext,
  StoredNode,
  TaskRun,
} from '@consortium/plugin-api';
import {
  deepEqual,
  decisionProvider,
  dnsHostClaims,
  networkContains,
  parseCidr,
  parseIpv4,
} from '@consortium/plugin-api';
import type { CallOptions, RRset, RRsetChange } from './client.js';
import { PowerDnsClient, relative, ZoneNotFoundError } from './client.js';
import type { PowerDnsSettings } from './config.js';
import type { DnsRecord } from './records.js';
import {
  addressesOf,
  addressOfReverseName,
  formatRecord,
  fqdnIn,
  inZone,
  recordedRecords,
  recordsOf,
  reverseName,
  reverseZone,
  sortRecords,
} from './records.js';

/** The name of the provider. */
export const POWERDNS_PROVIDER = 'powerdns';

/** What powerdns claims on hosts (the plugin API's DNS claims). */
export const POWERDNS_CLAIMS = dnsHostClaims();

const OWNED = new Set(POWERDNS_CLAIMS.map((claim) => claim.path));

/** The records of one RRset, with the zone that holds it. */
interface RRsetKey {
  readonly zone: string;
  readonly name: string;
  readonly type: 'A' | 'PTR';
}

const keyOf = (set: { readonly name: string; readonly type: string }): string => `${set.name} ${set.type}`;

/** What a host should have: its name and records, or why there is none to be had yet. */
type Wanted =
  | { readonly fqdn: string | undefined; readonly records: readonly DnsRecord[] }
  | { readonly defer: string }
  | { readonly reason: string };

/** Makes the powerdns provider over `settings`; `store` gives the subnets that reverse zones derive from. */
export function powerDnsProvider(settings: PowerDnsSettings, store: PluginStore): NodeProvider {
  const client = new PowerDnsClient(settings);
  const perDatacenter = settings.forwardZones.size > 0;
  const forwardZones = [
    ...new Set([
      ...settings.forwardZones.values(),
      ...(settings.forwardZone === undefined ? [] : [settings.forwardZone]),
    ]),
  ].sort((a, b) => b.length - a.length);

  /** The forward zone of a host, or why it has none. */
  function forwardZoneOf(node: Attrs): string | { readonly defer: string } | { readonly reason: string } {
    const datacenter = node['datacenter'];
    if (typeof datacenter === 'string') {
      const zone = settings.forwardZones.get(datacenter);
      if (zone !== undefined) return zone;
    }
    if (settings.forwardZone !== undefined) return settings.forwardZone;
    if (typeof datacenter !== 'string') {
      return { defer: 'waiting for datacenter: the forward zone is chosen by it (forwardZones)' };
    }
    return {
      reason: `no forward zone for datacenter "${datacenter}": add it to forwardZones (or set forwardZone) in the powerdns config`,
    };
  }

  /** What the host named `name` should have in DNS. */
  function wanted(name: string, node: Attrs): Wanted {
    const addresses = addressesOf(node);
    if (addresses.length === 0) return { fqdn: undefined, records: [] };
    const zone = forwardZoneOf(node);
    if (typeof zone !== 'string') return zone;
    const hostname = node['hostname'];
    const fqdn =
      typeof hostname === 'string' ? fqdnIn(hostname, zone, 'hostname') : fqdnIn(name, zone, 'the host name');
    if (typeof fqdn !== 'string') return fqdn;
    return { fqdn, records: recordsOf(fqdn, addresses) };
  }

  /** The subnets of the store, read once per task (reverse zones derive from them). */
  function subnetLookup(): (ip: string) => Promise<Ipv4Network | undefined> {
    let networks: Promise<Ipv4Network[]> | undefined;
    const load = async (): Promise<Ipv4Network[]> => {
      const found: Ipv4Network[] = [];
      let cursor: string | undefined;
      do {
        const page: { items: readonly StoredNode[]; next?: string } = await store.listNodes('subnet', {
          limit: 500,
          ...(cursor === undefined ? {} : { cursor }),
        });
        for (const subnet of page.items) {
          const cidr = subnet.attrs['cidr'];
          const net = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
          if (net !== undefined) found.push(net);
        }
        cursor = page.next;
      } while (cursor !== undefined);
      return found;
    };
    return async (ip) => {
      networks ??= load();
      const address = parseIpv4(ip);
      if (address === undefined) return undefined;
      return (await networks)
        .filter((net) => networkContains(net, address))
        .sort((a, b) => b.prefix - a.prefix)[0];
    };
  }

  /** The zone that holds a record: its forward zone by name, or the reverse zone of its address. */
  async function zoneOf(
    record: { readonly name: string; readonly type: 'A' | 'PTR' },
    subnetOf: (ip: string) => Promise<Ipv4Network | undefined>,
  ): Promise<string | undefined> {
    if (record.type === 'A') return forwardZones.find((zone) => inZone(record.name, zone));
    const ip = addressOfReverseName(record.name);
    return ip === undefined ? undefined : reverseZone(ip, await subnetOf(ip));
  }

  const hintFor = (key: RRsetKey): string =>
    key.type === 'A'
      ? `create it (pdnsutil create-zone ${key.zone}) or fix forwardZone/forwardZones in the powerdns config`
      : `create the reverse zone of the subnet that holds ${addressOfReverseName(key.name) ?? key.name} (pdnsutil create-zone ${key.zone})`;

  /** The RRset as PowerDNS has it; a missing zone means nothing is there when `missingZoneIsEmpty`. */
  async function read(
    key: RRsetKey,
    call: CallOptions,
    missingZoneIsEmpty: boolean,
  ): Promise<RRset | undefined> {
    try {
      return await client.rrset(key.zone, key.name, key.type, call, hintFor(key));
    } catch (error) {
      if (missingZoneIsEmpty && error instanceof ZoneNotFoundError) return undefined;
      throw error;
    }
  }

  /** Groups records into RRsets with their zones; records whose zone cannot be told are left out. */
  async function group(
    records: readonly DnsRecord[],
    subnetOf: (ip: string) => Promise<Ipv4Network | undefined>,
  ): Promise<Map<string, RRsetKey & { contents: string[] }>> {
    const sets = new Map<string, RRsetKey & { contents: string[] }>();
    for (const record of records) {
      const zone = await zoneOf(record, subnetOf);
      if (zone === undefined) continue;
      const key = keyOf(record);
      const set = sets.get(key) ?? { zone, name: record.name, type: record.type, contents: [] };
      if (!set.contents.includes(record.content)) set.contents.push(record.content);
      sets.set(key, set);
    }
    return sets;
  }

  /**
   * Brings PowerDNS to `target` records: each wanted RRset replaced when it differs (contents or TTL); each RRset of
   * `made` that is no longer wanted deleted (a PTR only as far as it still points to the host). Writes one PATCH
   * per zone that changes, through `run.operation`.
   */
  async function converge(
    run: TaskRun,
    target: readonly DnsRecord[],
    made: readonly DnsRecord[],
  ): Promise<void> {
    const call: CallOptions = {
      signal: run.signal,
      logger: run.logger,
      action: `keep the DNS records of ${run.task.name}`,
    };
    const subnetOf = subnetLookup();
    const wantedSets = await group(target, subnetOf);
    const staleSets = await group(
      made.filter((record) => !wantedSets.has(keyOf(record))),
      subnetOf,
    );
    const changes = new Map<string, { change: RRsetChange; shown: string }[]>();
    const add = (zone: string, change: RRsetChange, shown: string): void => {
      changes.set(zone, [...(changes.get(zone) ?? []), { change, shown }]);
    };
    for (const set of wantedSets.values()) {
      const current = await read(set, call, false);
      const contents = set.type === 'PTR' ? set.contents.map((c) => `${c}.`) : set.contents;
      const sorted = [...contents].sort();
      if (current !== undefined && current.ttl === settings.ttl && deepEqual(current.contents, sorted))
        continue;
      add(
        set.zone,
        { name: set.name, type: set.type, changetype: 'REPLACE', ttl: settings.ttl, contents: sorted },
        `${set.name} ${set.type} ${set.contents.join(', ')}`,
      );
    }
    for (const set of staleSets.values()) {
      // A zone that is gone took the records with it.
      const current = await read(set, call, true);
      if (current === undefined) continue;
      // A name the host had is its own: the whole RRset goes. An address's PTR is the host's only while it points
      // to the host: one someone pointed elsewhere (the address went to another host) stays.
      const ours = new Set(set.type === 'PTR' ? set.contents.map((c) => `${c}.`) : current.contents);
      const left = current.contents.filter((content) => !ours.has(content));
      if (left.length === current.contents.length) continue; // none of it is ours (any more)
      if (left.length === 0) {
        add(
          set.zone,
          { name: set.name, type: set.type, changetype: 'DELETE' },
          `${set.name} ${set.type} (removed)`,
        );
      } else {
        add(
          set.zone,
          { name: set.name, type: set.type, changetype: 'REPLACE', ttl: current.ttl, contents: left },
          `${set.name} ${set.type} ${left.map(relative).join(', ')} (others' records kept)`,
        );
      }
    }
    for (const zone of [...changes.keys()].sort()) {
      const list = changes.get(zone) ?? [];
      const first = list.find((c) => c.change.type === 'A') ?? list[0];
      const hint = hintFor({
        zone,
        name: first?.change.name ?? zone,
        type: first?.change.type === 'A' ? 'A' : 'PTR',
      });
      await run.operation(
        { action: 'patch-zone', target: `zone/${zone}` },
        list.map((c) => c.shown).join('; '),
        () =>
          client.patch(
            zone,
            list.map((c) => c.change),
            { ...call, action: `change the records of ${run.task.name} in zone ${zone}` },
            hint,
          ),
      );
    }
  }

  /** Reports `fqdn` and `dns_records` as `target` has them, next to what the node holds. */
  function report(run: TaskRun, fqdn: string | undefined, target: readonly DnsRecord[]): void {
    const { task, out } = run;
    const records: JsonValue[] = target.map(formatRecord);
    if (fqdn === undefined || records.length === 0) {
      if (task.node['fqdn'] !== undefined) out.unset.push('fqdn');
      if (task.node['dns_records'] !== undefined) out.unset.push('dns_records');
      return;
    }
    if (task.node['fqdn'] !== fqdn) out.set['fqdn'] = fqdn;
    if (!deepEqual(task.node['dns_records'] ?? null, records)) out.set['dns_records'] = records;
  }

  async function decide(run: TaskRun): Promise<void> {
    const { task, out } = run;
    const made = recordedRecords(task.node);

    if (task.node['present'] === undefined) {
      // Deleted: remove what it made, and what the node's addresses would have made had a crash kept the report.
      const now = wanted(task.name, task.node);
      const also = 'records' in now ? now.records : [];
      await converge(run, [], [...made, ...also]);
      report(run, undefined, []);
      out.accept(...task.updates);
      return;
    }

    const own: ProposedUpdate[] = [];
    for (const update of task.updates) {
      if (update.op === 'sync') continue;
      if (OWNED.has(update.path)) own.push(update);
      else out.reject(`powerdns does not provide ${update.path}`, update);
    }
    const syncs = task.updates.filter((update) => update.op === 'sync');

    if (Object.keys(task.later ?? {}).some((path) => path.startsWith('interfaces') || path === 'hostname')) {
      // In explain: an address or the name comes later in the plan, and the records with it.
      out.later.push('fqdn', 'dns_records');
    }

    const want = wanted(task.name, task.node);
    if ('defer' in want) {
      out.defer(want.defer, ['datacenter'], ...syncs, ...own);
      return;
    }
    if ('reason' in want) {
      out.reject(want.reason, ...syncs, ...own);
      return;
    }

    // fqdn and dns_records follow the host's name and addresses: an operator may state them only as they are.
    const derived: Readonly<Record<string, JsonValue | undefined>> = {
      fqdn: want.records.length === 0 ? undefined : want.fqdn,
      dns_records: want.records.length === 0 ? undefined : want.records.map(formatRecord),
    };
    const stated: ProposedUpdate[] = [];
    for (const update of own) {
      const value = derived[update.path];
      const asIs =
        (update.op === 'set' && value !== undefined && deepEqual(update.value, value)) ||
        (update.op === 'unset' && value === undefined);
      if (asIs) stated.push(update);
      else {
        out.reject(
          `${update.path} follows the host's hostname (or name), its forward zone and its interface addresses (now ${JSON.stringify(value ?? null)}); change those instead`,
          update,
        );
      }
    }

    await converge(run, want.records, sortRecords(made));
    report(run, want.fqdn, want.records);
    // What an operator stated as it is gets applied by the master; it need not be reported again.
    for (const update of stated) delete out.set[update.path];
    out.accept(...syncs, ...stated);
  }

  /** What PowerDNS holds for a host: the A records at its (recorded or derived) name and the PTRs of its addresses. */
  async function observe(ref: NodeRef, context: ProviderContext): Promise<Attrs | null> {
    if (ref.kind !== 'host') return null;
    const node = (await store.getNode('host', ref.name))?.attrs ?? { present: true };
    const call: CallOptions = {
      signal: context.signal,
      logger: context.logger,
      action: `read the DNS records of ${ref.name}`,
    };
    const subnetOf = subnetLookup();
    const names = new Set<string>();
    if (typeof node['fqdn'] === 'string') names.add(node['fqdn']);
    const want = wanted(ref.name, node);
    if ('fqdn' in want && want.fqdn !== undefined) names.add(want.fqdn);
    if (!('fqdn' in want) || want.fqdn === undefined) {
      // No address yet: the name the host would have is where a record made behind its back would be.
      const zone = forwardZoneOf(node);
      const base = typeof node['hostname'] === 'string' ? node['hostname'] : ref.name;
      const fqdn = typeof zone === 'string' ? fqdnIn(base, zone, 'name') : undefined;
      if (typeof fqdn === 'string') names.add(fqdn);
    }
    const found: DnsRecord[] = [];
    let fqdn: string | undefined;
    const addresses = new Set([
      ...addressesOf(node),
      ...recordedRecords(node).flatMap((r) => {
        const ip = r.type === 'PTR' ? addressOfReverseName(r.name) : r.content;
        return ip === undefined ? [] : [ip];
      }),
    ]);
    for (const name of names) {
      const zone = await zoneOf({ name, type: 'A' }, subnetOf);
      if (zone === undefined) continue;
      const set = await read({ zone, name, type: 'A' }, call, true);
      if (set === undefined) continue;
      fqdn ??= name;
      for (const ip of set.contents) {
        found.push({ name, type: 'A', content: ip });
        addresses.add(ip);
      }
    }
    for (const ip of addresses) {
      if (parseIpv4(ip) === undefined) continue;
      const name = reverseName(ip);
      const zone = await zoneOf({ name, type: 'PTR' }, subnetOf);
      if (zone === undefined) continue;
      const set = await read({ zone, name, type: 'PTR' }, call, true);
      for (const content of set?.contents ?? [])
        found.push({ name, type: 'PTR', content: relative(content) });
    }
    if (found.length === 0) return null;
    const observed: Attrs = { dns_records: sortRecords(found).map(formatRecord) };
    return fqdn === undefined ? observed : { fqdn, ...observed };
  }

  return decisionProvider(
    {
      name: POWERDNS_PROVIDER,
      kind: 'host',
      claims: POWERDNS_CLAIMS,
      watches: ['hostname', 'interfaces', ...(perDatacenter ? ['datacenter'] : [])],
      observe,
    },
    decide,
  );
}
