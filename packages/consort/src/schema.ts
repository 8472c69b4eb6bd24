/**
 * The server's compiled kind schema, fetched once and cached on disk with its ETag, and the typing of
 * `key=value` arguments against it: unknown attributes suggest the closest one, values are checked before sending.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Attrs, JsonValue, ListSemantics, Path, UpdateRequest } from '@consortium/core';
import {
  BOOLEAN_WORDS_HELP,
  applyUpdate,
  closestMatch,
  formatPath,
  parseBooleanWord,
  parsePath,
} from '@consortium/core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Client } from './client.js';
import { usage } from './errors.js';

/** A JSON Schema object. */
export type Schema = Record<string, unknown>;

function cacheFile(url: string, kind: string, env: NodeJS.ProcessEnv): string {
  const base = env['XDG_CACHE_HOME'] ?? join(env['HOME'] ?? homedir(), '.cache');
  const server = createHash('sha1').update(url).digest('hex').slice(0, 12);
  return join(base, 'consort', server, `${kind}.json`);
}

/** Fetches a kind's schema, revalidating the disk cache with `If-None-Match`. */
export async function fetchSchema(
  client: Client,
  kind: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Schema> {
  const file = cacheFile(client.target.url, kind, env);
  let cached: { etag: string; document: Schema } | undefined;
  try {
    cached = JSON.parse(readFileSync(file, 'utf8')) as { etag: string; document: Schema };
  } catch {
    cached = undefined;
  }
  const answer = await client.request('GET', `/api/schema/${encodeURIComponent(kind)}`, {
    headers: cached === undefined ? {} : { 'if-none-match': cached.etag },
    accept: [304],
  });
  if (answer.status === 304 && cached !== undefined) return cached.document;
  const document = answer.body as Schema;
  const etag = answer.headers['etag'];
  if (etag !== undefined) {
    try {
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, JSON.stringify({ etag, document }));
    } catch {
      // a read-only home only costs the cache
    }
  }
  return document;
}

/** The sub-schema at a path of a kind document. */
export function schemaAt(document: Schema, path: Path): Schema | undefined {
  let schema: Schema | undefined = document;
  for (const segment of path) {
    if (schema === undefined) return undefined;
    if ('prop' in segment) {
      const properties = schema['properties'] as Record<string, Schema> | undefined;
      schema =
        properties !== undefined && Object.hasOwn(properties, segment.prop)
          ? properties[segment.prop]
          : undefined;
    } else schema = schema['x-list-type'] === 'map' ? (schema['items'] as Schema | undefined) : undefined;
  }
  return schema;
}

/** List semantics of a kind document, as the core's merge needs them. */
export function listSemanticsOf(document: Schema): {
  listSemanticsAt(path: Path): ListSemantics | undefined;
} {
  return {
    listSemanticsAt(path) {
      const schema = schemaAt(document, path);
      if (schema?.['type'] !== 'array') return undefined;
      if (schema['x-list-type'] === 'set') return { type: 'set' };
      if (schema['x-list-type'] === 'map')
        return { type: 'map', key: (schema['x-list-map-keys'] as string[])[0] as string };
      return { type: 'atomic' };
    },
  };
}

const ajv = new Ajv2020({ strict: false, allErrors: true });

function typed(text: string, schema: Schema, where: string): JsonValue {
  const type = schema['type'];
  if (type === 'integer' || type === 'number') {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || (type === 'integer' && !Number.isInteger(value))) {
      throw usage(`${where}: "${text}" is not ${type === 'integer' ? 'an integer' : 'a number'}`);
    }
    return value;
  }
  if (type === 'boolean') {
    const value = parseBooleanWord(text);
    if (value === undefined) throw usage(`${where}: "${text}" is not ${BOOLEAN_WORDS_HELP}`);
    return value;
  }
  if (type === 'object' || (type === 'array' && schema['x-list-type'] !== 'set')) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      throw usage(`${where} takes JSON, for example ${type === 'object' ? '{"key":"value"}' : '[...]'}`);
    }
  }
  if (type === 'array') {
    const items = (schema['items'] ?? {}) as Schema;
    return text === '' ? [] : text.split(',').map((part) => typed(part.trim(), items, where));
  }
  return text;
}

