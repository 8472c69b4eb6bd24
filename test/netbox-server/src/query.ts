/**
 * List queries as NetBox answers them: django-filter filter sets (repeated parameters OR together, related-object
 * filters refuse values that match nothing with a 400) and NetBox's `OptionalLimitOffsetPagination` with DRF's
 * `next`/`previous` links (netbox/netbox/api/pagination.py, rest_framework/pagination.py).
 */
import type { FieldErrors } from './errors.js';
import { addError, validationError } from './errors.js';

/** A predicate over records built from query parameters; records errors instead when values are invalid. */
export type Filter<R> = (
  values: readonly string[],
  errors: FieldErrors,
) => ((record: R) => boolean) | undefined;

/** A filter set: filters by query parameter name. Unknown parameters are ignored, as django-filter does. */
export type FilterSet<R> = Readonly<Record<string, Filter<R>>>;

const INVALID_CHOICE = (value: string): string =>
  `Select a valid choice. ${value} is not one of the available choices.`;

/** `id` and other number filters: any of the values. */
export function numberFilter<R>(key: string, get: (r: R) => number): Filter<R> {
  return (values, errors) => {
    const numbers = values.map(Number);
    if (numbers.some((n) => !Number.isFinite(n))) {
      addError(errors, key, 'Enter a number.');
      return undefined;
    }
    return (r) => numbers.includes(get(r));
  };
}

/** A character filter: any of the values, exactly or case-insensitively (`iexact`). */
export function textFilter<R>(get: (r: R) => string, caseInsensitive = false): Filter<R> {
  return (values) => {
    const norm = (s: string): string => (caseInsensitive ? s.toLowerCase() : s);
    const wanted = values.map(norm);
    return (r) => wanted.includes(norm(get(r)));
  };
}

/** A `ModelMultipleChoiceFilter`: values must name existing objects by `field` (the primary key for `_id`). */
export function modelFilter<R, T extends { id: number }>(
  key: string,
  objects: () => readonly T[],
  field: (t: T) => string | number,
  get: (r: R) => number | null,
): Filter<R> {
  return (values, errors) => {
    const all = objects();
    const ids = new Set<number>();
    for (const value of values) {
      if (field === idOf && !/^\s*\d+\s*$/.test(value)) {
        addError(errors, key, `“${value}” is not a valid value.`);
        return undefined;
      }
      const found = all.filter((t) => String(field(t)) === value.trim());
      if (found.length === 0) {
        addError(errors, key, INVALID_CHOICE(value));
        return undefined;
      }
      for (const t of found) ids.add(t.id);
    }
    return (r) => {
      const id = get(r);
      return id !== null && ids.has(id);
    };
  };
}

/** The primary key of an object, for `modelFilter` on `_id` parameters. */
export function idOf(t: { id: number }): number {
  return t.id;
}

/** A `MultipleChoiceFilter` over a choice set. */
export function choiceFilter<R>(key: string, choices: object, get: (r: R) => string): Filter<R> {
  return (values, errors) => {
    const bad = values.find((v) => !Object.hasOwn(choices, v));
    if (bad !== undefined) {
      addError(errors, key, INVALID_CHOICE(bad));
      return undefined;
    }
    return (r) => values.includes(get(r));
  };
}

/** NetBox's `TagFilter`: tag slugs, and an object must carry every one of them. */
export function tagFilter<R>(
  key: string,
  tags: () => readonly { id: number; slug: string }[],
  get: (r: R) => readonly number[],
): Filter<R> {
  return (values, errors) => {
    const all = tags();
    const ids: number[] = [];
    for (const value of values) {
      const tag = all.find((t) => t.slug === value);
      if (tag === undefined) {
        addError(errors, key, INVALID_CHOICE(value));
        return undefined;
      }
      ids.push(tag.id);
    }
    return (r) => ids.every((id) => get(r).includes(id));
  };
}

/** Applies a filter set to records; throws a 400 with every invalid parameter. */
export function applyFilters<R>(records: readonly R[], params: URLSearchParams, filters: FilterSet<R>): R[] {
  const errors: FieldErrors = {};
  const predicates: ((r: R) => boolean)[] = [];
  for (const [key, filter] of Object.entries(filters)) {
    // django-filter skips empty values.
    const values = params.getAll(key).filter((v) => v !== '');
    if (values.length === 0) continue;
    const predicate = filter(values, errors);
    if (predicate !== undefined) predicates.push(predicate);
  }
  if (Object.keys(errors).length > 0) throw validationError(errors);
  return records.filter((r) => predicates.every((p) => p(r)));
}

/** Pagination settings: NetBox's PAGINATE_COUNT and MAX_PAGE_SIZE. */
export interface PaginationSettings {
  readonly paginateCount: number;
  readonly maxPageSize: number;
}

/** One page of a list, in NetBox's envelope. */
export interface Page<T> {
  readonly count: number;
  readonly next: string | null;
  readonly previous: string | null;
  readonly results: readonly T[];
}

/** Python's `urllib.parse.quote_plus`. */
function quotePlus(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** DRF's `replace_query_param`/`remove_query_param`: keys sorted, values re-encoded with `quote_plus`. */
function withParam(url: URL, key: string, value: string | undefined): string {
  const params = new Map<string, string[]>();
  for (const [k, v] of url.searchParams) params.set(k, [...(params.get(k) ?? []), v]);
  if (value === undefined) params.delete(key);
  else params.set(key, [value]);
  const query = [...params.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([k, vs]) => vs.map((v) => `${quotePlus(k)}=${quotePlus(v)}`))
    .join('&');
  return `${url.origin}${url.pathname}${query === '' ? '' : `?${query}`}`;
}

/** `OptionalLimitOffsetPagination.get_limit`: no limit → default; 0 → MAX_PAGE_SIZE; capped by MAX_PAGE_SIZE. */
function limitOf(params: URLSearchParams, settings: PaginationSettings): number {
  const fallback = Math.min(settings.paginateCount, settings.maxPageSize);
  const text = params.get('limit');
  if (text === null) return fallback;
  if (!/^\s*[-+]?\d+\s*$/.test(text)) return settings.paginateCount;
  const limit = Number.parseInt(text, 10);
  if (limit < 0) return settings.paginateCount;
  return limit === 0 ? settings.maxPageSize : Math.min(limit, settings.maxPageSize);
}

/** DRF's `LimitOffsetPagination.get_offset`: a non-negative integer, else 0. */
function offsetOf(params: URLSearchParams): number {
  const text = params.get('offset');
  if (text === null || !/^\s*[-+]?\d+\s*$/.test(text)) return 0;
  return Math.max(0, Number.parseInt(text, 10));
}

/** Cuts one page out of `items` for the request at `url` (absolute, as the client addressed it). */
export function paginate<T>(items: readonly T[], url: URL, settings: PaginationSettings): Page<T> {
  const limit = limitOf(url.searchParams, settings);
  const offset = offsetOf(url.searchParams);
  const count = items.length;
  const results = count === 0 || offset > count ? [] : items.slice(offset, offset + limit);
  const limited = new URL(withParam(url, 'limit', String(limit)));
  const next = offset + limit >= count ? null : withParam(limited, 'offset', String(offset + limit));
  const previous =
    offset <= 0
      ? null
      : offset - limit <= 0
        ? withParam(limited, 'offset', undefined)
        : withParam(limited, 'offset', String(offset - limit));
  return { count, next, previous, results };
}
