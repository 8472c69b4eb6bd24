/**
 * Claims, authority and the compiled kind schema. Providers declare the paths they provide (with JSON Schemas),
 * which of them they own, and which paths they watch; `buildKindSchemas` checks the declarations at start-up and
 * compiles one JSON Schema 2020-12 document per kind, annotated with `x-authority` and `x-watchers`.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import {
  ClaimConflictError,
  InvalidClaimError,
  NotFoundError,
  SchemaViolationError,
  UnknownAttributeError,
} from './errors.js';
import type { Attrs, JsonValue } from './model.js';
import { CORE_PROVIDER, PRESENT_ATTR } from './model.js';
import { assertKindName } from './names.js';
import type { Path } from './paths.js';
import { formatPath, isPrefixOf, overlaps, parsePath, toPattern } from './paths.js';

/** A JSON Schema (2020-12) object. */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** One path a provider provides: its schema, and whether the provider has authority over it (default true). */
export interface AttributeClaim {
  readonly path: string;
  readonly schema?: JsonSchema;
  readonly authority?: boolean;
}

/** What a provider declares about one kind: its claims and the paths it watches. */
export interface ProviderDeclaration {
  readonly name: string;
  readonly kind: string;
  readonly claims: readonly AttributeClaim[];
  readonly watches?: readonly string[];
}

/** A kind of node, as a plugin defines it. */
export interface KindDefinition {
  readonly name: string;
  readonly description?: string;
}

/** How a list attribute merges: replaced whole, a set of distinct items, or a map keyed by one field. */
export type ListSemantics =
  { readonly type: 'atomic' } | { readonly type: 'set' } | { readonly type: 'map'; readonly key: string };

/** A provider watching a path pattern. */
export interface Watch {
  readonly provider: string;
  readonly pattern: Path;
  readonly path: string;
  /** The implicit watch every provider has on `present`: it fires only when the node is being deleted. */
  readonly onRemovalOnly?: boolean;
}

type MutableSchema = { [keyword: string]: unknown };

const ANNOTATIONS = [
  'x-list-type',
  'x-list-map-keys',
  'x-authority',
  'x-watchers',
  'x-observers',
  'x-ref',
] as const;

/** Makes the one strict Ajv instance used for claims and kind documents. */
function makeAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  for (const keyword of ANNOTATIONS) ajv.addKeyword({ keyword });
  return ajv;
}

/** Violations listed one by one before the rest are only counted (a 50,000-item list may break 50,000 times). */
const MAX_LISTED_ERRORS = 20;

/**
 * Formats Ajv errors as one line each: `/interfaces/0/ip: must match format "ipv4"`; after the first 20 one more
 * line counts the rest.
 */
export function formatSchemaErrors(errors: readonly ErrorObject[] | null | undefined, prefix = ''): string[] {
  const all = errors ?? [];
  const lines = all.slice(0, MAX_LISTED_ERRORS).map((error) => {
    const where = `${prefix}${error.instancePath}` || '/';
    const params = error.params as {
      additionalProperty?: unknown;
      unevaluatedProperty?: unknown;
      allowedValues?: unknown;
    };
    const extra =
      error.keyword === 'additionalProperties'
        ? ` (${String(params.additionalProperty)})`
        : error.keyword === 'unevaluatedProperties'
          ? ` (${String(params.unevaluatedProperty)})`
          : error.keyword === 'enum'
            ? ` (${JSON.stringify(params.allowedValues)})`
            : '';
    return `${where}: ${error.message ?? error.keyword}${extra}`;
  });
  if (all.length > MAX_LISTED_ERRORS) lines.push(`and ${all.length - MAX_LISTED_ERRORS} more violations`);
  return lines;
}

/** Edit distance, for suggesting the attribute an operator meant. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(
        Math.min(
          (previous[j] as number) + 1,
          (current[j - 1] as number) + 1,
          (previous[j - 1] as number) + cost,
        ),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The closest candidate to `word` within a small edit distance, if any. */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Parsed paths a kind schema keeps for reuse. */
const RESOLVED_PATHS_CACHED = 4_096;

interface ClaimEntry {
  readonly provider: string;
  readonly path: Path;
  readonly claim: AttributeClaim;
}

