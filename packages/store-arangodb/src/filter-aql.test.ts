import { Database } from 'arangojs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '@consortium/core';
import type { Filter } from '@consortium/core';
import type { FilterContext } from './filter-aql.js';
import { compileFilter, globToLike } from './filter-aql.js';

// Never connects: a Database object only talks to the server when a request is made.
const db = new Database({ url: 'http://127.0.0.1:9' });
const context: FilterContext = {
  nodes: db.collection('nodes'),
  refs: db.collection('refs'),
  references: { host: { subnet: 'subnet' } },
};

const compile = (filter: Filter, kind = 'host') => compileFilter(filter, kind, context);

/** A path `a.b.c` as the fan-out the compiler writes, with the condition on the leaf `v3`. */
const FAN_OUT =
  'LENGTH((FOR v1 IN (IS_ARRAY(n.attrs.@value0) ? n.attrs.@value0 : [n.attrs.@value0]) ' +
  'FOR v2 IN (IS_OBJECT(v1) ? (IS_ARRAY(v1.@value1) ? v1.@value1 : [v1.@value1]) : [null]) ' +
  'LET v3 = IS_OBJECT(v2) ? v2.@value2 : null FILTER ';

/** Characters that only a string literal or a comment could bring into AQL text. */
const LITERAL_CHARACTERS = /["'`/#\\]/;

describe('compileFilter', () => {
  it.each<[string, Filter, string, Record<string, unknown>]>([
    [
      'eq on an attribute',
      { op: 'eq', field: 'datacenter', value: 'pek1' },
      'n.attrs.@value0 == @value1',
      { value0: 'datacenter', value1: 'pek1' },
    ],
    ['eq on name', { op: 'eq', field: 'name', value: 'web-01' }, 'n.name == @value0', { value0: 'web-01' }],
    [
      'eq null',
      { op: 'eq', field: 'note', value: null },
      'n.attrs.@value0 == @value1',
      { value0: 'note', value1: null },
    ],
    [
      'ne is not eq',
      { op: 'ne', field: 'enabled', value: true },
      'NOT (n.attrs.@value0 == @value1)',
      { value0: 'enabled', value1: true },
    ],
    [
      'lt on a number guards the type',
      { op: 'lt', field: 'rack', value: 7 },
      '(IS_NUMBER(n.attrs.@value0) AND n.attrs.@value0 < @value1)',
      { value0: 'rack', value1: 7 },
    ],
    [
      'ge on a string guards the type',
      { op: 'ge', field: 'name', value: 'web-02' },
      '(IS_STRING(n.name) AND n.name >= @value0)',
      { value0: 'web-02' },
    ],
    [
      'in binds the list',
      { op: 'in', field: 'hwspec', values: ['small', 3, true, null] },
      'n.attrs.@value0 IN @value1',
      { value0: 'hwspec', value1: ['small', 3, true, null] },
    ],
    ['in nothing', { op: 'in', field: 'hwspec', values: [] }, 'false', {}],
    [
      'has',
      { op: 'has', field: 'puppet_roles', value: 'base' },
      '(IS_ARRAY(n.attrs.@value0) AND @value1 IN n.attrs.@value0)',
      { value0: 'puppet_roles', value1: 'base' },
    ],
    [
      'glob',
      { op: 'glob', field: 'name', pattern: 'web-*' },
      '(IS_STRING(n.name) AND (n.name LIKE @value0))',
      { value0: 'web-%' },
    ],
    ['exists', { op: 'exists', field: 'rack' }, 'n.attrs.@value0 != null', { value0: 'rack' }],
    [
      'cidr binds the first and last address',
      { op: 'cidr', field: 'ip', cidr: '10.1.0.7/30' },
      '(IS_STRING(n.attrs.@value0) AND IS_IPV4(n.attrs.@value0) AND IPV4_TO_NUMBER(n.attrs.@value0) >= @value1 ' +
        'AND IPV4_TO_NUMBER(n.attrs.@value0) <= @value2)',
      { value0: 'ip', value1: 167837700, value2: 167837703 },
    ],
    ['empty and', { op: 'and', args: [] }, 'true', {}],
    ['empty or', { op: 'or', args: [] }, 'false', {}],
    [
      'and, or, not',
      {
        op: 'and',
        args: [
          { op: 'eq', field: 'a', value: 1 },
          { op: 'not', arg: { op: 'or', args: [{ op: 'exists', field: 'b' }] } },
        ],
      },
      '(n.attrs.@value0 == @value1) AND (NOT ((n.attrs.@value2 != null)))',
      { value0: 'a', value1: 1, value2: 'b' },
    ],
    [
      'a path through arrays fans out and compares the leaf',
      { op: 'eq', field: 'disks.partitions.fs', value: 'xfs' },
      `${FAN_OUT}v3 == @value3 LIMIT 1 RETURN true)) > 0`,
      { value0: 'disks', value1: 'partitions', value2: 'fs', value3: 'xfs' },
    ],
    [
      'a two-part path has no middle step',
      { op: 'exists', field: 'interfaces.ip' },
      'LENGTH((FOR v1 IN (IS_ARRAY(n.attrs.@value0) ? n.attrs.@value0 : [n.attrs.@value0]) ' +
        'LET v2 = IS_OBJECT(v1) ? v1.@value1 : null FILTER v2 != null LIMIT 1 RETURN true)) > 0',
      { value0: 'interfaces', value1: 'ip' },
    ],
    [
      'ref along a declared reference walks the edges',
      { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value: 100 } },
      'LENGTH((FOR e2 IN @@value0 FILTER e2._from == n._id AND e2.field == @value1 ' +
        'FOR t1 IN @@value2 FILTER t1._id == e2._to AND t1.kind == @value1 AND (t1.attrs.@value3 == @value4) ' +
        'LIMIT 1 RETURN true)) > 0',
      { '@value0': 'refs', value1: 'subnet', '@value2': 'nodes', value3: 'vlan', value4: 100 },
    ],
    [
      'ref to another kind than declared looks the names up',
      { op: 'ref', field: 'subnet', kind: 'vm', filter: { op: 'and', args: [] } },
      'LENGTH((FOR t1 IN @@value0 FILTER t1.kind == @value1 AND t1.name IN (IS_STRING(n.attrs.@value2) ? ' +
        '[n.attrs.@value2] : (IS_ARRAY(n.attrs.@value2) ? n.attrs.@value2 : [])) AND (true) LIMIT 1 RETURN true)) > 0',
      { '@value0': 'nodes', value1: 'vm', value2: 'subnet' },
    ],
  ])('%s', (_title, filter, query, bindVars) => {
    const compiled = compile(filter);
    expect(compiled.query).toBe(query);
    expect(compiled.bindVars).toStrictEqual(bindVars);
  });

  it('looks names up for a field that is a reference of another kind only', () => {
    const filter: Filter = { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'and', args: [] } };
    expect(compile(filter, 'vm').query).toContain('t1.name IN (IS_STRING(n.attrs.@value1)');
    expect(compile(filter, 'vm').query).not.toContain('_from');
    expect(compileFilter(filter, 'host', { nodes: context.nodes, refs: context.refs }).query).not.toContain(
      '_from',
    );
  });

  it('binds hostile values and never writes them into the text', () => {
    const hostile = [`" RETURN 1 //`, `' OR '1'='1`, '`x`', '/* */', '@@nodes', 'a\\b', 'x\nFOR d IN _users'];
    for (const value of hostile) {
      const filters: Filter[] = [
        { op: 'eq', field: 'name', value },
        { op: 'ne', field: 'a.b', value },
        { op: 'lt', field: 'a', value },
        { op: 'in', field: 'a.b.c', values: [value, 1] },
        { op: 'has', field: 'a', value },
        { op: 'glob', field: 'a', pattern: value },
        { op: 'ref', field: 'subnet', kind: value, filter: { op: 'eq', field: 'vlan', value } },
        { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value } },
      ];
      for (const filter of filters) {
        const compiled = compile(filter);
        expect(compiled.query).not.toContain(value);
        expect(compiled.query).not.toMatch(LITERAL_CHARACTERS);
        const bound = filter.op === 'glob' ? globToLike(value) : value;
        expect(Object.values(compiled.bindVars).flat()).toContain(bound);
      }
    }
  });

  it('never puts anything but keywords, operators, bind parameters and its own variables into the text', () => {
    const scalar = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null));
    const field = fc.constantFrom('name', 'a', 'a.b', 'a.b.c', 'interfaces.ip');
    const leaf: fc.Arbitrary<Filter> = fc.oneof(
      fc.record({ op: fc.constantFrom('eq' as const, 'ne' as const, 'has' as const), field, value: scalar }),
      fc.record({
        op: fc.constantFrom('lt' as const, 'ge' as const),
        field,
        value: fc.oneof(fc.string(), fc.integer()),
      }),
      fc.record({ op: fc.constant('in' as const), field, values: fc.array(scalar, { maxLength: 3 }) }),
      fc.record({ op: fc.constant('glob' as const), field, pattern: fc.string() }),
      fc.record({ op: fc.constant('exists' as const), field }),
      fc.record({
        op: fc.constant('cidr' as const),
        field,
        cidr: fc.constantFrom('10.0.0.0/8', '0.0.0.0/0'),
      }),
    );
    const tree = fc.letrec<{ filter: Filter }>((tie) => ({
      filter: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.record({
          op: fc.constantFrom('and' as const, 'or' as const),
          args: fc.array(tie('filter'), { maxLength: 3 }),
        }),
        fc.record({ op: fc.constant('not' as const), arg: tie('filter') }),
        fc.record({
          op: fc.constant('ref' as const),
          field: fc.constantFrom('subnet', 'peers'),
          kind: fc.string({ minLength: 1 }),
          filter: tie('filter'),
        }),
      ),
    })).filter;
    fc.assert(
      fc.property(tree, (filter) => {
        const { query, bindVars } = compile(filter);
        expect(query).toMatch(/^[A-Za-z0-9_@.()[\]=!<>?:, ]*$/);
        // Every bind parameter the text names is bound, and every bound one is named (ArangoDB refuses both).
        const named = new Set([...query.matchAll(/@(@?value\d+)/g)].map((m) => m[1]));
        expect(new Set(Object.keys(bindVars))).toStrictEqual(named);
      }),
      { numRuns: 300 },
    );
  });

  it.each<[Filter, string]>([
    [{ op: 'exists', field: 'Datacenter' }, 'Invalid filter field "Datacenter"'],
    [{ op: 'exists', field: "name'; REMOVE" }, `Invalid filter field "name'; REMOVE"`],
    [{ op: 'in', field: 'A', values: [] }, 'Invalid filter field "A"'],
    [
      { op: 'eq', field: 'labels', value: { team: 'db' } },
      'Filter value for "labels" must be a string, number, boolean or null',
    ],
    [{ op: 'lt', field: 'enabled', value: true }, 'Filter "lt" on "enabled" needs a number or a string'],
    [
      { op: 'cidr', field: 'ip', cidr: '10.1.0.0/40' },
      'Filter "cidr" on "ip" needs an IPv4 network such as 10.1.0.0/16',
    ],
    [
      { op: 'ref', field: 'subnet', kind: '', filter: { op: 'and', args: [] } },
      'Filter "ref" on "subnet" needs a kind',
    ],
    [
      { op: 'ref', field: 'Subnet', kind: 'subnet', filter: { op: 'and', args: [] } },
      'Invalid filter field "Subnet"',
    ],
  ])('refuses %j', (filter, message) => {
    let error: unknown;
    try {
      compile(filter);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(message);
  });

  it('refuses a filter nested deeper than 64 levels', () => {
    let filter: Filter = { op: 'exists', field: 'a' };
    for (let i = 0; i < 70; i += 1) filter = { op: 'not', arg: filter };
    expect(() => compile(filter)).toThrow(new InputError('Filter is nested more than 64 levels deep'));
  });
});

describe('globToLike', () => {
  it.each([
    ['web-*', 'web-%'],
    ['?b-01', '_b-01'],
    ['a[b]*', 'a[b]%'],
    ['100%_done', '100\\%\\_done'],
    ['back\\slash', 'back\\\\slash'],
    ['ü?*', 'ü_%'],
  ])('%j becomes %j', (glob, like) => {
    expect(globToLike(glob)).toBe(like);
  });
});
