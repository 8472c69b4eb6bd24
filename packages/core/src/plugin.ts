/** Plugins: a named bundle of kinds and providers with a config schema (DESIGN.md §6). */
import { InvalidClaimError } from './errors.js';
import type { PluginStore } from './ports/store.js';
import type { Logger, NodeProvider } from './provider.js';
import type { Attrs } from './model.js';
import type { JsonSchema, KindDefinition } from './schema.js';

/** What the host hands a plugin when it builds its providers. */
export interface PluginServices {
  readonly logger: Logger;
  /** Consortium's own store: other nodes (subnets for IPAM) and unique reservations. */
  readonly store: PluginStore;
  /** The current time in milliseconds. */
  now(): number;
}

/**
 * A node a plugin's config names (a hypervisor it is configured with). The server creates it, through a job like
 * any create, when it does not exist; an existing node is left as it is (the inventory is the truth from then on).
 */
export interface SeedNode {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Attrs;
}

/** A plugin as `definePlugin` returns it. */
export interface PluginDefinition<Config = unknown> {
  readonly id: string;
  /** JSON Schema of the plugin's config section; the host validates config against it before `providers`. */
  readonly configSchema: JsonSchema;
  readonly kinds?: readonly KindDefinition[];
  readonly providers: (config: Config, services: PluginServices) => readonly NodeProvider[];
  /** Nodes the config names, created at start when missing (config validated, defaults filled in). */
  readonly seeds?: (config: Config) => readonly SeedNode[];
}

const PLUGIN_ID = /^[a-z][a-z0-9-]{0,62}$/;

/** Declares a plugin; throws `InvalidClaimError` for an id that is not a lowercase name. */
export function definePlugin<Config>(definition: PluginDefinition<Config>): PluginDefinition<Config> {
  if (!PLUGIN_ID.test(definition.id)) {
    throw new InvalidClaimError(
      `invalid plugin id "${definition.id}": use a-z, 0-9 and '-', starting with a letter`,
      {
        details: { plugin: definition.id },
      },
    );
  }
  return definition;
}