/** The compiled schema of one kind: authority, watchers, list semantics and validation for its paths. */
export class KindSchema {
  /** The JSON Schema document of the kind's attributes, with `x-authority` and `x-watchers` on each property. */
  readonly document: JsonSchema;
  /** Names of the providers of this kind, sorted. */
  readonly providers: readonly string[];
  /** Names of the kind's attributes, sorted. */
  readonly attributes: readonly string[];
  private readonly authority = new Map<string, string>();
  private readonly watchList: readonly Watch[];
  private readonly validateDocument: ValidateFunction;
  private readonly valueValidators = new Map<string, ValidateFunction | null>();
  private readonly resolved = new Map<string, Path>();

  /** Use `buildKindSchemas`; this constructor trusts its checked input. */
  constructor(
    readonly kind: string,
    readonly description: string | undefined,
    private readonly ajv: Ajv2020,
    document: MutableSchema,
    authority: ReadonlyMap<string, string>,
    watches: readonly Watch[],
    providers: readonly string[],
  ) {
    this.document = document;
    for (const [pattern, provider] of authority) this.authority.set(pattern, provider);
    this.watchList = watches;
    this.providers = [...providers].sort();
    this.attributes = Object.keys(document['properties'] as object).sort();
    this.validateDocument = ajv.compile(document);
  }

  /** Every watch declared on this kind, including each provider's implicit watch on `present` (for deletes). */
  get watches(): readonly Watch[] {
    return this.watchList;
  }

  /** Parses a path and checks that its attribute exists; throws `InputError` or `UnknownAttributeError`. */
  resolvePath(text: string): Path {
    const known = this.resolved.get(text);
    if (known !== undefined) return known;
    const path = parsePath(text);
    if (this.schemaAt(path) === undefined) {
      const attribute = (path[0] as { prop: string }).prop;
      if (!this.attributes.includes(attribute)) {
        const suggestion = closestMatch(attribute, this.attributes);
        throw new UnknownAttributeError(
          `unknown attribute "${attribute}" for kind ${this.kind}${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`,
          { details: { kind: this.kind, path: text, ...(suggestion === undefined ? {} : { suggestion }) } },
        );
      }
      throw new UnknownAttributeError(`unknown path "${text}" for kind ${this.kind}`, {
        details: { kind: this.kind, path: text },
      });
    }
    // Requests repeat few paths many times (50,000 items added to one list); the cache stays small.
    if (this.resolved.size >= RESOLVED_PATHS_CACHED) this.resolved.clear();
    this.resolved.set(text, path);
    return path;
  }

  /** The provider with authority over a path: the most specific claim that covers it. */
  authorityOf(path: Path): string {
    const pattern = toPattern(path);
    for (let length = pattern.length; length > 0; length--) {
      const owner = this.authority.get(formatPath(pattern.slice(0, length)));
      if (owner !== undefined) return owner;
    }
    throw new UnknownAttributeError(
      `no provider has authority over "${formatPath(path)}" for kind ${this.kind}`,
      {
        details: { kind: this.kind, path: formatPath(path) },
      },
    );
  }

  /** Providers with authority over some path strictly below `path` (sub-path claims such as `interfaces[*].mac`). */
  subAuthorities(path: Path): string[] {
    const pattern = toPattern(path);
    const owners = new Set<string>();
    for (const [claimed, owner] of this.authority) {
      const claimedPath = parsePath(claimed, { allowWildcard: true });
      if (claimedPath.length > pattern.length && isPrefixOf(pattern, claimedPath)) owners.add(owner);
    }
    return [...owners].sort();
  }

  /** The watches that a change at `path` triggers. */
  watchersOf(path: Path): Watch[] {
    return this.watchList.filter((watch) => overlaps(watch.pattern, path));
  }

  /** The sub-schema at a path, or undefined when the path does not exist in the kind. */
  schemaAt(path: Path): JsonSchema | undefined {
    let schema: JsonSchema | undefined = this.document;
    for (const segment of path) {
      if (schema === undefined) return undefined;
      if ('prop' in segment) {
        const properties = schema['properties'] as Record<string, JsonSchema> | undefined;
        schema =
          properties !== undefined && Object.hasOwn(properties, segment.prop)
            ? properties[segment.prop]
            : undefined;
      } else {
        schema = schema['x-list-type'] === 'map' ? (schema['items'] as JsonSchema | undefined) : undefined;
      }
    }
    return schema;
  }

