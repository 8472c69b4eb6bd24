/** `consort hooks list|create|delete|deliveries|enable`: subscriptions of other systems to Consortium's events. */
import type { Argv } from 'yargs';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { EXIT, usage } from './errors.js';
import { printValue, table } from './render.js';

/** A hook as the API shows it (the secret only in the answer to a create). */
interface HookView {
  id: string;
  url: string;
  events: string[];
  kind: string | null;
  filter: string | null;
  enabled: boolean;
  consecutiveFailures: number;
  createdAt: string;
  secret?: string;
}

/** A delivery as the API shows it. */
interface DeliveryView {
  id: string;
  event: string;
  eventId: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
}

const hookRow = (h: HookView): string[] => [
  h.id,
  h.enabled ? 'yes' : `no (${h.consecutiveFailures} failures)`,
  h.events.join(','),
  h.kind ?? '*',
  h.filter ?? '',
  h.url,
];

const HOOK_HEADER = ['ID', 'ENABLED', 'EVENTS', 'KIND', 'FILTER', 'URL'];

/** `consort hooks ...`. */
export function hookCommands(y: Argv<GlobalOptions>, clientFor: ClientFor, run: RunCommand) {
  const show = (argv: GlobalOptions, value: unknown, tableOf: () => string): void => {
    if (argv.output.format === 'table') process.stdout.write(`${tableOf()}\n`);
    else printValue(value, argv.output);
  };
  const path = (id: string, rest = ''): string => `/api/hooks/${encodeURIComponent(id)}${rest}`;
  return y
    .command(
      'list',
      'every hook (admin)',
      (c) => c,
      (a) =>
        run(async () => {
          const { items } = (await clientFor(a).request('GET', '/api/hooks')).body as { items: HookView[] };
          show(a, items, () => table(HOOK_HEADER, items.map(hookRow)));
          return EXIT.ok;
        }),
    )
    .command(
      'create <url>',
      'POST these events to <url>, signed with a secret (shown once: keep it)',
      (c) =>
        c
          .positional('url', { type: 'string', demandOption: true, describe: 'http:// or https://' })
          .option('events', {
            alias: 'e',
            type: 'string',
            demandOption: true,
            describe:
              'comma separated: job.succeeded,job.failed,job.expired,node.created,node.changed,node.deleted,node.drift',
          })
          .option('kind', { type: 'string', describe: 'only events about nodes of this kind' })
          .option('filter', {
            alias: 'l',
            type: 'string',
            describe: "a search query the event's node must match: -l 'datacenter=pek1'",
          })
          .option('secret', {
            type: 'string',
            describe: 'the signing secret (16 to 256 characters); one is made when absent',
          }),
      (a) =>
        run(async () => {
          const events = a.events
            .split(',')
            .map((e) => e.trim())
            .filter((e) => e !== '');
          if (events.length === 0) throw usage('--events needs at least one event');
          const body = {
            url: a.url,
            events,
            ...(a.kind === undefined ? {} : { kind: a.kind }),
            ...(a.filter === undefined ? {} : { filter: a.filter }),
            ...(a.secret === undefined ? {} : { secret: a.secret }),
          };
          const hook = (await clientFor(a).request('POST', '/api/hooks', { body })).body as HookView;
          show(a, hook, () =>
            [table(HOOK_HEADER, [hookRow(hook)]), `secret: ${hook.secret ?? ''} (shown only now)`].join('\n'),
          );
          return EXIT.ok;
        }),
    )
    .command(
      'delete <id>',
      'delete a hook and its deliveries',
      (c) => c.positional('id', { type: 'string', demandOption: true }),
      (a) =>
        run(async () => {
          const hook = (await clientFor(a).request('DELETE', path(a.id))).body as HookView;
          show(a, hook, () => `deleted hook ${hook.id} (${hook.url})`);
          return EXIT.ok;
        }),
    )
    .command(
      'enable <id>',
      'enable a hook again after it was disabled for failing',
      (c) => c.positional('id', { type: 'string', demandOption: true }),
      (a) =>
        run(async () => {
          const hook = (await clientFor(a).request('POST', path(a.id, '/enable'))).body as HookView;
          show(a, hook, () => `enabled hook ${hook.id} (${hook.url})`);
          return EXIT.ok;
        }),
    )
    .command(
      'deliveries <id>',
      "a hook's deliveries, newest first, with their attempts",
      (c) =>
        c
          .positional('id', { type: 'string', demandOption: true })
          .option('limit', { type: 'number', default: 20, describe: 'deliveries per page' })
          .option('cursor', { type: 'string', describe: 'the next page (from --output json)' }),
      (a) =>
        run(async () => {
          const query = new URLSearchParams({ limit: String(a.limit) });
          if (a.cursor !== undefined) query.set('cursor', a.cursor);
          const page = (await clientFor(a).request('GET', path(a.id, `/deliveries?${query.toString()}`)))
            .body as { items: DeliveryView[]; next?: string };
          show(a, page, () =>
            table(
              ['DELIVERY', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST', 'CREATED'],
              page.items.map((d) => [
                d.id,
                d.event,
                d.status,
                String(d.attempts),
                d.lastError ?? (d.lastStatus === null ? '' : `HTTP ${d.lastStatus}`),
                d.createdAt,
              ]),
            ),
          );
          return EXIT.ok;
        }),
    )
    .demandCommand(1, 'hooks list, create <url>, delete <id>, enable <id> or deliveries <id>');
}
