/**
 * The compiled kind schema (`GET /api/schema/:kind`) as the console reads it: the fields of the generated form,
 * turning form text into attribute values, checking them with the same schema before anything is sent, and
 * walking the paths the API names (`interfaces[eth0].ip`).
 */
import { Validator } from '@cfworker/json-schema';
import type { Attrs, JsonValue } from '@consortium/core';

/** The parts of a JSON Schema the console reads (the server's schema carries more). */
export interface FieldSchema {
  readonly type?: string;
  readonly description?: string;
  readonly enum?: readonly JsonValue[];
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly items?: FieldSchema;
  readonly properties?: Readonly<Record<string, FieldSchema>>;
  readonly required?: readonly string[];
  readonly 'x-authority'?: string;
  readonly 'x-ref'?: string;
  readonly 'x-list-type'?: 'set' | 'map' | 'atomic';
  readonly 'x-list-map-keys'?: readonly string[];
}

/** A kind's schema document. */
export interface KindDocument extends FieldSchema {
  readonly title: string;
  readonly properties: Readonly<Record<string, FieldSchema>>;
}

/** Form state: every field's text as typed; map lists are rows of texts, objects nested texts. */
export type FormValue = string | FormValue[] | { readonly [field: string]: FormValue };
/** The whole form's state, one entry per attribute. */
export type FormState = Record<string, FormValue>;

/** The attributes a form edits: every one but `present`, which create and delete set. */
export function formFields(doc: KindDocument): [string, FieldSchema][] {
  return Object.entries(doc.properties).filter(([name]) => name !== 'present');
}

function textOf(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The form state showing `attrs` (empty for a new node). */
export function formStateOf(doc: KindDocument, attrs: Attrs): FormState {
  const state: FormState = {};
  for (const [name, field] of formFields(doc)) state[name] = fieldStateOf(field, attrs[name]);
  return state;
}

function fieldStateOf(field: FieldSchema, value: JsonValue | undefined): FormValue {
  if (field.type === 'array' && field['x-list-type'] === 'map') {
    const rows = Array.isArray(value) ? (value as JsonValue[]) : [];
    return rows.map((row) => {
      const object = (typeof row === 'object' && row !== null && !Array.isArray(row) ? row : {}) as Attrs;
      const out: Record<string, FormValue> = {};
      for (const [name, sub] of Object.entries(field.items?.properties ?? {}))
        out[name] = fieldStateOf(sub, object[name]);
      return out;
    });
  }
  if (field.type === 'array')
    return Array.isArray(value) ? (value as JsonValue[]).map(textOf).join(', ') : '';
  if (field.type === 'object' && field.properties !== undefined) {
    const object = (
      typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}
    ) as Attrs;
    const out: Record<string, FormValue> = {};
    for (const [name, sub] of Object.entries(field.properties)) out[name] = fieldStateOf(sub, object[name]);
    return out;
  }
  return textOf(value);
}

/**
 * The value a text stands for under its field's type; text that is not one (`abc` for an integer) stays text, so
 * that the schema check names the field and says what it expected.
 */
function scalarOf(field: FieldSchema, text: string): JsonValue {
  const trimmed = text.trim();
  if (field.type === 'integer' || field.type === 'number') {
    return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
  }
  if (field.type === 'boolean') return trimmed === 'true' ? true : trimmed === 'false' ? false : trimmed;
  return text;
}

/** The value of one field's state; undefined when left empty (the attribute is not set). */
function valueOf(field: FieldSchema, state: FormValue | undefined): JsonValue | undefined {
  if (state === undefined) return undefined;
  if (Array.isArray(state)) {
    const rows = state
      .map((row) => valueOf({ ...(field.items ?? {}), type: 'object' }, row))
      .filter((row): row is JsonValue => row !== undefined);
    return rows.length === 0 ? undefined : rows;
  }
  if (typeof state === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [name, sub] of Object.entries(state)) {
      const value = valueOf(field.properties?.[name] ?? {}, sub);
      if (value !== undefined) out[name] = value;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  if (state.trim() === '') return undefined;
  if (field.type === 'array') {
    return state
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '')
      .map((item) => scalarOf(field.items ?? {}, item));
  }
  return scalarOf(field, state);
}