function check(value: JsonValue, schema: Schema, where: string): void {
  // Not strict: the x- annotations of the served schema are not keywords Ajv knows.
  const validate = ajv.compile(schema);
  if (!validate(value)) {
    const first = validate.errors?.[0];
    if (first?.keyword === 'pattern') {
      // A regular expression says nothing to an operator: name the form, from examples it accepts.
      const pattern = (first.params as { pattern: string }).pattern;
      const bad = valueAt(value, first.instancePath);
      throw usage(
        `${where}=${JSON.stringify(value)}: ${JSON.stringify(bad)} is not ${describePattern(pattern)}`,
      );
    }
    const extra =
      first?.keyword === 'enum'
        ? ` (one of ${(first.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
        : '';
    throw usage(`${where}=${JSON.stringify(value)}: ${first?.message ?? 'invalid'}${extra}`);
  }
}

/** Forms a pattern may stand for, each with examples it must accept and reject, and how to say it. */
const FORMS: readonly { accepts: string[]; rejects: string[]; words: string }[] = [
  {
    accepts: ['10.1.2.0/24', '0.0.0.0/0'],
    rejects: ['10.1.2.0', '10.1.2.0/33'],
    words: 'a CIDR like 10.1.2.0/24',
  },
  {
    accepts: ['10.1.2.3', '192.168.0.1'],
    rejects: ['10.1.2.0/24', '10.1.2'],
    words: 'an IPv4 address like 10.1.2.3',
  },
  {
    accepts: ['52:54:00:12:ab:cd'],
    rejects: ['52-54-00-12-ab-cd', '52:54:00:12:ab'],
    words: 'a MAC address like 52:54:00:12:ab:cd',
  },
  {
    accepts: ['web-01', 'web-01.pek1.example.com'],
    rejects: ['Web_01', '-web'],
    words: 'a lower-case DNS name like web-01 or web-01.example.com',
  },
  {
    accepts: ['eth0', 'bond1'],
    rejects: ['eth-0', 'Eth0'],
    words: 'lower-case letters and digits, like eth0',
  },
  {
    accepts: ['my_var', 'X1'],
    rejects: ['1x', 'my-var'],
    words: 'a name of letters, digits and _, like my_var',
  },
];

/** A pattern in words: the first known form whose examples it accepts and rejects exactly, else the pattern. */
export function describePattern(pattern: string): string {
  const regex = new RegExp(pattern, 'u');
  const form = FORMS.find(
    (f) => f.accepts.every((text) => regex.test(text)) && !f.rejects.some((text) => regex.test(text)),
  );
  return form?.words ?? `of the form the schema requires (${pattern})`;
}

/** The value at an Ajv instance path (`/0`, `/items/1`) inside a value. */
function valueAt(value: JsonValue, pointer: string): JsonValue | undefined {
  let current: JsonValue | undefined = value;
  for (const part of pointer.split('/').slice(1)) {
    if (current === null || typeof current !== 'object') return undefined;
    const container: Readonly<Record<string, JsonValue>> = Array.isArray(current)
      ? Object.fromEntries((current as readonly JsonValue[]).map((item, i) => [String(i), item]))
      : (current as Readonly<Record<string, JsonValue>>);
    current = Object.hasOwn(container, part) ? container[part] : undefined;
  }
  return current;
}

const ASSIGNMENT = /^([a-z_][a-z0-9_]*(?:\[[^\]]+\]|\.[a-z_][a-z0-9_]*)*)(\+=|-=|=|-$)(.*)$/s;

/**
 * Turns `key=value`, `key+=item`, `key-=item`, `key-` (unset) and `key[eth0].ip=value` into updates, typed and
 * checked against the kind's schema. Throws `CliError` (exit 2) naming the argument and the closest attribute.
 */
export function parseAssignments(kind: string, document: Schema, args: readonly string[]): UpdateRequest[] {
  const attributes = Object.keys(document['properties'] ?? {}).filter((a) => a !== 'present');
  return args.map((arg) => {
    const match = ASSIGNMENT.exec(arg);
    if (match === null) throw usage(`cannot read "${arg}": use key=value, key+=value, key-=value or key-`);
    const [, pathText = '', operator = '', text = ''] = match;
    let path: Path;
    try {
      path = parsePath(pathText);
    } catch (error) {
      throw usage((error as Error).message);
    }
    const attribute = (path[0] as { prop: string }).prop;
    const schema = schemaAt(document, path);
    if (schema === undefined || attribute === 'present') {
      if (!attributes.includes(attribute)) {
        const suggestion = closestMatch(attribute, attributes);
        throw usage(
          `unknown attribute "${attribute}" for ${kind}${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`,
        );
      }
      throw usage(`unknown path "${pathText}" for ${kind}`);
    }
    const where = formatPath(path);
    if (operator === '-') return { path: where, op: 'unset' };
    if (operator === '+=' || operator === '-=') {
      if (schema['type'] !== 'array' || schema['x-list-type'] !== 'set') {
        throw usage(`${where} is not a set list, so ${operator} does not apply; use ${where}=...`);
      }
      const item = typed(text, (schema['items'] ?? {}) as Schema, where);
      check([item], schema, where);
      return { path: where, op: operator === '+=' ? 'add' : 'remove', value: item };
    }
    const value = typed(text, schema, where);
    check(value, schema, where);
    return { path: where, op: 'set', value };
  });
}

/** The attributes a create sends, built by applying the parsed updates to an empty node. */
export function attrsFromUpdates(document: Schema, updates: readonly UpdateRequest[]): Attrs {
  const semantics = listSemanticsOf(document);
  let attrs: Attrs = {};
  for (const update of updates) {
    if (update.op === 'remove' || update.op === 'unset')
      throw usage(`a create cannot ${update.op} ${update.path}`);
    attrs = applyUpdate(attrs, parsePath(update.path), update.op, update.value, semantics);
  }
  return attrs;
}
