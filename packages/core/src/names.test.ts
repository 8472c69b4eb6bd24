import { describe, expect, it } from 'vitest';
import { expectThrows } from '@consortium/testkit';
import { InvalidNameError } from './errors.js';
import { assertKindName, assertNodeName, isKindName, isNodeName } from './names.js';

const NODE_NAME_RULE =
  "must be a lowercase DNS name of 1-253 characters (a-z, 0-9, '-' and '.', labels of at most 63 characters, not starting or ending with '-')";
const KIND_RULE = "must start with a letter and use only a-z, 0-9 and '-' (at most 63 characters)";

/** A 253-character name of four labels (63 + 63 + 63 + 61, plus three dots). */
const LONGEST_NAME = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');

describe('node names', () => {
  it.each([
    ['a'],
    ['0'],
    ['web-01'],
    ['1a'],
    ['web-01.pek1.example.com'],
    ['a-b-c'],
    ['x--y'],
    ['a'.repeat(63)],
    [LONGEST_NAME],
  ])('accepts %j', (name) => {
    expect(LONGEST_NAME).toHaveLength(253);
    expect(isNodeName(name)).toBe(true);
    expect(() => {
      assertNodeName(name);
    }).not.toThrow();
  });

  it.each([
    ['', 'empty'],
    ['Web-01', 'uppercase'],
    ['-web', 'leading hyphen'],
    ['web-', 'trailing hyphen'],
    ['web.-a', 'label with a leading hyphen'],
    ['web_01', 'underscore'],
    ['web 01', 'space'],
    ['wéb', 'non-ASCII letter'],
    ['a..b', 'empty label'],
    ['.a', 'leading dot'],
    ['a.', 'trailing dot'],
    ['a'.repeat(64), 'label of 64 characters'],
    [`${LONGEST_NAME}e`, '254 characters'],
    [`${'a'.repeat(63)}.${'b'.repeat(64)}`, 'second label too long'],
  ])('rejects %j (%s) with InvalidNameError', (name) => {
    expect(isNodeName(name)).toBe(false);
    const error = expectThrows(
      () => {
        assertNodeName(name);
      },
      InvalidNameError,
      `invalid node name "${name}": ${NODE_NAME_RULE}`,
    );
    expect(error.code).toBe('INVALID_NAME');
    expect(error.details).toEqual({ name });
  });

  it.each([[42], [null], [undefined], [{ name: 'web-01' }]])('rejects the non-string %j', (value) => {
    expectThrows(
      () => {
        assertNodeName(value);
      },
      InvalidNameError,
      'node name must be a string',
    );
  });
});

describe('kind names', () => {
  it.each([['host'], ['vip'], ['a'], ['load-balancer'], ['vlan2'], ['a'.repeat(63)]])(
    'accepts %j',
    (kind) => {
      expect(isKindName(kind)).toBe(true);
      expect(() => {
        assertKindName(kind);
      }).not.toThrow();
    },
  );

  it.each([
    ['', 'empty'],
    ['1host', 'leading digit'],
    ['-host', 'leading hyphen'],
    ['Host', 'uppercase'],
    ['host_name', 'underscore'],
    ['host.v2', 'dot'],
    ['a'.repeat(64), '64 characters'],
  ])('rejects %j (%s) with InvalidNameError', (kind) => {
    expect(isKindName(kind)).toBe(false);
    const error = expectThrows(
      () => {
        assertKindName(kind);
      },
      InvalidNameError,
      `invalid kind "${kind}": ${KIND_RULE}`,
    );
    expect(error.details).toEqual({ kind });
  });

  it.each([
    [7, '7'],
    [undefined, 'undefined'],
    [null, 'null'],
  ])('rejects the non-string %j', (kind, shown) => {
    expectThrows(
      () => {
        assertKindName(kind);
      },
      InvalidNameError,
      `invalid kind "${shown}": ${KIND_RULE}`,
    );
  });
});
