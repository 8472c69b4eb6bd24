/**
 * The store registry: `store.driver` names an adapter package, loaded only when a process asks for it, so that a
 * deployment installs only the adapter it uses. An unknown driver, a missing package or an unreachable store is a
 * one-line start-up error that names it.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { Store } from '@consortium/core';
import { BackendUnavailableError, InputError } from '@consortium/core';
import type { Config, StoreConfig, StoreDriver, TlsFiles } from './config.js';

/** What every adapter is opened with: the store config resolved (password read, TLS files loaded). */
export interface StoreOpenOptions {
  readonly config: StoreConfig;
  readonly dataDir: string;
  readonly password?: string;
  readonly tls?: ConnectionOptions;
  /** Apply pending migrations (false: refuse to start when the schema is behind). */
  readonly runMigrations: boolean;
}

/** One adapter: the package it lives in and how to open (and explicitly migrate) a store with it. */
interface StoreAdapter {
  readonly module: string;
  open(module: Record<string, unknown>, options: StoreOpenOptions): Promise<Store>;
  migrate?(module: Record<string, unknown>, options: StoreOpenOptions): Promise<readonly number[]>;
}

type AdapterFunction = (options: Record<string, unknown>) => Promise<unknown>;

function exported(module: Record<string, unknown>, name: string, packageName: string): AdapterFunction {
  const value = module[name];
  if (typeof value !== 'function') {
    throw new InputError(`the store package ${packageName} does not export ${name}()`);
  }
  return value as AdapterFunction;
}

function isStore(value: unknown): value is Store {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)['getNode'] === 'function' &&
    typeof (value as Record<string, unknown>)['close'] === 'function'
  );
}

async function openWith(
  module: Record<string, unknown>,
  packageName: string,
  name: string,
  options: Record<string, unknown>,
): Promise<Store> {
  const store = await exported(module, name, packageName)(options);
  if (!isStore(store)) throw new InputError(`${packageName} ${name}() did not return a store`);
  return store;
}

/** The URL with the password filled in from the environment or a file. */
function urlWithPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

const ADAPTERS: Readonly<Record<StoreDriver, StoreAdapter>> = {
  sqlite: {
    module: '@consortium/store-sqlite',
    open: async (module, { config, dataDir }) => {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      return openWith(module, '@consortium/store-sqlite', 'openSqliteStore', {
        path: config.path ?? join(dataDir, 'consortium.db'),
      });
    },
  },
  postgres: {
    module: '@consortium/store-postgres',
    open: async (module, options) =>
      openWith(module, '@consortium/store-postgres', 'openPostgresStore', postgresOptions(options)),
    migrate: async (module, options) => {
      const result = await exported(
        module,
        'migratePostgres',
        '@consortium/store-postgres',
      )(postgresOptions(options));
      return (result as { applied: readonly number[] }).applied;
    },
  },
  arangodb: {
    module: '@consortium/store-arangodb',
    open: async (module, options) =>
      openWith(module, '@consortium/store-arangodb', 'openArangoStore', arangoOptions(options)),
    migrate: async (module, options) => {
      const result = await exported(
        module,
        'migrateArango',
        '@consortium/store-arangodb',
      )(arangoOptions(options));
      return (result as { applied: readonly number[] }).applied;
    },
  },
};

function arangoOptions({ config, password, tls, runMigrations }: StoreOpenOptions): Record<string, unknown> {
  return {
    url: config.url,
    database: config.database ?? 'consortium',
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
    runMigrations,
  };
}

function postgresOptions({
  config,
  password,
  tls,
  runMigrations,
}: StoreOpenOptions): Record<string, unknown> {
  return {
    url: urlWithPassword(config.url ?? '', password),
    ...(config.poolSize === undefined ? {} : { poolSize: config.poolSize }),
    ...(config.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: config.statementTimeoutMs }),
    ...(tls === undefined ? {} : { ssl: tls }),
    runMigrations,
  };
}

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new InputError(
      `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** Loads the PEM files of a TLS client; `servername` checks the certificate against this host name. */
export function tlsOptions(files: TlsFiles | undefined, what: string): ConnectionOptions | undefined {
  if (files === undefined) return undefined;
  return {
    rejectUnauthorized: true,
    ...(files.ca === undefined ? {} : { ca: readSecretFile(files.ca, `${what} CA file`) }),
    ...(files.cert === undefined ? {} : { cert: readSecretFile(files.cert, `${what} certificate file`) }),
    ...(files.key === undefined ? {} : { key: readSecretFile(files.key, `${what} key file`) }),
  };
}

/** Reads a secret from an environment variable, or else from a file; undefined when neither is set. */
export function secretOf(
  env: NodeJS.ProcessEnv,
  variable: string,
  file: string | undefined,
  what: string,
): string | undefined {
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return file === undefined ? undefined : readSecretFile(file, what);
}

/** Loads an adapter package by name; tests pass their own to see a missing package. */
export type ModuleLoader = (name: string) => Promise<unknown>;

const importModule: ModuleLoader = (name) => import(name);

async function importAdapter(
  driver: StoreDriver,
  load: ModuleLoader,
): Promise<[StoreAdapter, Record<string, unknown>]> {
  if (!Object.hasOwn(ADAPTERS, driver)) {
    throw new InputError(
      `unknown store driver "${driver as string}" (known: ${Object.keys(ADAPTERS).join(', ')})`,
    );
  }
  const adapter = ADAPTERS[driver];
  try {
    return [adapter, (await load(adapter.module)) as Record<string, unknown>];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && (error as Error).message.includes(adapter.module)) {
      throw new InputError(
        `store driver ${driver} needs the package ${adapter.module}, which is not installed`,
      );
    }
    throw error;
  }
}

function openOptions(config: Config, env: NodeJS.ProcessEnv, runMigrations: boolean): StoreOpenOptions {
  const password = secretOf(
    env,
    'CONSORTIUM_STORE_PASSWORD',
    config.store.passwordFile,
    'store password file',
  );
  const tls = tlsOptions(config.store.tls, 'store');
  return {
    config: config.store,
    dataDir: config.dataDir,
    runMigrations,
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
  };
}

/** Where a store lives, for messages: the SQLite path or the URL without its password. */
export function storeLocation(config: Config): string {
  if (config.store.driver === 'sqlite') return config.store.path ?? join(config.dataDir, 'consortium.db');
  const url = new URL(config.store.url ?? '');
  url.password = '';
  return url.toString();
}

/**
 * Opens the store the config names. Throws `InputError` for an unknown driver or a missing adapter package, and
 * `BackendUnavailableError` naming the store when it cannot be reached.
 */
export async function openConfiguredStore(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
  load: ModuleLoader = importModule,
): Promise<Store> {
  const driver = config.store.driver;
  const [adapter, module] = await importAdapter(driver, load);
  const options = openOptions(config, env, config.store.migrations !== 'manual');
  try {
    return await adapter.open(module, options);
  } catch (error) {
    if (error instanceof InputError || error instanceof BackendUnavailableError) throw error;
    throw new BackendUnavailableError(
      `cannot open the ${driver} store at ${storeLocation(config)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Applies the store's pending migrations and returns their versions; SQLite migrates whenever it opens. */
export async function migrateConfiguredStore(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
  load: ModuleLoader = importModule,
): Promise<readonly number[]> {
  const [adapter, module] = await importAdapter(config.store.driver, load);
  const options = openOptions(config, env, true);
  if (adapter.migrate !== undefined) return adapter.migrate(module, options);
  const store = await adapter.open(module, options);
  await store.close();
  return [];
}
