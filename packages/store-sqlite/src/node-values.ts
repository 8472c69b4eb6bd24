/**
 * The value index of the SQLite store: for every node, each string and number in its attributes under the dotted
 * path a filter names it by (array elements under the path of their array, at any depth), and each IPv4 address
 * once more as an integer under `<path>/ipv4`. A table keyed by (kind, path, value, name) holds them, so that an
 * equality, `has`, `in`, a CIDR range and the names a reference hop collects are index lookups instead of a JSON
 * walk over every node of the kind. The store writes a node's rows in the transaction that writes the node.
 *
 * The filter compiler uses these rows only to narrow the candidates (a condition the exact one implies), so the
 * rows may hold more than a filter would match (a value anywhere under the path) but never less.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { parseIpv4 } from '@consortium/core';
import type { JsonValue } from '@consortium/core';

/** Strings longer than this are not indexed; a filter on a longer value does without the index. */
export const MAX_INDEXED_LENGTH = 256;

/** The path suffix under which IPv4 addresses are indexed as integers (never a valid filter field). */
export const IPV4_SUFFIX = '/ipv4';

/** Attribute names a filter can reach (FILTER_FIELD_PATTERN's segments); others are not indexed. */
const SEGMENT = /^[a-z_][a-z0-9_]*$/;

/** Deeper structures are not indexed (filters on them still work, without the index). */
const MAX_DEPTH = 16;

/** True when a filter value can be looked up in the value index (a string it holds, or a finite number). */
export function indexable(value: JsonValue | undefined): value is string | number {
  return typeof value === 'string'
    ? value.length <= MAX_INDEXED_LENGTH
    : typeof value === 'number' && Number.isFinite(value);
}

/** The (path, value) pairs of `attrs`, each once. */
export function nodeValues(attrs: Readonly<Record<string, JsonValue>>): [string, string | number][] {
  const seen = new Set<string>();
  const out: [string, string | number][] = [];
  const add = (path: string, value: string | number): void => {
    const key = `${path}\u0000${typeof value}\u0000${String(value)}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push([path, value]);
  };
  const walk = (path: string, value: JsonValue, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (typeof value === 'string') {
      if (value.length > MAX_INDEXED_LENGTH) return;
      add(path, value);
      const address = parseIpv4(value);
      if (address !== undefined) add(`${path}${IPV4_SUFFIX}`, address);
    } else if (typeof value === 'number') {
      if (Number.isFinite(value)) add(path, value);
    } else if (Array.isArray(value)) {
      for (const item of value as readonly JsonValue[]) walk(path, item, depth + 1);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (SEGMENT.test(key)) walk(path === '' ? key : `${path}.${key}`, item, depth + 1);
      }
    }
  };
  walk('', attrs, 0);
  return out;
}

/** The statements that keep a node's rows in step with its attributes. */
export interface NodeValueWriter {
  /** Replaces the rows of `kind/name` by those of `attrs` (none when `attrs` is undefined: the node is gone). */
  write(kind: string, name: string, attrs: Readonly<Record<string, JsonValue>> | undefined): void;
}

/** Prepares the writer on `db` (the table must exist). */
export function nodeValueWriter(db: BetterSqlite3.Database): NodeValueWriter {
  const remove = db.prepare<[string, string]>('DELETE FROM node_values WHERE kind = ? AND name = ?');
  const insert = db.prepare<[string, string, string | number, string]>(
    'INSERT OR IGNORE INTO node_values (kind, path, value, name) VALUES (?, ?, ?, ?)',
  );
  return {
    write: (kind, name, attrs) => {
      remove.run(kind, name);
      if (attrs === undefined) return;
      for (const [path, value] of nodeValues(attrs)) insert.run(kind, path, value, name);
    },
  };
}