  /** How the list at `path` merges; `atomic` for lists without `x-list-type`. */
  listSemanticsAt(path: Path): ListSemantics | undefined {
    const schema = this.schemaAt(path);
    if (schema?.['type'] !== 'array') return undefined;
    const type = schema['x-list-type'];
    if (type === 'set') return { type: 'set' };
    if (type === 'map') return { type: 'map', key: (schema['x-list-map-keys'] as string[])[0] as string };
    return { type: 'atomic' };
  }

  /** Checks one value against the schema at `path`; returns the violations, empty when valid. */
  checkValue(path: Path, value: JsonValue): string[] {
    const key = formatPath(toPattern(path));
    let validate = this.valueValidators.get(key);
    if (validate === undefined) {
      const schema = this.schemaAt(path);
      validate = schema === undefined ? null : this.ajv.compile(schema);
      this.valueValidators.set(key, validate);
    }
    if (validate === null) return [`unknown path ${formatPath(path)}`];
    return validate(value) ? [] : formatSchemaErrors(validate.errors, `/${formatPath(path)}`);
  }

  /**
   * Refuses at once a list at `path` that would hold `items` items when its schema allows fewer: the error the
   * whole-node check would give, without building or validating the node. Lists inside map-list items are left to
   * that check, which names the item by its index.
   */
  assertListSize(path: Path, items: number): void {
    const limit = this.schemaAt(path)?.['maxItems'];
    if (typeof limit !== 'number' || items <= limit || path.some((segment) => 'key' in segment)) return;
    const problem = `/${path.map((segment) => ('prop' in segment ? segment.prop : '')).join('/')}: must NOT have more than ${limit} items`;
    throw new SchemaViolationError(`${this.kind} attributes violate the schema: ${problem}`, {
      details: { kind: this.kind, errors: [problem] },
    });
  }

  /** Checks a node's attributes; throws `SchemaViolationError` listing every violation. */
  assertValid(attrs: Attrs): void {
    if (!this.validateDocument(attrs)) {
      const problems = formatSchemaErrors(this.validateDocument.errors);
      throw new SchemaViolationError(`${this.kind} attributes violate the schema: ${problems.join('; ')}`, {
        details: { kind: this.kind, errors: problems },
      });
    }
  }
}

/** Items a list may hold when its claim's schema sets no `maxItems`. */
export const DEFAULT_MAX_ITEMS = 1_000;

/** Characters a string may hold when its claim's schema sets no `maxLength`. */
export const DEFAULT_MAX_LENGTH = 1_024;

/** Fields a free-form object may hold when its claim's schema sets no `maxProperties`. */
export const DEFAULT_MAX_PROPERTIES = 256;

/** Keywords whose value is one subschema. */
const SUBSCHEMA = [
  'items',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'not',
  'if',
  'then',
  'else',
  'propertyNames',
] as const;
/** Keywords whose value is a list of subschemas. */
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;
/** Keywords whose value maps names to subschemas. */
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'dependentSchemas'] as const;

function hasType(schema: MutableSchema, type: string): boolean {
  const declared = schema['type'];
  return declared === type || (Array.isArray(declared) && declared.includes(type));
}

/**
 * Bounds what a node may hold, so that no request can make one node (and every plan over it) arbitrarily large:
 * every list without `maxItems` gets `DEFAULT_MAX_ITEMS`, every string without `maxLength` gets
 * `DEFAULT_MAX_LENGTH`, and every object without `maxProperties` gets `DEFAULT_MAX_PROPERTIES`, throughout the
 * schema. A claim that needs more says so in its schema. Edits `schema` in place and returns it.
 */
function withDefaultLimits(schema: MutableSchema): MutableSchema {
  if (hasType(schema, 'array')) schema['maxItems'] ??= DEFAULT_MAX_ITEMS;
  if (hasType(schema, 'string')) schema['maxLength'] ??= DEFAULT_MAX_LENGTH;
  if (hasType(schema, 'object')) schema['maxProperties'] ??= DEFAULT_MAX_PROPERTIES;
  const visit = (child: unknown): void => {
    if (typeof child === 'object' && child !== null && !Array.isArray(child)) {
      withDefaultLimits(child as MutableSchema);
    }
  };
  for (const keyword of SUBSCHEMA) visit(schema[keyword]);
  for (const keyword of SUBSCHEMA_LISTS) {
    const list = schema[keyword];
    if (Array.isArray(list)) list.forEach(visit);
  }
  for (const keyword of SUBSCHEMA_MAPS) {
    const map = schema[keyword];
    if (typeof map === 'object' && map !== null) Object.values(map).forEach(visit);
  }
  return schema;
}

