/**
 * `consort`, the shell client operators live in (DESIGN.md §8): get, list, search, create, set, delete, explain,
 * history, jobs, schema, token, context, completion. A change waits and draws its job live unless `--no-wait`.
 * Exit codes: see `EXIT` (errors.ts); `consort --help` lists them. Each group of commands is a module; this one
 * wires them under the global options, runs them and turns their errors into exit codes.
 */
import type { Argv } from 'yargs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { missingArguments, normalizeBooleanFlags } from './arguments.js';
import { batchCommands } from './batch-commands.js';
import { changeCommands } from './change-commands.js';
import { Client } from './client.js';
import type { GlobalOptions } from './command-line.js';
import { completionCommands, serverCompletions } from './completion.js';
import { resolveTarget } from './config.js';
import { configManagementCommands } from './config-management.js';
import { contextCommands } from './context-commands.js';
import { discoveryCommands } from './discovery-commands.js';
import { CliError, EXIT, EXIT_CODES_HELP } from './errors.js';
import { helpWidth, version, wrapHelp } from './help.js';
import { historyCommands } from './history-commands.js';
import { hookCommands } from './hook-commands.js';
import { jobCommands } from './job-commands.js';
import { nodeCommands } from './node-commands.js';
import { FORMATS, parseOutput } from './render.js';
import { schemaCommands } from './schema-commands.js';
import { tokenCommands } from './token-commands.js';

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
  // Commands are listed in --help in the order they are registered here.
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
    .command('context', 'named servers in the config file', (y) => contextCommands(y, run));
  parser = completionCommands(parser, clientFor)
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
  const found = await serverCompletions(args.slice(1), clientFor);
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
await cli(args).parseAsync();
