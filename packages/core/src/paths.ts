/**
 * Attribute paths: `attr`, `attr.field`, `attr[key].field` for items of map lists, and `attr[*].field` as a
 * pattern in claims and watches. A parsed path is a list of segments; its string form is canonical.
 */
import { InputError } from './errors.js';

/** One step of a path: an object property, or the item of a map list with the given key (`*` in patterns). */
export type PathSegment = { readonly prop: string } | { readonly key: string };

/** A parsed attribute path; never empty, and always starting with a property (the attribute). */
export type Path = readonly PathSegment[];

const IDENT = /^[a-z_][a-z0-9_]*$/;

/** The wildcard key used in claim and watch patterns. */
export const ANY_KEY = '*';

/** Parses a path string; throws `InputError` with the position of the first fault. */
export function parsePath(text: string, options: { allowWildcard?: boolean } = {}): Path {
  const segments: PathSegment[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new InputError(`invalid path "${text}": ${why} at offset ${i}`, { details: { path: text } });
  };
  const readIdent = (): string => {
    const start = i;
    while (i < text.length && text[i] !== '.' && text[i] !== '[') i++;
    const ident = text.slice(start, i);
    if (!IDENT.test(ident)) {
      i = start;
      fail(`expected an attribute name (a-z, 0-9, '_') but found "${ident}"`);
    }
    return ident;
  };
  segments.push({ prop: readIdent() });
  while (i < text.length) {
    if (text[i] === '.') {
      i++;
      segments.push({ prop: readIdent() });
    } else {
      // text[i] is '[' here: readIdent stops only at '.', '[' or the end.
      const close = text.indexOf(']', i);
      if (close < 0) fail("unclosed '['");
      const key = text.slice(i + 1, close);
      if (key.length === 0) fail('empty list key');
      if (key === ANY_KEY && options.allowWildcard !== true)
        fail("wildcard '[*]' is only allowed in patterns");
      if (key.includes('[')) fail("'[' inside a list key");
      segments.push({ key });
      i = close + 1;
      if (i < text.length && text[i] !== '.' && text[i] !== '[') fail("expected '.' or '[' after ']'");
    }
  }
  return segments;
}

/** The canonical string form of a path. */
export function formatPath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if ('prop' in segment) out += out === '' ? segment.prop : `.${segment.prop}`;
    else out += `[${segment.key}]`;
  }
  return out;
}

/** The attribute (first segment) a path belongs to. */
export function rootOf(path: Path): string {
  const first = path[0];
  if (first === undefined || !('prop' in first)) throw new InputError('empty path');
  return first.prop;
}

/** The same path with every list key replaced by the wildcard, for looking up claims. */
export function toPattern(path: Path): Path {
  return path.map((segment) => ('key' in segment ? { key: ANY_KEY } : segment));
}

function segmentMatches(pattern: PathSegment, concrete: PathSegment): boolean {
  if ('prop' in pattern) return 'prop' in concrete && concrete.prop === pattern.prop;
  return (
    'key' in concrete && (pattern.key === ANY_KEY || concrete.key === ANY_KEY || pattern.key === concrete.key)
  );
}

/** True when `prefix` (a pattern or a path) is a prefix of, or equal to, `path`. */
export function isPrefixOf(prefix: Path, path: Path): boolean {
  if (prefix.length > path.length) return false;
  return prefix.every((segment, index) => segmentMatches(segment, path[index] as PathSegment));
}

/** True when one path is a prefix of the other: a change to either touches the other. */
export function overlaps(a: Path, b: Path): boolean {
  return isPrefixOf(a, b) || isPrefixOf(b, a);
}

/** True when two paths are the same. */
export function pathEquals(a: Path, b: Path): boolean {
  return a.length === b.length && isPrefixOf(a, b);
}
