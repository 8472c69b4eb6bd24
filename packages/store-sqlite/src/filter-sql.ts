/**
 * Compiles the store port's filter AST to a SQLite `WHERE` fragment over a `nodes` row, using the JSON1 functions.
 *
 * Semantics (shared with every adapter through the store contract suite):
 * - `name` is the node's name; any other field is a dotted attribute path.
 * - A path that crosses an array holds if it holds for any element: `interfaces.ip = x` means "some interface has
 *   ip x". Only the arrays the path passes through fan out; the value at the end of the path is compared whole
 *   (use `has` for "this array contains").
 * - A missing value and JSON null are the same: `exists` means "has a non-null value", `eq null` matches both.
 * - Comparisons are type-strict: the number 3 never equals the string "3"; `lt`/`le`/`gt`/`ge` compare numbers with
 *   numbers and strings with strings (by byte order).
 * - `ne` is `not eq`: a node without the value, or where no array element equals it, matches.
 * - `cidr` holds for IPv4 address strings inside the network (through `consortium_ipv4_in`, which the store
 *   registers on its connection); anything else at the path, including malformed addresses, does not match.
 * - `ref` holds when a string at the path (or in a list there) names a node of the given kind that matches the
 *   inner filter.
 *
 * Field paths are validated and written into the SQL as JSON path literals; values are always bound as parameters.
 *
 * Indexes: `eq`, `in`, `has`, `cidr` and `ref` on an attribute of a node of a known kind first narrow the rows to
 * the names the value index (`node_values`, see node-values.ts) holds for the path and value, a condition the
 * exact one implies, so that SQLite looks up candidates by index instead of walking the JSON of every node; the
 * exact condition then decides. `ne`, ranges, `glob` and `exists` walk the JSON.
 */
import { InputError, parseCidr, parseIpv4, filterScalar } from '@consortium/core';
import type { Filter, JsonValue, FilterScalar } from '@consortium/core';
import { IPV4_SUFFIX, indexable } from './node-values.js';

/** The SQL function `cidr` filters call: 1 when the text is an IPv4 address in `network`/`prefix`, else 0. */
export const IPV4_IN_FUNCTION = 'consortium_ipv4_in';

/** The implementation of `IPV4_IN_FUNCTION`, for the store to register (deterministic). */
export function ipv4In(address: unknown, network: unknown, prefix: unknown): number {
  if (typeof address !== 'string' || typeof network !== 'number' || typeof prefix !== 'number') return 0;
  const value = parseIpv4(address);
  if (value === undefined) return 0;
  const size = 2 ** (32 - prefix);
  return value - (value % size) === network ? 1 : 0;
}

/** A piece of SQL and the parameters of its placeholders, in order. */
export interface SqlFragment {
  readonly sql: string;
  readonly params: readonly (string | number)[];
}

/** Attribute paths a filter may name (besides `name`): lowercase identifiers joined by dots. */
export const FILTER_FIELD_PATTERN = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/;

const MAX_DEPTH = 64;

/** An OR of more alternatives than this is not narrowed through the value index. */
const MAX_NARROWED_ALTERNATIVES = 16;

/** SQL expressions that describe one candidate value: its JSON type, its SQL value and its JSON text. */
interface Element {
  /** One of json_type's answers: null, true, false, integer, real, text, array, object (never SQL NULL). */
  readonly type: string;
  readonly atom: string;
  readonly json: string;
}

type Condition = (element: Element) => SqlFragment;

/**
 * Compiles `filter` to a boolean SQL expression over the row alias `row` (columns `name` and `attrs`) of a node of
 * `kind` (without it, no index narrows the rows); throws `InputError`.
 */
export function compileFilter(filter: Filter, row = 'n', kind?: string): SqlFragment {
  return new FilterCompiler().compile(filter, 0, row, kind);
}

class FilterCompiler {
  private aliases = 0;

