/**
 * The search language of `GET /api/search?q=` and `consort search` (DESIGN.md §7), parsed to the store's filter
 * AST so that each store compiles it to its own query:
 *
 *     kind=host and datacenter=pek1 and puppet_roles has nginx and hwspec in (small, medium)
 *     name ~ "web-*"      not power=on      (a or b) and c      vid >= 100      description exists
 *     interfaces.ip in 10.1.0.0/16      subnet.vlan=100
 *
 * Bare words are strings, numbers or booleans; quote a string to keep it a string ("007"). `~` is a glob (`*`, `?`).
 * `in` with a network instead of a list matches IPv4 addresses inside it. A dotted field whose first part is a
 * reference to another node (`subnet.vlan`) is one hop along it; the parser leaves that to whoever knows the
 * schemas (`bindFilter`).
 */
import { InputError } from './errors.js';
import { assertFilterDepth, assertFilterWithinLimits } from './filter-limits.js';
import { parseCidr } from './ipv4.js';
import type { JsonValue } from './model.js';
import type { Filter } from './ports/store.js';
import type { JsonSchema, KindSchema } from './schema.js';

type Token =
  | { readonly type: 'word'; readonly text: string; readonly at: number }
  | { readonly type: 'string'; readonly text: string; readonly at: number }
  | { readonly type: 'op'; readonly text: string; readonly at: number }
  | { readonly type: 'punct'; readonly text: '(' | ')' | ','; readonly at: number };