function clone(schema: JsonSchema): MutableSchema {
  return structuredClone<MutableSchema>(schema);
}

function checkAnnotations(
  provider: string,
  path: string,
  schema: JsonSchema,
  kinds: ReadonlyMap<string, unknown>,
): void {
  const fail = (why: string): never => {
    throw new InvalidClaimError(`provider ${provider}: claim "${path}": ${why}`, {
      details: { provider, path },
    });
  };
  const walk = (node: unknown, where: string): void => {
    if (typeof node !== 'object' || node === null) return;
    const s = node as Record<string, unknown>;
    const ref = s['x-ref'];
    if (ref !== undefined) {
      if (s['type'] !== 'string') fail(`x-ref at ${where} needs "type": "string" (a node name)`);
      if (typeof ref !== 'string' || !kinds.has(ref)) fail(`x-ref at ${where} must name a kind`);
    }
    const listType = s['x-list-type'];
    if (listType !== undefined) {
      if (s['type'] !== 'array') fail(`x-list-type at ${where} needs "type": "array"`);
      if (listType !== 'atomic' && listType !== 'set' && listType !== 'map') {
        fail(`x-list-type at ${where} must be atomic, set or map`);
      }
      if (listType === 'map') {
        const keys = s['x-list-map-keys'];
        if (!Array.isArray(keys) || keys.length !== 1 || typeof keys[0] !== 'string') {
          fail(`x-list-map-keys at ${where} must name exactly one key field`);
        }
        const key = (keys as string[])[0] as string;
        const items = s['items'] as Record<string, unknown> | undefined;
        const keySchema = (items?.['properties'] as Record<string, Record<string, unknown>> | undefined)?.[
          key
        ];
        const required = items?.['required'];
        if (keySchema?.['type'] !== 'string' || !Array.isArray(required) || !required.includes(key)) {
          fail(`map list at ${where} needs items with a required string property "${key}"`);
        }
      }
    }
    for (const [keyword, child] of Object.entries(s)) {
      if (keyword === 'properties' && typeof child === 'object' && child !== null) {
        for (const [name, sub] of Object.entries(child)) walk(sub, `${where}.${name}`);
      } else if (keyword === 'items') walk(child, `${where}[]`);
    }
  };
  walk(schema, path);
}

/** Where a sub-path claim is inserted: the parent object schema in the document, or why it cannot be. */
function parentOf(document: MutableSchema, path: Path): MutableSchema | string {
  let schema = document;
  for (const segment of path.slice(0, -1)) {
    if ('prop' in segment) {
      const properties = schema['properties'] as Record<string, MutableSchema> | undefined;
      const next = properties?.[segment.prop];
      if (next === undefined) return `its parent "${segment.prop}" is not provided`;
      schema = next;
    } else {
      if (schema['x-list-type'] !== 'map') return `[*] is only allowed on map lists (x-list-type: map)`;
      schema = schema['items'] as MutableSchema;
    }
  }
  if (schema['type'] !== 'object') return 'its parent is not an object';
  schema['properties'] ??= {};
  return schema;
}