  compile(filter: Filter, depth: number, row: string, kind: string | undefined): SqlFragment {
    if (depth > MAX_DEPTH) throw new InputError(`Filter is nested more than ${MAX_DEPTH} levels deep`);
    switch (filter.op) {
      case 'and':
      case 'or': {
        const args: readonly Filter[] = filter.args;
        if (!isList(args)) throw new InputError(`Filter "${filter.op}" needs a list of filters`);
        if (args.length === 0) return { sql: filter.op === 'and' ? '1' : '0', params: [] };
        // Narrowing each of many alternatives costs more to plan than it saves: a long OR walks the JSON.
        const narrow = filter.op === 'or' && args.length > MAX_NARROWED_ALTERNATIVES ? undefined : kind;
        const parts = args.map((arg) => this.compile(arg, depth + 1, row, narrow));
        return join(parts, ` ${filter.op.toUpperCase()} `);
      }
      case 'not': {
        const inner = this.compile(filter.arg, depth + 1, row, kind);
        return { sql: `NOT (${inner.sql})`, params: inner.params };
      }
      case 'eq': {
        const value = filterScalar(filter.field, filter.value);
        const exact = this.some(row, filter.field, (el) => equals(el, value));
        return this.narrowed(row, kind, filter.field, exact, equalsOne(value));
      }
      case 'ne': {
        const value = filterScalar(filter.field, filter.value);
        const eq = this.some(row, filter.field, (el) => equals(el, value));
        return { sql: `NOT ${eq.sql}`, params: eq.params };
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
        const sqlOp = { lt: '<', le: '<=', gt: '>', ge: '>=' }[op];
        return this.some(row, field, (el) => ({
          sql: `(${el.type} IN (${typesOf(value)}) AND ${el.atom} ${sqlOp} ?)`,
          params: [value],
        }));
      }
      case 'in': {
        const { field } = filter;
        const values: readonly JsonValue[] = filter.values;
        if (!isList(values)) throw new InputError(`Filter "in" on "${field}" needs a list of values`);
        const checked = values.map((value) => filterScalar(field, value));
        if (checked.length === 0) {
          checkField(field);
          return { sql: '0', params: [] };
        }
        const exact = this.some(row, field, (el) =>
          join(
            checked.map((value) => equals(el, value)),
            ' OR ',
          ),
        );
        const lookup = checked.every(indexable)
          ? { sql: `IN (${checked.map(() => '?').join(', ')})`, params: checked }
          : undefined;
        return this.narrowed(row, kind, field, exact, lookup);
      }
      case 'has': {
        const value = filterScalar(filter.field, filter.value);
        const item = this.alias('h');
        const exact = this.some(row, filter.field, (el) => {
          const eq = equals({ type: `${item}.type`, atom: `${item}.atom`, json: `${item}.value` }, value);
          return {
            sql: `(${el.type} = 'array' AND EXISTS (SELECT 1 FROM json_each(${el.json}) ${item} WHERE ${eq.sql}))`,
            params: eq.params,
          };
        });
        return this.narrowed(row, kind, filter.field, exact, equalsOne(value));
      }
      case 'glob': {
        const { field, pattern } = filter;
        if (typeof pattern !== 'string')
          throw new InputError(`Filter "glob" on "${field}" needs a string pattern`);
        // SQLite's GLOB also knows [...] classes; the filter language does not, so a bracket matches itself.
        const escaped = pattern.replaceAll('[', '[[]');
        return this.some(row, field, (el) => ({
          sql: `(${el.type} = 'text' AND ${el.atom} GLOB ?)`,
          params: [escaped],
        }));
      }
      case 'exists':
        return this.some(row, filter.field, (el) => ({ sql: `${el.type} <> 'null'`, params: [] }));
      case 'cidr': {
        const { field, cidr } = filter;
        const net = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
        if (net === undefined)
          throw new InputError(`Filter "cidr" on "${field}" needs an IPv4 network such as 10.1.0.0/16`);
        const exact = this.some(row, field, (el) => ({
          sql: `(${el.type} = 'text' AND ${IPV4_IN_FUNCTION}(${el.atom}, ?, ?) = 1)`,
          params: [net.network, net.prefix],
        }));
        return this.narrowed(row, kind, `${field}${IPV4_SUFFIX}`, exact, {
          sql: 'BETWEEN ? AND ?',
          params: [net.network, net.broadcast],
        });
      }
      case 'ref': {
        const { field, kind: refKind } = filter;
        if (typeof refKind !== 'string' || refKind === '')
          throw new InputError(`Filter "ref" on "${field}" needs a kind`);
        const target = this.alias('r');
        const inner = this.compile(filter.filter, depth + 1, target, refKind);
        // The names: the string at the path, or the strings of a list there.
        const exact = this.some(row, field, (el) => ({
          sql:
            `EXISTS (SELECT 1 FROM nodes ${target} WHERE ${target}.kind = ? AND ` +
            `((${el.type} = 'text' AND ${target}.name = ${el.atom}) OR (${el.type} = 'array' AND ` +
            `${target}.name IN (SELECT value FROM json_each(${el.json}) WHERE type = 'text'))) AND ${inner.sql})`,
          params: [refKind, ...inner.params],
        }));
        // Narrowed to the nodes naming one of the matching targets, found first (usually the smaller side).
        const found = this.alias('r');
        const matching = this.compile(filter.filter, depth + 1, found, refKind);
        return this.narrowed(row, kind, field, exact, {
          sql: `IN (SELECT ${found}.name FROM nodes ${found} WHERE ${found}.kind = ? AND ${matching.sql})`,
          params: [refKind, ...matching.params],
        });
      }
      default:
        throw new InputError(`Unknown filter operator "${String((filter as { op: unknown }).op)}"`);
    }
  }

