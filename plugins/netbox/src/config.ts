/** The netbox plugin's config: its JSON Schema, and the checked settings the provider runs with. */
import type { JsonSchema } from '@consortium/plugin-api';
import { InputError } from '@consortium/plugin-api';

/** Where Puppet roles live on a NetBox virtual machine. */
export type RolesField = 'tags' | 'custom_field';

/** The netbox plugin's config section. */
export interface NetboxConfig {
  /** NetBox's base URL, e.g. `https://netbox.example.com` (a trailing `/api` is accepted too). */
  readonly url: string;
  /** The API token; or leave it out and name an environment variable in `tokenEnv`. */
  readonly token?: string;
  /** The environment variable that holds the API token (keeps the secret out of the config file). */
  readonly tokenEnv?: string;
  /** How long one NetBox request may take (default 10000 ms). */
  readonly timeoutMs?: number;
  /** Puppet roles as tags (default) or as a custom field. */
  readonly rolesField?: RolesField;
  /** The custom field that holds the roles when `rolesField` is `custom_field` (default `puppet_roles`). */
  readonly rolesCustomField?: string;
  /** Only tags whose name starts with this are roles (the rest are left alone); default '' (every tag). */
  readonly rolesTagPrefix?: string;
  /** Only clusters of this cluster type (slug) are considered for `subcluster`. */
  readonly clusterType?: string;
  /** Objects per page when listing (default 100; NetBox caps it at its MAX_PAGE_SIZE). */
  readonly pageSize?: number;
}

/** How roles are stored, with what the storage needs. */
export type RolesStorage =
  | { readonly kind: 'tags'; readonly prefix: string }
  | { readonly kind: 'custom_field'; readonly field: string };

/** The settings the provider runs with: defaults applied, URL normalised, token looked up. */
export interface NetboxSettings {
  /** The base URL without a trailing slash or `/api`. */
  readonly baseUrl: string;
  readonly token: string;
  readonly timeoutMs: number;
  readonly roles: RolesStorage;
  readonly clusterType: string | undefined;
  readonly pageSize: number;
}

const SLUG_PATTERN = '^[-a-zA-Z0-9_]+$';

/** The JSON Schema of the config section. */
export const configSchema: JsonSchema = {
  type: 'object',
  description:
    'The CMDB: virtual machines in NetBox, with their site, cluster, tenant, status and Puppet roles.',
  properties: {
    url: {
      type: 'string',
      pattern: '^https?://',
      description: 'NetBox base URL, e.g. https://netbox.example.com',
    },
    token: { type: 'string', minLength: 1, description: 'the NetBox API token (or use tokenEnv)' },
    tokenEnv: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'the environment variable holding the NetBox API token',
    },
    timeoutMs: {
      type: 'integer',
      minimum: 100,
      maximum: 600000,
      default: 10000,
      description: 'how long one NetBox request may take',
    },
    rolesField: {
      type: 'string',
      enum: ['tags', 'custom_field'],
      default: 'tags',
      description: 'store puppet_roles as tags or in a custom field',
    },
    rolesCustomField: {
      type: 'string',
      pattern: '^[a-z0-9_]+$',
      default: 'puppet_roles',
      description: 'the custom field holding the roles when rolesField is custom_field',
    },
    rolesTagPrefix: {
      type: 'string',
      default: '',
      description: 'only tags whose name starts with this are roles; the rest are left alone',
    },
    clusterType: {
      type: 'string',
      pattern: SLUG_PATTERN,
      description: 'only clusters of this cluster type (slug) are used for subcluster',
    },
    pageSize: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 100,
      description: 'objects per page when listing',
    },
  },
  required: ['url'],
  additionalProperties: false,
};

/**
 * Checks the config and applies defaults; throws `InputError` for a bad URL or when no token is given (the
 * message names the variable, never a token).
 */
export function resolveSettings(
  config: NetboxConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
): NetboxSettings {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new InputError(`netbox: url "${config.url}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InputError(`netbox: url "${config.url}" must start with http:// or https://`);
  }
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api$/, '');
  const baseUrl = `${url.origin}${path}`;
  let token = config.token;
  if (token === undefined && config.tokenEnv !== undefined) {
    token = env[config.tokenEnv];
    if (token === undefined || token === '') {
      throw new InputError(`netbox: the environment variable ${config.tokenEnv} (tokenEnv) is not set`);
    }
  }
  if (token === undefined || token === '') {
    throw new InputError('netbox: give the API token in token or name its environment variable in tokenEnv');
  }
  const rolesField = config.rolesField ?? 'tags';
  return {
    baseUrl,
    token,
    timeoutMs: config.timeoutMs ?? 10_000,
    roles:
      rolesField === 'tags'
        ? { kind: 'tags', prefix: config.rolesTagPrefix ?? '' }
        : { kind: 'custom_field', field: config.rolesCustomField ?? 'puppet_roles' },
    clusterType: config.clusterType,
    pageSize: config.pageSize ?? 100,
  };
}
