/** `consort token create|list|revoke`: the API tokens people and scripts call Consortium with (admin). */
import type { Argv } from 'yargs';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { show, urlPath } from './command-line.js';
import { EXIT } from './errors.js';
import { table } from './render.js';

/** A token as `GET /api/tokens` lists it: never its secret. */
interface TokenView {
  id: string;
  role: string;
  description: string | null;
  createdAt: string;
  expiresAt: string | null;
}

/** `consort token ...`. */
export function tokenCommands(y: Argv<GlobalOptions>, clientFor: ClientFor, run: RunCommand) {
  return y
    .command(
      'create',
      'make a token and print it (shown once)',
      (c) =>
        c
          .option('role', {
            choices: ['reader', 'operator', 'admin'] as const,
            demandOption: true,
            describe: 'reader reads (and explains), operator changes, admin also manages tokens',
          })
          .option('description', {
            type: 'string',
            describe: 'who or what uses it; jobs and the audit log show it',
          })
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
          const { items } = answer.body as { items: TokenView[] };
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
          .positional('id', {
            type: 'string',
            demandOption: true,
            describe: 'the token id (token list)',
          })
          .example('$0 token revoke 3f9a1c0b7d2e', 'revoke a leaked token'),
      (a) =>
        run(async () => {
          const answer = await clientFor(a).request('DELETE', `/api/tokens/${urlPath(a.id)}`);
          show(a, answer.body, () => `revoked ${a.id}`);
          return EXIT.ok;
        }),
    )
    .demandCommand(1, 'name a token command: create, list, revoke');
}
