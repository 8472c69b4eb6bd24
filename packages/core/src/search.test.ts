import { describe, expect, it } from 'vitest';
import { InputError } from './errors.js';
import { filterFields, parseSearch, splitKinds } from './search.js';

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
    [
      'interfaces.ip in 10.1.0.0/16',
      'matching addresses by CIDR (interfaces.ip in 10.1.0.0/16) is not supported yet',
    ],
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
