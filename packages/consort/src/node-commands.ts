/** Reading the inventory: `consort get <kind> <name>`, `consort list <kind> [filters..]`, `consort search <query>`. */
import type { Argv } from 'yargs';
import { withKind, withTarget } from './arguments.js';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { show, urlPath } from './command-line.js';
import { EXIT, usage } from './errors.js';
import { moreLine, pagingOptions, readPages } from './paging.js';
import { cell, columnCell, columnHeader, defaultColumns, flatten } from './render.js';

/** Columns of kinds whose most common attributes are not the ones an operator looks for (capacity). */
const KIND_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  hypervisor: ['datacenter', 'schedulable', 'memory_free_mib', 'memory_total_mib', 'vcpus', 'domains'],
};

/** Registers `get`, `list` and `search` on the command line. */
export function nodeCommands<T extends GlobalOptions>(
  y: Argv<T>,
  clientFor: ClientFor,
  run: RunCommand,
): Argv<T> {
  return y
    .command(
      'get <kind> <name>',
      'show one node',
      (c) =>
        withTarget(c)
          .option('authority', {
            type: 'boolean',
            describe: 'show which provider owns each value, and drift',
          })
          .example('$0 get host web-01', 'every attribute, one per line')
          .example('$0 get host web-01 --authority -o json', 'with the owner of each value, as JSON'),
      (a) =>
        run(async () => {
          const answer = await clientFor(a).request(
            'GET',
            `/api/inventory/${urlPath(a.kind, a.name)}${a.authority === true ? '?show=authority' : ''}`,
          );
          const node = answer.body as {
            attrs: Record<string, unknown>;
            revision: number;
            authority?: Record<string, string>;
            drift?: { path: string; provider: string; observed: unknown }[];
          };
          show(a, node, () => {
            const rows = flatten(node.attrs).map(([k, v]) =>
              node.authority === undefined ? [k, v] : [k, v, node.authority[k] ?? ''],
            );
            const headers =
              node.authority === undefined ? ['ATTRIBUTE', 'VALUE'] : ['ATTRIBUTE', 'VALUE', 'OWNER'];
            const drift = (node.drift ?? []).map(
              (d) => `drift: ${d.path} observed ${cell(d.observed)} by ${d.provider}`,
            );
            return { headers, rows, footer: [`revision ${node.revision}`, ...drift] };
          });
          return EXIT.ok;
        }),
    )
    .command(
      'list <kind> [filters..]',
      'list nodes of a kind, with NetBox-style filters',
      (c) =>
        pagingOptions(
          withKind(c).positional('filters', {
            type: 'string',
            array: true,
            describe: 'key=value, key__n=value, name__isw=web, ...',
          }),
          100,
        )
          .option('columns', {
            type: 'string',
            describe: 'attributes to show, comma separated (interfaces.ip for addresses)',
          })
          .example('$0 list host datacenter=pek1 hwspec__n=large', 'hosts in pek1 that are not large')
          .example('$0 list host --columns power,interfaces.ip,hwspec -o csv', 'chosen columns, as CSV')
          .example('$0 list host name__isw=web -o json', 'as JSON'),
      (a) =>
        run(async () => {
          const query = new URLSearchParams({ limit: String(a.limit) });
          for (const filter of a.filters ?? []) {
            const at = filter.indexOf('=');
            if (at <= 0) throw usage(`filter "${filter}" must look like key=value`);
            query.append(filter.slice(0, at), filter.slice(at + 1));
          }
          const page = await readPages<{ name: string; revision: number; attrs: Record<string, unknown> }>(
            clientFor(a),
            `/api/inventory/${urlPath(a.kind)}?${query.toString()}`,
            a,
          );
          show(a, page, () => {
            const columns =
              a.columns?.split(',').filter((c) => c !== '') ??
              KIND_COLUMNS[a.kind] ??
              defaultColumns(page.items.map((i) => i.attrs));
            return {
              headers: ['NAME', ...columns.map(columnHeader)],
              rows: page.items.map((n) => [n.name, ...columns.map((c) => columnCell(n.attrs, c))]),
              empty: `no ${a.kind} matches`,
              footer: moreLine(page.next),
            };
          });
          return EXIT.ok;
        }),
    )
    .command(
      'search <query>',
      'search the inventory with the query language',
      (c) =>
        c
          .positional('query', {
            type: 'string',
            demandOption: true,
            describe: 'conditions joined by and/or/not: kind=host and datacenter=pek1',
          })
          .option('limit', { type: 'number', default: 100, describe: 'at most this many nodes' })
          .option('columns', {
            type: 'string',
            describe: 'attributes to show, comma separated (default: power and interfaces.ip when found)',
          })
          .example(
            `$0 search 'kind=host and datacenter=pek1 and puppet_roles has nginx'`,
            'hosts in pek1 with nginx',
          )
          .example(`$0 search 'name ~ "web-*" and not power=on'`, 'web nodes not powered on')
          .example(`$0 search 'interfaces.ip in 10.1.0.0/16'`, 'nodes with an address in a network')
          .example(
            `$0 search 'kind=host and subnet.vlan=100'`,
            "hosts whose subnet node's vlan is 100 (one hop)",
          ),
      (a) =>
        run(async () => {
          const query = new URLSearchParams({ q: a.query, limit: String(a.limit) });
          const answer = await clientFor(a).request('GET', `/api/search?${query.toString()}`);
          const result = answer.body as {
            items: { kind: string; name: string; revision: number; attrs: Record<string, unknown> }[];
            truncated?: boolean;
          };
          show(a, result, () => {
            const attrs = result.items.map((n) => n.attrs);
            const columns =
              a.columns?.split(',').filter((c) => c !== '') ??
              defaultColumns(attrs).filter((c) => c === 'power' || c === 'interfaces.ip');
            return {
              headers: ['KIND', 'NAME', ...columns.map(columnHeader)],
              rows: result.items.map((n) => [n.kind, n.name, ...columns.map((c) => columnCell(n.attrs, c))]),
              empty: 'nothing matches',
              footer: result.truncated === true ? ['(more match: raise --limit)'] : [],
            };
          });
          return EXIT.ok;
        }),
    );
}
