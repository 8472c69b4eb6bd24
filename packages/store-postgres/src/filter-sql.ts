/**
 * Compiles the store port's filter AST to a PostgreSQL `WHERE` fragment over a `nodes` row (columns `name` and the
 * JSONB `attrs`), with the semantics the store contract suite pins down (the same as the SQLite store's):
 * - `name` is the node's name; any other field is a dotted attribute path.
 * - A path that crosses an array holds if it holds for any element; the value at the end is compared whole.
 * - A missing value and JSON null are the same; comparisons are type-strict (JSONB equality: 3 = 3.0, 3 ≠ "3");
 *   strings compare by byte order (`COLLATE "C"`), numbers as numerics.
 * - `ne` is `not eq`; `glob` knows only `*` and `?` (compiled to `LIKE` with everything else escaped).
 * - `cidr` goes through PostgreSQL's `inet` containment (`<<=`), only for strings that are dotted-quad IPv4
 *   addresses (a regular expression guards the cast, so a non-address never raises an error).
 * - `ref` is an `EXISTS` over the referenced kind.
 *
 * Every value and every path segment is a bind parameter: the SQL text holds only placeholders. Every condition
 * yields true or false, never SQL NULL, so that `not` is a plain boolean negation.
 *
 * Indexes: for a node of a known kind, `eq`, `in`, `has`, `cidr` and `ref` first narrow the rows to the names the
 * value index (`node_values`, kept by a trigger; see migrations.ts) holds for the path and value, a condition the
 * exact one implies, so that PostgreSQL looks candidates up by index instead of walking the JSON of every node.
 * Without a kind, equality and `has` on a top-level attribute emit a JSONB containment test (`attrs @> $n`) that
 * the GIN index on `attrs` (jsonb_path_ops) can serve instead.
 */
import { InputError, formatCidr, parseCidr, filterScalar } from '@consortium/core';
import type { Filter, JsonValue, FilterScalar } from '@consortium/core';

/** Attribute paths a filter may name (besides `name`): lowercase identifiers joined by dots. */
export const FILTER_FIELD_PATTERN = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/;

/** A dotted-quad IPv4 address without leading zeros, as core's `parseIpv4` accepts (POSIX regex syntax). */
const IPV4_REGEX =
  '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$';

const MAX_DEPTH = 64;

/** An OR of more alternatives than this is not narrowed through the value index. */
const MAX_NARROWED_ALTERNATIVES = 16;

/** Strings longer than this are not in the value index (migration 2 of the schema). */
const MAX_INDEXED_LENGTH = 256;

/** True when the value index can hold `value`: a string of at most 256 characters or a finite number. */
function indexable(value: FilterScalar): value is string | number {
  return typeof value === 'string'
    ? value.length <= MAX_INDEXED_LENGTH
    : typeof value === 'number' && Number.isFinite(value);
}

/** A piece of SQL and the values of its placeholders `$1`..`$n` (numbered from `firstParam`). */
export interface SqlFragment {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/** One candidate value: a JSONB expression, or the `name` column (a text expression). */
interface Element {
  readonly json: string;
  readonly name?: string;
}

type Condition = (element: Element) => string;

/**
 * Compiles `filter` to a boolean SQL expression over the row alias `row` of a node of `kind` (without it, the value
 * index is not used); placeholders start at `$<firstParam>`. Throws `InputError` for a malformed filter.
 */
export function compileFilter(filter: Filter, row = 'n', firstParam = 1, kind?: string): SqlFragment {
  const compiler = new FilterCompiler(firstParam);
  const sql = compiler.compile(filter, 0, row, kind);
  return { sql, params: compiler.params };
}

class FilterCompiler {
  readonly params: unknown[] = [];
  private aliases = 0;

  constructor(private readonly firstParam: number) {}

