/** `consort context set|use|list`: the named servers (URL and token) in consort's config file. */
import type { Argv } from 'yargs';
import type { GlobalOptions, RunCommand } from './command-line.js';
import { show } from './command-line.js';
import { configPath, readConfig, writeConfig } from './config.js';
import { EXIT, usage } from './errors.js';
import { table } from './render.js';

/** `consort context ...`: reads and writes the config file only, never a server. */
export function contextCommands(y: Argv<GlobalOptions>, run: RunCommand) {
  return y
    .command(
      'set <name>',
      'add or change a context',
      (c) =>
        c
          .positional('name', { type: 'string', demandOption: true, describe: 'the context name' })
          .option('url', { type: 'string', demandOption: true, describe: 'the server URL' })
          .option('token', { type: 'string', describe: 'the API token (cst_...)' })
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
          process.stdout.write(`context ${a.name} saved in ${file}${a.use === true ? ' and in use' : ''}\n`);
          return Promise.resolve(EXIT.ok);
        }),
    )
    .command(
      'use <name>',
      'switch the current context',
      (c) =>
        c
          .positional('name', { type: 'string', demandOption: true, describe: 'the context name' })
          .example('$0 context use prod', 'switch'),
      (a) =>
        run(() => {
          const config = readConfig();
          if (config.contexts[a.name] === undefined) throw usage(`no context "${a.name}" in ${configPath()}`);
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
    .demandCommand(1, 'name a context command: set, use, list');
}