/** Parses and checks each claim of a kind's providers. */
function claimEntriesOf(
  ajv: Ajv2020,
  mine: readonly ProviderDeclaration[],
  known: ReadonlyMap<string, unknown>,
): ClaimEntry[] {
  const entries: ClaimEntry[] = [];
  for (const d of mine) {
    for (const claim of d.claims) {
      let path: Path;
      try {
        path = parsePath(claim.path, { allowWildcard: true });
      } catch (error) {
        throw new InvalidClaimError(`provider ${d.name}: ${(error as Error).message}`, {
          cause: error,
          details: { provider: d.name, path: claim.path },
        });
      }
      if (path.length === 1 && (path[0] as { prop: string }).prop === PRESENT_ATTR) {
        throw new InvalidClaimError(`provider ${d.name}: "${PRESENT_ATTR}" belongs to the core`, {
          details: { provider: d.name, path: claim.path },
        });
      }
      const last = path[path.length - 1];
      if (last !== undefined && 'key' in last) {
        throw new InvalidClaimError(
          `provider ${d.name}: claim "${claim.path}" must end in a field, not a list item`,
          {
            details: { provider: d.name, path: claim.path },
          },
        );
      }
      if (claim.schema !== undefined) {
        try {
          ajv.compile(claim.schema);
        } catch (error) {
          throw new InvalidClaimError(
            `provider ${d.name}: claim "${claim.path}" has an invalid schema: ${(error as Error).message}`,
            { cause: error, details: { provider: d.name, path: claim.path } },
          );
        }
        checkAnnotations(d.name, claim.path, claim.schema, known);
      }
      entries.push({ provider: d.name, path, claim });
    }
  }
  return entries;
}

/** Checks that each claimed path has exactly one authority with a schema; returns the authority map and claims by path. */
function authoritiesOf(
  kind: KindDefinition,
  entries: readonly ClaimEntry[],
): { authority: Map<string, string>; byPath: Map<string, ClaimEntry[]> } {
  // Exactly one authority per path.
  const authority = new Map<string, string>([[PRESENT_ATTR, CORE_PROVIDER]]);
  const byPath = new Map<string, ClaimEntry[]>();
  for (const entry of entries) {
    const key = formatPath(entry.path);
    byPath.set(key, [...(byPath.get(key) ?? []), entry]);
  }
  for (const [key, claims] of byPath) {
    const owners = claims.filter((c) => c.claim.authority !== false);
    if (owners.length > 1) {
      const names = owners.map((o) => o.provider).sort();
      throw new ClaimConflictError(
        `kind ${kind.name}: providers ${names.join(' and ')} both claim authority over "${key}"`,
        { details: { kind: kind.name, path: key, providers: names } },
      );
    }
    const owner = owners[0];
    if (owner === undefined) {
      const names = claims.map((c) => c.provider).sort();
      throw new InvalidClaimError(
        `kind ${kind.name}: no provider has authority over "${key}" (observed by ${names.join(', ')})`,
        { details: { kind: kind.name, path: key, providers: names } },
      );
    }
    if (owner.claim.schema === undefined) {
      throw new InvalidClaimError(`provider ${owner.provider}: claim "${key}" has authority but no schema`, {
        details: { provider: owner.provider, path: key },
      });
    }
    authority.set(key, owner.provider);
  }
  return { authority, byPath };
}

/**
 * Composes the kind's document: top-level claims first, then sub-path claims from the shortest path down, each
 * with the default limits. An object composed from sub-path claims (a map list's items) refuses fields nobody
 * claims.
 */
function composeDocument(kind: KindDefinition, byPath: ReadonlyMap<string, ClaimEntry[]>): MutableSchema {
  const properties: MutableSchema = {
    [PRESENT_ATTR]: {
      type: 'boolean',
      description: 'whether the node exists',
      'x-authority': CORE_PROVIDER,
    },
  };
  const document: MutableSchema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: kind.name,
    ...(kind.description === undefined ? {} : { description: kind.description }),
    type: 'object',
    properties,
    additionalProperties: false,
  };
  const composed = new Set<MutableSchema>();
  const owned = [...byPath.entries()]
    .map(([key, claims]) => ({ key, entry: claims.find((c) => c.claim.authority !== false) as ClaimEntry }))
    .sort((a, b) => a.entry.path.length - b.entry.path.length || a.key.localeCompare(b.key));
  for (const { key, entry } of owned) {
    const observers = (byPath.get(key) ?? []).filter((c) => c !== entry).map((c) => c.provider);
    const schema = withDefaultLimits(clone(entry.claim.schema as JsonSchema));
    schema['x-authority'] = entry.provider;
    if (observers.length > 0) schema['x-observers'] = observers.sort();
    const parent = parentOf(document, entry.path);
    if (typeof parent === 'string') {
      throw new InvalidClaimError(`provider ${entry.provider}: claim "${key}" cannot be placed: ${parent}`, {
        details: { provider: entry.provider, path: key },
      });
    }
    const field = (entry.path[entry.path.length - 1] as { prop: string }).prop;
    (parent['properties'] as MutableSchema)[field] = schema;
    if (entry.path.length > 1) composed.add(parent);
  }
  for (const parent of composed) parent['unevaluatedProperties'] ??= false;
  return document;
}

