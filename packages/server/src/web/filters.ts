/**
 * NetBox-style list filters (`?datacenter=pek1&hwspec__n=large&name__isw=web`) turned into the store's filter AST.
 * Values are typed by the attribute's schema; an unknown attribute or lookup is an error, never ignored.
 */
import type { Filter, JsonValue, KindSchema } from '@consortium/core';
import {
  FILTER_LIMITS,
  InputError,
  UnknownAttributeError,
  assertFilterWithinLimits,
  closestMatch,
  parsePath,
  valueForType,
} from '@consortium/core';

/** Query parameters that are not filters. */
export const RESERVED_PARAMS = ['limit', 'cursor', 'fields', 'show'] as const;

const LOOKUPS = ['n', 'lt', 'lte', 'gt', 'gte', 'isw', 'iew', 'ic', 'empty'] as const;
type Lookup = (typeof LOOKUPS)[number];

function typed(schema: KindSchema, field: string, text: string): { value: JsonValue; isList: boolean } {
  if (field === 'name') return { value: text, isList: false };
  const at = schema.schemaAt(parsePath(field));
  const isList = at?.['type'] === 'array';
  const scalar = isList ? (at['items'] as Record<string, unknown> | undefined) : at;
  // The search language types its values the same way, so `vid=0x10` is refused by both.
  return { value: valueForType(`filter ${field}`, scalar?.['type'], text), isList };
}

/**
 * Parses a query parameter that must be a whole number from `min` to `max`, written in decimal (`0x10`, `1e3`,
 * ` 16` and `016` are refused); throws `InputError` naming the parameter and the range.
 */
export function parseDecimalInteger(name: string, value: unknown, min: number, max: number): number {
  const number = typeof value === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(value) ? Number(value) : NaN;
  if (!(number >= min && number <= max)) {
    throw new InputError(
      `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`,
      {
        details: { parameter: name },
      },
    );
  }
  return number;
}

/** Builds the filter of a list request; returns undefined when there is none. Throws `InputError` / `UnknownAttributeError`. */
export function filtersFromQuery(schema: KindSchema, query: Record<string, unknown>): Filter | undefined {
  const clauses: Filter[] = [];
  let counted = 0;
  for (const [param, raw] of Object.entries(query)) {
    if ((RESERVED_PARAMS as readonly string[]).includes(param)) continue;
    const values = (Array.isArray(raw) ? raw : [raw]).map(String);
    // Counted before the values are typed: a filter repeated thousands of times is refused, not compiled.
    counted += values.length;
    if (counted > FILTER_LIMITS.values) {
      throw new InputError(
        `the filters compare more than ${FILTER_LIMITS.values} values; at most ${FILTER_LIMITS.values} are allowed`,
        { details: { limit: 'values', max: FILTER_LIMITS.values } },
      );
    }
    const [field = '', lookupText, ...rest] = param.split('__');
    if (rest.length > 0) throw new InputError(`unknown filter "${param}"`);
    if (field !== 'name') {
      try {
        schema.resolvePath(field);
      } catch (error) {
        if (error instanceof UnknownAttributeError || error instanceof InputError) {
          const suggestion = closestMatch(field, ['name', ...schema.attributes]);
          throw new InputError(
            `unknown filter "${param}": ${schema.kind} has no attribute "${field}"${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`,
          );
        }
        throw error;
      }
    }
    if (lookupText !== undefined && !(LOOKUPS as readonly string[]).includes(lookupText)) {
      throw new InputError(
        `unknown filter lookup "__${lookupText}" in "${param}" (known: ${LOOKUPS.join(', ')})`,
      );
    }
    const lookup = lookupText as Lookup | undefined;
    const eq = (value: JsonValue, isList: boolean): Filter =>
      isList ? { op: 'has', field, value } : { op: 'eq', field, value };
    const each = values.map((text) => ({ text, ...typed(schema, field, text) }));
    const any = (make: (v: (typeof each)[number]) => Filter): Filter =>
      each.length === 1 ? make(each[0] as (typeof each)[number]) : { op: 'or', args: each.map(make) };
    switch (lookup) {
      case undefined:
        clauses.push(
          each.length > 1 && !(each[0]?.isList ?? false)
            ? { op: 'in', field, values: each.map((v) => v.value) }
            : any((v) => eq(v.value, v.isList)),
        );
        break;
      case 'n':
        clauses.push({ op: 'not', arg: any((v) => eq(v.value, v.isList)) });
        break;
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte': {
        const op = ({ lt: 'lt', lte: 'le', gt: 'gt', gte: 'ge' } as const)[lookup];
        clauses.push(any((v) => ({ op, field, value: v.value })));
        break;
      }
      case 'isw':
        clauses.push(any((v) => ({ op: 'glob', field, pattern: `${v.text}*` })));
        break;
      case 'iew':
        clauses.push(any((v) => ({ op: 'glob', field, pattern: `*${v.text}` })));
        break;
      case 'ic':
        clauses.push(any((v) => ({ op: 'glob', field, pattern: `*${v.text}*` })));
        break;
      case 'empty': {
        const text = values[0];
        if (values.length !== 1 || (text !== 'true' && text !== 'false')) {
          throw new InputError(`filter ${param} takes true or false`);
        }
        const exists: Filter = { op: 'exists', field };
        clauses.push(text === 'true' ? { op: 'not', arg: exists } : exists);
        break;
      }
    }
  }
  if (clauses.length === 0) return undefined;
  const filter: Filter = clauses.length === 1 ? (clauses[0] as Filter) : { op: 'and', args: clauses };
  assertFilterWithinLimits(filter);
  return filter;
}
