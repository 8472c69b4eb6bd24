/**
 * Shell completion: `consort completion bash|zsh` prints the script, and the words it asks about are completed by
 * yargs (commands, options) or, after a node command, from the server (kinds, node names, attribute names).
 */
import type { Argv, FallbackCompletionFunction } from 'yargs';
import type { ClientFor, GlobalOptions } from './command-line.js';
import { schemaModule, urlPath } from './command-line.js';

/** Commands whose positionals are a kind, then a node name (`create` names a new node: no names to offer). */
const NODE_COMMANDS = ['get', 'set', 'delete', 'history', 'create', 'list', 'explain'];

/** The command line so far, as yargs hands it to a completion function. */
type Parsed = GlobalOptions & { _: (string | number)[] };

/**
 * Completions from the server for the word being typed: kinds, then node names, then attribute names (`power=`);
 * undefined where yargs' own (commands, options) apply. Rejects when the server cannot be asked.
 */
async function complete(
  current: string,
  parsed: Parsed,
  clientFor: ClientFor,
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

/**
 * The answer to `consort --get-yargs-completions <words>` when the server gives it (the words after a command),
 * undefined when yargs' own apply: yargs runs the first command it finds among the words (and its strict checks)
 * before it completes. Never fails the shell: an error completes nothing.
 */
export async function serverCompletions(
  words: readonly string[],
  clientFor: ClientFor,
): Promise<string[] | undefined> {
  const current = words.at(-1) ?? '';
  const context = process.env['CONSORT_CONTEXT'];
  return words.length > 2
    ? await complete(
        current,
        { _: [...words], output: { format: 'table' }, ...(context === undefined ? {} : { context }) },
        clientFor,
      ).catch(() => [])
    : undefined;
}

/** Registers `completion [shell]` and the hidden command the completion scripts call. */
export function completionCommands<T extends GlobalOptions>(y: Argv<T>, clientFor: ClientFor): Argv<T> {
  return y
    .command(
      'completion [shell]',
      'print a shell completion script (bash or zsh)',
      (c) =>
        c
          .positional('shell', {
            choices: ['bash', 'zsh'] as const,
            default: 'bash' as const,
            describe: 'the shell; completes commands, kinds, node names and attributes',
          })
          .example('source <($0 completion bash)', 'complete consort in bash')
          .example('$0 completion zsh > ~/.zfunc/_consort', 'for zsh'),
      () => {
        y.showCompletionScript();
      },
    )
    .completion('__complete', false, ((current, parsed, completionFilter, done) => {
      completionFilter((_error, defaults) => {
        complete(current, parsed as Parsed, clientFor)
          .then((found) => {
            done(found ?? defaults ?? []);
          })
          .catch(() => {
            done(defaults ?? []);
          });
      });
    }) satisfies FallbackCompletionFunction);
}
