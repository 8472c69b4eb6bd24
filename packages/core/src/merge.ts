/**
 * Applying proposed updates to attributes with the list semantics of the kind schema, and checking whether an
 * update holds. Values are treated as immutable: an update copies only the objects along its path.
 */
import { InputError } from './errors.js';
import { canonicalJson, deepEqual } from './json.js';
import type { Attrs, JsonObject, JsonValue, UpdateOp } from './model.js';
import { isJsonObject } from './model.js';
import type { Path } from './paths.js';
import { formatPath, rootOf } from './paths.js';
import type { ListSemantics } from './schema.js';
import { countWork } from './work-meter.js';

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
      if (Array.isArray(current)) countWork(current.length);
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
  countWork(list.length);
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
        countWork(list.length);
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
        countWork(list.length);
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

/** The canonical key of a set-list item: equal items (by `deepEqual`) have equal keys. */
function itemKey(item: JsonValue): string {
  return typeof item === 'string' ? `s${item}` : canonicalJson(item);
}

/**
 * A set list being edited by many `add`/`remove` updates: membership by canonical key, removals as holes, so that
 * each update costs O(1) instead of a scan and a copy of the whole list.
 */
class SetListDraft {
  private readonly items: (JsonValue | undefined)[];
  private readonly positions = new Map<string, number[]>();
  private isList: boolean;
  private changed = false;

  constructor(private readonly base: JsonValue | undefined) {
    this.isList = Array.isArray(base);
    this.items = this.isList ? [...(base as readonly JsonValue[])] : [];
    countWork(this.items.length);
    this.items.forEach((item, i) => {
      const key = itemKey(item as JsonValue);
      const at = this.positions.get(key);
      if (at === undefined) this.positions.set(key, [i]);
      else at.push(i);
    });
  }

  /** Adds an item unless present (as `applyUpdate` does); true when the list changed. */
  add(item: JsonValue): boolean {
    const key = itemKey(item);
    if (this.isList && this.positions.has(key)) return false;
    this.isList = true;
    this.positions.set(key, [this.items.length]);
    this.items.push(item);
    this.changed = true;
    return true;
  }

  /** Removes every copy of an item; true when the list changed. */
  remove(item: JsonValue): boolean {
    if (!this.isList) return false;
    const key = itemKey(item);
    const at = this.positions.get(key);
    if (at === undefined) return false;
    for (const i of at) this.items[i] = undefined;
    this.positions.delete(key);
    this.changed = true;
    return true;
  }

  /** The list as it stands, or the base value itself when nothing changed. */
  value(): JsonValue | undefined {
    if (!this.changed) return this.base;
    countWork(this.items.length);
    return this.items.filter((item): item is JsonValue => item !== undefined);
  }
}

/**
 * A working copy of a node's attributes for applying many updates: the top level is copied once, each update
 * copies only its own attribute, and `add`/`remove` updates of one set list share one index until something else
 * reads or edits that attribute, so a round stays linear in the number of updates and in the size of the lists.
 */
export class AttrsDraft {
  private readonly values: Record<string, JsonValue>;
  /** Set lists being edited item by item, by formatted path, with the attribute they belong to. */
  private readonly sets = new Map<string, { readonly path: Path; readonly list: SetListDraft }>();

  constructor(
    base: Attrs,
    private readonly source: ListSemanticsSource,
  ) {
    this.values = { ...base };
  }

  /**
   * Applies one update (see `applyUpdate`) and says whether the value at its path changed. Throws `InputError`
   * when the operation does not fit, before changing anything.
   */
  apply(path: Path, op: UpdateOp, value: JsonValue | undefined): boolean {
    const attribute = rootOf(path);
    if (op === 'add' || op === 'remove') {
      requireSet(this.source, path, op);
      if (value === undefined) throw new InputError(`"${op}" on "${formatPath(path)}" needs a value`);
      const key = formatPath(path);
      let entry = this.sets.get(key);
      if (entry === undefined) {
        // Other set lists edited under the same attribute are elsewhere in it (a set list holds no paths), so
        // they stay unflushed: each draft writes only its own list back.
        const current = this.attribute(attribute);
        // An edit that changes nothing throws exactly where the update itself would (a list where an object is).
        editAt(current, path, 0, (old) => old, this.source);
        entry = { path, list: new SetListDraft(getAt(current, path, this.source)) };
        this.sets.set(key, entry);
      }
      return op === 'add' ? entry.list.add(value) : entry.list.remove(value);
    }
    this.flush(attribute);
    const current = this.attribute(attribute);
    const next = applyUpdate(current, path, op, value, this.source);
    if (next === current) return false;
    const changed = !deepEqual(getAt(current, path, this.source), getAt(next, path, this.source));
    if (Object.hasOwn(next, attribute)) this.values[attribute] = next[attribute] as JsonValue;
    else delete this.values[attribute];
    return changed;
  }

  /** The value at a path in the working copy. */
  get(path: Path): JsonValue | undefined {
    this.flush(rootOf(path));
    return getAt(this.values, path, this.source);
  }

  /** The attributes as they stand; the draft must not be used afterwards. */
  result(): Attrs {
    for (const { path } of [...this.sets.values()]) this.flush(rootOf(path));
    return this.values;
  }

  private attribute(attribute: string): Attrs {
    return Object.hasOwn(this.values, attribute) ? { [attribute]: this.values[attribute] as JsonValue } : {};
  }

  /** Writes the set lists edited under `attribute` back into the working copy. */
  private flush(attribute: string): void {
    for (const [key, { path, list }] of this.sets) {
      if (rootOf(path) !== attribute) continue;
      this.sets.delete(key);
      const items = list.value();
      const current = this.attribute(attribute);
      const next = editAt(current, path, 0, (old) => (items === undefined ? old : items), this.source);
      if (next !== current && isJsonObject(next)) {
        if (Object.hasOwn(next, attribute)) this.values[attribute] = next[attribute] as JsonValue;
        else delete this.values[attribute];
      }
    }
  }
}

/**
 * The updates that do not hold in `attrs` (see `updateHolds`), checked together: `add`/`remove` updates of one set
 * list share one index of its items, so checking many of them stays linear in the size of the list.
 */
export function unheldUpdates<U extends { readonly op: UpdateOp; readonly value?: JsonValue }>(
  attrs: Attrs,
  updates: readonly { readonly update: U; readonly path: Path }[],
  source: ListSemanticsSource,
): U[] {
  const indexes = new Map<string, ReadonlySet<string> | null>();
  const itemsAt = (path: Path): ReadonlySet<string> | null => {
    const key = formatPath(path);
    let index = indexes.get(key);
    if (index === undefined) {
      const actual = getAt(attrs, path, source);
      countWork(Array.isArray(actual) ? actual.length : 1);
      index = Array.isArray(actual)
        ? new Set((actual as readonly JsonValue[]).map((item) => itemKey(item)))
        : null;
      indexes.set(key, index);
    }
    return index;
  };
  return updates
    .filter(({ update, path }) => {
      if ((update.op === 'add' || update.op === 'remove') && update.value !== undefined) {
        const present = itemsAt(path)?.has(itemKey(update.value)) ?? false;
        return update.op === 'add' ? !present : present;
      }
      return !updateHolds(attrs, path, update.op, update.value, source);
    })
    .map(({ update }) => update);
}
