/**
 * @consortium/plugin-cobbler: PXE registration in Cobbler 3.3 (checked against 3.3.7) over XML-RPC (DESIGN.md §6). One provider for hosts,
 * `cobbler`, with authority over `profile` and `netboot`, watching `hostname` and `interfaces`.
 */
import type { JsonSchema } from '@consortium/plugin-api';
import { definePlugin, InputError } from '@consortium/plugin-api';
import { CobblerClient } from './cobbler-client.js';
import type { SyncPolicy } from './cobbler-provider.js';
import { cobblerProvider } from './cobbler-provider.js';

export type { CobblerClientOptions, CobblerInterface, CobblerSystem, SaveMode } from './cobbler-client.js';
export { CobblerClient, faultOf } from './cobbler-client.js';
export type { CobblerProviderOptions, SyncPolicy } from './cobbler-provider.js';
export { COBBLER_CLAIMS, COBBLER_PROVIDER, cobblerProvider } from './cobbler-provider.js';

/** The Cobbler plugin's config. */
export interface CobblerConfig {
  /** The XML-RPC endpoint: `https://cobbler.example.com/cobbler_api` (Apache) or `http://cobbler:25151/` (cobblerd). */
  readonly url: string;
  readonly username: string;
  /** The password; or leave it out and name an environment variable in `passwordEnv`. */
  readonly password?: string;
  /** The environment variable that holds the password. */
  readonly passwordEnv?: string;
  /** The profile of hosts that do not name one. */
  readonly defaultProfile: string;
  /** The interface registered in Cobbler (default `eth0`). */
  readonly interface?: string;
  /** The longest one XML-RPC call may take, in milliseconds (default 30000). */
  readonly timeoutMs?: number;
  /**
   * When to run a full `cobbler sync` (default `mac-change`, see `SyncPolicy`); `true` and `false`, the older
   * spelling, mean `always` and `never`.
   */
  readonly sync?: SyncPolicy | boolean;
}

/** The defaults of the optional config fields. */
export const COBBLER_DEFAULTS = { interface: 'eth0', timeoutMs: 30_000, sync: 'mac-change' } as const;

/** The sync policy a config asks for. */
function syncPolicy(sync: CobblerConfig['sync']): SyncPolicy {
  if (sync === undefined) return COBBLER_DEFAULTS.sync;
  if (typeof sync === 'boolean') return sync ? 'always' : 'never';
  return sync;
}

const configSchema: JsonSchema = {
  type: 'object',
  description: 'Registers hosts as Cobbler 3.3 systems for PXE installation, over its XML-RPC API.',
  properties: {
    url: {
      type: 'string',
      pattern: '^https?://',
      description:
        "the XML-RPC endpoint: Apache's https://cobbler.example.com/cobbler_api, or cobblerd's http://cobbler:25151/ (or /RPC2)",
    },
    username: { type: 'string', minLength: 1, description: 'a Cobbler user allowed to edit systems' },
    password: { type: 'string', minLength: 1, description: 'its password (never logged)' },
    passwordEnv: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'instead of password: the environment variable that holds it',
    },
    defaultProfile: {
      type: 'string',
      minLength: 1,
      description: 'the profile of hosts that do not name one',
    },
    interface: {
      type: 'string',
      pattern: '^[a-z0-9]+$',
      default: COBBLER_DEFAULTS.interface,
      description: 'the interface registered in Cobbler',
    },
    timeoutMs: {
      type: 'integer',
      minimum: 100,
      default: COBBLER_DEFAULTS.timeoutMs,
      description: 'the longest one XML-RPC call may take, in milliseconds',
    },
    sync: {
      oneOf: [{ type: 'string', enum: ['never', 'mac-change', 'always'] }, { type: 'boolean' }],
      default: COBBLER_DEFAULTS.sync,
      description:
        "when to run a full `cobbler sync`: never, mac-change (saving rewrites a system's PXE files but leaves the old MAC's pxelinux.cfg/01-<mac> until a sync) or always; true/false mean always/never",
    },
  },
  required: ['url', 'username', 'defaultProfile'],
  oneOf: [{ required: ['password'] }, { required: ['passwordEnv'] }],
  additionalProperties: false,
};

/** The password from the config or from the environment variable it names; throws `InputError` when unset. */
function passwordOf(config: CobblerConfig): string {
  if (config.password !== undefined) return config.password;
  const name = config.passwordEnv ?? '';
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new InputError(`plugin cobbler: the environment variable ${name} (passwordEnv) is not set`);
  }
  return value;
}

/** The Cobbler plugin. Each call of `providers` makes one client, shared by every task, that logs in lazily. */
export const plugin = definePlugin<CobblerConfig>({
  id: 'cobbler',
  configSchema,
  providers: (config, services) => {
    const client = new CobblerClient({
      url: config.url,
      username: config.username,
      password: passwordOf(config),
      timeoutMs: config.timeoutMs ?? COBBLER_DEFAULTS.timeoutMs,
      logger: services.logger,
    });
    return [
      cobblerProvider(client, {
        interface: config.interface ?? COBBLER_DEFAULTS.interface,
        defaultProfile: config.defaultProfile,
        sync: syncPolicy(config.sync),
      }),
    ];
  },
});
