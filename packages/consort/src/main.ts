/**
 * `consort`, the shell client operators live in (DESIGN.md §8): get, list, search, create, set, delete, explain,
 * history, jobs, schema, token, context, completion. A change waits and draws its job live unless `--no-wait`.
 * Exit codes: see `EXIT` (errors.ts); `consort --help` lists them.
 */
import type { Argv, FallbackCompletionFunction } from 'yargs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { missingArguments, normalizeBooleanFlags } from './arguments.js';
import { Client } from './client.js';
import { batchCommands } from './batch-commands.js';
import { changeCommands } from './change-commands.js';
import type { GlobalOptions } from './command-line.js';
import { schemaModule, urlPath } from './command-line.js';
import { configManagementCommands } from './config-management.js';
import { contextCommands } from './context-commands.js';
import { discoveryCommands } from './discovery-commands.js';
import { historyCommands } from './history-commands.js';
import { hookCommands } from './hook-commands.js';
import { jobCommands } from './job-commands.js';
import { resolveTarget } from './config.js';
import { CliError, EXIT, EXIT_CODES_HELP } from './errors.js';
import { helpWidth, version, wrapHelp } from './help.js';
import { nodeCommands } from './node-commands.js';
import { schemaCommands } from './schema-commands.js';
import { tokenCommands } from './token-commands.js';
import { FORMATS, parseOutput } from './render.js';

