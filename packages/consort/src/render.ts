/**
 * Output: `-o json` (stable, for scripts), `-o yaml`, `-o csv` (the table's rows), `-o jsonpath=EXPR` (values picked
 * out of the JSON), and tables that fit the terminal.
 */
import { stringify } from 'yaml';
import { usage } from './errors.js';

/** The output formats every command takes (besides `jsonpath=EXPR`). */
export const FORMATS = ['table', 'json', 'yaml', 'csv'] as const;
/** One of `FORMATS`. */
export type Format = (typeof FORMATS)[number];

/** The output a command was asked for. */
export type Output =
  { readonly format: Format } | { readonly format: 'jsonpath'; readonly expression: string };

/** Reads `-o`: table, json, yaml, csv or jsonpath=EXPR; throws a usage error naming them. */
export function parseOutput(text: string): Output {
  if ((FORMATS as readonly string[]).includes(text)) return { format: text as Format };
  if (text.startsWith('jsonpath=')) {
    const expression = text.slice('jsonpath='.length);
    jsonPathSegments(expression);
    return { format: 'jsonpath', expression };
  }
  throw usage(
    `-o takes ${FORMATS.join(', ')} or jsonpath=EXPR (like jsonpath='{.items[*].name}'), not "${text}"`,
  );
}

/** A table as commands build it: headers, rows, lines under it, and what to say when there are no rows. */
export interface Table {
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly footer?: readonly string[];
  /** Said instead of an empty table (`no host matches`). */
  readonly empty?: string;
}

/** One step of a JSONPath: a key, an index, or every element. */
type Segment = { readonly key: string } | { readonly index: number } | { readonly every: true };

/**
 * The steps of a JSONPath expression as kubectl writes them: `{.items[*].name}`, `.items[0].attrs.power`,
 * `$.items[*]['name']`; throws a usage error for anything else.
 */
export function jsonPathSegments(expression: string): Segment[] {
  let text = expression.trim();
  if (text.startsWith('{') && text.endsWith('}')) text = text.slice(1, -1).trim();
  if (text.startsWith('$')) text = text.slice(1);
  const segments: Segment[] = [];
  const step = /^(?:\.([A-Za-z_][\w-]*)|\.\*|\[\*\]|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\])/;
  while (text !== '') {
    const match = step.exec(text);
    if (match === null) {
      throw usage(
        `cannot read the JSONPath "${expression}" at "${text}": use .key, [n], [*] or ['key'], like {.items[*].name}`,
      );
    }
    const [whole, key, index, single, double] = match;
    if (key !== undefined) segments.push({ key });
    else if (index !== undefined) segments.push({ index: Number(index) });
    else if (single !== undefined || double !== undefined)
      segments.push({ key: (single ?? double) as string });
    else segments.push({ every: true });
    text = text.slice(whole.length);
  }
  return segments;
}

/** The values a JSONPath picks out of a value, in document order. */
export function jsonPath(value: unknown, expression: string): unknown[] {
  let current: unknown[] = [value];
  for (const segment of jsonPathSegments(expression)) {
    current = current.flatMap((v): unknown[] => {
      if ('every' in segment) {
        if (Array.isArray(v)) return v as unknown[];
        return typeof v === 'object' && v !== null ? Object.values(v) : [];
      }
      if ('index' in segment) return Array.isArray(v) && segment.index < v.length ? [v[segment.index]] : [];
      return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.hasOwn(v, segment.key)
        ? [(v as Record<string, unknown>)[segment.key]]
        : [];
    });
  }
  return current;
}

/** The values of a JSONPath, one a line: strings as they are, anything else as JSON. */
export function printJsonPath(
  value: unknown,
  expression: string,
  out: NodeJS.WritableStream = process.stdout,
): void {
  const values = jsonPath(value, expression);
  out.write(
    values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join('\n') +
      (values.length > 0 ? '\n' : ''),
  );
}

