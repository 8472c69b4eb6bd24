import { describe, expect, it } from 'vitest';
import { FILTER_LIMITS, InputError, buildKindSchemas } from '@consortium/core';
import { filtersFromQuery, parseDecimalInteger } from './filters.js';

const schema = buildKindSchemas(
  [{ name: 'vlan' }],
  [
    {
      name: 'inventory',
      kind: 'vlan',
      claims: [
        { path: 'vid', schema: { type: 'integer' } },
        { path: 'tags', schema: { type: 'array', 'x-list-type': 'set', items: { type: 'string' } } },
      ],
    },
  ],
).get('vlan')!;

/** Asserts that `fn` throws an `InputError` with exactly `message`. */
function expectInputError(fn: () => unknown, message: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  expect((error as Error).message).toBe(message);
}

describe('filtersFromQuery', () => {
  it.each([
    ['0x10', 'filter vid: "0x10" is not an integer'],
    ['1e1', 'filter vid: "1e1" is not an integer'],
    [' 16', 'filter vid: " 16" is not an integer'],
    ['016', 'filter vid: "016" is not an integer'],
    ['abc', 'filter vid: "abc" is not an integer'],
  ])('reads integers in decimal only: %j', (text, message) => {
    expectInputError(() => filtersFromQuery(schema, { vid: text }), message);
  });

  it('reads a decimal integer', () => {
    expect(filtersFromQuery(schema, { vid: '-16' })).toEqual({ op: 'eq', field: 'vid', value: -16 });
  });

  it('refuses a filter repeated beyond the value limit, naming it', () => {
    const max = FILTER_LIMITS.values;
    const values = Array.from({ length: 999 }, (_, i) => `t${i}`);
    expectInputError(
      () => filtersFromQuery(schema, { tags: values }),
      `the filters compare more than ${max} values; at most ${max} are allowed`,
    );
    expectInputError(
      () => filtersFromQuery(schema, { tags: values.slice(0, max), name: 'x' }),
      `the filters compare more than ${max} values; at most ${max} are allowed`,
    );
    expect(filtersFromQuery(schema, { tags: values.slice(0, max) })).toMatchObject({ op: 'or' });
  });
});

describe('parseDecimalInteger', () => {
  it.each(['0x10', '1e2', '016', '+5', ' 5', '5.0', '', '0', '1001'])('refuses %j', (text) => {
    expectInputError(
      () => parseDecimalInteger('limit', text, 1, 1000),
      `limit must be a whole number from 1 to 1000, not ${JSON.stringify(text)}`,
    );
  });

  it('reads decimal integers in range', () => {
    expect(parseDecimalInteger('limit', '16', 1, 1000)).toBe(16);
    expect(parseDecimalInteger('limit', '1000', 1, 1000)).toBe(1000);
  });
});
