/**
 * Applying proposed updates to attributes with the list semantics of the kind schema, and checking whether an
 * update holds. Values are treated as immutable: an update copies only the objects along its path.
 */
import { InputError } from './errors.js';
import { deepEqual } from './json.js';
import type { Attrs, JsonObject, JsonValue, UpdateOp } from './model.js';
import { isJsonObject } from './model.js';
import type { Path } from './paths.js';
import { formatPath, rootOf } from './paths.js';
import type { ListSemantics } from './schema.js';

/** What merging needs to know about the kind: how the list at a path behaves. */
export interface ListSemanticsSource {
  listSemanticsAt(path: Path): ListSemantics | undefined;
}

function mapKeyAt(source: ListSemanticsSource, path: Path, at: number): string {
  const semantics = source.listSemanticsAt(path.slice(0, at));
  if (semantics?.type !== 'map') {
    throw new InputError(
      `"${formatPath(path.slice(0, at))}" is not a map list, so "${formatPath(path)}" has no item key`,
    );
  }
  return semantics.key;
}

/** The value at a path, or undefined when absent. */
export function getAt(attrs: Attrs, path: Path, source: ListSemanticsSource): JsonValue | undefined {
  let current: JsonValue | undefined = attrs;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as Path[number];
    if (current === undefined) return undefined;
    if ('prop' in segment) {
      current =
        isJsonObject(current) && Object.hasOwn(current, segment.prop) ? current[segment.prop] : undefined;
    } else {
      const key = mapKeyAt(source, path, i);
      current = Array.isArray(current)
        ? (current as readonly JsonValue[]).find((item) => isJsonObject(item) && item[key] === segment.key)
        : undefined;
    }
  }
  return current;
}

type Edit = (old: JsonValue | undefined) => JsonValue | undefined;

function editAt(
  container: JsonValue | undefined,
  path: Path,
  at: number,
  edit: Edit,
  source: ListSemanticsSource,
): JsonValue | undefined {
  if (at === path.length) return edit(container);
  const segment = path[at] as Path[number];
  if ('prop' in segment) {
    if (container !== undefined && !isJsonObject(container)) {
      throw new InputError(
        `cannot set "${formatPath(path)}": "${formatPath(path.slice(0, at))}" is not an object`,
      );
    }
    const object: JsonObject = container ?? {};
    const old = Object.hasOwn(object, segment.prop) ? object[segment.prop] : undefined;
    const next = editAt(old, path, at + 1, edit, source);
    if (next === old) return container;
    const copy: Record<string, JsonValue> = { ...object };
    if (next === undefined) delete copy[segment.prop];
    else copy[segment.prop] = next;
    return copy;
  }
  const key = mapKeyAt(source, path, at);
  if (container !== undefined && !Array.isArray(container)) {
    throw new InputError(
      `cannot set "${formatPath(path)}": "${formatPath(path.slice(0, at))}" is not a list`,
    );
  }
  const list = (container ?? []) as readonly JsonValue[];
  const index = list.findIndex((item) => isJsonObject(item) && item[key] === segment.key);
  const old = index >= 0 ? list[index] : undefined;
  let next = editAt(old, path, at + 1, edit, source);
  if (next === old) return container;
  if (next !== undefined) {
    if (!isJsonObject(next))
      throw new InputError(`items of "${formatPath(path.slice(0, at))}" must be objects`);
    if (next[key] === undefined) next = { [key]: segment.key, ...next };
    else if (next[key] !== segment.key) {
      throw new InputError(
        `item "${formatPath(path.slice(0, at + 1))}" cannot have ${key}=${JSON.stringify(next[key])}: the key is "${segment.key}"`,
      );
    }
  }
  if (index < 0) return next === undefined ? container : [...list, next];
  const copy = [...list];
  if (next === undefined) copy.splice(index, 1);
  else copy[index] = next;
  return copy;
}

/** Merges `patch` into `target`: null deletes a field, objects merge recursively, map lists merge by key. */
function mergeValue(
  target: JsonValue | undefined,
  patch: JsonValue,
  path: Path,
  source: ListSemanticsSource,
): JsonValue | undefined {
  const semantics = source.listSemanticsAt(path);
  if (semantics?.type === 'map' && Array.isArray(patch)) {
    let list: JsonValue | undefined = target;
    for (const item of patch as readonly JsonValue[]) {
      if (!isJsonObject(item) || typeof item[semantics.key] !== 'string') {
        throw new InputError(`merge into "${formatPath(path)}" needs items with a string "${semantics.key}"`);
      }
      const itemPath: Path = [...path, { key: item[semantics.key] as string }];
      list = editAt(list, itemPath, path.length, (old) => mergeValue(old, item, itemPath, source), source);
    }
    return list;
  }
  if (!isJsonObject(patch)) return patch;
  const base: JsonObject = isJsonObject(target) ? target : {};
  const copy: Record<string, JsonValue> = { ...base };
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) delete copy[field];
    else {
      const merged = mergeValue(base[field], value, [...path, { prop: field }], source);
      if (merged === undefined) delete copy[field];
      else copy[field] = merged;
    }
  }
  return copy;
}

function requireSet(source: ListSemanticsSource, path: Path, op: UpdateOp): void {
  if (source.listSemanticsAt(path)?.type !== 'set') {
    throw new InputError(`"${op}" needs a set list (x-list-type: set) but "${formatPath(path)}" is not one`);
  }
}

/**
 * Applies one update to attributes and returns the new attributes (the input is not modified). `add` of an item
 * already present and `remove` of an absent one are no-ops; `sync` changes nothing. Throws `InputError` when the
 * operation does not fit the value at the path.
 */
