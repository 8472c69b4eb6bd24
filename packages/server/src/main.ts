/**
 * The `consortium` binary. `consortium dev` runs everything in one process with embedded defaults and prints
 * `url: ...` and `token: ...` on stdout; `consortium token create` makes an API token in the store.
 */
import { ConsortiumError, InputError } from '@consortium/core';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { ConfigOverrides } from './config.js';
import { loadConfig } from './config.js';
import type { Role } from './process.js';
import { VERSION, openStore, startDev, startRoles } from './process.js';
import { createToken } from './tokens.js';

interface CommonArgs {
  config?: string | undefined;
  'data-dir'?: string | undefined;
  'log-level'?: string | undefined;
  port?: number | undefined;
  host?: string | undefined;
}

function overrides(args: CommonArgs): ConfigOverrides {
  return {
    ...(args.config === undefined ? {} : { configFile: args.config }),
    ...(args['data-dir'] === undefined ? {} : { dataDir: args['data-dir'] }),
    ...(args['log-level'] === undefined ? {} : { logLevel: args['log-level'] }),
    ...(args.port === undefined ? {} : { port: args.port }),
    ...(args.host === undefined ? {} : { host: args.host }),
  };
}

function fail(error: unknown): never {
  const message = error instanceof ConsortiumError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`consortium: ${message}\n`);
  process.exit(error instanceof ConsortiumError && error.httpStatus < 500 ? 2 : 1);
}

await yargs(hideBin(process.argv))
  .scriptName('consortium')
  .version(VERSION)
  .strict()
  .option('config', { type: 'string', describe: 'YAML config file (or CONSORTIUM_CONFIG)' })
  .option('data-dir', { type: 'string', describe: 'where the embedded store lives (or CONSORTIUM_DATA_DIR)' })
  .option('log-level', { type: 'string', choices: ['error', 'warn', 'info', 'debug'] })
  .command(
    'dev',
    'run web, master and worker in one process with the embedded store',
    (y) =>
      y
        .option('port', { type: 'number', describe: 'HTTP port (0 picks a free one)' })
        .option('host', { type: 'string', describe: 'address to listen on (default 127.0.0.1)' })
        .example('$0 dev --port 8080 --data-dir ./.data', 'start on port 8080, keeping state in ./.data'),
    async (args) => {
      try {
        const config = loadConfig(overrides(args));
        const running = await startDev(config, ({ url, token }) => {
          process.stdout.write(`url: ${url}\ntoken: ${token}\n`);
        });
        const onSignal = (): void => {
          running.logger.info(
            'shutting down: finishing tasks in flight (press Ctrl-C again to stop at once)',
          );
          running.stop();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        await running.done;
      } catch (error) {
        fail(error);
      }
    },
  )
  .command('token', 'manage API tokens', (y) =>
    y
      .command(
        'create',
        'create a token and print it (shown once)',
        (c) =>
          c
            .option('role', { type: 'string', demandOption: true, choices: ['reader', 'operator', 'admin'] })
            .option('description', { type: 'string' })
            .option('ttl', { type: 'number', describe: 'seconds until it expires' })
            .example('$0 token create --role operator --data-dir ./.data', 'a token for an operator'),
        async (args) => {
          try {
            const config = loadConfig(overrides(args));
            const store = await openStore(config);
            const { secret } = await createToken(store, {
              role: args.role,
              now: Date.now(),
              ...(args.description === undefined ? {} : { description: args.description }),
              ...(args.ttl === undefined ? {} : { ttlSeconds: args.ttl }),
            });
            await store.close();
            process.stdout.write(`${secret}\n`);
          } catch (error) {
            fail(error);
          }
        },
      )
      .demandCommand(1, 'name a token command: create'),
  )
  .command(
    ['web', 'master', 'worker'],
    'run one role of a cluster (web: the API; master: leader election and jobs; worker: provider tasks)',
    (y) =>
      y
        .option('port', {
          type: 'number',
          describe:
            'HTTP port: the API for web; /healthz and /metrics for master and worker (0 picks a free one)',
        })
        .option('host', { type: 'string', describe: 'address the web role listens on' })
        .example(
          '$0 master --config /etc/consortium/config.yaml',
          'a master (one leads, the others stand by)',
        )
        .example('CONSORTIUM_ETCD_ENDPOINTS=http://10.0.0.5:2379 $0 worker', 'a worker'),
    async (args) => {
      try {
        const role = String(args._[0]) as Role;
        const config = loadConfig(overrides(args));
        if (config.coordinator.driver !== 'etcd') {
          throw new InputError(
            `consortium ${role} runs one role of a cluster and needs etcd: set coordinator.driver: etcd and coordinator.endpoints (or CONSORTIUM_ETCD_ENDPOINTS); for one process use \`consortium dev\``,
          );
        }
        const running = await startRoles(
          config,
          [role],
          ({ url }) => {
            process.stdout.write(`url: ${url}\n`);
          },
          role === 'web' || args.port === undefined ? {} : { metricsPort: args.port },
        );
        const onSignal = (): void => {
          running.logger.info('shutting down (press Ctrl-C again to stop at once)');
          running.stop();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        await running.done;
      } catch (error) {
        fail(error);
      }
    },
  )
  .demandCommand(1, 'name a command: dev, web, master, worker, token')
  .fail((message, error: Error | undefined) => {
    if (error !== undefined) fail(error);
    process.stderr.write(`consortium: ${message}\nRun consortium --help for usage.\n`);
    process.exit(2);
  })
  .help()
  .parseAsync();