/** Rows as RFC 4180 CSV: a header line, then the rows; fields quoted when they need it. */
export function csv(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const field = (text: string): string => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  return [headers, ...rows].map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

/** `1 round`, `3 rounds`. */
export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The values at a dotted path (`interfaces.ip`), looking through lists of objects. */
export function valuesAt(attrs: unknown, path: string): unknown[] {
  let current: unknown[] = [attrs];
  for (const key of path.split('.')) {
    current = current.flatMap((v) => (Array.isArray(v) ? (v as unknown[]) : [v]));
    current = current.flatMap((v) =>
      typeof v === 'object' && v !== null && Object.hasOwn(v, key)
        ? [(v as Record<string, unknown>)[key]]
        : [],
    );
  }
  return current.flatMap((v) => (Array.isArray(v) ? (v as unknown[]) : [v]));
}

/** The cell of a column: the value (or values) at its path. */
export function columnCell(attrs: Record<string, unknown>, path: string): string {
  if (!path.includes('.')) return cell(attrs[path]);
  return valuesAt(attrs, path).map(cell).join(',');
}

/** A column's header: the last part of its path, upper case (`interfaces.ip` -> `IP`). */
export function columnHeader(path: string): string {
  return (path.split('.').pop() ?? path).toUpperCase();
}

/**
 * The columns a list shows by default: power and the addresses (`interfaces.ip`) when the nodes have them, then the
 * scalar attributes most nodes have, up to six in all.
 */
export function defaultColumns(items: readonly Record<string, unknown>[]): string[] {
  const counts = new Map<string, number>();
  for (const attrs of items) {
    for (const [key, value] of Object.entries(attrs)) {
      if (key === 'present' || (typeof value === 'object' && value !== null && !Array.isArray(value)))
        continue;
      if (Array.isArray(value) && value.some((v) => typeof v === 'object')) continue;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const first = [
    ...(counts.has('power') ? ['power'] : []),
    ...(items.some((attrs) => valuesAt(attrs, 'interfaces.ip').length > 0) ? ['interfaces.ip'] : []),
  ];
  const rest = [...counts.entries()]
    .filter(([key]) => !first.includes(key))
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 6 - first.length)
    .map(([key]) => key)
    .sort();
  return [...first, ...rest];
}

/** Writes a value as JSON or YAML. */
export function printData(
  value: unknown,
  format: 'json' | 'yaml',
  out: NodeJS.WritableStream = process.stdout,
): void {
  out.write(format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value));
}

/** Prints `value` as `output` asks for a value without a table: JSON, YAML or a JSONPath; csv is a usage error. */
export function printValue(
  value: unknown,
  output: Output,
  out: NodeJS.WritableStream = process.stdout,
): void {
  if (output.format === 'json' || output.format === 'yaml') printData(value, output.format, out);
  else if (output.format === 'jsonpath') printJsonPath(value, output.expression, out);
  else if (output.format === 'csv') throw usage('-o csv prints tables; this command has none, use -o json');
  else out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The terminal width, or a wide default when output is not a terminal. */
export function terminalWidth(out: NodeJS.WriteStream = process.stdout): number {
  return out.isTTY ? out.columns : Number(process.env['COLUMNS'] ?? 160);
}

/** Lays out rows under headers, shrinking the widest columns (with an ellipsis) until the table fits `width`. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  width = terminalWidth(),
): string {
  const cells = [headers, ...rows].map((row) => row.map((cell) => cell.replace(/\s+/g, ' ')));
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const gap = 2;
  const total = (): number => widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
  while (total() > width) {
    const widest = widths.indexOf(Math.max(...widths));
    if ((widths[widest] ?? 0) <= 8) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  const fit = (text: string, w: number): string =>
    text.length > w ? `${text.slice(0, Math.max(0, w - 1))}…` : text.padEnd(w);
  return cells
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? fit(cell, widths[i] ?? 0).trimEnd() : fit(cell, widths[i] ?? 0),
        )
        .join(' '.repeat(gap)),
    )
    .join('\n');
}

/** A value as one table cell. */
export function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) return value.join(',');
  return JSON.stringify(value);
}

/** An actor as people read it: `ci pipeline (3f9a1c0b7d2e)`, or the id alone. */
export function actorText(actor: { id: string; description: string | null } | string | undefined): string {
  if (actor === undefined) return '';
  if (typeof actor === 'string') return actor;
  return actor.description === null ? actor.id : `${actor.description} (${actor.id})`;
}

/** Attributes flattened to `path value` pairs (`interfaces[eth0].ip`), for `get` as a table. */
export function flatten(attrs: Record<string, unknown>, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(attrs)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (
      Array.isArray(value) &&
      value.length > 0 &&
      value.every((v) => typeof v === 'object' && v !== null && 'name' in v)
    ) {
      for (const item of value as Record<string, unknown>[]) {
        const { name, ...rest } = item;
        const itemPath = `${path}[${cell(name)}]`;
        if (Object.keys(rest).length === 0) out.push([itemPath, '']);
        out.push(...flatten(rest, itemPath));
      }
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      out.push(...flatten(value as Record<string, unknown>, path));
    } else out.push([path, cell(value)]);
  }
  return out;
}

/** Milliseconds as a short duration: 850ms, 3.2s, 2m05s. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
