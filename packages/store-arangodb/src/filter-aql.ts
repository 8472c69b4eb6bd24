/**
 * Compiles the store port's filter AST to an AQL boolean expression over one `nodes` document, with the `aql`
 * template tag of arangojs: every value, every attribute name of a path and every collection becomes a bind
 * variable (`@value3`, `n.attrs.@value4`, `@@value0`); the only words the compiler writes into the text itself
 * are AQL keywords and the names of the loop variables it makes up (`v1`, `t2`).
 *
 * Semantics are those of the SQLite adapter (`packages/store-sqlite/src/filter-sql.ts`), pinned down by the store
 * contract suite:
 * - `name` is the node's name; any other field is a dotted attribute path under `attrs`.
 * - A path that crosses an array holds if it holds for any element; only the arrays the path passes through fan
 *   out, the value at the end of the path is compared whole (`has` tests "this array contains").
 * - A missing value and JSON null are the same: `exists` is "not null", `eq null` matches both.
 * - Comparisons are type-strict: AQL's `==` and `IN` never convert types; `lt`/`le`/`gt`/`ge` add an `IS_NUMBER` or
 *   `IS_STRING` guard because AQL's type order would otherwise make `null < 7` true.
 * - `ne` is `NOT` of `eq`.
 * - `glob` becomes `LIKE` with `*` → `%`, `?` → `_` and AQL's own wildcards escaped; `LIKE` is case-sensitive and
 *   knows no `[...]` classes, so a bracket matches itself.
 * - `cidr` holds for strings that `IS_IPV4` accepts (four decimal octets, no leading zeros, as core's `parseIpv4`)
 *   whose `IPV4_TO_NUMBER` lies between the network's first and last address.
 * - `ref` holds when a string at the path (or in a list there) names a node of the given kind that matches the
 *   inner filter: through the `refs` edges when the store knows the field as an `x-ref` of that kind (see
 *   `references.ts`), otherwise by looking the names up in `nodes` (index on kind and name).
 *
 * One difference from SQLite that no filter can avoid: AQL orders strings with ICU collation in the server's
 * language, not by bytes, so `lt`/`gt` on strings and name order agree with SQLite only where the two orders agree
 * (lowercase ASCII letters, digits and `-` in the usual names; not `_` against digits, nor upper against lower case).
 */
import { aql, join, literal } from 'arangojs/aql';
import type { AqlQuery } from 'arangojs/aql';
import type { DocumentCollection, EdgeCollection } from 'arangojs/collections';
import { InputError, parseCidr, filterScalar } from '@consortium/core';
import type { Filter, JsonValue } from '@consortium/core';
import type { ReferenceMap } from './references.js';

/** Attribute paths a filter may name (besides `name`): lowercase identifiers joined by dots. */
export const FILTER_FIELD_PATTERN = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/;

const MAX_DEPTH = 64;

/** What the compiler needs to know about where it runs. */
export interface FilterContext {
  /** The `nodes` collection, for the lookups of `ref`. */
  readonly nodes: DocumentCollection;
  /** The `refs` edge collection, for `ref` along declared references. */
  readonly refs: EdgeCollection;
  /** The declared references (`x-ref` fields) per kind; `ref` on one of them walks the edges. */
  readonly references?: ReferenceMap;
}

type Condition = (value: AqlQuery) => AqlQuery;

/**
 * Compiles `filter` to an AQL boolean expression over the document variable `row` (default `n`), a node of
 * `kind`; throws `InputError` for a malformed filter.
 */
export function compileFilter(filter: Filter, kind: string, context: FilterContext, row = 'n'): AqlQuery {
  return new FilterCompiler(context).compile(filter, 0, variable(row), kind);
}

class FilterCompiler {
  private variables = 0;

  constructor(private readonly context: FilterContext) {}

