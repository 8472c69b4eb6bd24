/**
 * Changing the inventory: `consort create`, `consort set` and `consort delete` (one node, or with -l every node a
 * query selects, as a batch), and `consort explain`, which shows what a change would do without doing it.
 */
import type { Argv } from 'yargs';
import { withTarget } from './arguments.js';
import { batchOptions, batchRequest, runBatch } from './batch-commands.js';
import { change, changeOptions } from './change.js';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { schemaModule, urlPath } from './command-line.js';
import { usage } from './errors.js';
import type { Schema } from './schema.js';

/** Registers `create`, `set`, `delete` and `explain` on the command line. */
export function changeCommands<T extends GlobalOptions>(
  y: Argv<T>,
  clientFor: ClientFor,
  run: RunCommand,
): Argv<T> {
  return y
    .command(
      'create <kind> <name> [assignments..]',
      'create a node and follow its job',
      (c) =>
        changeOptions(withTarget(c))
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
          const { attrsFromUpdates, fetchSchema, parseAssignments } = await schemaModule();
          const schema = await fetchSchema(client, a.kind);
          const attrs = attrsFromUpdates(schema, parseAssignments(a.kind, schema, a.assignments ?? []));
          return change(client, a, (c, q) =>
            c.request('POST', `/api/inventory/${urlPath(a.kind)}${q}`, { body: { name: a.name, attrs } }),
          );
        }),
    )
    .command(
      'set <kind> <name> [assignments..]',
      'change a node (or, with -l, every node a query selects) and follow its job',
      (c) =>
        batchOptions(changeOptions(withTarget(c)))
          .positional('assignments', {
            type: 'string',
            array: true,
            describe: 'key=value, key+=item, key-=item, key- (unset), key[eth0].ip=...',
          })
          .option('if-revision', { type: 'number', describe: 'only if the node is still at this revision' })
          .example('$0 set host web-01 power=off', 'power off')
          .example(
            '$0 set host web-01 puppet_roles+=haproxy puppet_roles-=nginx description-',
            'edit a set list, unset a value',
          )
          .example(
            "$0 set host -l 'datacenter=pek1 and hwspec=small' puppet_roles+=nginx",
            'one change for every host the query selects, as a batch',
          ),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          const { fetchSchema, parseAssignments } = await schemaModule();
          const schema = await fetchSchema(client, a.kind);
          // With -l there is no node name: the first word is the first assignment.
          const words = a.selector === undefined ? (a.assignments ?? []) : [a.name, ...(a.assignments ?? [])];
          if (words.length === 0) throw usage('name at least one change: key=value, key+=item, key-');
          const updates = parseAssignments(a.kind, schema, words);
          if (a.selector !== undefined) return runBatch(client, batchRequest(a, updates));
          const headers: Record<string, string> =
            a.ifRevision === undefined ? {} : { 'if-match': `"${a.ifRevision}"` };
          return change(client, a, (c, q) =>
            c.request('PATCH', `/api/inventory/${urlPath(a.kind, a.name)}${q}`, {
              body: updates,
              type: 'application/vnd.consortium.updates+json',
              headers,
            }),
          );
        }),
    )
    .command(
      'delete <kind> [name]',
      'delete a node (or, with -l, every node a query selects): every provider removes what it owns',
      (c) =>
        batchOptions(changeOptions(withTarget(c)))
          .example('$0 delete host web-01', 'deprovision')
          .example("$0 delete host -l 'subcluster=old' --dry-run", 'what deleting every old host would do'),
      (a) =>
        run(() => {
          // withTarget types the name as given; with -l it is not.
          const name = a.name as string | undefined;
          if (a.selector !== undefined) {
            if (name !== undefined) throw usage('give a node name or -l <query>, not both');
            return runBatch(clientFor(a), batchRequest(a, undefined));
          }
          if (name === undefined) throw usage('name the node to delete, or select nodes with -l <query>');
          return change(clientFor(a), a, (c, q) =>
            c.request('DELETE', `/api/inventory/${urlPath(a.kind, name)}${q}`),
          );
        }),
    )
    .command(
      'explain <action> <kind> <name> [assignments..]',
      'show what a change would do, round by round, without doing it (a reader may)',
      (c) =>
        withTarget(
          c.positional('action', {
            choices: ['create', 'set', 'delete'] as const,
            demandOption: true,
            describe: 'the change to explain',
          }),
        )
          .positional('assignments', {
            type: 'string',
            array: true,
            describe: 'key=value, key+=item, ... as for create and set',
          })
          .example(
            '$0 explain create host web-02 hwspec=small subnet=pek1-web power=on',
            'the plan of a provisioning',
          ),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          const target = `/api/inventory/${urlPath(a.kind, a.name)}`;
          const args = { ...a, wait: false, explain: true };
          if (a.action === 'delete')
            return change(client, args, (c, q) => c.request('DELETE', `${target}${q}`));
          const { attrsFromUpdates, fetchSchema, parseAssignments } = await schemaModule();
          const schema: Schema = await fetchSchema(client, a.kind);
          const updates = parseAssignments(a.kind, schema, a.assignments ?? []);
          if (a.action === 'create') {
            const attrs = attrsFromUpdates(schema, updates);
            return change(client, args, (c, q) =>
              c.request('POST', `/api/inventory/${urlPath(a.kind)}${q}`, { body: { name: a.name, attrs } }),
            );
          }
          return change(client, args, (c, q) =>
            c.request('PATCH', `${target}${q}`, {
              body: updates,
              type: 'application/vnd.consortium.updates+json',
            }),
          );
        }),
    );
}
