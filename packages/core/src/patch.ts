/**
 * Turning request bodies into proposed updates. A merge patch (RFC 7396) or a JSON patch (RFC 6902) is applied to
 * the node's current attributes to get the target, and the difference between current and target becomes updates,
 * split where other providers own sub-paths (`interfaces[eth0].mac`) so that each update reaches its owner.
 */
import jsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { InputError, PreconditionFailedError } from './errors.js';
import { canonicalJson, deepEqual } from './json.js';
import type { Attrs, JsonObject, JsonValue, UpdateRequest } from './model.js';
import { isJsonObject, PRESENT_ATTR } from './model.js';
import type { Path } from './paths.js';
import { formatPath } from './paths.js';
import type { KindSchema } from './schema.js';

/** Applies an RFC 7396 merge patch: null removes a member, objects merge recursively, anything else replaces. */
export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return patch;
  const result: Record<string, JsonValue> = isJsonObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    else result[name] = applyMergePatch(result[name], value);
  }
  return result;
}

/** True when some provider other than the owner of `path` owns a path below it. */
function needsSplit(schema: KindSchema, path: Path): boolean {
  const owner = schema.authorityOf(path);
  return schema.subAuthorities(path).some((provider) => provider !== owner);
}

function diffObject(
  schema: KindSchema,
  path: Path,
  before: JsonObject,
  after: JsonObject,
  out: UpdateRequest[],
): void {
  const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const field of fields) {
    diffValue(schema, [...path, { prop: field }], before[field], after[field], out);
  }
}

/** A new object or map item: one `merge` with the fields its owner keeps, plus updates for sub-owned fields. */
function createSplit(
  schema: KindSchema,
  path: Path,
  value: JsonObject,
  keyField: string | undefined,
  out: UpdateRequest[],
): void {
  const owner = schema.authorityOf(path);
  const own: Record<string, JsonValue> = {};
  const rest: [string, JsonValue][] = [];
  for (const [field, fieldValue] of Object.entries(value)) {
    const fieldPath: Path = [...path, { prop: field }];
    if (field !== keyField && (schema.authorityOf(fieldPath) !== owner || needsSplit(schema, fieldPath))) {
      rest.push([field, fieldValue]);
    } else own[field] = fieldValue;
  }
  // A merge, not a set: it creates the object without wiping fields other owners fill in the same round.
  out.push({ path: formatPath(path), op: 'merge', value: own });
  for (const [field, fieldValue] of rest.sort(([a], [b]) => a.localeCompare(b))) {
    diffValue(schema, [...path, { prop: field }], undefined, fieldValue, out);
  }
}

function diffValue(
  schema: KindSchema,
  path: Path,
  before: JsonValue | undefined,
  after: JsonValue | undefined,
  out: UpdateRequest[],
): void {
  if (deepEqual(before, after)) return;
  const where = formatPath(path);
  if (after === undefined) {
    out.push({ path: where, op: 'unset' });
    return;
  }
  if (schema.schemaAt(path) === undefined) schema.resolvePath(where);
  // A list over its limit is refused before its items are compared or turned into updates.
  if (Array.isArray(after)) schema.assertListSize(path, after.length);
  const semantics = schema.listSemanticsAt(path);
  if (semantics?.type === 'set' && Array.isArray(before) && Array.isArray(after)) {
    // Items compared by canonical JSON in sets: linear in the lists' lengths, not their product.
    const was = before as readonly JsonValue[];
    const now = after as readonly JsonValue[];
    const wasKeys = new Set(was.map((x) => canonicalJson(x)));
    const nowKeys = now.map((x) => canonicalJson(x));
    const nowSet = new Set(nowKeys);
    if (nowSet.size !== now.length) {
      throw new InputError(`"${where}" is a set list and cannot hold the same item twice`);
    }
    was.forEach((item) => {
      if (!nowSet.has(canonicalJson(item))) out.push({ path: where, op: 'remove', value: item });
    });
    now.forEach((item, i) => {
      if (!wasKeys.has(nowKeys[i] as string)) out.push({ path: where, op: 'add', value: item });
    });
    return;
  }
  if (!needsSplit(schema, path)) {
    out.push({ path: where, op: 'set', value: after });
    return;
  }
  if (semantics?.type === 'map' && Array.isArray(after)) {
    const key = semantics.key;
    const was = (Array.isArray(before) ? before : []) as readonly JsonValue[];
    const now = after as readonly JsonValue[];
    const keyOf = (item: JsonValue): string => {
      if (!isJsonObject(item) || typeof item[key] !== 'string') {
        throw new InputError(`items of "${where}" need a string "${key}"`);
      }
      return item[key];
    };
    const nowKeys = now.map(keyOf);
    if (new Set(nowKeys).size !== nowKeys.length)
      throw new InputError(`"${where}" has two items with the same ${key}`);
    // No item to create it with: an absent list becomes an empty one only by setting it.
    if (now.length === 0 && !Array.isArray(before)) {
      out.push({ path: where, op: 'set', value: [] });
      return;
    }
    for (const item of was) {
      const itemKey = keyOf(item);
      if (!nowKeys.includes(itemKey)) out.push({ path: `${where}[${itemKey}]`, op: 'unset' });
    }
    for (const item of now) {
      const itemKey = keyOf(item);
      const itemPath: Path = [...path, { key: itemKey }];
      const old = was.find((x) => keyOf(x) === itemKey);
      if (old === undefined) createSplit(schema, itemPath, item as JsonObject, key, out);
      else diffObject(schema, itemPath, old as JsonObject, item as JsonObject, out);
    }
    return;
  }
  if (isJsonObject(after)) {
    if (isJsonObject(before)) diffObject(schema, path, before, after, out);
    else createSplit(schema, path, after, undefined, out);
    return;
  }
  out.push({ path: where, op: 'set', value: after });
}