const WORD = /[A-Za-z0-9_.:/*?@+-]/;

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ type: 'punct', text: c, at: i });
      i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      while (j < query.length && query[j] !== c) {
        if (query[j] === '\\' && j + 1 < query.length) j++;
        text += query[j] ?? '';
        j++;
      }
      if (j >= query.length)
        throw new InputError(`unterminated string starting at offset ${i} in search query`);
      tokens.push({ type: 'string', text, at: i });
      i = j + 1;
    } else if ('=!<>~'.includes(c)) {
      const two = query.slice(i, i + 2);
      const text = ['!=', '<=', '>='].includes(two) ? two : c;
      if (text === '!') throw new InputError(`unexpected "!" at offset ${i} in search query (use != or not)`);
      tokens.push({ type: 'op', text, at: i });
      i += text.length;
    } else if (WORD.test(c)) {
      let j = i;
      while (j < query.length && WORD.test(query[j] as string)) j++;
      tokens.push({ type: 'word', text: query.slice(i, j), at: i });
      i = j;
    } else {
      throw new InputError(`unexpected "${c}" at offset ${i} in search query`);
    }
  }
  return tokens;
}

const FIELD = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/;

/** A bare word's JSON value: a number or boolean when it reads as one, else the string. */
function bareValue(text: string): JsonValue {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (DECIMAL_NUMBER.test(text)) return Number(text);
  return text;
}

/** Parses a search query to a filter AST; throws `InputError` naming the offset of the first problem. */
export function parseSearch(query: string): Filter {
  const tokens = tokenize(query);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (text: string): boolean => {
    const token = peek();
    return token?.type === 'word' && token.text.toLowerCase() === text;
  };
  const fail = (what: string): never => {
    const token = peek();
    throw new InputError(
      token === undefined
        ? `search query ends too early: expected ${what}`
        : `expected ${what} at offset ${token.at} but found "${token.text}"`,
    );
  };
  const value = (): JsonValue => {
    const token = peek();
    if (token?.type === 'string') {
      pos++;
      return token.text;
    }
    if (token?.type === 'word' && !['and', 'or', 'not'].includes(token.text.toLowerCase())) {
      pos++;
      return bareValue(token.text);
    }
    return fail('a value');
  };
  const comparison = (): Filter => {
    const token = peek();
    if (token?.type !== 'word' || !FIELD.test(token.text)) return fail('a field name');
    const field = token.text;
    pos++;
    const op = peek();
    if (op?.type === 'op') {
      pos++;
      if (op.text === '~') {
        const pattern = value();
        if (typeof pattern !== 'string')
          throw new InputError(`"~" takes a glob pattern, not ${JSON.stringify(pattern)}`);
        return { op: 'glob', field, pattern };
      }
      const map = { '=': 'eq', '!=': 'ne', '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge' } as const;
      return { op: map[op.text as keyof typeof map], field, value: value() };
    }
    if (isWord('has')) {
      pos++;
      return { op: 'has', field, value: value() };
    }
    if (isWord('exists')) {
      pos++;
      return { op: 'exists', field };
    }
    if (isWord('in')) {
      pos++;
      if (peek()?.type !== 'punct' || peek()?.text !== '(') {
        const single = value();
        if (typeof single === 'string' && single.includes('/')) {
          if (parseCidr(single) === undefined)
            throw new InputError(`"${single}" is not an IPv4 network in CIDR notation (such as 10.1.0.0/16)`);
          return { op: 'cidr', field, cidr: single };
        }
        throw new InputError(
          `"in" takes a list in parentheses or an IPv4 network: ${field} in (a, b), ${field} in 10.1.0.0/16`,
        );
      }
      pos++;
      const values: JsonValue[] = [value()];
      while (peek()?.type === 'punct' && peek()?.text === ',') {
        pos++;
        values.push(value());
      }
      if (peek()?.type !== 'punct' || peek()?.text !== ')') fail('")" or ","');
      pos++;
      return { op: 'in', field, values };
    }
    return fail('an operator (=, !=, <, <=, >, >=, ~, has, in, exists)');
  };
  // `depth` counts parentheses and `not`s around the current term: the parser recurses once per level, so it is
  // bounded before it recurses (5,000 parentheses would overflow the stack).
  const unary = (depth: number): Filter => {
    if (isWord('not')) {
      assertFilterDepth(depth + 1);
      pos++;
      return { op: 'not', arg: unary(depth + 1) };
    }
    if (peek()?.type === 'punct' && peek()?.text === '(') {
      assertFilterDepth(depth + 1);
      pos++;
      const inner = or(depth + 1);
      if (peek()?.type !== 'punct' || peek()?.text !== ')') fail('")"');
      pos++;
      return inner;
    }
    return comparison();
  };
  const and = (depth: number): Filter => {
    const args = [unary(depth)];
    while (isWord('and')) {
      pos++;
      args.push(unary(depth));
    }
    return args.length === 1 ? (args[0] as Filter) : { op: 'and', args };
  };
  function or(depth: number): Filter {
    const args = [and(depth)];
    while (isWord('or')) {
      pos++;
      args.push(and(depth));
    }
    return args.length === 1 ? (args[0] as Filter) : { op: 'or', args };
  }
  if (tokens.length === 0) throw new InputError('the search query is empty');
  const filter = or(0);
  if (pos < tokens.length) fail('"and", "or" or the end of the query');
  assertFilterWithinLimits(filter);
  return filter;
}

/** Every field a filter compares, for checking them against the kinds' schemas. */
export function filterFields(filter: Filter): string[] {
  switch (filter.op) {
    case 'and':
    case 'or':
      return filter.args.flatMap(filterFields);
    case 'not':
      return filterFields(filter.arg);
    default:
      return [filter.field];
  }
}

/**
 * Splits the kinds a query is restricted to (`kind=host`, `kind in (host, vip)` as a top-level conjunct) from the
 * rest of the filter; `kinds` is undefined when the query does not restrict them.
 */
export function splitKinds(filter: Filter): { kinds?: string[]; rest?: Filter } {
  const conjuncts = filter.op === 'and' ? filter.args : [filter];
  let kinds: string[] | undefined;
  const rest: Filter[] = [];
  for (const c of conjuncts) {
    if (c.op === 'eq' && c.field === 'kind' && typeof c.value === 'string') {
      kinds = kinds === undefined ? [c.value] : kinds.filter((k) => k === c.value);
    } else if (c.op === 'in' && c.field === 'kind') {
      const named = c.values.filter((v): v is string => typeof v === 'string');
      kinds = kinds === undefined ? named : kinds.filter((k) => named.includes(k));
    } else rest.push(c);
  }
  const remaining =
    rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : ({ op: 'and', args: rest } as Filter);
  return {
    ...(kinds === undefined ? {} : { kinds }),
    ...(remaining === undefined ? {} : { rest: remaining }),
  };
}

/**
 * The schema of a search field in a kind, stepping into the items of any list it crosses (`interfaces.ip`);
 * undefined when the kind has no such field. `name` is every node's name.
 */
export function searchFieldSchema(schema: KindSchema, field: string): JsonSchema | undefined {
  if (field === 'name') return { type: 'string' };
  let at: JsonSchema | undefined = schema.document;
  for (const segment of field.split('.')) {
    while (at?.['type'] === 'array') at = at['items'] as JsonSchema | undefined;
    const properties = at?.['properties'] as Record<string, JsonSchema> | undefined;
    at = properties !== undefined && Object.hasOwn(properties, segment) ? properties[segment] : undefined;
    if (at === undefined) return undefined;
  }
  return at;
}

/** The kind a field refers to (`x-ref` on it, or on the items of a list of names), if it is a reference. */
function referenceOf(schema: JsonSchema | undefined): string | undefined {
  const ref = schema?.['x-ref'] ?? (schema?.['items'] as JsonSchema | undefined)?.['x-ref'];
  return typeof ref === 'string' ? ref : undefined;
}

/** A decimal integer as text (no sign but `-`, no leading zeros, no hex, no exponent). */
export const DECIMAL_INTEGER = /^-?(0|[1-9][0-9]*)$/;

/** A decimal number as text (`-1.5`, `20`); no hex, no exponent, no leading zeros. */
export const DECIMAL_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/**
 * Gives a value compared with `field` the JSON type of the attribute (`name = 007` stays a string, `vid = "100"`
 * becomes a number); throws `InputError` for a value the attribute can never hold (`vid > abc`, `present = maybe`),
 * as the list filters do, rather than letting it match nothing.
 */
export function valueForType(field: string, type: unknown, value: JsonValue): JsonValue {
  if (type === 'string')
    return typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
  if (type === 'integer' || type === 'number') {
    const text = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
    const pattern = type === 'integer' ? DECIMAL_INTEGER : DECIMAL_NUMBER;
    const number = text !== undefined && pattern.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(number) || (type === 'integer' && !Number.isSafeInteger(number))) {
      throw new InputError(
        `${field}: ${JSON.stringify(value)} is not ${type === 'integer' ? 'an integer' : 'a number'}`,
        { details: { field } },
      );
    }
    return number;
  }
  if (type === 'boolean') {
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new InputError(`${field}: ${JSON.stringify(value)} is not true or false`, { details: { field } });
  }
  return value;
}