/** The attributes a form's state stands for (empty fields left out). */
export function attrsOf(doc: KindDocument, state: FormState): Attrs {
  const attrs: Record<string, JsonValue> = {};
  for (const [name, field] of formFields(doc)) {
    const value = valueOf(field, state[name]);
    if (value !== undefined) attrs[name] = value;
  }
  return attrs;
}

/** One schema error at a form field: the attribute path (`interfaces/0/name`) and the schema's message. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/**
 * Checks attributes against the kind's schema, as the server will; each error names the field it belongs to
 * (`hwspec`, `interfaces/0/name`). The validator interprets the schema rather than compiling it to code, so it runs
 * under the console's Content-Security-Policy (no `eval`).
 */
export function validateAttrs(doc: KindDocument, attrs: Attrs): FieldError[] {
  const validator = new Validator(doc as unknown as Record<string, unknown>, '2020-12', false);
  const result = validator.validate({ present: true, ...attrs });
  const errors = new Map<string, string>();
  for (const error of result.errors) {
    // The deepest error says what is wrong; the ones above it only repeat that a child failed.
    const field = error.instanceLocation.replace(/^#\/?/, '');
    if (field === '' && error.keyword !== 'additionalProperties') continue;
    if (!errors.has(field) || error.keyword !== 'properties') errors.set(field, error.error);
  }
  // An error of a child makes its parent fail too ("Property … does not match schema"); keep only the leaves.
  const fields = [...errors.keys()];
  return fields
    .filter((field) => !fields.some((other) => other !== field && other.startsWith(`${field}/`)))
    .map((field) => ({ field, message: errors.get(field) as string }));
}

/** The RFC 7396 merge patch that turns `before` into `after` (top-level attributes; lists are replaced whole). */
export function mergePatch(doc: KindDocument, before: Attrs, after: Attrs): Record<string, JsonValue> {
  const patch: Record<string, JsonValue> = {};
  for (const [name] of formFields(doc)) {
    const old = before[name];
    const value = after[name];
    if (value === undefined) {
      if (old !== undefined) patch[name] = null;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) patch[name] = value;
  }
  return patch;
}

/** The value at an API path (`interfaces[eth0].ip`, `capacity.vcpus`) of a node's attributes. */
export function valueAtPath(doc: KindDocument, attrs: Attrs, path: string): JsonValue | undefined {
  let value: JsonValue | undefined = attrs;
  let field: FieldSchema | undefined = doc;
  for (const [, name, key] of path.matchAll(/\.?([^.[\]]+)(?:\[([^\]]*)\])?/g)) {
    if (
      name === undefined ||
      value === undefined ||
      value === null ||
      typeof value !== 'object' ||
      Array.isArray(value)
    )
      return undefined;
    value = (value as Attrs)[name];
    field = field?.properties?.[name];
    if (key !== undefined) {
      const keyField = field?.['x-list-map-keys']?.[0] ?? 'name';
      value = Array.isArray(value)
        ? (value as JsonValue[]).find(
            (item) =>
              typeof item === 'object' &&
              item !== null &&
              !Array.isArray(item) &&
              (item as Attrs)[keyField] === key,
          )
        : undefined;
      field = field?.items;
    }
  }
  return value;
}

/** The schema of an API path, or undefined when the kind has none there. */
export function fieldAtPath(doc: KindDocument, path: string): FieldSchema | undefined {
  let field: FieldSchema | undefined = doc;
  for (const [, name, key] of path.matchAll(/\.?([^.[\]]+)(?:\[([^\]]*)\])?/g)) {
    if (name === undefined) return undefined;
    field = field?.properties?.[name];
    if (key !== undefined) field = field?.items;
  }
  return field;
}

/** A value as one line of text for tables. */
export function display(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item !== 'object' || item === null))
    return value.map((item) => String(item)).join(', ');
  return JSON.stringify(value);
}
