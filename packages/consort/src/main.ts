/**
 * `consort`, the shell client operators live in (DESIGN.md §8): get, list, search, create, set, delete, explain,
 * jobs, schema, token, context, completion. A change waits and draws its job live unless `--no-wait`.
 * Exit codes: 0 succeeded, 1 job failed or expired, 2 usage error, 3 server unreachable.
 */
import type { Argv } from 'yargs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { Answer } from './client.js';
import { Client } from './client.js';
import { configPath, readConfig, resolveTarget, writeConfig } from './config.js';
import { CliError, EXIT, usage } from './errors.js';
import type { Format } from './render.js';
import { FORMATS, cell, flatten, printData, table } from './render.js';
import type { Schema } from './schema.js';
import { attrsFromUpdates, fetchSchema, parseAssignments } from './schema.js';
import type { JobView } from './watch.js';
import { ended, watchJob } from './watch.js';

interface Global {
  context?: string | undefined;
  output: Format;
}

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

const clientFor = (argv: Global): Client => new Client(resolveTarget(argv.context));
const path = (...parts: string[]): string => parts.map(encodeURIComponent).join('/');

/** Prints a value in the chosen format, with `tableOf` for tables. */
function show(argv: Global, value: unknown, tableOf: () => string): void {
  if (argv.output === 'table') process.stdout.write(`${tableOf()}\n`);
  else printData(value, argv.output);
}

function planTable(plan: {
  outcome: string;
  rounds: {
    round: number;
    tasks: {
      provider: string;
      updates: { id: string; path: string; op: string }[];
      outcome?: Record<string, unknown>;
    }[];
  }[];
  later: { path: string; provider: string }[];
  blockedOn: { provider: string; path: string; reason?: string }[];
  failure?: { message: string };
}): string {
  const rows: string[][] = [];
  for (const round of plan.rounds) {
    for (const task of round.tasks) {
      const outcome = (task.outcome ?? {}) as {
        operations?: { action: string; target: string; detail?: string }[];
        deferred?: { id: string; reason: string }[];
        rejected?: { id: string; reason: string }[];
        later?: string[];
      };
      const pathOf = (id: string): string => task.updates.find((u) => u.id === id)?.path ?? id;
      const doing = [
        ...(outcome.operations ?? []).map(
          (o) => `${o.action} ${o.target}${o.detail === undefined ? '' : `: ${o.detail}`}`,
        ),
        ...(outcome.deferred ?? []).map((d) => `waits (${pathOf(d.id)}): ${d.reason}`),
        ...(outcome.rejected ?? []).map((r) => `refuses ${pathOf(r.id)}: ${r.reason}`),
      ];
      const later = (outcome.later ?? []).join(', ');
      if (doing.length === 0) doing.push(task.updates.map((u) => `${u.op} ${u.path}`).join(', '));
      doing.forEach((text, i) =>
        rows.push(i === 0 ? [String(round.round), task.provider, text, later] : ['', '', text, '']),
      );
    }
  }
  const footer = [
    `plan: ${plan.outcome}${plan.failure === undefined ? '' : ` (${plan.failure.message})`}`,
    ...plan.blockedOn.map(
      (b) => `blocked on ${b.provider}: ${b.path}${b.reason === undefined ? '' : ` (${b.reason})`}`,
    ),
    ...(plan.later.length === 0
      ? []
      : [`known later: ${plan.later.map((l) => `${l.path} (${l.provider})`).join(', ')}`]),
  ];
  return `${table(['ROUND', 'PROVIDER', 'WOULD DO', 'LATER'], rows)}\n${footer.join('\n')}`;
}

