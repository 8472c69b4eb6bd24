/**
 * Loading plugins by module name and building the runtime of every kind: its compiled schema, its planner and
 * its providers. Plugin config is validated against the plugin's own schema before its providers are made.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type {
  KindDefinition,
  KindSchema,
  Logger,
  NodeProvider,
  PluginDefinition,
  PlannerOptions,
  SeedNode,
  Store,
} from '@consortium/core';
import {
  DEFAULT_PLANNER_OPTIONS,
  InputError,
  InvalidClaimError,
  TransitionPlanner,
  buildKindSchemas,
  formatSchemaErrors,
} from '@consortium/core';
import type { PluginConfig } from './config.js';

/** Everything the roles need to know about one kind. */
export interface KindRuntime {
  readonly schema: KindSchema;
  readonly planner: TransitionPlanner;
  readonly providers: ReadonlyMap<string, NodeProvider>;
}

/** The kinds of this process, by name. */
export type Kinds = ReadonlyMap<string, KindRuntime>;

function isPlugin(value: unknown): value is PluginDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate['id'] === 'string' && typeof candidate['providers'] === 'function';
}

/** Imports each plugin module and takes its `plugin` export; throws `InputError` naming the module. */
export async function importPlugins(
  configs: readonly PluginConfig[],
): Promise<{ plugin: PluginDefinition; config: PluginConfig }[]> {
  const loaded = [];
  for (const config of configs) {
    let module: Record<string, unknown>;
    try {
      module = (await import(config.module)) as Record<string, unknown>;
    } catch (error) {
      throw new InputError(
        `cannot load plugin module "${config.module}": ${(error as Error).message.split('\n')[0] ?? ''}`,
        {
          cause: error,
        },
      );
    }
    const plugin = module['plugin'];
    if (!isPlugin(plugin)) {
      throw new InputError(`module "${config.module}" has no \`plugin\` export made with definePlugin`);
    }
    loaded.push({ plugin, config });
  }
  return loaded;
}

/** One plugin's config section, validated against its schema with the defaults filled in. */
function sectionOf(ajv: Ajv2020, plugin: PluginDefinition, config: PluginConfig): unknown {
  const section = structuredClone(config.config ?? {});
  const validate = ajv.compile(plugin.configSchema);
  if (!validate(section)) {
    throw new InputError(
      `invalid config for plugin ${plugin.id}: ${formatSchemaErrors(validate.errors).join('; ')}`,
    );
  }
  return section;
}

/** The nodes the plugins' configs name (`seeds`), each with the id of the plugin that names it. */
export function pluginSeeds(
  plugins: readonly { plugin: PluginDefinition; config: PluginConfig }[],
): { readonly plugin: string; readonly seed: SeedNode }[] {
  const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: true });
  return plugins.flatMap(({ plugin, config }) =>
    (plugin.seeds?.(sectionOf(ajv, plugin, config)) ?? []).map((seed) => ({ plugin: plugin.id, seed })),
  );
}

/**
 * Builds every kind's runtime from loaded plugins: validates each plugin's config, makes its providers and
 * compiles the kinds' schemas (which refuses conflicting claims at start-up).
 */
export function buildKinds(
  plugins: readonly { plugin: PluginDefinition; config: PluginConfig }[],
  services: { logger: Logger; store: Store; now(): number },
  planner: Partial<PlannerOptions> = {},
): Kinds {
  const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: true });
  const kinds: KindDefinition[] = [];
  const providers: NodeProvider[] = [];
  const ids = new Set<string>();
  for (const { plugin, config } of plugins) {
    if (ids.has(plugin.id)) throw new InvalidClaimError(`plugin "${plugin.id}" is loaded twice`);
    ids.add(plugin.id);
    const section = sectionOf(ajv, plugin, config);
    for (const kind of plugin.kinds ?? []) {
      if (!kinds.some((k) => k.name === kind.name)) kinds.push(kind);
    }
    providers.push(...plugin.providers(section, services));
  }
  const schemas = buildKindSchemas(kinds, providers);
  const options = { ...DEFAULT_PLANNER_OPTIONS, ...planner };
  const result = new Map<string, KindRuntime>();
  for (const [name, schema] of schemas) {
    result.set(name, {
      schema,
      planner: new TransitionPlanner(schema, options),
      providers: new Map(providers.filter((p) => p.kind === name).map((p) => [p.name, p])),
    });
  }
  return result;
}
