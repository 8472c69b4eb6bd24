/**
 * Configuration: a YAML file (optional) overlaid with environment variables and command-line flags, validated
 * against one schema with a clear message per problem. Defaults run everything embedded in one process.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { InputError, formatSchemaErrors } from '@consortium/core';
import { parse as parseYaml } from 'yaml';

/** One plugin to load: its module name and its own config section. */
export interface PluginConfig {
  readonly module: string;
  readonly config?: Record<string, unknown>;
}

/** PEM files of a TLS client: the CA to verify the server with, and the client's certificate and key. */
export interface TlsFiles {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** The store drivers a process can open. */
export type StoreDriver = 'sqlite' | 'postgres' | 'arangodb';

/**
 * Where the store lives. `sqlite` keeps one file on this host (`path`, default `<dataDir>/consortium.db`); the
 * cluster stores take a `url` whose password comes from `CONSORTIUM_STORE_PASSWORD` or `passwordFile`, never from
 * the config file.
 */
export interface StoreConfig {
  readonly driver: StoreDriver;
  readonly path?: string;
  /** `postgres://user@host:5432/db` or `http(s)://host:8529` (ArangoDB; `database` names the database). */
  readonly url?: string;
  readonly database?: string;
  readonly passwordFile?: string;
  /** For PostgreSQL, `ca` turns on `sslmode=verify-full`; `cert` and `key` authenticate this process. */
  readonly tls?: TlsFiles;
  readonly poolSize?: number;
  readonly statementTimeoutMs?: number;
  /** `auto` (default) applies pending migrations at start-up; `manual` refuses to start until `store migrate`. */
  readonly migrations?: 'auto' | 'manual';
}

/** The whole configuration of a `consortium` process. */
export interface Config {
  readonly cluster: string;
  readonly dataDir: string;
  readonly web: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimit: string;
    /** Time a client has to send a request's headers, and the whole request (408 after that). */
    readonly headersTimeoutSeconds: number;
    readonly requestTimeoutSeconds: number;
    /** Serve HTTPS with this certificate and key (PEM files) instead of HTTP. */
    readonly tls?: { readonly cert: string; readonly key: string };
    /** Trust `X-Forwarded-*` from these proxies (express's `trust proxy`: `loopback`, addresses, CIDRs). */
    readonly trustProxy?: string | readonly string[];
  };
  readonly store: StoreConfig;
  readonly coordinator: {
    readonly driver: 'memory' | 'etcd';
    /** etcd client URLs (cluster mode). */
    readonly endpoints?: readonly string[];
    /** Key prefix in etcd; default `/consortium/<cluster>/`. */
    readonly prefix?: string;
    /** TTL of each process's session lease in seconds; default 10. */
    readonly leaseTtlSeconds?: number;
    /** TLS with client certificates (PEM files) for `https://` endpoints. */
    readonly tls?: TlsFiles;
    /** etcd's own authentication; the password from `CONSORTIUM_ETCD_PASSWORD` or `passwordFile`. */
    readonly auth?: { readonly username: string; readonly passwordFile?: string };
  };
  readonly worker: { readonly concurrency: number };
  readonly planner: {
    readonly maxRounds: number;
    readonly ttlSeconds: number;
    readonly maxTaskAttempts: number;
  };
  /** Seconds between passes of periodic observe (drift detection); 0 turns it off. */
  readonly observe: { readonly intervalSeconds: number };
  /**
   * Deliveries of hooks: attempts per delivery (through the `hooks` queue, with its exponential backoff), failed
   * attempts in a row after which a hook is disabled, and how long a receiver has to answer.
   */
  readonly hooks: {
    readonly maxAttempts: number;
    readonly maxFailures: number;
    readonly timeoutSeconds: number;
  };
  readonly log: {
    readonly level: 'error' | 'warn' | 'info' | 'debug';
    readonly format: 'auto' | 'json' | 'pretty';
  };
  readonly plugins: readonly PluginConfig[];
}

/** The built-in plugins `consortium dev` loads when the config names none. */
export const DEFAULT_PLUGINS: readonly PluginConfig[] = [
  { module: '@consortium/plugin-inventory' },
  { module: '@consortium/plugin-ipam' },
  { module: '@consortium/plugin-sandbox' },
];

const tlsFilesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ca: { type: 'string', minLength: 1 },
    cert: { type: 'string', minLength: 1 },
    key: { type: 'string', minLength: 1 },
  },
} as const;

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cluster: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    dataDir: { type: 'string', minLength: 1 },
    web: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        bodyLimit: { type: 'string', pattern: '^[0-9]+(b|kb|mb)$' },
        headersTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
        requestTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: { cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
        },
        trustProxy: {
          oneOf: [
            { type: 'string', minLength: 1 },
            { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
          ],
        },
      },
    },
    store: {
      type: 'object',
      additionalProperties: false,
      properties: {
        driver: { enum: ['sqlite', 'postgres', 'arangodb'] },
        path: { type: 'string', minLength: 1 },
        url: { type: 'string', pattern: '^(postgres|postgresql|http|https)://' },
        database: { type: 'string', minLength: 1 },
        passwordFile: { type: 'string', minLength: 1 },
        tls: tlsFilesSchema,
        poolSize: { type: 'integer', minimum: 1, maximum: 1000 },
        statementTimeoutMs: { type: 'integer', minimum: 1 },
        migrations: { enum: ['auto', 'manual'] },
      },
    },
    coordinator: {
      type: 'object',
      additionalProperties: false,
      properties: {
        driver: { enum: ['memory', 'etcd'] },
        endpoints: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^https?://' } },
        prefix: { type: 'string', pattern: '^/' },
        leaseTtlSeconds: { type: 'integer', minimum: 2, maximum: 300 },
        tls: tlsFilesSchema,
        auth: {
          type: 'object',
          additionalProperties: false,
          required: ['username'],
          properties: {
            username: { type: 'string', minLength: 1 },
            passwordFile: { type: 'string', minLength: 1 },
          },
        },
      },
    },
    worker: {
      type: 'object',
      additionalProperties: false,
      properties: { concurrency: { type: 'integer', minimum: 1, maximum: 1024 } },
    },
    planner: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxRounds: { type: 'integer', minimum: 1 },
        ttlSeconds: { type: 'integer', minimum: 1 },
        maxTaskAttempts: { type: 'integer', minimum: 1 },
      },
    },
    observe: {
      type: 'object',
      additionalProperties: false,
      properties: { intervalSeconds: { type: 'number', minimum: 0 } },
    },
    hooks: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
        maxFailures: { type: 'integer', minimum: 1 },
        timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 300 },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: {
        level: { enum: ['error', 'warn', 'info', 'debug'] },
        format: { enum: ['auto', 'json', 'pretty'] },
      },
    },
    plugins: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['module'],
        properties: { module: { type: 'string', minLength: 1 }, config: { type: 'object' } },
      },
    },
  },
} as const;

const validate = new Ajv2020({ allErrors: true, strict: true }).compile<Config>(schema);

type Layer = Record<string, unknown>;

function deepMerge(base: Layer, over: Layer): Layer {
  const out: Layer = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] =
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      typeof current === 'object' &&
      current !== null
        ? deepMerge(current as Layer, value as Layer)
        : value;
  }
  return out;
}

function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^[0-9]+$/.test(text)) throw new InputError(`${name} must be a whole number, not "${text}"`);
  return Number(text);
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0)
    throw new InputError(`${name} must be a number of seconds, not "${text}"`);
  return value;
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** `CONSORTIUM_STORE_URL` picks the driver from its scheme: `postgres://` PostgreSQL, `http(s)://` ArangoDB. */
function storeFromEnv(url: string | undefined): Layer {
  if (url === undefined || url === '') return {};
  const scheme = /^([a-z]+):\/\//.exec(url)?.[1];
  const driver =
    scheme === 'postgres' || scheme === 'postgresql'
      ? 'postgres'
      : scheme === 'http' || scheme === 'https'
        ? 'arangodb'
        : undefined;
  if (driver === undefined) {
    throw new InputError(
      `CONSORTIUM_STORE_URL must start with postgres:// (PostgreSQL) or http(s):// (ArangoDB), not ${JSON.stringify(url.split('://')[0])}`,
    );
  }
  return { store: { driver, url } };
}