/** Gives the values of a comparison the type of the attribute they are compared with (see `valueForType`). */
function retype(leaf: Filter, at: JsonSchema, label: string): Filter {
  const type = at['type'] === 'array' ? (at['items'] as JsonSchema | undefined)?.['type'] : at['type'];
  switch (leaf.op) {
    case 'in':
      return { ...leaf, values: leaf.values.map((v) => valueForType(label, type, v)) };
    case 'eq':
    case 'ne':
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge':
    case 'has':
      return { ...leaf, value: valueForType(label, type, leaf.value) };
    default:
      return leaf;
  }
}

/** A query bound to one kind, and the fields of it that the kind has (hops included). */
export interface BoundFilter {
  readonly filter: Filter;
  /** Fields the kind has; the others compare as missing values (so `a=1` is false and `not a=1` true). */
  readonly known: readonly string[];
}

/**
 * Binds a parsed query to one kind: bare words take the type of the attribute they are compared with, and a field
 * whose first part is a reference (`subnet.vlan`, where `subnet` has `x-ref: subnet`) becomes one hop along it.
 * Fields the kind lacks stay as they are (the store treats them as missing); the fields it has are listed, so that
 * the caller can skip kinds the query does not concern and refuse a field no kind has.
 */
export function bindFilter(
  filter: Filter,
  schema: KindSchema,
  schemaOf: (kind: string) => KindSchema | undefined,
): BoundFilter {
  const known: string[] = [];
  const bind = (node: Filter): Filter => {
    switch (node.op) {
      case 'and':
      case 'or':
        return { op: node.op, args: node.args.map(bind) };
      case 'not':
        return { op: 'not', arg: bind(node.arg) };
      case 'ref':
        return node;
      default: {
        const at = searchFieldSchema(schema, node.field);
        if (at !== undefined) {
          known.push(node.field);
          return retype(node, at, node.field);
        }
        const dot = node.field.indexOf('.');
        const head = dot < 0 ? node.field : node.field.slice(0, dot);
        const kind = dot < 0 ? undefined : referenceOf(searchFieldSchema(schema, head));
        const target = kind === undefined ? undefined : schemaOf(kind);
        const rest = node.field.slice(dot + 1);
        const restAt = target === undefined ? undefined : searchFieldSchema(target, rest);
        if (kind === undefined || restAt === undefined) return node;
        known.push(node.field);
        return { op: 'ref', field: head, kind, filter: retype({ ...node, field: rest }, restAt, node.field) };
      }
    }
  };
  const bound = bind(filter);
  return { filter: bound, known };
}
