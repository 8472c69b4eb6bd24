/** `consort history <kind> <name>`: who changed a node, when, by which job, and what changed (the audit log). */
import type { Argv } from 'yargs';
import { withTarget } from './arguments.js';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { show } from './command-line.js';
import { EXIT } from './errors.js';
import { moreLine, pagingOptions, readPages } from './paging.js';
import { actorText, flatten } from './render.js';

/** A before/after pair of attributes as changed paths: `power: on -> off`, `+ tags: a`, `- description: x`. */
export function diffLines(
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): string[] {
  const old = new Map(flatten(before ?? {}));
  const now = new Map(flatten(after ?? {}));
  const lines: string[] = [];
  for (const path of [...new Set([...old.keys(), ...now.keys()])].sort()) {
    const a = old.get(path);
    const b = now.get(path);
    if (a === b) continue;
    if (a === undefined) lines.push(`+ ${path}: ${b ?? ''}`);
    else if (b === undefined) lines.push(`- ${path}: ${a}`);
    else lines.push(`~ ${path}: ${a} -> ${b}`);
  }
  return lines;
}

/** An entry of the audit log as the API lists it. */
interface AuditEntry {
  at: string;
  actor: { id: string; description: string | null };
  action: string;
  job: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

/** Registers `history` on the command line. */
export function historyCommands<T extends GlobalOptions>(
  y: Argv<T>,
  clientFor: ClientFor,
  run: RunCommand,
): Argv<T> {
  return y.command(
    'history <kind> <name>',
    'who changed a node, when, by which job, and what changed (the audit log)',
    (c) =>
      pagingOptions(withTarget(c), 20)
        .example('$0 history host web-01', 'every change, newest first, with a diff')
        .example('$0 history host web-01 --all -o csv', 'all of it, one changed value a line'),
    (a) =>
      run(async () => {
        const query = new URLSearchParams({ kind: a.kind, name: a.name, limit: String(a.limit) });
        const page = await readPages<AuditEntry>(clientFor(a), `/api/audit?${query.toString()}`, a);
        if (a.output.format === 'table') {
          if (page.items.length === 0) {
            process.stdout.write(`no changes of ${a.kind}/${a.name} recorded\n`);
            return EXIT.ok;
          }
          const blocks = page.items.map((e) =>
            [
              `${e.at}  ${e.action}  by ${actorText(e.actor)}${e.job === null ? '' : `  job ${e.job}`}`,
              ...diffLines(e.before, e.after).map((line) => `    ${line}`),
            ].join('\n'),
          );
          process.stdout.write(`${[...blocks, ...moreLine(page.next)].join('\n')}\n`);
          return EXIT.ok;
        }
        show(a, page, () => ({
          headers: ['AT', 'ACTOR', 'ACTION', 'JOB', 'CHANGE'],
          rows: page.items.flatMap((e) =>
            diffLines(e.before, e.after).map((line) => [
              e.at,
              actorText(e.actor),
              e.action,
              e.job ?? '',
              line,
            ]),
          ),
        }));
        return EXIT.ok;
      }),
  );
}
