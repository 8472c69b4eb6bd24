/**
 * The words of the command line: the `<kind> <name>` positionals of node commands, boolean flags written as words
 * (`--wait=no`), and what to say when positionals are missing.
 */
import type { Argv } from 'yargs';
import { BOOLEAN_WORDS_HELP, parseBooleanWord } from '@consortium/core';
import { usage } from './errors.js';

/** Adds the `<kind>` positional. */
export function withKind<T>(y: Argv<T>) {
  return y.positional('kind', {
    type: 'string',
    demandOption: true,
    describe: 'host, hypervisor, subnet, vlan, vip, ... (consort schema lists them)',
  });
}

/** Adds the `<kind> <name>` positionals of a command about one node. */
export function withTarget<T>(y: Argv<T>) {
  return withKind(y).positional('name', { type: 'string', demandOption: true, describe: 'the node name' });
}

/** The positionals of each command, with how a message names them when they are missing. */
const POSITIONALS: Record<string, readonly [string, string][]> = {
  get: [
    ['kind', 'the kind'],
    ['name', 'the node name'],
  ],
  list: [['kind', 'the kind']],
  adopt: [['kind', 'the kind']],
  search: [['query', 'the query']],
  create: [
    ['kind', 'the kind'],
    ['name', 'the node name'],
  ],
  set: [
    ['kind', 'the kind'],
    ['name', 'the node name'],
    ['assignments..', 'at least one key=value'],
  ],
  delete: [
    ['kind', 'the kind'],
    ['name', 'the node name'],
  ],
  explain: [
    ['action', 'the action (create, set or delete)'],
    ['kind', 'the kind'],
    ['name', 'the node name'],
  ],
  history: [
    ['kind', 'the kind'],
    ['name', 'the node name'],
  ],
  'jobs show': [['id', 'the job id']],
  'jobs watch': [['id', 'the job id']],
  'jobs cancel': [['id', 'the job id']],
  'token revoke': [['id', 'the token id']],
  'context set': [['name', 'the context name']],
  'context use': [['name', 'the context name']],
};

/** yargs' "Not enough non-option arguments: got 1, need at least 2", said in words for the command given. */
export function missingArguments(message: string, args: readonly string[]): string | undefined {
  const match = /^Not enough non-option arguments: got (\d+), need at least (\d+)$/.exec(message);
  if (match === null) return undefined;
  const words = args.filter((a) => !a.startsWith('-'));
  const command = [words.slice(0, 2).join(' '), words[0] ?? ''].find((c) => POSITIONALS[c] !== undefined);
  if (command === undefined) return undefined;
  const positionals = POSITIONALS[command] ?? [];
  const missing = positionals.slice(Number(match[1]), Number(match[2])).map(([, words]) => words);
  const line = positionals.map(([name]) => `<${name}>`).join(' ');
  const list = missing.length > 1 ? `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)}` : missing[0];
  return `${command} needs ${list ?? 'more arguments'}: consort ${command} ${line}`;
}

/** Boolean flags: `--wait=no`, `--all=yes` take the same words as attribute values. */
const BOOLEAN_FLAGS = ['wait', 'authority', 'explain', 'use', 'all'];

/** Rewrites `--flag=word` of a boolean flag into `--flag` or `--no-flag`; throws a usage error for another word. */
export function normalizeBooleanFlags(args: readonly string[]): string[] {
  return args.map((arg) => {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (match === null || !BOOLEAN_FLAGS.includes(match[1] as string)) return arg;
    const value = parseBooleanWord(match[2] as string);
    if (value === undefined) throw usage(`--${match[1]} takes ${BOOLEAN_WORDS_HELP}, not "${match[2]}"`);
    return value ? `--${match[1]}` : `--no-${match[1]}`;
  });
}
