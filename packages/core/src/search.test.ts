import { describe, expect, it } from 'vitest';
import { InputError } from './errors.js';
import { FILTER_LIMITS } from './filter-limits.js';
import { buildKindSchemas } from './schema.js';
import { bindFilter, filterFields, parseSearch, splitKinds } from './search.js';

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

describe('parseSearch', () => {
  it.each([
    ['datacenter=pek1', { op: 'eq', field: 'datacenter', value: 'pek1' }],
    ['vid >= 100', { op: 'ge', field: 'vid', value: 100 }],
    ['name = "007"', { op: 'eq', field: 'name', value: '007' }],
    ['netboot=true', { op: 'eq', field: 'netboot', value: true }],
    ['puppet_roles has nginx', { op: 'has', field: 'puppet_roles', value: 'nginx' }],
    ['hwspec in (small, medium)', { op: 'in', field: 'hwspec', values: ['small', 'medium'] }],
    ['name ~ "web-*"', { op: 'glob', field: 'name', pattern: 'web-*' }],
    ['description exists', { op: 'exists', field: 'description' }],
    ['not power=on', { op: 'not', arg: { op: 'eq', field: 'power', value: 'on' } }],
    ['interfaces.ip != 10.1.2.3', { op: 'ne', field: 'interfaces.ip', value: '10.1.2.3' }],
    ['interfaces.ip in 10.1.0.0/16', { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.0/16' }],
    ['address in "10.1.2.3/32"', { op: 'cidr', field: 'address', cidr: '10.1.2.3/32' }],
    ['subnet.vlan=100', { op: 'eq', field: 'subnet.vlan', value: 100 }],
  ])('%s', (query, filter) => {
    expect(parseSearch(query)).toEqual(filter);
  });

  it('gives "and" precedence over "or", and honours parentheses', () => {
    expect(parseSearch('a=1 or b=2 and c=3')).toEqual({
      op: 'or',
      args: [
        { op: 'eq', field: 'a', value: 1 },
        {
          op: 'and',
          args: [
            { op: 'eq', field: 'b', value: 2 },
            { op: 'eq', field: 'c', value: 3 },
          ],
        },
      ],
    });
    expect(parseSearch('(a=1 or b=2) and not c=3')).toEqual({
      op: 'and',
      args: [
        {
          op: 'or',
          args: [
            { op: 'eq', field: 'a', value: 1 },
            { op: 'eq', field: 'b', value: 2 },
          ],
        },
        { op: 'not', arg: { op: 'eq', field: 'c', value: 3 } },
      ],
    });
  });

  it.each([
    ['', 'the search query is empty'],
    [
      'datacenter',
      'search query ends too early: expected an operator (=, !=, <, <=, >, >=, ~, has, in, exists)',
    ],
    ['a=1 b=2', 'expected "and", "or" or the end of the query at offset 4 but found "b"'],
    ['a in (x, y', 'search query ends too early: expected ")" or ","'],
    ['a = "open', 'unterminated string starting at offset 4 in search query'],
    ['a ! b', 'unexpected "!" at offset 2 in search query (use != or not)'],
    ['Name=x', 'expected a field name at offset 0 but found "Name"'],
    ['ip in 10.1.0.0/33', '"10.1.0.0/33" is not an IPv4 network in CIDR notation (such as 10.1.0.0/16)'],
    ['ip in 10.1.0/16', '"10.1.0/16" is not an IPv4 network in CIDR notation (such as 10.1.0.0/16)'],
    ['ip in web', '"in" takes a list in parentheses or an IPv4 network: ip in (a, b), ip in 10.1.0.0/16'],
    ['a ~ 3', '"~" takes a glob pattern, not 3'],
  ])('refuses %j: %s', (query, message) => {
    expect(() => parseSearch(query)).toThrow(InputError);
    expect(() => parseSearch(query)).toThrow(message);
  });
});

describe('splitKinds and filterFields', () => {
  it('takes kind restrictions out of the top-level conjunction', () => {
    expect(splitKinds(parseSearch('kind=host and datacenter=pek1'))).toEqual({
      kinds: ['host'],
      rest: { op: 'eq', field: 'datacenter', value: 'pek1' },
    });
    expect(splitKinds(parseSearch('kind in (host, vip)'))).toEqual({ kinds: ['host', 'vip'] });
    expect(splitKinds(parseSearch('a=1 or kind=host'))).toEqual({ rest: parseSearch('a=1 or kind=host') });
    expect(filterFields(parseSearch('kind=host and (a=1 or not b.c exists)'))).toEqual(['kind', 'a', 'b.c']);
  });
});

describe('bindFilter', () => {
  const schemas = buildKindSchemas(
    [{ name: 'host' }, { name: 'subnet' }],
    [
      {
        name: 'inventory',
        kind: 'host',
        claims: [
          { path: 'subnet', schema: { type: 'string', 'x-ref': 'subnet' } },
          { path: 'peers', schema: { type: 'array', items: { type: 'string', 'x-ref': 'host' } } },
          { path: 'rack', schema: { type: 'string' } },
          {
            path: 'interfaces',
            schema: {
              type: 'array',
              'x-list-type': 'map',
              'x-list-map-keys': ['name'],
              items: {
                type: 'object',
                properties: { name: { type: 'string' }, ip: { type: 'string' } },
                required: ['name'],
              },
            },
          },
        ],
      },
      { name: 'inventory', kind: 'subnet', claims: [{ path: 'vlan', schema: { type: 'integer' } }] },
    ],
  );
  const host = schemas.get('host')!;
  const bind = (query: string) => bindFilter(parseSearch(query), host, (kind) => schemas.get(kind));

  it('types bare words by the attribute, through lists too', () => {
    expect(bind('rack = 12 and interfaces.ip in 10.0.0.0/8')).toEqual({
      filter: {
        op: 'and',
        args: [
          { op: 'eq', field: 'rack', value: '12' },
          { op: 'cidr', field: 'interfaces.ip', cidr: '10.0.0.0/8' },
        ],
      },
      known: ['rack', 'interfaces.ip'],
    });
  });

  it('turns a field through a reference into one hop, typed by the referenced kind', () => {
    expect(bind('not subnet.vlan = 100')).toEqual({
      filter: {
        op: 'not',
        arg: { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value: 100 } },
      },
      known: ['subnet.vlan'],
    });
    expect(bind('peers.rack in (1, 2)').filter).toEqual({
      op: 'ref',
      field: 'peers',
      kind: 'host',
      filter: { op: 'in', field: 'rack', values: ['1', '2'] },
    });
  });

  it('leaves fields the kind lacks as they are, and so hops that go further than one step or not along a reference', () => {
    expect(bind('colour = red or rack.vlan = 1 or peers.subnet.vlan = 1 or subnet.colour = 1')).toEqual({
      filter: parseSearch('colour = red or rack.vlan = 1 or peers.subnet.vlan = 1 or subnet.colour = 1'),
      known: [],
    });
  });

  it.each([
    ['subnet.vlan > abc', 'subnet.vlan: "abc" is not an integer'],
    ['subnet.vlan = 0x10', 'subnet.vlan: "0x10" is not an integer'],
    ['subnet.vlan = 1.5', 'subnet.vlan: 1.5 is not an integer'],
    ['present = maybe', 'present: "maybe" is not true or false'],
  ])('refuses %s as the list filters do, instead of matching nothing', (query, message) => {
    expectInputError(() => bind(query), message);
  });

  it('reads quoted numbers and booleans as the attribute types them', () => {
    expect(bind('subnet.vlan = "100" and present = "true"').filter).toEqual({
      op: 'and',
      args: [
        { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value: 100 } },
        { op: 'eq', field: 'present', value: true },
      ],
    });
  });
});

