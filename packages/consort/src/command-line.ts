/** What every command module shares: the global options, how a command runs and reaches a server, how it prints. */
import type { Client } from './client.js';
import { usage } from './errors.js';
import type { Output, Table } from './render.js';
import { csv, printData, printJsonPath, table } from './render.js';
import type * as SchemaModule from './schema.js';

/** The options every command has. */
export interface GlobalOptions {
  context?: string | undefined;
  output: Output;
}

/** Makes the client of the server the global options name (`--context`, else CONSORT_URL or the config file). */
export type ClientFor = (argv: GlobalOptions) => Client;

/** Runs a command body and ends consort with the exit code it returns, or with its error's. */
export type RunCommand = (body: () => Promise<number | undefined>) => Promise<void>;

/**
 * The schema module (ajv, the planner's path and update helpers: most of the bundle by size), loaded only by the
 * commands that validate against a kind's schema, so that `get`, `list`, `search` and `jobs` start without it.
 */
export const schemaModule = (): Promise<typeof SchemaModule> => import('./schema.js');

/** Path segments joined by `/`, each URL-encoded: `host/web-01`. */
export const urlPath = (...parts: string[]): string => parts.map(encodeURIComponent).join('/');

/** Prints a value in the chosen format: JSON, YAML or a JSONPath of it; the table `tableOf` builds, or its CSV. */
export function show(argv: GlobalOptions, value: unknown, tableOf: () => Table | string): void {
  const output = argv.output;
  if (output.format === 'json' || output.format === 'yaml') {
    printData(value, output.format);
    return;
  }
  if (output.format === 'jsonpath') {
    printJsonPath(value, output.expression);
    return;
  }
  const shown = tableOf();
  if (output.format === 'csv') {
    if (typeof shown === 'string') throw usage('-o csv prints tables; this command has none, use -o json');
    process.stdout.write(csv(shown.headers, shown.rows));
    return;
  }
  if (typeof shown === 'string') {
    process.stdout.write(`${shown}\n`);
    return;
  }
  const body =
    shown.rows.length === 0 && shown.empty !== undefined ? shown.empty : table(shown.headers, shown.rows);
  process.stdout.write(`${[body, ...(shown.footer ?? [])].join('\n')}\n`);
}

/** Prints the value a command ends with when the output is not a table (the table was drawn as it went). */
export function showData(argv: GlobalOptions, value: unknown): void {
  const output = argv.output;
  if (output.format === 'json' || output.format === 'yaml') printData(value, output.format);
  else if (output.format === 'jsonpath') printJsonPath(value, output.expression);
  else if (output.format === 'csv') throw usage('-o csv prints tables; this command has none, use -o json');
}
