/**
 * Bounds on the filters a request may ask for, checked where a filter is made (the search parser, list filters)
 * so that no store meets a filter deeper or wider than it can evaluate: SQLite, for one, refuses expression trees
 * deeper than 1,000, and a parser that recurses per parenthesis overflows the stack long before a body limit.
 */
import { InputError } from './errors.js';
import type { Filter } from './ports/store.js';

/** The largest filter a request may ask for. */
export const FILTER_LIMITS = {
  /** Nesting of parentheses, `not` and hops along references. */
  depth: 32,
  /** Values compared in all: one per comparison, one per item of an `in` list. */
  values: 500,
} as const;

/** Refuses a filter nested deeper than `FILTER_LIMITS.depth` (the parser's count before it recurses further). */
export function assertFilterDepth(depth: number): void {
  if (depth > FILTER_LIMITS.depth) {
    throw new InputError(`the filter is nested more than ${FILTER_LIMITS.depth} levels deep`, {
      details: { limit: 'depth', max: FILTER_LIMITS.depth },
    });
  }
}

/** The number of values a filter compares, as `FILTER_LIMITS.values` counts them. */
export function filterValueCount(filter: Filter): number {
  switch (filter.op) {
    case 'and':
    case 'or':
      return filter.args.reduce((sum, arg) => sum + filterValueCount(arg), 0);
    case 'not':
      return filterValueCount(filter.arg);
    case 'ref':
      return filterValueCount(filter.filter);
    case 'in':
      return Math.max(1, filter.values.length);
    default:
      return 1;
  }
}

/** Checks a filter against `FILTER_LIMITS`; throws `InputError` naming the limit it breaks. */
export function assertFilterWithinLimits(filter: Filter): void {
  const depthOf = (node: Filter, depth: number): void => {
    assertFilterDepth(depth);
    if (node.op === 'and' || node.op === 'or') for (const arg of node.args) depthOf(arg, depth + 1);
    else if (node.op === 'not') depthOf(node.arg, depth + 1);
    else if (node.op === 'ref') depthOf(node.filter, depth + 1);
  };
  depthOf(filter, 0);
  const values = filterValueCount(filter);
  if (values > FILTER_LIMITS.values) {
    throw new InputError(
      `the filter compares ${values} values; at most ${FILTER_LIMITS.values} are allowed`,
      { details: { limit: 'values', max: FILTER_LIMITS.values } },
    );
  }
}
