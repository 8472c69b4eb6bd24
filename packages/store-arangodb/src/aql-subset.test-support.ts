/**
 * A small evaluator of the part of AQL that `filter-aql.ts` writes, for tests only: it follows ArangoDB's
 * documented semantics (type order, strict `==` and `IN`, anchored case-sensitive `LIKE`, attribute access on a
 * non-object giving null, unary `NOT` binding tighter than comparisons) closely enough to check the compiler's
 * logic on the contract's filter cases here, where no server runs. It is a model of AQL, not AQL: it says nothing
 * about whether ArangoDB accepts a query, and strings compare by code units here, not by ICU collation.
 */
import { parseIpv4 } from '@consortium/core';

type Value = null | boolean | number | string | Value[] | { [key: string]: Value };
type Scope = ReadonlyMap<string, Value>;
type Expr = (scope: Scope) => Value;

/** Bind variables and the contents of the collections a query names. */
export interface AqlSubsetInput {
  readonly bindVars: Readonly<Record<string, unknown>>;
  readonly collections: Readonly<Record<string, readonly Value[]>>;
}

const TOKEN = /\s*(@@?[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*|-?\d+(?:\.\d+)?|==|!=|<=|>=|[()[\],.?:<>=])/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const start = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (match === null) {
      if (/^\s*$/.test(text.slice(start))) break;
      throw new Error(`cannot read AQL at ${JSON.stringify(text.slice(start, start + 20))}`);
    }
    tokens.push(match[1] as string);
  }
  return tokens;
}

/** Compiles `text` (an AQL expression) to a function of a scope; throws on anything outside the subset. */
export function compileAqlExpression(text: string, input: AqlSubsetInput): Expr {
  const parser = new Parser(tokenize(text), input);
  const expr = parser.expression();
  parser.end();
  return expr;
}

class Parser {
  private at = 0;

  constructor(
    private readonly tokens: readonly string[],
    private readonly input: AqlSubsetInput,
  ) {}

  end(): void {
    if (this.at !== this.tokens.length) throw new Error(`unexpected ${this.peek()}`);
  }

  private peek(): string | undefined {
    return this.tokens[this.at];
  }

  private take(expected?: string): string {
    const token = this.tokens[this.at];
    if (token === undefined || (expected !== undefined && token !== expected)) {
      throw new Error(`expected ${expected ?? 'a token'}, found ${token ?? 'the end'}`);
    }
    this.at += 1;
    return token;
  }

  expression(): Expr {
    const condition = this.or();
    if (this.peek() !== '?') return condition;
    this.take('?');
    const then = this.expression();
    this.take(':');
    const otherwise = this.expression();
    return (scope) => (truthy(condition(scope)) ? then(scope) : otherwise(scope));
  }

  private or(): Expr {
    let left = this.and();
    while (this.peek() === 'OR') {
      this.take();
      const l = left;
      const right = this.and();
      left = (scope) => truthy(l(scope)) || truthy(right(scope));
    }
    return left;
  }

  private and(): Expr {
    let left = this.comparison();
    while (this.peek() === 'AND') {
      this.take();
      const l = left;
      const right = this.comparison();
      left = (scope) => truthy(l(scope)) && truthy(right(scope));
    }
    return left;
  }

  private comparison(): Expr {
    const left = this.unary();
    const op = this.peek();
    if (op === undefined || !['==', '!=', '<', '<=', '>', '>=', 'IN', 'LIKE'].includes(op)) return left;
    this.take();
    const right = this.unary();
    return (scope) => compareOp(op, left(scope), right(scope));
  }

  private unary(): Expr {
    if (this.peek() === 'NOT') {
      this.take();
      const inner = this.unary();
      return (scope) => !truthy(inner(scope));
    }
    return this.postfix(this.primary());
  }

  private postfix(base: Expr): Expr {
    let expr = base;
    while (this.peek() === '.') {
      this.take('.');
      const name = this.take();
      const key = name.startsWith('@') ? String(this.bind(name)) : name;
      const object = expr;
      expr = (scope) => {
        const value = object(scope);
        return isObject(value) && Object.hasOwn(value, key) ? (value[key] ?? null) : null;
      };
    }
    return expr;
  }

  private primary(): Expr {
    const token = this.take();
    if (token === '(') {
      const inner = this.peek() === 'FOR' ? this.subquery() : this.expression();
      this.take(')');
      return inner;
    }
    if (token === '[') {
      const items: Expr[] = [];
      while (this.peek() !== ']') {
        items.push(this.expression());
        if (this.peek() === ',') this.take(',');
      }
      this.take(']');
      return (scope) => items.map((item) => item(scope));
    }
    if (token === 'true' || token === 'false') return () => token === 'true';
    if (token === 'null') return () => null;
    if (/^-?\d/.test(token)) return () => Number(token);
    if (token.startsWith('@@')) {
      const docs = this.input.collections[String(this.bind(token))];
      if (docs === undefined) throw new Error(`no collection for ${token}`);
      return () => [...docs];
    }
    if (token.startsWith('@')) {
      const value = this.bind(token) as Value;
      return () => value;
    }
    if (this.peek() === '(') {
      this.take('(');
      const args: Expr[] = [];
      while (this.peek() !== ')') {
        args.push(this.expression());
        if (this.peek() === ',') this.take(',');
      }
      this.take(')');
      return call(token, args);
    }
    if (/^[a-z][a-z0-9]*$/.test(token)) {
      return (scope) => {
        if (!scope.has(token)) throw new Error(`unknown variable ${token}`);
        return scope.get(token) ?? null;
      };
    }
    throw new Error(`unexpected ${token}`);
  }

