/** The command-line side of batches: `-l` and its options on `set` and `delete`, and `consort batches ...`. */
import type { Argv } from 'yargs';
import type { BatchOptions } from './batch.js';
import { countsLine } from './batch.js';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { EXIT } from './errors.js';
import type { Output } from './render.js';
import { printValue, table } from './render.js';

export { runBatch } from './batch.js';

/** Adds `-l/--selector`, `--dry-run`, `--concurrency` and `--failure-budget` to a command. */
export function batchOptions<T>(y: Argv<T>) {
  return y
    .positional('name', { type: 'string', describe: 'the node name (not with -l)' })
    .option('selector', {
      alias: 'l',
      type: 'string',
      describe: "every node of the kind this search query selects, as one batch: -l 'datacenter=pek1'",
    })
    .option('dry-run', { type: 'boolean', default: false, describe: 'with -l: what each node would do' })
    .option('concurrency', { type: 'number', describe: 'with -l: jobs at once (default 10)' })
    .option('failure-budget', {
      type: 'string',
      describe: 'with -l: stop starting jobs after N failures or N% (default: never)',
    });
}

/** The batch a `set`/`delete` command line asks for. */
export function batchRequest(
  a: {
    kind: string;
    selector?: string | undefined;
    dryRun: boolean;
    concurrency?: number | undefined;
    failureBudget?: string | undefined;
    output: Output;
  },
  updates: readonly unknown[] | undefined,
): BatchOptions {
  return {
    kind: a.kind,
    selector: a.selector ?? '',
    ...(updates === undefined ? {} : { updates }),
    concurrency: a.concurrency,
    failureBudget: a.failureBudget,
    dryRun: a.dryRun,
    output: a.output,
  };
}

interface Listed {
  id: string;
  kind: string;
  action: string;
  state: string;
  total: number;
  counts: Record<string, number>;
  createdAt: string;
  nodes?: { name: string; state: string; reason?: string; job: string }[];
}

/** `consort batches list|get|cancel`. */
export function batchCommands(y: Argv<GlobalOptions>, clientFor: ClientFor, run: RunCommand) {
  const show = (argv: GlobalOptions, value: unknown, tableOf: () => string): void => {
    if (argv.output.format === 'table') process.stdout.write(`${tableOf()}\n`);
    else printValue(value, argv.output);
  };
  const oneBatch = (b: Listed): string =>
    [
      `batch ${b.id}: ${b.action} ${b.total} ${b.kind} nodes, ${b.state}`,
      countsLine(b),
      table(
        ['NAME', 'STATE', 'REASON', 'JOB'],
        (b.nodes ?? []).map((n) => [n.name, n.state, n.reason ?? '', n.job]),
      ),
    ].join('\n');
  return y
    .command(
      'list',
      'the newest batches',
      (c) => c,
      (a) =>
        run(async () => {
          const items = ((await clientFor(a).request('GET', '/api/batches')).body as { items: Listed[] })
            .items;
          show(a, items, () =>
            table(
              ['ID', 'ACTION', 'KIND', 'STATE', 'COUNTS', 'CREATED'],
              items.map((b) => [b.id, b.action, b.kind, b.state, countsLine(b), b.createdAt]),
            ),
          );
          return EXIT.ok;
        }),
    )
    .command(
      'get <id>',
      "one batch with every node's job",
      (c) => c.positional('id', { type: 'string', demandOption: true }),
      (a) =>
        run(async () => {
          const id = a.id;
          const b = (await clientFor(a).request('GET', `/api/batches/${encodeURIComponent(id)}`))
            .body as Listed;
          show(a, b, () => oneBatch(b));
          return EXIT.ok;
        }),
    )
    .command(
      'cancel <id>',
      'cancel a batch: jobs not started never start, running ones are cancelled',
      (c) => c.positional('id', { type: 'string', demandOption: true }),
      (a) =>
        run(async () => {
          const id = a.id;
          const b = (await clientFor(a).request('POST', `/api/batches/${encodeURIComponent(id)}/cancel`))
            .body as Listed;
          show(a, b, () => `cancel requested: ${countsLine(b)}`);
          return EXIT.ok;
        }),
    )
    .demandCommand(1, 'batches list, get <id> or cancel <id>');
}
