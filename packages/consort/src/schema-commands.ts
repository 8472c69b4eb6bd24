/** `consort schema [kind]`: the kinds, or one kind's attributes with their owners, descriptions and references. */
import type { Argv } from 'yargs';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { schemaModule, show } from './command-line.js';
import { EXIT } from './errors.js';
import { cell } from './render.js';
import type { Schema } from './schema.js';

/** Registers `schema` on the command line. */
export function schemaCommands<T extends GlobalOptions>(
  y: Argv<T>,
  clientFor: ClientFor,
  run: RunCommand,
): Argv<T> {
  return y.command(
    'schema [kind]',
    "the kinds, or one kind's attributes with their owners, descriptions and references",
    (c) =>
      c
        .positional('kind', { type: 'string', describe: 'a kind; without it, every kind' })
        .example('$0 schema host', 'attributes of host, who owns them, what they mean'),
    (a) =>
      run(async () => {
        const client = clientFor(a);
        if (a.kind === undefined) {
          const body = (await client.request('GET', '/api/schema')).body as {
            kinds: { name: string; description?: string; providers: string[] }[];
          };
          show(a, body, () => ({
            headers: ['KIND', 'PROVIDERS', 'DESCRIPTION'],
            rows: body.kinds.map((k) => [k.name, k.providers.join(','), k.description ?? '']),
          }));
          return EXIT.ok;
        }
        const { fetchSchema } = await schemaModule();
        const document = await fetchSchema(client, a.kind);
        show(a, document, () => {
          const rows: string[][] = [];
          const walk = (properties: Record<string, Schema>, prefix: string): void => {
            for (const [name, s] of Object.entries(properties)) {
              const items = s['items'] as Schema | undefined;
              const type =
                s['x-list-type'] === undefined
                  ? cell(s['type'] ?? (s['enum'] !== undefined ? 'enum' : ''))
                  : `${cell(s['type'])} (${cell(s['x-list-type'])})`;
              const values = s['enum'] === undefined ? cell(items?.['enum']) : cell(s['enum']);
              const ref = s['x-ref'] ?? items?.['x-ref'];
              rows.push([
                `${prefix}${name}`,
                type,
                cell(s['x-authority']),
                ref === undefined ? '' : `-> ${cell(ref)}`,
                values,
                cell(s['description']),
              ]);
              if (s['x-list-type'] === 'map' && items?.['properties'] !== undefined) {
                walk(items['properties'] as Record<string, Schema>, `${prefix}${name}[*].`);
              }
            }
          };
          walk((document['properties'] ?? {}) as Record<string, Schema>, '');
          return {
            headers: ['ATTRIBUTE', 'TYPE', 'AUTHORITY', 'REFERS TO', 'VALUES', 'DESCRIPTION'],
            rows,
          };
        });
        return EXIT.ok;
      }),
  );
}
