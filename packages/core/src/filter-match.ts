/**
 * A filter evaluated over one node in memory, with the semantics the store contract pins for every adapter (a path
 * that crosses an array holds if it holds for any item; a missing value is JSON null; comparisons are type-strict;
 * `ne` is `not eq`; `has` tests the array at the end of the path; `glob` knows only `*` and `?`). Hooks use it to
 * match an event's node, which may already be gone from the store (a delete), against a hook's search filter.
 */
import { parseCidr, parseIpv4, networkContains } from './ipv4.js';
import { deepEqual } from './json.js';
import type { Attrs, JsonValue } from './model.js';
import { isJsonObject } from './model.js';
import type { Filter } from './ports/store.js';

/** A node as a filter sees it: its name and attributes. */
export interface MatchedNode {
  readonly name: string;
  readonly attrs: Attrs;
}

/** Reads the node a reference names (`ref` filters); undefined when there is none. */
export type ReferenceReader = (kind: string, name: string) => Promise<MatchedNode | undefined>;

/** The values at a dotted path: one per item of every array crossed, null where nothing is. */
function valuesAt(node: MatchedNode, field: string): JsonValue[] {
  if (field === 'name') return [node.name];
  let values: JsonValue[] = [node.attrs];
  for (const segment of field.split('.')) {
    const step = (value: JsonValue): JsonValue => (isJsonObject(value) ? (value[segment] ?? null) : null);
    values = values.flatMap((value) => (Array.isArray(value) ? value.map(step) : [step(value)]));
  }
  return values;
}

/** Narrows a JSON value to a list (`Array.isArray` alone widens to `any[]`). */
function isJsonList(value: JsonValue): value is readonly JsonValue[] {
  return Array.isArray(value);
}

/** Orders two values of the same scalar type; undefined when they cannot be compared. */
function compare(a: JsonValue, b: JsonValue): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return undefined;
}

/** A shell-style glob as an anchored regular expression: `*` any run, `?` one character, the rest literal. */
function globRegExp(pattern: string): RegExp {
  // Code points, not graphemes: `?` matches one code point, as the stores' globs do.
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  const body = [...pattern]
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'su');
}

/** True when `node` matches `filter`; `references` reads the nodes that `ref` filters hop to. */
export async function matchesFilter(
  node: MatchedNode,
  filter: Filter,
  references: ReferenceReader,
): Promise<boolean> {
  switch (filter.op) {
    case 'and':
      for (const arg of filter.args) if (!(await matchesFilter(node, arg, references))) return false;
      return true;
    case 'or':
      for (const arg of filter.args) if (await matchesFilter(node, arg, references)) return true;
      return false;
    case 'not':
      return !(await matchesFilter(node, filter.arg, references));
    case 'ref': {
      const names = valuesAt(node, filter.field).flatMap((v): readonly JsonValue[] =>
        isJsonList(v) ? v : [v],
      );
      for (const name of names) {
        if (typeof name !== 'string') continue;
        const target = await references(filter.kind, name);
        if (target !== undefined && (await matchesFilter(target, filter.filter, references))) return true;
      }
      return false;
    }
    default:
      return matchesLeaf(valuesAt(node, filter.field), filter);
  }
}

/** A comparison over the values at its field: true when any value satisfies it (`ne`: none equals). */
function matchesLeaf(
  values: readonly JsonValue[],
  filter: Exclude<Filter, { op: 'and' | 'or' | 'not' | 'ref' }>,
): boolean {
  switch (filter.op) {
    case 'eq':
      return values.some((v) => deepEqual(v, filter.value));
    case 'ne':
      return !values.some((v) => deepEqual(v, filter.value));
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge': {
      const holds = {
        lt: (c: number) => c < 0,
        le: (c: number) => c <= 0,
        gt: (c: number) => c > 0,
        ge: (c: number) => c >= 0,
      }[filter.op];
      return values.some((v) => {
        const c = compare(v, filter.value);
        return c !== undefined && holds(c);
      });
    }
    case 'in':
      return values.some((v) => filter.values.some((w) => deepEqual(v, w)));
    case 'has':
      return values.some(
        (v) => Array.isArray(v) && v.some((item: JsonValue) => deepEqual(item, filter.value)),
      );
    case 'glob': {
      const re = globRegExp(filter.pattern);
      return values.some((v) => typeof v === 'string' && re.test(v));
    }
    case 'exists':
      return values.some((v) => v !== null);
    case 'cidr': {
      const net = parseCidr(filter.cidr);
      if (net === undefined) return false;
      return values.some((v) => {
        const address = typeof v === 'string' ? parseIpv4(v) : undefined;
        return address !== undefined && networkContains(net, address);
      });
    }
  }
}