  /** `FOR … IN … (FOR | LET | FILTER | LIMIT)* RETURN …`, as an array of results. */
  private subquery(): Expr {
    type Step = (scopes: Scope[]) => Scope[];
    const steps: Step[] = [];
    let result: Expr | undefined;
    while (result === undefined) {
      const keyword = this.take();
      if (keyword === 'FOR') {
        const name = this.take();
        this.take('IN');
        const source = this.expression();
        steps.push((scopes) =>
          scopes.flatMap((scope) => {
            const items = source(scope);
            if (!Array.isArray(items)) throw new Error('FOR over something that is not an array');
            return items.map((item) => new Map(scope).set(name, item));
          }),
        );
      } else if (keyword === 'LET') {
        const name = this.take();
        this.take('=');
        const value = this.expression();
        steps.push((scopes) => scopes.map((scope) => new Map(scope).set(name, value(scope))));
      } else if (keyword === 'FILTER') {
        const condition = this.expression();
        steps.push((scopes) => scopes.filter((scope) => truthy(condition(scope))));
      } else if (keyword === 'LIMIT') {
        const count = Number(this.take());
        steps.push((scopes) => scopes.slice(0, count));
      } else if (keyword === 'RETURN') {
        result = this.expression();
      } else {
        throw new Error(`unexpected ${keyword} in a subquery`);
      }
    }
    const returned = result;
    return (scope) => steps.reduce((scopes, step) => step(scopes), [scope]).map((s) => returned(s));
  }

  private bind(token: string): unknown {
    const name = token.startsWith('@@') ? token.slice(1) : token.slice(1);
    if (!Object.hasOwn(this.input.bindVars, name)) throw new Error(`unbound ${token}`);
    return this.input.bindVars[name];
  }
}

function call(name: string, args: readonly Expr[]): Expr {
  const one = (scope: Scope): Value => (args[0] as Expr)(scope);
  switch (name) {
    case 'LENGTH':
      return (scope) => {
        const value = one(scope);
        if (!Array.isArray(value)) throw new Error('LENGTH of something that is not an array');
        return value.length;
      };
    case 'IS_ARRAY':
      return (scope) => Array.isArray(one(scope));
    case 'IS_OBJECT':
      return (scope) => isObject(one(scope));
    case 'IS_STRING':
      return (scope) => typeof one(scope) === 'string';
    case 'IS_NUMBER':
      return (scope) => typeof one(scope) === 'number';
    case 'IS_IPV4':
      return (scope) => {
        const value = one(scope);
        return typeof value === 'string' && parseIpv4(value) !== undefined;
      };
    case 'IPV4_TO_NUMBER':
      return (scope) => {
        const value = one(scope);
        return typeof value === 'string' ? (parseIpv4(value) ?? null) : null;
      };
    default:
      throw new Error(`unknown function ${name}`);
  }
}

function isObject(value: unknown): value is { [key: string]: Value } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function truthy(value: Value): boolean {
  if (value === null || value === false || value === 0 || value === '') return false;
  return true;
}

function typeRank(value: Value): number {
  if (value === null) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 2;
  if (typeof value === 'string') return 3;
  return Array.isArray(value) ? 4 : 5;
}

/** AQL's order: by type first, then by value (strings by code units here, by ICU in ArangoDB). */
function compare(a: Value, b: Value): number {
  const ta = typeRank(a);
  const tb = typeRank(b);
  if (ta !== tb) return ta - tb;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
      const c = compare(a[i] ?? null, b[i] ?? null);
      if (c !== 0) return c;
    }
    return 0;
  }
  if (isObject(a) && isObject(b)) return JSON.stringify(a) === JSON.stringify(b) ? 0 : 1;
  const x = a as string | number | boolean | null;
  const y = b as string | number | boolean | null;
  return x === y ? 0 : (x ?? 0) < (y ?? 0) ? -1 : 1;
}

function compareOp(op: string, a: Value, b: Value): boolean {
  switch (op) {
    case '==':
      return compare(a, b) === 0;
    case '!=':
      return compare(a, b) !== 0;
    case '<':
      return compare(a, b) < 0;
    case '<=':
      return compare(a, b) <= 0;
    case '>':
      return compare(a, b) > 0;
    case '>=':
      return compare(a, b) >= 0;
    case 'IN':
      return Array.isArray(b) && b.some((item) => compare(a, item) === 0);
    case 'LIKE':
      return typeof a === 'string' && typeof b === 'string' && likeToRegExp(b).test(a);
    default:
      throw new Error(`unknown operator ${op}`);
  }
}

function likeToRegExp(pattern: string): RegExp {
  let source = '';
  // LIKE's `_` is one character, a code point, as Array.from splits a string.
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i += 1) {
    const char = chars[i] as string;
    if (char === '\\' && i + 1 < chars.length) {
      i += 1;
      source += escapeRegExp(chars[i] as string);
    } else if (char === '%') source += '.*';
    else if (char === '_') source += '.';
    else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, 'su');
}

function escapeRegExp(char: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(char) ? `\\${char}` : char;
}
