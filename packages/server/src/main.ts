/**
 * The `consortium` binary. `consortium dev` runs everything in one process with embedded defaults and prints
 * `url: ...` and `token: ...` on stdout; `consortium token create` makes an API token in the store.
 */
import { ConsortiumError, InputError } from '@consortium/core';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { Config, ConfigOverrides, StoreConfig } from './config.js';
import { loadConfig } from './config.js';
import { copyStore, transferable } from './store-copy.js';
import type { CopyProgress } from './store-copy.js';
import { migrateConfiguredStore, openConfiguredStore, storeLocation } from './stores.js';
import cliProgress from 'cli-progress';
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

/** The config with its store replaced by the one `spec` names: a `postgres://` or `http(s)://` URL, or a path. */
function withStore(config: Config, spec: string | undefined): Config {
  if (spec === undefined) return config;
  const scheme = /^([a-z]+):\/\//.exec(spec)?.[1];
  const driver: StoreConfig['driver'] =
    scheme === undefined
      ? 'sqlite'
      : scheme === 'postgres' || scheme === 'postgresql'
        ? 'postgres'
        : scheme === 'http' || scheme === 'https'
          ? 'arangodb'
          : ((): never => {
              throw new InputError(
                `a store is a path (SQLite), postgres://... or http(s)://..., not ${spec}`,
              );
            })();
  const shared = config.store.driver === driver ? config.store : { driver };
  return {
    ...config,
    store: driver === 'sqlite' ? { ...shared, driver, path: spec } : { ...shared, driver, url: spec },
  };
}

/** A progress bar on a terminal; elsewhere one line per record type copied. */
function copyProgress(): CopyProgress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: 'copying [{bar}] {value}/{total} records ({type}s) {eta_formatted} left',
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    return {
      start: (total) => {
        bar.start(total, 0, { type: 'node' });
      },
      advance: (copied, type) => {
        bar.update(copied, { type });
      },
      stop: () => {
        bar.stop();
      },
    };
  }
  let last: string | undefined;
  return {
    start: (total) => process.stderr.write(`copying ${total} records\n`),
    advance: (copied, type) => {
      if (type !== last) process.stderr.write(`copying ${type}s (${copied} records so far)\n`);
      last = type;
    },
    stop: () => undefined,
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
          // The console signs in with the token printed here; it lives in the tab's session storage only.
          process.stdout.write(`url: ${url}\ntoken: ${token}\nconsole: ${url}/ (sign in with the token)\n`);
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
  .command('store', 'manage the store: apply migrations, copy to another store', (y) =>
    y
      .command(
        'migrate',
        'apply pending migrations to the configured store (for deployments whose processes run with store.migrations: manual)',
        (c) =>
          c.example('$0 store migrate --config /etc/consortium/cluster.yaml', 'migrate the cluster store'),
        async (args) => {
          try {
            const config = loadConfig(overrides(args));
            const applied = await migrateConfiguredStore(config);
            process.stdout.write(
              applied.length === 0
                ? `${storeLocation(config)}: up to date\n`
                : `${storeLocation(config)}: applied migrations ${applied.join(', ')}\n`,
            );
          } catch (error) {
            fail(error);
          }
        },
      )
      .command(
        'copy',
        'copy every node, job, event, audit entry, token and reservation to another store, then verify',
        (c) =>
          c
            .option('from', {
              type: 'string',
              demandOption: true,
              describe: 'the source: a SQLite file, postgres://... or http(s)://... (ArangoDB)',
            })
            .option('to', { type: 'string', describe: 'the target (default: the configured store)' })
            .option('force', {
              type: 'boolean',
              default: false,
              describe: 'copy into a target that is not empty',
            })
            .example(
              '$0 store copy --from .data/consortium.db --config cluster.yaml',
              'move a dev store into the cluster store the config names',
            ),
        async (args) => {
          try {
            const config = loadConfig(overrides(args));
            const fromConfig = withStore(config, args.from);
            const toConfig = withStore(config, args.to);
            if (storeLocation(fromConfig) === storeLocation(toConfig)) {
              throw new InputError('the source and the target are the same store');
            }
            const from = transferable(await openConfiguredStore(fromConfig), 'source');
            try {
              const to = transferable(await openConfiguredStore(toConfig), 'target');
              try {
                const report = await copyStore(from, to, { force: args.force, progress: copyProgress() });
                const counts = Object.entries(report.copied)
                  .map(([type, n]) => `${n} ${type}s`)
                  .join(', ');
                process.stdout.write(
                  `copied ${counts} to ${storeLocation(toConfig)}; ` +
                    (report.checksumVerified
                      ? `checksum ${report.checksum} verified\n`
                      : 'counts verified (the target was not empty, so no whole checksum)\n'),
                );
              } finally {
                await to.close();
              }
            } finally {
              await from.close();
            }
          } catch (error) {
            fail(error);
          }
        },
      )
      .demandCommand(1, 'name a store command: migrate, copy'),
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
  .demandCommand(1, 'name a command: dev, web, master, worker, token, store')
  .fail((message, error: Error | undefined) => {
    if (error !== undefined) fail(error);
    process.stderr.write(`consortium: ${message}\nRun consortium --help for usage.\n`);
    process.exit(2);
  })
  .help()
  .parseAsync();
