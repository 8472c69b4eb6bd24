/** Lists a page at a time: `--limit`, `--cursor` and `--all` on every list, and the line that says there is more. */
import type { Argv } from 'yargs';
import type { Client } from './client.js';

/** A list page as the API answers it. */
export interface Paged<T> {
  items: T[];
  next?: string;
}

/** Reads a list from `path` (a query already on it), from `cursor` on; with `all`, every page after it too. */
export async function readPages<T>(
  client: Client,
  path: string,
  options: { cursor?: string | undefined; all?: boolean | undefined },
): Promise<Paged<T>> {
  const join = path.includes('?') ? '&' : '?';
  const at = (cursor: string | undefined): string =>
    cursor === undefined ? path : `${path}${join}cursor=${encodeURIComponent(cursor)}`;
  const first = (await client.request('GET', at(options.cursor))).body as Paged<T>;
  const items = [...first.items];
  let next = first.next;
  while (options.all === true && next !== undefined) {
    const more = (await client.request('GET', at(next))).body as Paged<T>;
    items.push(...more.items);
    next = more.next;
  }
  return { items, ...(next === undefined ? {} : { next }) };
}

/** The line under a page that has more: how to get it. */
export function moreLine(next: string | undefined): string[] {
  return next === undefined ? [] : [`(more: --cursor ${next}, or --all)`];
}

/** Adds the paging options of every list, `limit` a page by default. */
export function pagingOptions<T>(y: Argv<T>, limit: number) {
  return y
    .option('limit', { type: 'number', default: limit, describe: 'how many to show per page' })
    .option('cursor', { type: 'string', describe: 'start at this page (the cursor a page ends with)' })
    .option('all', { type: 'boolean', describe: 'every page, not only the first' });
}