/**
 * The updates that turn `before` into `after`, each addressed to one owner. Throws `UnknownAttributeError` for a
 * path the kind does not have and `InputError` for list values that break their list type.
 */
export function diffToUpdates(schema: KindSchema, before: Attrs, after: Attrs): UpdateRequest[] {
  const out: UpdateRequest[] = [];
  for (const attribute of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    if (attribute === PRESENT_ATTR) {
      if (!deepEqual(before[attribute], after[attribute])) {
        throw new InputError(`"${PRESENT_ATTR}" cannot be patched: create or delete the node instead`);
      }
      continue;
    }
    if (!deepEqual(before[attribute], after[attribute])) schema.resolvePath(attribute);
    diffValue(schema, [{ prop: attribute }], before[attribute], after[attribute], out);
  }
  return out;
}

/** Updates for an RFC 7396 merge patch against the current attributes; throws `InputError` for a non-object. */
export function mergePatchToUpdates(schema: KindSchema, current: Attrs, patch: unknown): UpdateRequest[] {
  if (!isJsonObject(patch)) throw new InputError('a merge patch must be a JSON object');
  return diffToUpdates(schema, current, applyMergePatch(current, patch) as Attrs);
}

/**
 * Refuses an array index with leading zeros (`/tags/01`) in a JSON pointer: RFC 6901 allows only `0` or digits
 * without a leading zero, and the patch library reads `01` as 1. Walks `document` to know which segments index
 * arrays; segments past the end of what exists are left to the library.
 */
function assertArrayIndexes(document: unknown, pointer: unknown, index: number): void {
  if (typeof pointer !== 'string' || pointer === '') return;
  let at: unknown = document;
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(at)) {
      if (segment !== '-' && !/^(0|[1-9][0-9]*)$/.test(segment)) {
        throw new InputError(
          `invalid JSON patch: operation ${index} path ${JSON.stringify(pointer)}: "${segment}" is not an array index (digits without leading zeros, or -)`,
        );
      }
      at = (at as unknown[])[Number(segment)];
    } else if (isJsonObject(at)) {
      at = Object.hasOwn(at, segment) ? at[segment] : undefined;
    } else return;
  }
}

/**
 * Updates for an RFC 6902 JSON patch against the current attributes. A failed `test` throws
 * `PreconditionFailedError`; a malformed patch or a path that does not exist throws `InputError`.
 */
export function jsonPatchToUpdates(schema: KindSchema, current: Attrs, patch: unknown): UpdateRequest[] {
  if (!Array.isArray(patch)) throw new InputError('a JSON patch must be an array of operations');
  let target: unknown = structuredClone(current);
  try {
    // One operation at a time, so that each pointer is checked against the document it will walk.
    for (const [i, operation] of (patch as unknown[]).entries()) {
      // Malformed operations are the library's to describe; only well-formed pointers are checked here.
      if (isJsonObject(operation)) {
        for (const pointer of [operation['path'], operation['from']]) assertArrayIndexes(target, pointer, i);
      }
      target = jsonPatch.applyPatch(target, [operation as Operation], true, true).newDocument;
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    const name = (error as { name?: unknown }).name;
    const message = (error as Error).message.split('\n')[0] ?? 'invalid patch';
    if (name === 'TEST_OPERATION_FAILED') {
      throw new PreconditionFailedError(`JSON patch test failed: ${message}`, { cause: error });
    }
    throw new InputError(`invalid JSON patch: ${message}`, { cause: error });
  }
  if (!isJsonObject(target)) throw new InputError('a JSON patch must leave the attributes an object');
  return diffToUpdates(schema, current, target);
}
