import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectThrows } from '@consortium/testkit';
import { InputError } from './errors.js';
import type { Path } from './paths.js';
import {
  ANY_KEY,
  formatPath,
  isPrefixOf,
  overlaps,
  parsePath,
  pathEquals,
  rootOf,
  toPattern,
} from './paths.js';

const p = (text: string): Path => parsePath(text, { allowWildcard: true });

describe('parsePath', () => {
  it.each<[string, Path]>([
    ['hwspec', [{ prop: 'hwspec' }]],
    ['puppet_roles', [{ prop: 'puppet_roles' }]],
    ['_private', [{ prop: '_private' }]],
    ['a1', [{ prop: 'a1' }]],
    ['bmc.password', [{ prop: 'bmc' }, { prop: 'password' }]],
    ['a.b.c', [{ prop: 'a' }, { prop: 'b' }, { prop: 'c' }]],
    ['interfaces[eth0]', [{ prop: 'interfaces' }, { key: 'eth0' }]],
    ['interfaces[eth0].mac', [{ prop: 'interfaces' }, { key: 'eth0' }, { prop: 'mac' }]],
    ['interfaces[eth0.100].ip', [{ prop: 'interfaces' }, { key: 'eth0.100' }, { prop: 'ip' }]],
    ['interfaces[Eth 0/1]', [{ prop: 'interfaces' }, { key: 'Eth 0/1' }]],
    ['racks[r1][u12]', [{ prop: 'racks' }, { key: 'r1' }, { key: 'u12' }]],
    ['racks[r1][u12].slot', [{ prop: 'racks' }, { key: 'r1' }, { key: 'u12' }, { prop: 'slot' }]],
  ])('parses %j', (text, expected) => {
    expect(parsePath(text)).toEqual(expected);
    expect(formatPath(parsePath(text))).toBe(text);
  });

  it('accepts the wildcard only when asked to', () => {
    expect(parsePath('interfaces[*].mac', { allowWildcard: true })).toEqual([
      { prop: 'interfaces' },
      { key: ANY_KEY },
      { prop: 'mac' },
    ]);
    expectThrows(
      () => parsePath('interfaces[*].mac'),
      InputError,
      `invalid path "interfaces[*].mac": wildcard '[*]' is only allowed in patterns at offset 10`,
    );
    expectThrows(
      () => parsePath('interfaces[*].mac', { allowWildcard: false }),
      InputError,
      `invalid path "interfaces[*].mac": wildcard '[*]' is only allowed in patterns at offset 10`,
    );
  });

  it.each([
    ['', `expected an attribute name (a-z, 0-9, '_') but found "" at offset 0`],
    ['Hwspec', `expected an attribute name (a-z, 0-9, '_') but found "Hwspec" at offset 0`],
    ['hw-spec', `expected an attribute name (a-z, 0-9, '_') but found "hw-spec" at offset 0`],
    ['1st', `expected an attribute name (a-z, 0-9, '_') but found "1st" at offset 0`],
    ['.a', `expected an attribute name (a-z, 0-9, '_') but found "" at offset 0`],
    ['[eth0].mac', `expected an attribute name (a-z, 0-9, '_') but found "" at offset 0`],
    ['a.', `expected an attribute name (a-z, 0-9, '_') but found "" at offset 2`],
    ['a..b', `expected an attribute name (a-z, 0-9, '_') but found "" at offset 2`],
    ['bmc.Password', `expected an attribute name (a-z, 0-9, '_') but found "Password" at offset 4`],
    ['a]', `expected an attribute name (a-z, 0-9, '_') but found "a]" at offset 0`],
    ['interfaces[eth0].', `expected an attribute name (a-z, 0-9, '_') but found "" at offset 17`],
    ['interfaces[eth0', `unclosed '[' at offset 10`],
    ['interfaces[]', `empty list key at offset 10`],
    ['interfaces[a[b]', `'[' inside a list key at offset 10`],
    ['interfaces[eth0]mac', `expected '.' or '[' after ']' at offset 16`],
    ['a[b].c[d]e', `expected '.' or '[' after ']' at offset 9`],
  ])('rejects %j with InputError', (text, why) => {
    const error = expectThrows(
      () => parsePath(text, { allowWildcard: true }),
      InputError,
      `invalid path "${text}": ${why}`,
    );
    expect(error.details).toEqual({ path: text });
    expect(error.code).toBe('INVALID_INPUT');
  });
});

