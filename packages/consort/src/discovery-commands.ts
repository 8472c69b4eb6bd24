/**
 * Adopting what already runs: `consort discover [kind]` prints what the backends hold in three groups (known, with
 * drift; adoptable; orphaned), and `consort adopt <kind> <name>...` or `consort adopt <kind> --all` makes nodes of
 * them from the observed values, without writing to any backend.
 */
import type { AdoptionView, DiscoveryView, DriftView, UnmanagedView } from '@consortium/core';
import type { Argv } from 'yargs';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { EXIT, usage } from './errors.js';
import type { Output, Table } from './render.js';
import { cell, csv, flatten, plural, printValue, table } from './render.js';

/** Prints a table (or its CSV), else the value as JSON, YAML or a JSONPath of it. */
function print(output: Output, value: unknown, shown: Table): void {
  if (output.format === 'csv') process.stdout.write(csv(shown.headers, shown.rows));
  else if (output.format !== 'table') printValue(value, output);
  else {
    const body =
      shown.rows.length === 0 && shown.empty !== undefined ? shown.empty : table(shown.headers, shown.rows);
    process.stdout.write(`${[body, ...(shown.footer ?? [])].join('\n')}\n`);
  }
}

/** `hwspec=small power=off interfaces[0].mac=52:54:...`: the values a node would be made with (without present). */
function attrsText(attrs: UnmanagedView['attrs']): string {
  return flatten(attrs)
    .filter(([path]) => path !== 'present')
    .map(([path, value]) => `${path}=${value}`)
    .join(' ');
}

/** `hwspec: small in the node, large in libvirt`, one drifting path. */
function driftText(drift: DriftView): string {
  return `${drift.path}: ${cell(drift.expected) || '(none)'} in the node, ${cell(drift.observed) || '(none)'} in ${drift.provider}`;
}

/** The three groups as one table, a row per backend object; a footer counts them. */
export function discoveryTable(view: DiscoveryView): Table {
  const rows: string[][] = [
    ...view.known.map((k) => [
      'known',
      k.name,
      k.providers.join(','),
      k.drift.length === 0 ? 'no drift' : `drift: ${k.drift.map(driftText).join('; ')}`,
    ]),
    ...view.adoptable.map((a) => ['adoptable', a.name, a.providers.join(','), attrsText(a.attrs)]),
    ...view.orphaned.map((o) => ['orphaned', o.name, o.providers.join(','), attrsText(o.attrs)]),
  ];
  const drifting = view.known.filter((k) => k.drift.length > 0).length;
  return {
    headers: ['GROUP', 'NAME', 'PROVIDERS', 'DETAIL'],
    rows,
    empty: `no backend holds a ${view.kind}`,
    footer: [
      `${view.known.length} known (${drifting} drifting), ${view.adoptable.length} adoptable, ` +
        `${view.orphaned.length} orphaned`,
      ...(view.adoptable.length > 0 ? [`adopt with: consort adopt ${view.kind} <name>... or --all`] : []),
    ],
  };
}

/** The nodes an adoption made, and a count. */
export function adoptionTable(view: AdoptionView): Table {
  return {
    headers: ['ADOPTED', 'PROVIDERS', 'ATTRIBUTES'],
    rows: view.adopted.map((a) => [`${view.kind}/${a.name}`, a.providers.join(','), attrsText(a.attrs)]),
    empty: `nothing to adopt: no backend holds a ${view.kind} without a node`,
    footer:
      view.adopted.length === 0
        ? []
        : [`adopted ${plural(view.adopted.length, view.kind)}; no backend was written`],
  };
}

/** Registers `discover` and `adopt` on the command line. */
export function discoveryCommands<T extends GlobalOptions>(
  y: Argv<T>,
  clientFor: ClientFor,
  run: RunCommand,
): Argv<T> {
  return y
    .command(
      'discover [kind]',
      'what the backends hold: known nodes (with drift), adoptable and orphaned objects',
      (c) =>
        c
          .positional('kind', { type: 'string', default: 'host', describe: 'the kind (default host)' })
          .example('$0 discover', "every backend's hosts, in three groups")
          .example('$0 discover host -o json', 'the same as JSON'),
      (a) =>
        run(async () => {
          const query = new URLSearchParams({ kind: a.kind });
          const view = (await clientFor(a).request('GET', `/api/discovery?${query.toString()}`))
            .body as DiscoveryView;
          print(a.output, view, discoveryTable(view));
          return EXIT.ok;
        }),
    )
    .command(
      'adopt <kind> [names..]',
      'make nodes of backend objects from their observed values, writing to no backend',
      (c) =>
        c
          .positional('kind', { type: 'string', demandOption: true })
          .positional('names', { type: 'string', array: true, describe: 'the objects to adopt' })
          .option('all', { type: 'boolean', describe: 'every adoptable object (orphans only by name)' })
          .example('$0 adopt host web-09', 'the domain and system named web-09 become node host/web-09')
          .example('$0 adopt host --all', 'every adoptable host'),
      (a) =>
        run(async () => {
          const names = a.names ?? [];
          if ((a.all === true) === names.length > 0)
            throw usage('name the objects to adopt, or give --all (not both)');
          const body = a.all === true ? { kind: a.kind, all: true } : { kind: a.kind, names };
          const view = (await clientFor(a).request('POST', '/api/discovery/adopt', { body }))
            .body as AdoptionView;
          print(a.output, view, adoptionTable(view));
          return EXIT.ok;
        }),
    );
}
