/** The powerdns plugin's config: its JSON Schema, and the checked settings the provider runs with. */
import type { JsonSchema } from '@consortium/plugin-api';
import { InputError } from '@consortium/plugin-api';

/** The powerdns plugin's config section. */
export interface PowerDnsConfig {
  /** The PowerDNS webserver's base URL, e.g. `http://ns1.example.com:8081` (a trailing `/api/v1` is accepted). */
  readonly url: string;
  /** The API key (`api-key` in pdns.conf); or leave it out and name an environment variable in `apiKeyEnv`. */
  readonly apiKey?: string;
  /** The environment variable that holds the API key (keeps the secret out of the config file). */
  readonly apiKeyEnv?: string;
  /** The server id in the API's paths (default `localhost`, the only one the Authoritative Server has). */
  readonly serverId?: string;
  /** The forward zone of every host, or of hosts whose datacenter `forwardZones` does not name. */
  readonly forwardZone?: string;
  /** The forward zone per datacenter (`{ pek1: 'pek1.example.com' }`); the provider then watches `datacenter`. */
  readonly forwardZones?: Readonly<Record<string, string>>;
  /** The TTL of the records it makes (default 300 s). */
  readonly ttl?: number;
  /** How long one PowerDNS request may take (default 10000 ms). */
  readonly timeoutMs?: number;
}

/** The settings the provider runs with: defaults applied, URL normalised, key looked up, zone names lowercase. */
export interface PowerDnsSettings {
  /** The base URL without a trailing slash or `/api/v1`. */
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly serverId: string;
  readonly forwardZone: string | undefined;
  readonly forwardZones: ReadonlyMap<string, string>;
  readonly ttl: number;
  readonly timeoutMs: number;
}

const zoneSchema = (description: string): JsonSchema => ({
  type: 'string',
  maxLength: 253,
  // A DNS name; the final dot and capitals are allowed, as operators write zones either way.
  pattern:
    '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\\.?$',
  description,
});

/** The JSON Schema of the config section. */
export const configSchema: JsonSchema = {
  type: 'object',
  description: 'DNS: A and PTR records for every host address, through the PowerDNS HTTP API.',
  properties: {
    url: {
      type: 'string',
      pattern: '^https?://',
      description: 'the PowerDNS webserver base URL, e.g. http://ns1.example.com:8081',
    },
    apiKey: { type: 'string', minLength: 1, description: 'the PowerDNS API key (or use apiKeyEnv)' },
    apiKeyEnv: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'the environment variable holding the PowerDNS API key',
    },
    serverId: {
      type: 'string',
      pattern: '^[A-Za-z0-9_.-]+$',
      default: 'localhost',
      description: 'the server id in the API paths',
    },
    forwardZone: zoneSchema('the forward zone of every host (or of hosts in no datacenter of forwardZones)'),
    forwardZones: {
      type: 'object',
      additionalProperties: zoneSchema('the forward zone of the hosts in this datacenter'),
      description: 'the forward zone per datacenter',
    },
    ttl: {
      type: 'integer',
      minimum: 1,
      maximum: 2147483647,
      default: 300,
      description: 'the TTL of the records, in seconds',
    },
    timeoutMs: {
      type: 'integer',
      minimum: 100,
      maximum: 600000,
      default: 10000,
      description: 'how long one PowerDNS request may take',
    },
  },
  required: ['url'],
  additionalProperties: false,
};

/** A zone name as the provider compares names: lowercase, without the final dot. */
function zoneName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Checks the config and applies defaults; throws `InputError` for a bad URL, a missing key (the message names the
 * variable, never a key) or no forward zone at all.
 */
export function resolveSettings(
  config: PowerDnsConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
): PowerDnsSettings {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new InputError(`powerdns: url "${config.url}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InputError(`powerdns: url "${config.url}" must start with http:// or https://`);
  }
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api(\/v1)?$/, '');
  let apiKey = config.apiKey;
  if (apiKey === undefined && config.apiKeyEnv !== undefined) {
    apiKey = env[config.apiKeyEnv];
    if (apiKey === undefined || apiKey === '') {
      throw new InputError(`powerdns: the environment variable ${config.apiKeyEnv} (apiKeyEnv) is not set`);
    }
  }
  if (apiKey === undefined || apiKey === '') {
    throw new InputError(
      'powerdns: give the API key in apiKey or name its environment variable in apiKeyEnv',
    );
  }
  const forwardZones = new Map(
    Object.entries(config.forwardZones ?? {}).map(([datacenter, zone]) => [datacenter, zoneName(zone)]),
  );
  if (config.forwardZone === undefined && forwardZones.size === 0) {
    throw new InputError(
      'powerdns: name the forward zone in forwardZone, or one per datacenter in forwardZones',
    );
  }
  return {
    baseUrl: `${url.origin}${path}`,
    apiKey,
    serverId: config.serverId ?? 'localhost',
    forwardZone: config.forwardZone === undefined ? undefined : zoneName(config.forwardZone),
    forwardZones,
    ttl: config.ttl ?? 300,
    timeoutMs: config.timeoutMs ?? 10_000,
  };
}
