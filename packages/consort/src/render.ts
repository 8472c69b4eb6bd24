/** Output: `-o json` (stable, for scripts), `-o yaml`, and tables that fit the terminal. */
import { stringify } from 'yaml';

/** The output formats every command takes. */
export const FORMATS = ['table', 'json', 'yaml'] as const;
/** One of `FORMATS`. */
export type Format = (typeof FORMATS)[number];

/** Writes a value as JSON or YAML. */
export function printData(
  value: unknown,
  format: Exclude<Format, 'table'>,
  out: NodeJS.WritableStream = process.stdout,
): void {
  out.write(format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value));
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
