import { describe, expect, it } from 'vitest';
import { SchemaViolationError } from './errors.js';
import { attrsAfter, referencesTo } from './integrity.js';
import { buildKindSchemas } from './schema.js';

const schemas = buildKindSchemas(
  [
    { name: 'host' },
    {
      name: 'subnet',
      invariants: [
        {
          path: 'gateway',
          check: (attrs) => (attrs['gateway'] === 'outside' ? 'is outside the network' : undefined),
        },
      ],
    },
    { name: 'vip' },
  ],
  [
    {
      name: 'inventory',
      kind: 'host',
      claims: [
        { path: 'subnet', schema: { type: 'string', 'x-ref': 'subnet' } },
        {
          path: 'interfaces',
          schema: {
            type: 'array',
            'x-list-type': 'map',
            'x-list-map-keys': ['name'],
            items: {
              type: 'object',
              properties: { name: { type: 'string' }, net: { type: 'string', 'x-ref': 'subnet' } },
              required: ['name'],
            },
          },
        },
        { path: 'tags', schema: { type: 'array', 'x-list-type': 'set', items: { type: 'string' } } },
      ],
    },
    { name: 'inventory', kind: 'subnet', claims: [{ path: 'gateway', schema: { type: 'string' } }] },
    {
      name: 'inventory',
      kind: 'vip',
      claims: [
        {
          path: 'members',
          schema: { type: 'array', 'x-list-type': 'set', items: { type: 'string', 'x-ref': 'host' } },
        },
      ],
    },
  ],
);

describe('referencesTo', () => {
  it('finds every field whose x-ref names the kind, through objects and lists', () => {
    expect(referencesTo(schemas, 'subnet')).toEqual([
      { kind: 'host', field: 'interfaces.net', list: false },
      { kind: 'host', field: 'subnet', list: false },
    ]);
    expect(referencesTo(schemas, 'host')).toEqual([{ kind: 'vip', field: 'members', list: true }]);
    expect(referencesTo(schemas, 'vip')).toEqual([]);
  });
});

describe('kind invariants', () => {
  const subnet = schemas.get('subnet')!;

  it('are checked with the schema, naming the field, for a node that is present', () => {
    let error: unknown;
    try {
      subnet.assertValid({ present: true, gateway: 'outside' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SchemaViolationError);
    expect((error as Error).message).toBe(
      'subnet attributes violate the schema: /gateway: is outside the network',
    );
  });

  it('are not checked for a node being deleted', () => {
    expect(() => {
      subnet.assertValid({ gateway: 'outside' });
    }).not.toThrow();
  });
});

describe('attrsAfter', () => {
  it('applies a request to the current attributes', () => {
    const host = schemas.get('host')!;
    expect(
      attrsAfter(host, { present: true, tags: ['a'] }, [
        { path: 'tags', op: 'add', value: 'b' },
        { path: 'subnet', op: 'set', value: 'lab' },
      ]),
    ).toEqual({ present: true, tags: ['a', 'b'], subnet: 'lab' });
    expect(attrsAfter(host, { present: true, subnet: 'lab' }, [{ path: 'present', op: 'unset' }])).toEqual({
      subnet: 'lab',
    });
  });
});