  compile(filter: Filter, depth: number, row: AqlQuery, kind: string): AqlQuery {
    if (depth > MAX_DEPTH) throw new InputError(`Filter is nested more than ${MAX_DEPTH} levels deep`);
    switch (filter.op) {
      case 'and':
      case 'or': {
        const args: readonly Filter[] = filter.args;
        if (!isList(args)) throw new InputError(`Filter "${filter.op}" needs a list of filters`);
        if (args.length === 0) return filter.op === 'and' ? aql`true` : aql`false`;
        const parts = args.map((arg) => aql`(${this.compile(arg, depth + 1, row, kind)})`);
        return join(parts, filter.op === 'and' ? ' AND ' : ' OR ');
      }
      case 'not':
        return aql`NOT (${this.compile(filter.arg, depth + 1, row, kind)})`;
      case 'eq': {
        const value = filterScalar(filter.field, filter.value);
        return this.some(row, filter.field, (v) => aql`${v} == ${value}`);
      }
      case 'ne': {
        const value = filterScalar(filter.field, filter.value);
        return aql`NOT (${this.some(row, filter.field, (v) => aql`${v} == ${value}`)})`;
      }
      case 'lt':
      case 'le':
      case 'gt':
      case 'ge': {
        const { op, field } = filter;
        const value = filter.value;
        if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) {
          throw new InputError(`Filter "${op}" on "${field}" needs a number or a string`);
        }
        const operator = literal({ lt: '<', le: '<=', gt: '>', ge: '>=' }[op]);
        const guard = typeof value === 'string' ? literal('IS_STRING') : literal('IS_NUMBER');
        return this.some(row, field, (v) => aql`(${guard}(${v}) AND ${v} ${operator} ${value})`);
      }
      case 'in': {
        const { field } = filter;
        const values: readonly JsonValue[] = filter.values;
        if (!isList(values)) throw new InputError(`Filter "in" on "${field}" needs a list of values`);
        const checked = values.map((value) => filterScalar(field, value));
        if (checked.length === 0) {
          checkField(field);
          return aql`false`;
        }
        return this.some(row, field, (v) => aql`${v} IN ${checked}`);
      }
      case 'has': {
        const value = filterScalar(filter.field, filter.value);
        return this.some(row, filter.field, (v) => aql`(IS_ARRAY(${v}) AND ${value} IN ${v})`);
      }
      case 'glob': {
        const { field, pattern } = filter;
        if (typeof pattern !== 'string')
          throw new InputError(`Filter "glob" on "${field}" needs a string pattern`);
        const like = globToLike(pattern);
        return this.some(row, field, (v) => aql`(IS_STRING(${v}) AND (${v} LIKE ${like}))`);
      }
      case 'exists':
        return this.some(row, filter.field, (v) => aql`${v} != null`);
      case 'cidr': {
        const { field, cidr } = filter;
        const net = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
        if (net === undefined)
          throw new InputError(`Filter "cidr" on "${field}" needs an IPv4 network such as 10.1.0.0/16`);
        const first = net.network;
        const last = net.broadcast;
        return this.some(
          row,
          field,
          (v) =>
            aql`(IS_STRING(${v}) AND IS_IPV4(${v}) AND IPV4_TO_NUMBER(${v}) >= ${first} AND IPV4_TO_NUMBER(${v}) <= ${last})`,
        );
      }
      case 'ref':
        return this.ref(filter, depth, row, kind);
      default:
        throw new InputError(`Unknown filter operator "${String((filter as { op: unknown }).op)}"`);
    }
  }

  private ref(filter: Extract<Filter, { op: 'ref' }>, depth: number, row: AqlQuery, kind: string): AqlQuery {
    const { field, kind: target } = filter;
    if (typeof target !== 'string' || target === '')
      throw new InputError(`Filter "ref" on "${field}" needs a kind`);
    checkField(field);
    const t = this.variable('t');
    const inner = this.compile(filter.filter, depth + 1, t, target);
    const { nodes, refs, references } = this.context;
    if (references?.[kind]?.[field] === target) {
      // A declared reference: its edges were written with the node, so the hop is an edge-index lookup from the
      // row and a primary-index lookup of each target; a target that does not exist matches nothing.
      const e = this.variable('e');
      return aql`LENGTH((FOR ${e} IN ${refs} FILTER ${e}._from == ${row}._id AND ${e}.field == ${field} FOR ${t} IN ${nodes} FILTER ${t}._id == ${e}._to AND ${t}.kind == ${target} AND (${inner}) LIMIT 1 RETURN true)) > 0`;
    }
    // The names: the string at the path, or the strings of a list there.
    return this.some(
      row,
      field,
      (v) =>
        aql`LENGTH((FOR ${t} IN ${nodes} FILTER ${t}.kind == ${target} AND ${t}.name IN (IS_STRING(${v}) ? [${v}] : (IS_ARRAY(${v}) ? ${v} : [])) AND (${inner}) LIMIT 1 RETURN true)) > 0`,
    );
  }

  /** AQL that holds when `condition` holds for some value at `field` (fanning out over crossed arrays). */
  private some(row: AqlQuery, field: string, condition: Condition): AqlQuery {
    const segments = checkField(field);
    if (field === 'name') return condition(aql`${row}.name`);
    const [first, ...rest] = segments as [string, ...string[]];
    if (rest.length === 0) return condition(aql`${row}.attrs.${first}`);
    // Every segment but the last steps into an object and fans out if it finds an array; the last one does not.
    const loops: AqlQuery[] = [];
    let previous = this.variable('v');
    const top = aql`${row}.attrs.${first}`;
    loops.push(aql`FOR ${previous} IN (IS_ARRAY(${top}) ? ${top} : [${top}])`);
    for (const segment of rest.slice(0, -1)) {
      const next = this.variable('v');
      const at = aql`${previous}.${segment}`;
      loops.push(aql`FOR ${next} IN (IS_OBJECT(${previous}) ? (IS_ARRAY(${at}) ? ${at} : [${at}]) : [null])`);
      previous = next;
    }
    const leaf = this.variable('v');
    const last = rest[rest.length - 1] as string;
    loops.push(aql`LET ${leaf} = IS_OBJECT(${previous}) ? ${previous}.${last} : null`);
    return aql`LENGTH((${join(loops)} FILTER ${condition(leaf)} LIMIT 1 RETURN true)) > 0`;
  }

  private variable(prefix: string): AqlQuery {
    this.variables += 1;
    return variable(`${prefix}${this.variables}`);
  }
}

/** A loop variable's name as query text; only names the compiler makes up (never input) get here. */
function variable(name: string): AqlQuery {
  if (!/^[a-z][a-z0-9]*$/.test(name)) throw new InputError(`Invalid AQL variable name "${name}"`);
  return aql`${literal(name)}`;
}

/** Translates a glob (`*`, `?`, everything else literal) to an AQL `LIKE` pattern. */
export function globToLike(pattern: string): string {
  let like = '';
  for (const char of pattern) {
    if (char === '*') like += '%';
    else if (char === '?') like += '_';
    else if (char === '%' || char === '_' || char === '\\') like += `\\${char}`;
    else like += char;
  }
  return like;
}

/** Validates a filter field and returns its segments; throws `InputError`. */
function checkField(field: string): readonly string[] {
  if (typeof field !== 'string' || !FILTER_FIELD_PATTERN.test(field)) {
    throw new InputError(`Invalid filter field ${JSON.stringify(field)}`);
  }
  return field.split('.');
}

/** Array.isArray without narrowing, for checking input that the types already promise is a list. */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}
