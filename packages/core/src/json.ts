/** Small pure helpers over JSON values: deep equality and a canonical (key-sorted) serialisation. */
import type { JsonValue } from './model.js';
import { isJsonObject } from './model.js';
import { countWork } from './work-meter.js';

/** Structural equality of two JSON values; object key order does not matter. */
export function deepEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  countWork(1);
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item: JsonValue, i) => deepEqual(item, b[i] as JsonValue));
  }
  if (isJsonObject(a)) {
    if (!isJsonObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

/** A JSON string with object keys sorted, so equal values serialise equally (fingerprints, dedupe keys). */
export function canonicalJson(value: JsonValue | undefined): string {
  countWork(1);
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `[${value.map((item: JsonValue) => canonicalJson(item)).join(',')}]`;
  if (isJsonObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
