/**
 * The search language of `GET /api/search?q=` and `consort search` (DESIGN.md §7), parsed to the store's filter
 * AST so that each store compiles it to its own query:
 *
 *     kind=host and datacenter=pek1 and puppet_roles has nginx and hwspec in (small, medium)
 *     name ~ "web-*"      not power=on      (a or b) and c      vid >= 100      description exists
 *
 * Bare words are strings, numbers or booleans; quote a string to keep it a string ("007"). `~` is a glob (`*`, `?`).
 */
import { InputError } from './errors.js';
import type { JsonValue } from './model.js';
import type { Filter } from './ports/store.js';

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
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text)) return Number(text);
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
        if (typeof single === 'string' && /^[0-9.]+\/[0-9]+$/.test(single)) {
          throw new InputError(`matching addresses by CIDR (${field} in ${single}) is not supported yet`);
        }
        throw new InputError(`"in" takes a list in parentheses: ${field} in (a, b)`);
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
  const unary = (): Filter => {
    if (isWord('not')) {
      pos++;
      return { op: 'not', arg: unary() };
    }
    if (peek()?.type === 'punct' && peek()?.text === '(') {
      pos++;
      const inner = or();
      if (peek()?.type !== 'punct' || peek()?.text !== ')') fail('")"');
      pos++;
      return inner;
    }
    return comparison();
  };
  const and = (): Filter => {
    const args = [unary()];
    while (isWord('and')) {
      pos++;
      args.push(unary());
    }
    return args.length === 1 ? (args[0] as Filter) : { op: 'and', args };
  };
  function or(): Filter {
    const args = [and()];
    while (isWord('or')) {
      pos++;
      args.push(and());
    }
    return args.length === 1 ? (args[0] as Filter) : { op: 'or', args };
  }
  if (tokens.length === 0) throw new InputError('the search query is empty');
  const filter = or();
  if (pos < tokens.length) fail('"and", "or" or the end of the query');
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