  /** SQL that holds when `condition` holds for some value at `field` (fanning out over crossed arrays). */
  private some(row: string, field: string, condition: Condition): SqlFragment {
    const segments = checkField(field);
    if (field === 'name')
      return condition({ type: `'text'`, atom: `${row}.name`, json: `json_quote(${row}.name)` });
    const first = segments[0] as string;
    if (segments.length === 1) {
      const path = jsonPath(first);
      return condition({
        type: `coalesce(json_type(${row}.attrs, ${path}), 'null')`,
        atom: `json_extract(${row}.attrs, ${path})`,
        json: `(${row}.attrs -> ${path})`,
      });
    }
    // Every segment but the last steps into an object and fans out if it finds an array; the last one does not.
    const from: string[] = [];
    let previous = this.alias('j');
    const firstPath = jsonPath(first);
    from.push(
      `json_each(CASE WHEN json_type(${row}.attrs, ${firstPath}) = 'array' THEN ${row}.attrs -> ${firstPath} ` +
        `ELSE json_array(${row}.attrs -> ${firstPath}) END) ${previous}`,
    );
    for (const segment of segments.slice(1, -1)) {
      const path = jsonPath(segment);
      const next = this.alias('j');
      from.push(
        `json_each(CASE WHEN ${previous}.type <> 'object' THEN '[null]' ` +
          `WHEN json_type(${previous}.value, ${path}) = 'array' THEN ${previous}.value -> ${path} ` +
          `ELSE json_array(${previous}.value -> ${path}) END) ${next}`,
      );
      previous = next;
    }
    const lastPath = jsonPath(segments[segments.length - 1] as string);
    const leaf = this.alias('j');
    from.push(
      `json_each(CASE WHEN ${previous}.type = 'object' THEN json_array(${previous}.value -> ${lastPath}) ` +
        `ELSE '[null]' END) ${leaf}`,
    );
    const inner = condition({ type: `${leaf}.type`, atom: `${leaf}.atom`, json: `${leaf}.value` });
    return { sql: `EXISTS (SELECT 1 FROM ${from.join(', ')} WHERE ${inner.sql})`, params: inner.params };
  }

  /**
   * `exact`, narrowed first to the nodes whose value index holds a value at `path` that `lookup` (an SQL predicate
   * on the value, such as `= ?`) accepts; `exact` alone when the kind is unknown, the field is the name, or there
   * is no lookup.
   */
  private narrowed(
    row: string,
    kind: string | undefined,
    path: string,
    exact: SqlFragment,
    lookup: SqlFragment | undefined,
  ): SqlFragment {
    if (kind === undefined || lookup === undefined || path === 'name') return exact;
    const v = this.alias('v');
    return {
      sql:
        `(${row}.name IN (SELECT ${v}.name FROM node_values ${v} WHERE ${v}.kind = ? AND ${v}.path = ? ` +
        `AND ${v}.value ${lookup.sql}) AND ${exact.sql})`,
      params: [kind, path, ...lookup.params, ...exact.params],
    };
  }

  private alias(prefix: string): string {
    this.aliases += 1;
    return `${prefix}${this.aliases}`;
  }
}

/** Validates a filter field and returns its segments; throws `InputError`. */
function checkField(field: string): readonly string[] {
  if (typeof field !== 'string' || !FILTER_FIELD_PATTERN.test(field)) {
    throw new InputError(`Invalid filter field ${JSON.stringify(field)}`);
  }
  return field.split('.');
}

/** A JSON path literal for one validated segment; safe to inline because segments match FILTER_FIELD_PATTERN. */
function jsonPath(segment: string): string {
  return `'$.${segment}'`;
}

/** Array.isArray without narrowing, for checking input that the types already promise is a list. */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}

function typesOf(value: string | number): string {
  return typeof value === 'string' ? `'text'` : `'integer', 'real'`;
}

/** The value-index lookup of an equality, when the value is indexed (strings and numbers). */
function equalsOne(value: FilterScalar): SqlFragment | undefined {
  return indexable(value) ? { sql: '= ?', params: [value] } : undefined;
}

function equals(el: Element, value: FilterScalar): SqlFragment {
  if (value === null) return { sql: `${el.type} = 'null'`, params: [] };
  if (typeof value === 'boolean') return { sql: `${el.type} = '${value ? 'true' : 'false'}'`, params: [] };
  return { sql: `(${el.type} IN (${typesOf(value)}) AND ${el.atom} = ?)`, params: [value] };
}

/**
 * Joins parts with AND or OR as a balanced tree: SQLite parses `a OR b OR c ...` into a chain as deep as it is
 * long and refuses chains deeper than 1,000 ("Expression tree is too large"); halves keep it logarithmic.
 */
function join(parts: readonly SqlFragment[], separator: string): SqlFragment {
  if (parts.length > 8) {
    const half = Math.ceil(parts.length / 2);
    return join([join(parts.slice(0, half), separator), join(parts.slice(half), separator)], separator);
  }
  return { sql: `(${parts.map((p) => p.sql).join(separator)})`, params: parts.flatMap((p) => p.params) };
}
