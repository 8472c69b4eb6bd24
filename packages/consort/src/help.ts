/** Help as consort lays it out: wrapped between words at the terminal's width (never inside one), and the version. */
import { readFileSync } from 'node:fs';

/** The version of this consort, from its package.json (next to dist/ and src/ alike). */
export function version(): string {
  try {
    const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The width help wraps at: the terminal's, else $COLUMNS, else 80. */
export function helpWidth(): number {
  return process.stdout.isTTY ? process.stdout.columns : Number(process.env['COLUMNS'] ?? 80) || 80;
}

/**
 * Wraps one line of help at `width` between words, never inside one: a line in two columns (`  get <kind>   show
 * one node`) continues under its second column, any other under its own indentation. A word longer than the room
 * left stands alone on its line.
 */
export function wrapHelpLine(line: string, width: number): string {
  if (line.length <= width) return line;
  const indent = /^ */.exec(line)?.[0].length ?? 0;
  const gap = /\S( {2,})\S/.exec(line.slice(indent));
  // Where the text to wrap starts (the second column, or the text itself), and where its lines continue.
  const split = gap === null ? indent : indent + gap.index + gap[0].length - 1;
  const hang = split > width - 20 ? Math.min(indent + 4, Math.max(0, width - 20)) : split;
  const head = line.slice(0, split).trimEnd();
  const words = line
    .slice(split)
    .split(/ +/)
    .filter((w) => w !== '');
  const lines: string[] = [];
  let current = head === '' ? ' '.repeat(hang) : head.padEnd(split);
  // True while `current` holds only its indentation (or the first column): the next word needs no space before it.
  let fresh = true;
  if (split !== hang) {
    // A long first column goes alone on its lines (wrapped by words itself), its text under it.
    lines.push(
      head.length > width && head.trim().includes(' ')
        ? wrapHelpLine(head.replace(/ {2,}/g, ' '), width)
        : head,
    );
    current = ' '.repeat(hang);
  }
  for (const word of words) {
    if (!fresh && current.length + 1 + word.length > width) {
      lines.push(current);
      current = ' '.repeat(hang);
      fresh = true;
    }
    current = fresh ? `${current}${word}` : `${current} ${word}`;
    fresh = false;
  }
  lines.push(current);
  return lines.join('\n');
}

/** Help text wrapped at `width`, line by line. */
export function wrapHelp(text: string, width: number): string {
  return text
    .split('\n')
    .map((line) => wrapHelpLine(line, width))
    .join('\n');
}
