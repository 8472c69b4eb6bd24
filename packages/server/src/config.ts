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
  };
  readonly store: { readonly driver: 'sqlite'; readonly path?: string };
  readonly coordinator: {
    readonly driver: 'memory' | 'etcd';
    /** etcd client URLs (cluster mode). */
    readonly endpoints?: readonly string[];
    /** Key prefix in etcd; default `/consortium/<cluster>/`. */
    readonly prefix?: string;
    /** TTL of each process's session lease in seconds; default 10. */
    readonly leaseTtlSeconds?: number;
  };
  readonly worker: { readonly concurrency: number };
  readonly planner: {
    readonly maxRounds: number;
    readonly ttlSeconds: number;
    readonly maxTaskAttempts: number;
  };
  /** Seconds between passes of periodic observe (drift detection); 0 turns it off. */
  readonly observe: { readonly intervalSeconds: number };
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
      },
    },
    store: {
      type: 'object',
      additionalProperties: false,
      properties: { driver: { enum: ['sqlite'] }, path: { type: 'string', minLength: 1 } },
    },
    coordinator: {
      type: 'object',
      additionalProperties: false,
      properties: {
        driver: { enum: ['memory', 'etcd'] },
        endpoints: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^https?://' } },
        prefix: { type: 'string', pattern: '^/' },
        leaseTtlSeconds: { type: 'integer', minimum: 2, maximum: 300 },
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

const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

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
  if (!validate(layered)) {
    throw new InputError(`invalid configuration: ${formatSchemaErrors(validate.errors).join('; ')}`);
  }
  const config = layered as unknown as Config;
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
  return { ...config, dataDir: resolve(config.dataDir) };
}