  compile(filter: Filter, depth: number, row: string, kind: string | undefined): string {
    if (depth > MAX_DEPTH) throw new InputError(`Filter is nested more than ${MAX_DEPTH} levels deep`);
    switch (filter.op) {
      case 'and':
      case 'or': {
        const args: readonly Filter[] = filter.args;
        if (!isList(args)) throw new InputError(`Filter "${filter.op}" needs a list of filters`);
        if (args.length === 0) return filter.op === 'and' ? 'TRUE' : 'FALSE';
        // Narrowing each of many alternatives costs more to plan than it saves: a long OR walks the JSON.
        const narrow = filter.op === 'or' && args.length > MAX_NARROWED_ALTERNATIVES ? undefined : kind;
        return `(${args.map((arg) => this.compile(arg, depth + 1, row, narrow)).join(` ${filter.op.toUpperCase()} `)})`;
      }
      case 'not':
        return `NOT (${this.compile(filter.arg, depth + 1, row, kind)})`;
      case 'eq': {
        const value = filterScalar(filter.field, filter.value);
        const exact = this.some(row, filter.field, (el) => this.equals(el, value));
        if (kind !== undefined && indexable(value))
          return this.narrowed(row, kind, filter.field, exact, () => `= ${this.json(value)}`);
        return this.withContainment(row, filter.field, value, exact, false);
      }
      case 'ne': {
        const value = filterScalar(filter.field, filter.value);
        return `NOT ${this.some(row, filter.field, (el) => this.equals(el, value))}`;
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
        return this.some(row, field, (el) => {
          if (el.name !== undefined) {
            return typeof value === 'string'
              ? `(${el.name} ${sqlOp} ${this.param(value)} COLLATE "C")`
              : 'FALSE';
          }
          // CASE, not AND: PostgreSQL does not promise to test the type before it casts.
          return typeof value === 'string'
            ? `CASE WHEN jsonb_typeof(${el.json}) = 'string' THEN ` +
                `(${el.json} #>> '{}') COLLATE "C" ${sqlOp} ${this.param(value)} ELSE FALSE END`
            : `CASE WHEN jsonb_typeof(${el.json}) = 'number' THEN ` +
                `(${el.json})::numeric ${sqlOp} ${this.param(String(value))}::numeric ELSE FALSE END`;
        });
      }
      case 'in': {
        const { field } = filter;
        const values: readonly JsonValue[] = filter.values;
        if (!isList(values)) throw new InputError(`Filter "in" on "${field}" needs a list of values`);
        const checked = values.map((value) => filterScalar(field, value));
        if (checked.length === 0) {
          checkField(field);
          return 'FALSE';
        }
        const exact = this.some(
          row,
          field,
          (el) => `(${checked.map((value) => this.equals(el, value)).join(' OR ')})`,
        );
        if (kind === undefined || !checked.every(indexable)) return exact;
        return this.narrowed(
          row,
          kind,
          field,
          exact,
          () => `IN (${checked.map((value) => this.json(value)).join(', ')})`,
        );
      }
      case 'has': {
        const value = filterScalar(filter.field, filter.value);
        const item = this.alias('h');
        const exact = this.some(row, filter.field, (el) =>
          el.name !== undefined
            ? 'FALSE'
            : `EXISTS (SELECT 1 FROM jsonb_array_elements(${arrayOrEmpty(el.json)}) ${item} ` +
              `WHERE ${this.equals({ json: `${item}.value` }, value)})`,
        );
        if (kind !== undefined && indexable(value))
          return this.narrowed(row, kind, filter.field, exact, () => `= ${this.json(value)}`);
        return this.withContainment(row, filter.field, value, exact, true);
      }
      case 'glob': {
        const { field, pattern } = filter;
        if (typeof pattern !== 'string')
          throw new InputError(`Filter "glob" on "${field}" needs a string pattern`);
        const like = pattern.replace(/[\\%_*?]/g, (c) => ({ '*': '%', '?': '_' })[c] ?? `\\${c}`);
        return this.some(row, field, (el) =>
          el.name !== undefined
            ? `(${el.name} LIKE ${this.param(like)} COLLATE "C")`
            : `CASE WHEN jsonb_typeof(${el.json}) = 'string' THEN ` +
              `(${el.json} #>> '{}') LIKE ${this.param(like)} COLLATE "C" ELSE FALSE END`,
        );
      }
      case 'exists':
        return this.some(row, filter.field, (el) =>
          el.name !== undefined ? 'TRUE' : `coalesce(jsonb_typeof(${el.json}), 'null') <> 'null'`,
        );
      case 'cidr': {
        const { field, cidr } = filter;
        const net = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
        if (net === undefined)
          throw new InputError(`Filter "cidr" on "${field}" needs an IPv4 network such as 10.1.0.0/16`);
        const exact = this.some(row, field, (el) => {
          const text = el.name ?? `(${el.json} #>> '{}')`;
          const isString = el.name !== undefined ? 'TRUE' : `jsonb_typeof(${el.json}) = 'string'`;
          return (
            `CASE WHEN ${isString} AND ${text} ~ ${this.param(IPV4_REGEX)} ` +
            `THEN ${text}::inet <<= ${this.param(formatCidr(net))}::inet ELSE FALSE END`
          );
        });
        if (kind === undefined || field === 'name') return exact;
        return this.narrowed(
          row,
          kind,
          `${field}/ipv4`,
          exact,
          () => `BETWEEN ${this.json(net.network)} AND ${this.json(net.broadcast)}`,
        );
      }
      case 'ref': {
        const { field, kind: refKind } = filter;
        if (typeof refKind !== 'string' || refKind === '')
          throw new InputError(`Filter "ref" on "${field}" needs a kind`);
        const target = this.alias('r');
        const item = this.alias('e');
        const exact = this.some(row, field, (el) => {
          const kindParam = this.param(refKind);
          const inner = this.compile(filter.filter, depth + 1, target, refKind);
          const names =
            el.name !== undefined
              ? `${target}.name = ${el.name}`
              : `(CASE WHEN jsonb_typeof(${el.json}) = 'string' THEN ${target}.name = (${el.json} #>> '{}') ` +
                `ELSE ${target}.name IN (SELECT ${item}.value #>> '{}' FROM ` +
                `jsonb_array_elements(${arrayOrEmpty(el.json)}) ${item} WHERE jsonb_typeof(${item}.value) = 'string') END)`;
          return `EXISTS (SELECT 1 FROM nodes ${target} WHERE ${target}.kind = ${kindParam} AND ${names} AND ${inner})`;
        });
        if (kind === undefined) return exact;
        // Narrowed to the nodes naming one of the matching targets, found first (usually the smaller side).
        return this.narrowed(row, kind, field, exact, () => {
          const found = this.alias('r');
          const matching = this.compile(filter.filter, depth + 1, found, refKind);
          return (
            `IN (SELECT to_jsonb(${found}.name) FROM nodes ${found} ` +
            `WHERE ${found}.kind = ${this.param(refKind)} AND ${matching})`
          );
        });
      }
      default:
        throw new InputError(`Unknown filter operator "${String((filter as { op: unknown }).op)}"`);
    }
  }