/** Runs a command body, turning errors into one line on stderr and the right exit code. */
async function run(body: () => Promise<number | undefined>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? EXIT.ok;
  } catch (error) {
    if (error instanceof CliError) {
      if (error.message !== '') process.stderr.write(`consort: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`consort: internal error: ${(error as Error).message}\n`);
      process.exitCode = EXIT.failed;
    }
  }
}

const clientFor = (argv: GlobalOptions): Client => new Client(resolveTarget(argv.context));

/** Builds the `consort` command line. */
export function cli(argv: readonly string[]): Argv<GlobalOptions> {
  let parser = yargs(argv)
    .scriptName('consort')
    .usage('$0 <command> [options]\n\nThe shell client of Consortium: one command to provision a machine.')
    .epilogue(EXIT_CODES_HELP)
    .option('context', {
      type: 'string',
      describe: 'a context from the config file (CONSORT_URL/CONSORT_TOKEN win)',
    })
    .option('output', {
      alias: 'o',
      type: 'string',
      default: 'table',
      describe: `output format: ${FORMATS.join(', ')} or jsonpath=EXPR (like jsonpath='{.items[*].name}')`,
      coerce: (text: string) => parseOutput(text),
    })
    .strict()
    .recommendCommands();
  parser = nodeCommands(parser, clientFor, run);
  parser = changeCommands(parser, clientFor, run);
  parser = historyCommands(parser, clientFor, run)
    .command('batches', 'list, show and cancel batches', (y) => batchCommands(y, clientFor, run))
    .command('hooks', 'webhooks: list, create, delete, enable, deliveries', (y) =>
      hookCommands(y, clientFor, run),
    )
    .command('jobs', 'list, show, watch and cancel jobs', (y) => jobCommands(y, clientFor, run));
  parser = schemaCommands(parser, clientFor, run)
    .command('token', 'API tokens (admin)', (y) => tokenCommands(y, clientFor, run))
    .command('context', 'named servers in the config file', (y) => contextCommands(y, run))
    .command(
      'completion [shell]',
      'print a shell completion script (bash or zsh)',
      (y) =>
        y
          .positional('shell', {
            choices: ['bash', 'zsh'] as const,
            default: 'bash' as const,
            describe: 'the shell; completes commands, kinds, node names and attributes',
          })
          .example('source <($0 completion bash)', 'complete consort in bash')
          .example('$0 completion zsh > ~/.zfunc/_consort', 'for zsh'),
      () => {
        completer.showCompletionScript();
      },
    )
    .completion('__complete', false, ((current, parsed, completionFilter, done) => {
      completionFilter((_error, defaults) => {
        complete(current, parsed as GlobalOptions & { _: (string | number)[] })
          .then((found) => {
            done(found ?? defaults ?? []);
          })
          .catch(() => {
            done(defaults ?? []);
          });
      });
    }) satisfies FallbackCompletionFunction)
    .demandCommand(1, 'name a command (consort --help lists them)')
    .fail((message, error: Error | undefined) => {
      if (error instanceof CliError) {
        process.stderr.write(`consort: ${error.message}\n`);
        process.exit(error.exitCode);
      }
      const text = missingArguments(message, argv) ?? (message || (error?.message ?? 'usage error'));
      process.stderr.write(`consort: ${text}\nRun consort --help for usage.\n`);
      process.exit(EXIT.usage);
    })
    .help()
    .describe('help', 'show help (also for each command: consort <command> --help)')
    .version(version())
    .describe('version', "show consort's version")
    // yargs' own wrapping (cliui's ESM build) cuts words in half; help is laid out unwrapped and wrapped by words.
    .wrap(null);
  return discoveryCommands(configManagementCommands(parser, clientFor, run), clientFor, run);
}

/** Commands whose positionals are a kind, then a node name (`create` names a new node: no names to offer). */
const NODE_COMMANDS = ['get', 'set', 'delete', 'history', 'create', 'list', 'explain'];

/**
 * Completions from the server for the word being typed: kinds, then node names, then attribute names (`power=`);
 * undefined where yargs' own (commands, options) apply. Never fails the shell: any error gives yargs' own.
 */
async function complete(
  current: string,
  parsed: GlobalOptions & { _: (string | number)[] },
): Promise<string[] | undefined> {
  if (current.startsWith('-')) return undefined;
  const words = parsed._.map(String);
  // The words before the one being typed, after "consort" itself.
  const done = words
    .slice(words[0] === 'consort' ? 1 : 0)
    .filter((w, i, all) => !(i === all.length - 1 && w === current));
  const command = done[0];
  if (command === undefined) return undefined;
  let at = done.slice(1);
  if (command === 'explain') {
    if (at.length === 0) return ['create', 'set', 'delete'].filter((a) => a.startsWith(current));
    at = at.slice(1);
  }
  if (!NODE_COMMANDS.includes(command) && command !== 'schema') return undefined;
  const client = clientFor(parsed);
  const starting = (items: readonly string[]): string[] => items.filter((item) => item.startsWith(current));
  if (at.length === 0) {
    const body = (await client.request('GET', '/api/schema')).body as { kinds: { name: string }[] };
    return starting(body.kinds.map((k) => k.name));
  }
  const kind = at[0] as string;
  const attributes = async (): Promise<string[]> => {
    const { fetchSchema } = await schemaModule();
    const document = await fetchSchema(client, kind);
    return Object.keys((document['properties'] ?? {}) as Record<string, unknown>)
      .filter((a) => a !== 'present')
      .map((a) => `${a}=`);
  };
  if (command === 'list') return starting(await attributes());
  if (at.length === 1 && command !== 'create') {
    const query = new URLSearchParams({ limit: '1000', fields: 'present' });
    const body = (await client.request('GET', `/api/inventory/${urlPath(kind)}?${query.toString()}`))
      .body as {
      items: { name: string }[];
    };
    return starting(body.items.map((n) => n.name));
  }
  if (at.length >= 2 && ['create', 'set', 'explain'].includes(command)) return starting(await attributes());
  return at.length === 1 ? [] : undefined;
}

let args: string[];
try {
  args = normalizeBooleanFlags(hideBin(process.argv));
} catch (error) {
  process.stderr.write(`consort: ${(error as Error).message}\n`);
  process.exit(EXIT.usage);
}
// yargs picks its completion template from $SHELL when it is built.
if (args[0] === 'completion') process.env['SHELL'] = args[1] === 'zsh' ? '/bin/zsh' : '/bin/bash';
if (args[0] === '--get-yargs-completions') {
  // yargs runs the first command it finds among the words (and its strict checks) before it completes; the
  // words after the command are answered here, from the server.
  const words = args.slice(1);
  const current = words.at(-1) ?? '';
  const context = process.env['CONSORT_CONTEXT'];
  const found =
    words.length > 2
      ? await complete(current, {
          _: words,
          output: { format: 'table' },
          ...(context === undefined ? {} : { context }),
        }).catch(() => [])
      : undefined;
  if (found !== undefined) {
    process.stdout.write(found.map((f) => `${f}\n`).join(''));
    process.exit(EXIT.ok);
  }
}
// Help (and only help and version use console.log) is wrapped here by words, at the terminal's width.
const log = console.log.bind(console);
console.log = (...parts: unknown[]) => {
  log(wrapHelp(parts.map(String).join(' '), helpWidth()));
};
const completer = cli(args);
await completer.parseAsync();