/** Sends a change and, unless told not to, follows its job to the end. */
async function change(
  argv: Global & { wait: boolean; explain?: boolean | undefined },
  send: (client: Client, query: string) => Promise<Answer>,
): Promise<number> {
  const client = clientFor(argv);
  if (argv.explain === true) {
    const answer = await send(client, '?explain=true');
    const body = answer.body as { plan: Parameters<typeof planTable>[0] };
    show(argv, body, () => planTable(body.plan));
    const { plan } = body;
    if (plan.outcome === 'succeeded') return EXIT.ok;
    // A plan that would not converge is a failure for scripts too: exit 1, and say why on stderr.
    const why =
      plan.outcome === 'blocked'
        ? plan.blockedOn
            .map((b) => `${b.provider} waits on ${b.path}${b.reason === undefined ? '' : ` (${b.reason})`}`)
            .join('; ')
        : (plan.failure?.message ?? 'no reason given');
    process.stderr.write(
      `consort: the change would ${plan.outcome === 'blocked' ? 'block' : 'fail'}: ${why}\n`,
    );
    return EXIT.failed;
  }
  const answer = await send(client, '');
  if (answer.status === 200 && (answer.body as { unchanged?: boolean }).unchanged === true) {
    show(argv, answer.body, () => 'no change: the node already holds every value');
    return EXIT.ok;
  }
  const job = answer.body as JobView;
  if (!argv.wait) {
    show(argv, job, () => job.id);
    return EXIT.ok;
  }
  const interactive = argv.output === 'table' && process.stderr.isTTY && process.stdout.isTTY;
  const final = await watchJob(client, job, {
    out: argv.output === 'table' ? process.stdout : process.stderr,
    interactive,
  });
  if (argv.output !== 'table') printData(final, argv.output);
  if (final.state !== 'succeeded') {
    const reason = final.failure === undefined ? final.state : final.failure.message;
    process.stderr.write(`consort: job ${final.id} ${final.state}: ${reason}\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

function changeOptions<T>(y: Argv<T>) {
  return y
    .option('wait', {
      type: 'boolean',
      default: true,
      describe: 'follow the job live (--no-wait prints its id)',
    })
    .option('explain', { type: 'boolean', describe: 'show the plan round by round; change nothing' });
}

function withTarget<T>(y: Argv<T>) {
  return y
    .positional('kind', {
      type: 'string',
      demandOption: true,
      describe: 'host, hypervisor, subnet, vlan, vip, ...',
    })
    .positional('name', { type: 'string', demandOption: true, describe: 'the node name' });
}

/** Builds the `consort` command line. */
export function cli(argv: readonly string[]): Argv<Global> {
  return yargs(argv)
    .scriptName('consort')
    .usage('$0 <command> [options]\n\nThe shell client of Consortium: one command to provision a machine.')
    .option('context', {
      type: 'string',
      describe: 'a context from the config file (CONSORT_URL/CONSORT_TOKEN win)',
    })
    .option('output', {
      alias: 'o',
      choices: FORMATS,
      // yargs widens a plain literal default to string; the assertion keeps the union.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      default: 'table' as Format,
      describe: 'output format',
    })
    .strict()
    .recommendCommands()
    .command(
      'get <kind> <name>',
      'show one node',
      (y) =>
        withTarget(y)
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
            `/api/inventory/${path(a.kind, a.name)}${a.authority === true ? '?show=authority' : ''}`,
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
            return [table(headers, rows), `revision ${node.revision}`, ...drift].join('\n');
          });
          return EXIT.ok;
        }),
    )
    .command(
      'list <kind> [filters..]',
      'list nodes of a kind, with NetBox-style filters',
      (y) =>
        y
          .positional('kind', { type: 'string', demandOption: true })
          .positional('filters', {
            type: 'string',
            array: true,
            describe: 'key=value, key__n=value, name__isw=web, ...',
          })
          .option('limit', { type: 'number', default: 100 })
          .option('columns', { type: 'string', describe: 'attributes to show, comma separated' })
          .example('$0 list host datacenter=pek1 hwspec__n=large', 'hosts in pek1 that are not large')
          .example('$0 list host name__isw=web -o json', 'as JSON'),
      (a) =>
        run(async () => {
          const query = new URLSearchParams({ limit: String(a.limit) });
          for (const filter of a.filters ?? []) {
            const at = filter.indexOf('=');
            if (at <= 0) throw usage(`filter "${filter}" must look like key=value`);
            query.append(filter.slice(0, at), filter.slice(at + 1));
          }
          const answer = await clientFor(a).request(
            'GET',
            `/api/inventory/${path(a.kind)}?${query.toString()}`,
          );
          const page = answer.body as {
            items: { name: string; revision: number; attrs: Record<string, unknown> }[];
            next?: string;
          };
          show(a, page, () => {
            const columns =
              a.columns?.split(',').filter((c) => c !== '') ??
              KIND_COLUMNS[a.kind] ??
              defaultColumns(page.items.map((i) => i.attrs));
            const rows = page.items.map((n) => [n.name, ...columns.map((c) => cell(n.attrs[c]))]);
            const more = page.next === undefined ? '' : `\n(more: raise --limit)`;
            return `${table(['NAME', ...columns.map((c) => c.toUpperCase())], rows)}${more}`;
          });
          return EXIT.ok;
        }),
    )
    .command(
      'search <query>',
      'search the inventory with the query language',
      (y) =>
        y
          .positional('query', { type: 'string', demandOption: true })
          .option('limit', { type: 'number', default: 100 })
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
            items: { kind: string; name: string; revision: number }[];
            truncated?: boolean;
          };
          show(a, result, () =>
            table(
              ['KIND', 'NAME', 'REVISION'],
              result.items.map((n) => [n.kind, n.name, String(n.revision)]),
            ),
          );
          return EXIT.ok;
        }),
    )
    .command(
      'create <kind> <name> [assignments..]',
      'create a node and follow its job',
      (y) =>
        changeOptions(withTarget(y))
          .positional('assignments', {
            type: 'string',
            array: true,
            describe: 'key=value, key+=item, key[eth0].ip=...',
          })
          .example(
            '$0 create host web-01 hwspec=small datacenter=pek1 subcluster=web subnet=pek1-web puppet_roles+=nginx power=on',
            'provision a machine',
          )
          .example('$0 create subnet pek1-web cidr=10.1.2.0/24 gateway=10.1.2.1', 'a subnet for IPAM'),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          const schema = await fetchSchema(client, a.kind);
          const attrs = attrsFromUpdates(schema, parseAssignments(a.kind, schema, a.assignments ?? []));
          return change(a, (c, q) =>
            c.request('POST', `/api/inventory/${path(a.kind)}${q}`, { body: { name: a.name, attrs } }),
          );
        }),
    )
    .command(
      'set <kind> <name> <assignments..>',
      'change a node and follow its job',
      (y) =>
        changeOptions(withTarget(y))
          .positional('assignments', { type: 'string', array: true, demandOption: true })
          .option('if-revision', { type: 'number', describe: 'only if the node is still at this revision' })
          .example('$0 set host web-01 power=off', 'power off')
          .example(
            '$0 set host web-01 puppet_roles+=haproxy puppet_roles-=nginx description-',
            'edit a set list, unset a value',
          ),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          const schema = await fetchSchema(client, a.kind);
          const updates = parseAssignments(a.kind, schema, a.assignments);
          const headers: Record<string, string> =
            a.ifRevision === undefined ? {} : { 'if-match': `"${a.ifRevision}"` };
          return change(a, (c, q) =>
            c.request('PATCH', `/api/inventory/${path(a.kind, a.name)}${q}`, {
              body: updates,
              type: 'application/vnd.consortium.updates+json',
              headers,
            }),
          );
        }),
    )
    .command(
      'delete <kind> <name>',
      'delete a node (every provider removes what it owns) and follow its job',
      (y) => changeOptions(withTarget(y)).example('$0 delete host web-01', 'deprovision'),
      (a) =>
        run(() => change(a, (c, q) => c.request('DELETE', `/api/inventory/${path(a.kind, a.name)}${q}`))),
    )
    .command(
      'explain <action> <kind> <name> [assignments..]',
      'show what a change would do, round by round, without doing it',
      (y) =>
        withTarget(y)
          .positional('action', { choices: ['create', 'set', 'delete'] as const, demandOption: true })
          .positional('assignments', { type: 'string', array: true })
          .example(
            '$0 explain create host web-02 hwspec=small subnet=pek1-web power=on',
            'the plan of a provisioning',
          ),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          const target = `/api/inventory/${path(a.kind, a.name)}`;
          const args = { ...a, wait: false, explain: true };
          if (a.action === 'delete') return change(args, (c, q) => c.request('DELETE', `${target}${q}`));
          const schema: Schema = await fetchSchema(client, a.kind);
          const updates = parseAssignments(a.kind, schema, a.assignments ?? []);
          if (a.action === 'create') {
            const attrs = attrsFromUpdates(schema, updates);
            return change(args, (c, q) =>
              c.request('POST', `/api/inventory/${path(a.kind)}${q}`, { body: { name: a.name, attrs } }),
            );
          }
          return change(args, (c, q) =>
            c.request('PATCH', `${target}${q}`, {
              body: updates,
              type: 'application/vnd.consortium.updates+json',
            }),
          );
        }),
    )
    .command('jobs', 'list, show, watch and cancel jobs', (y) =>
      y
        .command(
          'list',
          'recent jobs, newest first',
          (c) =>
            c
              .option('state', {
                type: 'string',
                describe: 'comma separated: queued,running,succeeded,failed,expired,cancelled',
              })
              .option('kind', { type: 'string' })
              .option('name', { type: 'string' })
              .option('limit', { type: 'number', default: 20 })
              .example('$0 jobs list --state running', 'what is running now'),
          (a) =>
            run(async () => {
              const query = new URLSearchParams({ limit: String(a.limit) });
              if (a.state !== undefined) query.set('state', a.state);
              if (a.kind !== undefined) query.set('kind', a.kind);
              if (a.name !== undefined) query.set('name', a.name);
              const answer = await clientFor(a).request('GET', `/api/jobs?${query.toString()}`);
              const page = answer.body as { items: (JobView & { roundCount: number })[] };
              show(a, page, () =>
                table(
                  ['ID', 'NODE', 'ACTION', 'STATE', 'ROUNDS', 'CREATED'],
                  page.items.map((j) => [
                    j.id,
                    `${j.kind}/${j.name}`,
                    j.action,
                    j.state,
                    String(j.roundCount),
                    j.createdAt,
                  ]),
                ),
              );
              return EXIT.ok;
            }),
        )
        .command(
          'show <id>',
          'one job with its rounds and conditions',
          (c) =>
            c
              .positional('id', { type: 'string', demandOption: true })
              .example('$0 jobs show j-abc -o yaml', 'as YAML'),
          (a) =>
            run(async () => {
              type Round = {
                round: number;
                tasks: {
                  provider: string;
                  attempts: number;
                  durationMs?: number;
                  error?: { message: string };
                }[];
              };
              const job = (await clientFor(a).request('GET', `/api/jobs/${path(a.id)}`)).body as Omit<
                JobView,
                'rounds'
              > & {
                rounds: Round[];
              };
              show(a, job, () => {
                const rows = job.rounds.flatMap((r) =>
                  r.tasks.map((t) => [
                    String(r.round),
                    t.provider,
                    String(t.attempts),
                    t.durationMs === undefined ? '' : `${t.durationMs}ms`,
                    t.error?.message ?? '',
                  ]),
                );
                const conditions = (job.conditions ?? []).map(
                  (c) =>
                    `waiting on ${c.provider}: ${c.path} (${c.status}${c.reason === undefined ? '' : `: ${c.reason}`})`,
                );
                return [
                  `job ${job.id}: ${job.action} ${job.kind}/${job.name}: ${job.state}`,
                  table(['ROUND', 'PROVIDER', 'ATTEMPTS', 'TOOK', 'ERROR'], rows),
                  ...conditions,
                  ...(job.failure === undefined ? [] : [`failure: ${job.failure.message}`]),
                ].join('\n');
              });
              return job.state === 'failed' || job.state === 'expired' ? EXIT.failed : EXIT.ok;
            }),
        )
        .command(
          'watch <id>',
          'follow a job live until it ends',
          (c) =>
            c
              .positional('id', { type: 'string', demandOption: true })
              .example('$0 jobs watch j-abc', 'follow it'),
          (a) =>
            run(async () => {
              const client = clientFor(a);
              const job = (await client.request('GET', `/api/jobs/${path(a.id)}`)).body as JobView;
              const interactive = a.output === 'table' && process.stdout.isTTY;
              const final = ended(job.state)
                ? job
                : await watchJob(client, job, {
                    out: a.output === 'table' ? process.stdout : process.stderr,
                    interactive,
                  });
              if (a.output !== 'table') printData(final, a.output);
              else if (ended(job.state)) process.stdout.write(`${job.state}\n`);
              if (final.state !== 'succeeded') {
                process.stderr.write(
                  `consort: job ${final.id} ${final.state}: ${final.failure?.message ?? final.state}\n`,
                );
                return EXIT.failed;
              }
              return EXIT.ok;
            }),
        )
        .command(
          'cancel <id>',
          'ask the master to cancel a job',
          (c) =>
            c
              .positional('id', { type: 'string', demandOption: true })
              .example('$0 jobs cancel j-abc', 'stop it'),
          (a) =>
            run(async () => {
              const job = (await clientFor(a).request('POST', `/api/jobs/${path(a.id)}/cancel`))
                .body as JobView;
              show(a, job, () => `cancel requested for ${job.id}`);
              return EXIT.ok;
            }),
        )
        .demandCommand(1, 'name a jobs command: list, show, watch, cancel'),
    )
    .command(
      'schema [kind]',
      "the kinds, or one kind's attributes with their owners",
      (y) =>
        y
          .positional('kind', { type: 'string' })
          .example('$0 schema host', 'attributes of host and who owns them'),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          if (a.kind === undefined) {
            const body = (await client.request('GET', '/api/schema')).body as {
              kinds: { name: string; description?: string; providers: string[] }[];
            };
            show(a, body, () =>
              table(
                ['KIND', 'PROVIDERS', 'DESCRIPTION'],
                body.kinds.map((k) => [k.name, k.providers.join(','), k.description ?? '']),
              ),
            );
            return EXIT.ok;
          }
          const document = await fetchSchema(client, a.kind);
          show(a, document, () => {
            const rows: string[][] = [];
            const walk = (properties: Record<string, Schema>, prefix: string): void => {
              for (const [name, s] of Object.entries(properties)) {
                const type =
                  s['x-list-type'] === undefined
                    ? cell(s['type'] ?? (s['enum'] !== undefined ? 'enum' : ''))
                    : `${cell(s['type'])} (${cell(s['x-list-type'])})`;
                const values = s['enum'] === undefined ? '' : cell(s['enum']);
                rows.push([`${prefix}${name}`, type, cell(s['x-authority']), cell(s['x-watchers']), values]);
                const items = s['items'] as Schema | undefined;
                if (s['x-list-type'] === 'map' && items?.['properties'] !== undefined) {
                  walk(items['properties'] as Record<string, Schema>, `${prefix}${name}[*].`);
                }
              }
            };
            walk((document['properties'] ?? {}) as Record<string, Schema>, '');
            return table(['ATTRIBUTE', 'TYPE', 'AUTHORITY', 'WATCHERS', 'VALUES'], rows);
          });
          return EXIT.ok;
        }),
    )
    .command('token', 'API tokens (admin)', (y) =>
      y
        .command(
          'create',
          'make a token and print it (shown once)',
          (c) =>
            c
              .option('role', { choices: ['reader', 'operator', 'admin'] as const, demandOption: true })
              .option('description', { type: 'string' })
              .option('ttl', { type: 'number', describe: 'seconds until it expires' })
              .example('$0 token create --role operator --description "ci"', 'a token for CI'),
          (a) =>
            run(async () => {
              const body = {
                role: a.role,
                ...(a.description === undefined ? {} : { description: a.description }),
                ...(a.ttl === undefined ? {} : { ttlSeconds: a.ttl }),
              };
              const answer = await clientFor(a).request('POST', '/api/tokens', { body });
              const made = answer.body as { token: string };
              show(a, made, () => made.token);
              return EXIT.ok;
            }),
        )
        .command(
          'list',
          'list the tokens (never their secrets)',
          (c) => c.example('$0 token list', 'who can call the API'),
          (a) =>
            run(async () => {
              const answer = await clientFor(a).request('GET', '/api/tokens');
              const { items } = answer.body as {
                items: {
                  id: string;
                  role: string;
                  description: string | null;
                  createdAt: string;
                  expiresAt: string | null;
                }[];
              };
              show(a, items, () =>
                table(
                  ['ID', 'ROLE', 'DESCRIPTION', 'CREATED', 'EXPIRES'],
                  items.map((t) => [t.id, t.role, t.description ?? '', t.createdAt, t.expiresAt ?? 'never']),
                ),
              );
              return EXIT.ok;
            }),
        )
        .command(
          'revoke <id>',
          'revoke a token: it stops working at once on every web process',
          (c) =>
            c
              .positional('id', { type: 'string', demandOption: true, describe: 'the token id (token list)' })
              .example('$0 token revoke 3f9a1c0b7d2e', 'revoke a leaked token'),
          (a) =>
            run(async () => {
              const answer = await clientFor(a).request('DELETE', `/api/tokens/${path(a.id)}`);
              show(a, answer.body, () => `revoked ${a.id}`);
              return EXIT.ok;
            }),
        )
        .demandCommand(1, 'name a token command: create, list, revoke'),
    )
    .command('context', 'named servers in the config file', (y) =>
      y
        .command(
          'set <name>',
          'add or change a context',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('url', { type: 'string', demandOption: true })
              .option('token', { type: 'string' })
              .option('use', { type: 'boolean', describe: 'make it the current context' })
              .example(
                '$0 context set dev --url http://127.0.0.1:8080 --token cst_... --use',
                'talk to consortium dev',
              ),
          (a) =>
            run(() => {
              const config = readConfig();
              const contexts = {
                ...config.contexts,
                [a.name]: { url: a.url, ...(a.token === undefined ? {} : { token: a.token }) },
              };
              const current = a.use === true ? a.name : config['current-context'];
              const file = writeConfig({
                ...(current === undefined ? {} : { 'current-context': current }),
                contexts,
              });
              process.stdout.write(
                `context ${a.name} saved in ${file}${a.use === true ? ' and in use' : ''}\n`,
              );
              return Promise.resolve(EXIT.ok);
            }),
        )
        .command(
          'use <name>',
          'switch the current context',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .example('$0 context use prod', 'switch'),
          (a) =>
            run(() => {
              const config = readConfig();
              if (config.contexts[a.name] === undefined)
                throw usage(`no context "${a.name}" in ${configPath()}`);
              writeConfig({ ...config, 'current-context': a.name });
              process.stdout.write(`now using context ${a.name}\n`);
              return Promise.resolve(EXIT.ok);
            }),
        )
        .command(
          'list',
          'the contexts',
          (c) => c.example('$0 context list', 'all of them'),
          (a) =>
            run(() => {
              const config = readConfig();
              const rows = Object.entries(config.contexts).map(([name, c]) => [
                name === config['current-context'] ? `* ${name}` : `  ${name}`,
                c.url,
              ]);
              show(a, config.contexts, () => table(['CONTEXT', 'URL'], rows));
              return Promise.resolve(EXIT.ok);
            }),
        )
        .demandCommand(1, 'name a context command: set, use, list'),
    )
    .command(
      'completion [shell]',
      'print a shell completion script (bash or zsh)',
      (y) =>
        y
          .positional('shell', { choices: ['bash', 'zsh'] as const, default: 'bash' as const })
          .example('source <($0 completion bash)', 'complete consort in bash')
          .example('$0 completion zsh > ~/.zfunc/_consort', 'for zsh'),
      () => {
        completer.showCompletionScript();
      },
    )
    .completion('__complete', false)
    .demandCommand(1, 'name a command (consort --help lists them)')
    .fail((message, error: Error | undefined) => {
      if (error instanceof CliError) {
        process.stderr.write(`consort: ${error.message}\n`);
        process.exit(error.exitCode);
      }
      process.stderr.write(
        `consort: ${message || (error?.message ?? 'usage error')}\nRun consort --help for usage.\n`,
      );
      process.exit(EXIT.usage);
    })
    .help()
    .version(false);
}

/** Columns of kinds whose most common attributes are not the ones an operator looks for (capacity). */
const KIND_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  hypervisor: ['datacenter', 'schedulable', 'memory_free_mib', 'memory_total_mib', 'vcpus', 'domains'],
};

function defaultColumns(items: readonly Record<string, unknown>[]): string[] {
  const counts = new Map<string, number>();
  for (const attrs of items) {
    for (const [key, value] of Object.entries(attrs)) {
      if (key === 'present' || (typeof value === 'object' && value !== null && !Array.isArray(value)))
        continue;
      if (Array.isArray(value) && value.some((v) => typeof v === 'object')) continue;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([key]) => key)
    .sort();
}

const args = hideBin(process.argv);
// yargs picks its completion template from $SHELL when it is built.
if (args[0] === 'completion') process.env['SHELL'] = args[1] === 'zsh' ? '/bin/zsh' : '/bin/bash';
const completer = cli(args);
await completer.parseAsync();