  /** A placeholder for `value`. */
  private param(value: unknown): string {
    this.params.push(value);
    return `$${this.firstParam + this.params.length - 1}`;
  }

  /** A placeholder for a JSON value, as jsonb. */
  private json(value: string | number): string {
    return `${this.param(JSON.stringify(value))}::jsonb`;
  }

  /**
   * `exact`, narrowed first to the nodes whose value index holds a value at `path` that `lookup` (the SQL after
   * `value`, such as `= $3::jsonb`) accepts; `exact` alone for the name, which the primary key serves already.
   */
  private narrowed(row: string, kind: string, path: string, exact: string, lookup: () => string): string {
    if (path === 'name') return exact;
    const v = this.alias('v');
    return (
      `(${row}.name IN (SELECT ${v}.name FROM node_values ${v} WHERE ${v}.kind = ${this.param(kind)} ` +
      `AND ${v}.path = ${this.param(path)} AND ${v}.value ${lookup()}) AND ${exact})`
    );
  }

  /** Type-strict equality of one element with a scalar; never SQL NULL for a non-NULL element. */
  private equals(el: Element, value: FilterScalar): string {
    if (el.name !== undefined)
      return typeof value === 'string' ? `${el.name} = ${this.param(value)}` : 'FALSE';
    if (value === null) return `coalesce(jsonb_typeof(${el.json}), 'null') = 'null'`;
    return `coalesce(${el.json} = ${this.param(JSON.stringify(value))}::jsonb, FALSE)`;
  }

  /**
   * Adds `attrs @> {"field": value}` (or `[value]` for `has`) in front of `exact` for a one-segment attribute path
   * and a non-null value: the exact condition implies it, and the GIN index on `attrs` can answer it.
   */
  private withContainment(
    row: string,
    field: string,
    value: FilterScalar,
    exact: string,
    list: boolean,
  ): string {
    if (field === 'name' || field.includes('.') || (value === null && !list)) return exact;
    const probe = JSON.stringify({ [field]: list ? [value] : value });
    return `(${row}.attrs @> ${this.param(probe)}::jsonb AND ${exact})`;
  }

  /** SQL that holds when `condition` holds for some value at `field` (fanning out over crossed arrays). */
  private some(row: string, field: string, condition: Condition): string {
    const segments = checkField(field);
    if (field === 'name') return condition({ json: `to_jsonb(${row}.name)`, name: `${row}.name` });
    const first = this.param(segments[0]);
    if (segments.length === 1) return condition({ json: `(${row}.attrs -> ${first}::text)` });
    // Every segment but the last steps into an object and fans out if it finds an array; the last one does not.
    const from: string[] = [];
    let previous = this.alias('j');
    const top = `(${row}.attrs -> ${first}::text)`;
    from.push(`jsonb_array_elements(${fanOut(top)}) ${previous}`);
    for (const segment of segments.slice(1, -1)) {
      const next = this.alias('j');
      const inner = `(${previous}.value -> ${this.param(segment)}::text)`;
      from.push(
        `jsonb_array_elements(CASE WHEN jsonb_typeof(${previous}.value) <> 'object' THEN '[null]'::jsonb ` +
          `ELSE ${fanOut(inner)} END) ${next}`,
      );
      previous = next;
    }
    const leaf = this.alias('j');
    const last = this.param(segments[segments.length - 1]);
    from.push(
      `jsonb_array_elements(CASE WHEN jsonb_typeof(${previous}.value) = 'object' ` +
        `THEN jsonb_build_array(${previous}.value -> ${last}::text) ELSE '[null]'::jsonb END) ${leaf}`,
    );
    return `EXISTS (SELECT 1 FROM ${from.join(', ')} WHERE ${condition({ json: `${leaf}.value` })})`;
  }

  private alias(prefix: string): string {
    this.aliases += 1;
    return `${prefix}${this.aliases}`;
  }
}

/** The array at `json` itself, or a one-element array holding it (SQL NULL becomes JSON null). */
function fanOut(json: string): string {
  return `CASE WHEN jsonb_typeof(${json}) = 'array' THEN ${json} ELSE jsonb_build_array(${json}) END`;
}

/** The array at `json`, or an empty one: jsonb_array_elements raises an error on anything but an array. */
function arrayOrEmpty(json: string): string {
  return `CASE WHEN jsonb_typeof(${json}) = 'array' THEN ${json} ELSE '[]'::jsonb END`;
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