/** Options that come from the command line; they win over the environment and the file. */
export interface ConfigOverrides {
  readonly configFile?: string;
  readonly port?: number;
  readonly host?: string;
  readonly dataDir?: string;
  readonly logLevel?: string;
}

/**
 * Loads the configuration: defaults, then the YAML file (`--config` or `CONSORTIUM_CONFIG`), then `CONSORTIUM_*`
 * variables, then flags. Throws `InputError` with every problem on one line each.
 */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const defaults: Layer = {
    cluster: 'default',
    dataDir: '.data',
    web: {
      host: '127.0.0.1',
      port: 8080,
      bodyLimit: '1mb',
      headersTimeoutSeconds: 10,
      requestTimeoutSeconds: 30,
    },
    store: { driver: 'sqlite' },
    coordinator: { driver: 'memory' },
    worker: { concurrency: 8 },
    planner: { maxRounds: 50, ttlSeconds: 3600, maxTaskAttempts: 5 },
    observe: { intervalSeconds: 60 },
    hooks: { maxAttempts: 8, maxFailures: 10, timeoutSeconds: 10 },
    log: { level: 'info', format: 'auto' },
    plugins: DEFAULT_PLUGINS,
  };
  let layered = defaults;
  const file = overrides.configFile ?? env['CONSORTIUM_CONFIG'];
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new InputError(
        `cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (error) {
      throw new InputError(
        `config file ${file} is not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`,
      );
    }
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new InputError(`config file ${file} must hold a mapping at the top level`);
    }
    layered = deepMerge(layered, (parsed ?? {}) as Layer);
  }
  layered = deepMerge(layered, {
    cluster: env['CONSORTIUM_CLUSTER'],
    dataDir: env['CONSORTIUM_DATA_DIR'],
    web: { host: env['CONSORTIUM_HOST'], port: integer('CONSORTIUM_PORT', env['CONSORTIUM_PORT']) },
    log: { level: env['CONSORTIUM_LOG_LEVEL'], format: env['CONSORTIUM_LOG_FORMAT'] },
    observe: { intervalSeconds: number('CONSORTIUM_OBSERVE_SECONDS', env['CONSORTIUM_OBSERVE_SECONDS']) },
    ...storeFromEnv(env['CONSORTIUM_STORE_URL']),
    ...(env['CONSORTIUM_ETCD_ENDPOINTS'] === undefined || env['CONSORTIUM_ETCD_ENDPOINTS'] === ''
      ? {}
      : {
          coordinator: {
            driver: 'etcd',
            endpoints: env['CONSORTIUM_ETCD_ENDPOINTS'].split(',').map((e) => e.trim()),
          },
        }),
  });
  layered = deepMerge(layered, {
    dataDir: overrides.dataDir,
    web: { host: overrides.host, port: overrides.port },
    log: { level: overrides.logLevel },
  });
  const fileUrl = (layered['store'] as Layer | undefined)?.['url'];
  if (typeof fileUrl === 'string' && env['CONSORTIUM_STORE_URL'] !== fileUrl && passwordOf(fileUrl) !== '') {
    throw new InputError(
      'invalid configuration: store.url must not hold a password; put it in CONSORTIUM_STORE_PASSWORD or store.passwordFile',
    );
  }
  if (!validate(layered)) {
    throw new InputError(`invalid configuration: ${formatSchemaErrors(validate.errors).join('; ')}`);
  }
  const config: Config = layered;
  if (config.web.requestTimeoutSeconds <= config.web.headersTimeoutSeconds) {
    throw new InputError(
      'invalid configuration: web.requestTimeoutSeconds must be greater than web.headersTimeoutSeconds',
    );
  }
  if (config.coordinator.driver === 'etcd' && config.coordinator.endpoints === undefined) {
    throw new InputError(
      'invalid configuration: coordinator.driver etcd needs coordinator.endpoints (or CONSORTIUM_ETCD_ENDPOINTS)',
    );
  }
  if (config.store.driver !== 'sqlite' && config.store.url === undefined) {
    throw new InputError(
      `invalid configuration: store.driver ${config.store.driver} needs store.url (or CONSORTIUM_STORE_URL)`,
    );
  }
  return { ...config, dataDir: resolve(config.dataDir) };
}