describe('search limits', () => {
  it('refuses 5,000 nested parentheses with the limit, before recursing into them', () => {
    const query = `${'('.repeat(5000)}a=1${')'.repeat(5000)}`;
    expectInputError(
      () => parseSearch(query),
      `the filter is nested more than ${FILTER_LIMITS.depth} levels deep`,
    );
    expectInputError(
      () => parseSearch(`${'not '.repeat(5000)}a=1`),
      `the filter is nested more than ${FILTER_LIMITS.depth} levels deep`,
    );
  });

  it('takes nesting up to the limit', () => {
    const depth = FILTER_LIMITS.depth;
    expect(parseSearch(`${'('.repeat(depth)}a=1${')'.repeat(depth)}`)).toEqual({
      op: 'eq',
      field: 'a',
      value: 1,
    });
  });

  it('refuses more values than the limit, counting each item of an "in" list', () => {
    const max = FILTER_LIMITS.values;
    const list = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`).join(', ');
    expectInputError(
      () => parseSearch(`a in (${list(max)}) or b=1`),
      `the filter compares ${max + 1} values; at most ${max} are allowed`,
    );
    expect(parseSearch(`a in (${list(max - 1)}) or b=1`)).toMatchObject({ op: 'or' });
    const ors = Array.from({ length: max + 1 }, (_, i) => `a=${i}`).join(' or ');
    expectInputError(
      () => parseSearch(ors),
      `the filter compares ${max + 1} values; at most ${max} are allowed`,
    );
  });
});