describe('formatPath', () => {
  it('formats properties with dots and keys in brackets', () => {
    expect(formatPath([{ prop: 'interfaces' }, { key: 'eth0' }, { prop: 'mac' }])).toBe(
      'interfaces[eth0].mac',
    );
    expect(formatPath([{ prop: 'a' }, { key: 'x' }, { key: 'y' }])).toBe('a[x][y]');
    expect(formatPath([{ prop: 'a' }])).toBe('a');
  });

  it('round-trips every parseable path (property)', () => {
    const ident = fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/);
    const key = fc.stringMatching(/^[a-zA-Z0-9 ./:*-]{1,8}$/);
    const segment = fc.oneof(
      ident.map((prop) => ({ prop })),
      key.map((k) => ({ key: k })),
    );
    const path = fc
      .tuple(ident, fc.array(segment, { maxLength: 6 }))
      .map(([first, rest]) => [{ prop: first }, ...rest]);
    fc.assert(
      fc.property(path, (value) => {
        const text = formatPath(value);
        expect(parsePath(text, { allowWildcard: true })).toEqual(value);
        expect(formatPath(parsePath(text, { allowWildcard: true }))).toBe(text);
      }),
    );
  });
});

describe('rootOf', () => {
  it('returns the attribute a path belongs to', () => {
    expect(rootOf(p('interfaces[eth0].mac'))).toBe('interfaces');
    expect(rootOf(p('hwspec'))).toBe('hwspec');
  });

  it('rejects an empty path and one that starts with a key', () => {
    expectThrows(() => rootOf([]), InputError, 'empty path');
    expectThrows(() => rootOf([{ key: 'eth0' }]), InputError, 'empty path');
  });
});

describe('toPattern', () => {
  it('replaces every list key with the wildcard', () => {
    expect(formatPath(toPattern(p('interfaces[eth0].mac')))).toBe('interfaces[*].mac');
    expect(formatPath(toPattern(p('racks[r1][u12].slot')))).toBe('racks[*][*].slot');
    expect(formatPath(toPattern(p('bmc.password')))).toBe('bmc.password');
  });

  it('does not modify its input', () => {
    const path = p('interfaces[eth0].mac');
    toPattern(path);
    expect(formatPath(path)).toBe('interfaces[eth0].mac');
  });
});

describe('prefixes and overlaps', () => {
  it.each([
    ['interfaces', 'interfaces[eth0].mac', true],
    ['interfaces[eth0]', 'interfaces[eth0].mac', true],
    ['interfaces[*]', 'interfaces[eth0].mac', true],
    ['interfaces[*].mac', 'interfaces[eth0].mac', true],
    ['interfaces[eth0].mac', 'interfaces[*].mac', true],
    ['interfaces[eth1]', 'interfaces[eth0].mac', false],
    ['interfaces[*].ip', 'interfaces[eth0].mac', false],
    ['interfaces[eth0].mac', 'interfaces', false],
    ['interfaces.eth0', 'interfaces[eth0]', false],
    ['interfaces[eth0]', 'interfaces.eth0', false],
    ['host', 'hostname', false],
    ['hwspec', 'hwspec', true],
  ])('isPrefixOf(%j, %j) is %s', (prefix, path, expected) => {
    expect(isPrefixOf(p(prefix), p(path))).toBe(expected);
  });

  it.each([
    ['interfaces', 'interfaces[eth0].mac', true],
    ['interfaces[eth0].mac', 'interfaces', true],
    ['interfaces[*]', 'interfaces[eth0].ip', true],
    ['interfaces[eth0]', 'interfaces[eth1]', false],
    ['interfaces[eth0].mac', 'interfaces[eth0].ip', false],
    ['hostname', 'hwspec', false],
  ])('overlaps(%j, %j) is %s', (a, b, expected) => {
    expect(overlaps(p(a), p(b))).toBe(expected);
    expect(overlaps(p(b), p(a))).toBe(expected);
  });

  it.each([
    ['interfaces[eth0].mac', 'interfaces[eth0].mac', true],
    ['interfaces[*].mac', 'interfaces[eth0].mac', true],
    ['interfaces[eth0]', 'interfaces[eth0].mac', false],
    ['interfaces[eth0].mac', 'interfaces[eth1].mac', false],
    ['bmc.user', 'bmc.password', false],
  ])('pathEquals(%j, %j) is %s', (a, b, expected) => {
    expect(pathEquals(p(a), p(b))).toBe(expected);
    expect(pathEquals(p(b), p(a))).toBe(expected);
  });
});