/** The kind's watches (explicit ones must name a provided path; every provider implicitly watches `present`). */
function watchesOf(kind: KindDefinition, mine: readonly ProviderDeclaration[], draft: KindSchema): Watch[] {
  const watches: Watch[] = [];
  for (const d of mine) {
    if (!(d.watches ?? []).includes(PRESENT_ATTR)) {
      watches.push({
        provider: d.name,
        pattern: [{ prop: PRESENT_ATTR }],
        path: PRESENT_ATTR,
        onRemovalOnly: true,
      });
    }
    for (const text of d.watches ?? []) {
      let pattern: Path;
      try {
        pattern = parsePath(text, { allowWildcard: true });
      } catch (error) {
        throw new InvalidClaimError(`provider ${d.name}: watch ${(error as Error).message}`, {
          cause: error,
          details: { provider: d.name, path: text },
        });
      }
      const target = draft.schemaAt(pattern) as MutableSchema | undefined;
      if (target === undefined) {
        throw new InvalidClaimError(
          `kind ${kind.name}: provider ${d.name} watches "${text}", which no provider provides`,
          { details: { kind: kind.name, provider: d.name, path: text } },
        );
      }
      target['x-watchers'] = [...((target['x-watchers'] as string[] | undefined) ?? []), d.name].sort();
      watches.push({ provider: d.name, pattern, path: formatPath(pattern) });
    }
  }
  return watches;
}

/**
 * Checks every provider's declarations and compiles one `KindSchema` per kind. Throws at start-up:
 * `ClaimConflictError` when two providers claim authority over one path (naming both), `InvalidClaimError` for an
 * invalid schema, a sub-path under nothing, a path nobody has authority over, or a watch on a path nobody provides.
 */
export function buildKindSchemas(
  kinds: readonly KindDefinition[],
  declarations: readonly ProviderDeclaration[],
): Map<string, KindSchema> {
  const ajv = makeAjv();
  const result = new Map<string, KindSchema>();
  const known = new Map(kinds.map((kind) => [kind.name, kind]));
  for (const kind of kinds) assertKindName(kind.name);
  for (const declaration of declarations) {
    if (!known.has(declaration.kind)) {
      throw new InvalidClaimError(
        `provider ${declaration.name} declares claims for unknown kind "${declaration.kind}"`,
        { details: { provider: declaration.name, kind: declaration.kind } },
      );
    }
    if (declaration.name === CORE_PROVIDER || declaration.name === 'user') {
      throw new InvalidClaimError(`provider name "${declaration.name}" is reserved`, {
        details: { provider: declaration.name },
      });
    }
  }

  for (const kind of kinds) {
    const mine = declarations.filter((d) => d.kind === kind.name);
    const seen = new Set<string>();
    for (const d of mine) {
      if (seen.has(d.name)) {
        throw new InvalidClaimError(`provider ${d.name} is declared twice for kind ${kind.name}`, {
          details: { provider: d.name, kind: kind.name },
        });
      }
      seen.add(d.name);
    }
    const { authority, byPath } = authoritiesOf(kind, claimEntriesOf(ajv, mine, known));
    const document = composeDocument(kind, byPath);
    const draft = new KindSchema(kind.name, kind.description, ajv, document, authority, [], []);
    const watches = watchesOf(kind, mine, draft);
    const properties = document['properties'] as MutableSchema;
    (properties[PRESENT_ATTR] as MutableSchema)['x-watchers'] = mine.map((d) => d.name).sort();
    result.set(
      kind.name,
      new KindSchema(
        kind.name,
        kind.description,
        ajv,
        document,
        authority,
        watches,
        mine.map((d) => d.name),
      ),
    );
  }
  return result;
}

/** Looks up a kind's schema; throws `NotFoundError` naming the known kinds. */
export function kindSchemaOf(schemas: ReadonlyMap<string, KindSchema>, kind: string): KindSchema {
  const schema = schemas.get(kind);
  if (schema === undefined) {
    throw new NotFoundError(`unknown kind "${kind}" (known: ${[...schemas.keys()].sort().join(', ')})`, {
      details: { kind },
    });
  }
  return schema;
}
