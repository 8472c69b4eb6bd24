/**
 * NetBox-style list filters (`?datacenter=pek1&hwspec__n=large&name__isw=web`) turned into the store's filter AST.
 * Values are typed by the attribute's schema; an unknown attribute or lookup is an error, never ignored.
 */
import type { Filter, JsonValue, KindSchema } from '@consortium/core';
import { InputError, UnknownAttributeError, closestMatch, parsePath } from '@consortium/core';

/** Query parameters that are not filters. */
export const RESERVED_PARAMS = ['limit', 'cursor', 'fields', 'show'] as const;

const LOOKUPS = ['n', 'lt', 'lte', 'gt', 'gte', 'isw', 'iew', 'ic', 'empty'] as const;
type Lookup = (typeof LOOKUPS)[number];

function typed(schema: KindSchema, field: string, text: string): { value: JsonValue; isList: boolean } {
  if (field === 'name') return { value: text, isList: false };
  const at = schema.schemaAt(parsePath(field));
  const isList = at?.['type'] === 'array';
  const scalar = isList ? (at['items'] as Record<string, unknown> | undefined) : at;
  const type = scalar?.['type'];
  if (type === 'integer' || type === 'number') {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || (type === 'integer' && !Number.isInteger(value))) {
      throw new InputError(
        `filter ${field}: "${text}" is not ${type === 'integer' ? 'an integer' : 'a number'}`,
      );
    }
    return { value, isList };
  }
  if (type === 'boolean') {
    if (text !== 'true' && text !== 'false')
      throw new InputError(`filter ${field}: "${text}" is not true or false`);
    return { value: text === 'true', isList };
  }
  return { value: text, isList };
}

/** Builds the filter of a list request; returns undefined when there is none. Throws `InputError` / `UnknownAttributeError`. */
export function filtersFromQuery(schema: KindSchema, query: Record<string, unknown>): Filter | undefined {
  const clauses: Filter[] = [];
  for (const [param, raw] of Object.entries(query)) {
    if ((RESERVED_PARAMS as readonly string[]).includes(param)) continue;
    const values = (Array.isArray(raw) ? raw : [raw]).map(String);
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
  return clauses.length === 1 ? clauses[0] : { op: 'and', args: clauses };
}
