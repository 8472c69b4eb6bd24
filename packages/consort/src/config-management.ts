/**
 * Configuration management: `consort enc <name>` is Puppet's `external_nodes` script (the server's YAML, printed
 * as is), and `consort inventory --list | --host <name>` is an Ansible dynamic inventory script (Ansible's JSON:
 * groups by datacenter, subcluster, puppet role and kind; hostvars from the attributes; `ansible_host` from the
 * first interface's IP).
 */
import type { Argv } from 'yargs';
import type { Client } from './client.js';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { CliError, EXIT, exitForStatus, usage } from './errors.js';

/** The kinds that are machines Ansible can reach. */
const MACHINE_KINDS = ['host', 'hypervisor'];

/** A node as the inventory API lists it. */
export interface ListedNode {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Record<string, unknown>;
}

/** An Ansible group name from a value: Ansible allows letters, digits and underscores. */
export function groupName(prefix: string, value: string): string {
  return `${prefix}_${value.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** The host variables of a node: its attributes (without `present`) and `ansible_host` from its first interface. */
export function hostVars(node: ListedNode): Record<string, unknown> {
  const vars: Record<string, unknown> = Object.fromEntries(
    Object.entries(node.attrs).filter(([key]) => key !== 'present'),
  );
  const interfaces = node.attrs['interfaces'];
  const first: unknown = Array.isArray(interfaces) ? interfaces[0] : undefined;
  const ip = typeof first === 'object' && first !== null ? (first as { ip?: unknown }).ip : undefined;
  if (typeof ip === 'string') vars['ansible_host'] = ip;
  return vars;
}

/** Ansible's `--list` document for these nodes. */
export function ansibleInventory(nodes: readonly ListedNode[]): Record<string, unknown> {
  const groups = new Map<string, Set<string>>();
  const add = (group: string, host: string): void => {
    const hosts = groups.get(group) ?? new Set<string>();
    hosts.add(host);
    groups.set(group, hosts);
  };
  const hostvars: Record<string, Record<string, unknown>> = {};
  for (const node of nodes) {
    hostvars[node.name] = hostVars(node);
    add(groupName('kind', node.kind), node.name);
    const { datacenter, subcluster, puppet_roles: roles } = node.attrs;
    if (typeof datacenter === 'string') add(groupName('datacenter', datacenter), node.name);
    if (typeof subcluster === 'string') add(groupName('subcluster', subcluster), node.name);
    if (Array.isArray(roles))
      for (const role of roles) if (typeof role === 'string') add(groupName('role', role), node.name);
  }
  const names = [...groups.keys()].sort();
  return {
    _meta: { hostvars },
    all: { children: ['ungrouped', ...names] },
    ungrouped: { hosts: [] },
    ...Object.fromEntries(names.map((name) => [name, { hosts: [...(groups.get(name) ?? [])].sort() }])),
  };
}

/** Every node of the machine kinds this server has, page by page. */
async function machines(client: Client): Promise<ListedNode[]> {
  const schema = (await client.request('GET', '/api/schema')).body as { kinds: { name: string }[] };
  const known = schema.kinds.map((k) => k.name);
  const nodes: ListedNode[] = [];
  for (const kind of MACHINE_KINDS.filter((k) => known.includes(k))) {
    let cursor: string | undefined;
    do {
      const query = new URLSearchParams({ limit: '1000', ...(cursor === undefined ? {} : { cursor }) });
      const page = (await client.request('GET', `/api/inventory/${kind}?${query.toString()}`)).body as {
        items: { name: string; attrs: Record<string, unknown> }[];
        next?: string;
      };
      nodes.push(...page.items.map((item) => ({ kind, name: item.name, attrs: item.attrs })));
      cursor = page.next;
    } while (cursor !== undefined);
  }
  return nodes;
}

/** Registers `enc` and `inventory` on the command line. */
export function configManagementCommands<T extends GlobalOptions>(
  y: Argv<T>,
  clientFor: ClientFor,
  run: RunCommand,
): Argv<T> {
  return y
    .command(
      'enc <name>',
      "Puppet's external node classifier: classes and parameters of a host as YAML",
      (c) =>
        c
          .positional('name', { type: 'string', demandOption: true })
          .example(
            '$0 enc web-01',
            'what Puppet gets for web-01 (external_nodes = /usr/local/bin/consort-enc)',
          ),
      (a) =>
        run(async () => {
          const response = await clientFor(a).fetch('GET', `/api/enc/${encodeURIComponent(a.name)}`, {
            headers: { accept: 'application/yaml' },
          });
          const chunks: Buffer[] = [];
          for await (const chunk of response) chunks.push(chunk as Buffer);
          const text = Buffer.concat(chunks).toString('utf8');
          if ((response.statusCode ?? 0) >= 400) {
            let detail = `HTTP ${response.statusCode ?? 0}`;
            try {
              detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
            } catch {
              // not a problem document
            }
            throw new CliError(detail, exitForStatus(response.statusCode ?? 0));
          }
          process.stdout.write(text);
          return EXIT.ok;
        }),
    )
    .command(
      'inventory',
      'an Ansible dynamic inventory: --list or --host <name> (ansible-inventory -i <script that runs this>)',
      (c) =>
        c
          .option('list', { type: 'boolean', describe: 'every machine, grouped' })
          .option('host', { type: 'string', describe: 'the variables of one machine' })
          .example('$0 inventory --list', 'groups datacenter_*, subcluster_*, role_*, kind_*'),
      (a) =>
        run(async () => {
          if ((a.list === true) === (a.host !== undefined))
            throw usage('give exactly one of --list or --host <name>');
          const nodes = await machines(clientFor(a));
          if (a.host !== undefined) {
            const node = nodes.find((n) => n.name === a.host);
            if (node === undefined) throw new CliError(`no machine named ${a.host}`, EXIT.notFound);
            process.stdout.write(`${JSON.stringify(hostVars(node))}\n`);
          } else process.stdout.write(`${JSON.stringify(ansibleInventory(nodes))}\n`);
          return EXIT.ok;
        }),
    );
}