export function applyUpdate(
  attrs: Attrs,
  path: Path,
  op: UpdateOp,
  value: JsonValue | undefined,
  source: ListSemanticsSource,
): Attrs {
  const need = (): JsonValue => {
    if (value === undefined) throw new InputError(`"${op}" on "${formatPath(path)}" needs a value`);
    return value;
  };
  let edit: Edit;
  switch (op) {
    case 'sync':
      return attrs;
    case 'set': {
      const next = need();
      edit = () => next;
      break;
    }
    case 'unset':
      edit = () => undefined;
      break;
    case 'add': {
      requireSet(source, path, op);
      const item = need();
      edit = (old) => {
        const list = Array.isArray(old) ? (old as readonly JsonValue[]) : [];
        return list.some((x) => deepEqual(x, item)) ? (old ?? list) : [...list, item];
      };
      break;
    }
    case 'remove': {
      requireSet(source, path, op);
      const item = need();
      edit = (old) => {
        if (!Array.isArray(old)) return old;
        const list = old as readonly JsonValue[];
        return list.some((x) => deepEqual(x, item)) ? list.filter((x) => !deepEqual(x, item)) : list;
      };
      break;
    }
    case 'merge': {
      const patch = need();
      const semantics = source.listSemanticsAt(path);
      if (!isJsonObject(patch) && !(semantics?.type === 'map' && Array.isArray(patch))) {
        throw new InputError(`"merge" on "${formatPath(path)}" needs an object (or items of a map list)`);
      }
      edit = (old) => mergeValue(old, patch, path, source);
      break;
    }
  }
  const result = editAt(attrs, path, 0, edit, source);
  return (result ?? {}) as Attrs;
}

/** True when `actual` satisfies `desired`: objects by their named fields, map lists by key, set lists as sets. */
export function satisfies(
  actual: JsonValue | undefined,
  desired: JsonValue,
  path: Path,
  source: ListSemanticsSource,
): boolean {
  if (isJsonObject(desired)) {
    if (!isJsonObject(actual)) return false;
    return Object.entries(desired).every(([field, value]) => {
      const here = Object.hasOwn(actual, field) ? actual[field] : undefined;
      return value === null
        ? here === undefined || here === null
        : satisfies(here, value, [...path, { prop: field }], source);
    });
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual) || actual.length !== desired.length) return false;
    const items = actual as readonly JsonValue[];
    const semantics = source.listSemanticsAt(path);
    if (semantics?.type === 'map') {
      return (desired as readonly JsonValue[]).every((want) => {
        if (!isJsonObject(want)) return false;
        const key = want[semantics.key];
        const have = items.find((item) => isJsonObject(item) && item[semantics.key] === key);
        return typeof key === 'string' && satisfies(have, want, [...path, { key }], source);
      });
    }
    if (semantics?.type === 'set')
      return (desired as readonly JsonValue[]).every((want) => items.some((x) => deepEqual(x, want)));
    return deepEqual(actual, desired);
  }
  return deepEqual(actual, desired);
}

/**
 * True when an update holds in `attrs`: a `set` value is satisfied (other owners may have added fields below it),
 * an `unset` path is absent, an `add`ed item is present, a `remove`d one absent, and a `merge` would change
 * nothing if applied again (a map-list merge names only some items; the others may stay).
 */
export function updateHolds(
  attrs: Attrs,
  path: Path,
  op: UpdateOp,
  value: JsonValue | undefined,
  source: ListSemanticsSource,
): boolean {
  const actual = getAt(attrs, path, source);
  switch (op) {
    case 'sync':
      return true;
    case 'unset':
      return actual === undefined;
    case 'set':
      return value !== undefined && satisfies(actual, value, path, source);
    case 'merge': {
      if (value === undefined) return false;
      try {
        return deepEqual(getAt(applyUpdate(attrs, path, op, value, source), path, source), actual);
      } catch (error) {
        if (error instanceof InputError) return false;
        throw error;
      }
    }
    case 'add':
      return Array.isArray(actual) && (actual as readonly JsonValue[]).some((x) => deepEqual(x, value));
    case 'remove':
      return !Array.isArray(actual) || !(actual as readonly JsonValue[]).some((x) => deepEqual(x, value));
  }
}

/**
 * A working copy of a node's attributes for applying many updates: the top level is copied once, and each update
 * copies only its own attribute, so a round over a wide node stays linear in the number of updates.
 */
export class AttrsDraft {
  private readonly values: Record<string, JsonValue>;

  constructor(
    base: Attrs,
    private readonly source: ListSemanticsSource,
  ) {
    this.values = { ...base };
  }

  /** Applies one update (see `applyUpdate`); throws `InputError` when the operation does not fit. */
  apply(path: Path, op: UpdateOp, value: JsonValue | undefined): void {
    const attribute = rootOf(path);
    const current = Object.hasOwn(this.values, attribute)
      ? { [attribute]: this.values[attribute] as JsonValue }
      : {};
    const next = applyUpdate(current, path, op, value, this.source);
    if (next === current) return;
    if (Object.hasOwn(next, attribute)) this.values[attribute] = next[attribute] as JsonValue;
    else delete this.values[attribute];
  }

  /** The value at a path in the working copy. */
  get(path: Path): JsonValue | undefined {
    return getAt(this.values, path, this.source);
  }

  /** The attributes as they stand; the draft must not be used afterwards. */
  result(): Attrs {
    return this.values;
  }
}
