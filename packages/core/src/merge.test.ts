import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from './errors.js';
import { expectThrows, hostSchema } from '@consortium/testkit';
import { deepEqual } from './json.js';
import { applyUpdate, AttrsDraft, getAt, satisfies, unheldUpdates, updateHolds } from './merge.js';
import type { Attrs, JsonObject, JsonValue, UpdateOp } from './model.js';
import { isJsonObject } from './model.js';
import { applyMergePatch, mergePatchToUpdates } from './patch.js';
import { parsePath } from './paths.js';

const host = hostSchema();

function apply(attrs: Attrs, path: string, op: UpdateOp, value?: JsonValue): Attrs {
  return applyUpdate(attrs, parsePath(path), op, value, host);
}

function get(attrs: Attrs, path: string): JsonValue | undefined {
  return getAt(attrs, parsePath(path), host);
}

function holds(attrs: Attrs, path: string, op: UpdateOp, value?: JsonValue): boolean {
  return updateHolds(attrs, parsePath(path), op, value, host);
}

/** Freezes a JSON value and everything in it, so that any mutation throws (test files are strict-mode modules). */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const eth0 = { name: 'eth0', mac: '52:54:00:00:00:01', ip: '10.1.2.34' };
const eth1 = { name: 'eth1', mac: '52:54:00:00:00:02' };
const web: Attrs = deepFreeze({
  hostname: 'web-01',
  hwspec: 'small',
  puppet_roles: ['base', 'nginx'],
  ntp_servers: ['10.0.0.1', '10.0.0.2'],
  interfaces: [eth0, eth1],
  bmc: { address: '10.9.0.7', user: 'admin' },
});

describe('getAt', () => {
  it('reads attributes, fields and map-list items', () => {
    expect(get(web, 'hostname')).toBe('web-01');
    expect(get(web, 'bmc.user')).toBe('admin');
    expect(get(web, 'interfaces[eth1]')).toBe(eth1);
    expect(get(web, 'interfaces[eth0].ip')).toBe('10.1.2.34');
  });

  it('returns undefined for anything absent', () => {
    expect(get(web, 'power')).toBeUndefined();
    expect(get(web, 'bmc.password')).toBeUndefined();
    expect(get(web, 'interfaces[eth2]')).toBeUndefined();
    expect(get(web, 'interfaces[eth2].mac')).toBeUndefined();
    expect(get(web, 'interfaces[eth1].ip')).toBeUndefined();
    expect(get(web, 'hostname.short')).toBeUndefined();
    expect(get({}, 'interfaces[eth0].mac')).toBeUndefined();
    expect(get({ bmc: 'not an object' }, 'bmc.user')).toBeUndefined();
  });

  it('does not read inherited properties', () => {
    expect(getAt({}, [{ prop: 'constructor' }], host)).toBeUndefined();
    expect(getAt({ bmc: {} }, [{ prop: 'bmc' }, { prop: 'toString' }], host)).toBeUndefined();
  });

  it('refuses a key on a list that is not a map list', () => {
    expectThrows(
      () => get(web, 'puppet_roles[base]'),
      InputError,
      '"puppet_roles" is not a map list, so "puppet_roles[base]" has no item key',
    );
  });
});

describe('applyUpdate: set', () => {
  it('sets an attribute, copying only what it changes', () => {
    const next = apply(web, 'hwspec', 'set', 'large');
    expect(next).toEqual({ ...web, hwspec: 'large' });
    expect(next).not.toBe(web);
    expect(next['interfaces']).toBe(web['interfaces']);
    expect(web['hwspec']).toBe('small');
  });

  it('sets a field of an object, creating the object when absent', () => {
    expect(apply(web, 'bmc.password', 'set', 'hunter2hunter2')['bmc']).toEqual({
      address: '10.9.0.7',
      user: 'admin',
      password: 'hunter2hunter2',
    });
    expect(apply({}, 'bmc.password', 'set', 'hunter2hunter2')).toEqual({
      bmc: { password: 'hunter2hunter2' },
    });
  });

  it('creates a map-list item with its key when setting one of its fields', () => {
    expect(apply({}, 'interfaces[eth0].mac', 'set', '52:54:00:aa:bb:cc')).toEqual({
      interfaces: [{ name: 'eth0', mac: '52:54:00:aa:bb:cc' }],
    });
    const next = apply(web, 'interfaces[eth2].ip', 'set', '10.1.2.36');
    expect(next['interfaces']).toEqual([eth0, eth1, { name: 'eth2', ip: '10.1.2.36' }]);
  });

  it('changes a field of an existing item in place, keeping the order and the other items', () => {
    const next = apply(web, 'interfaces[eth0].mac', 'set', '52:54:00:aa:bb:cc');
    expect(next['interfaces']).toEqual([{ ...eth0, mac: '52:54:00:aa:bb:cc' }, eth1]);
    expect((next['interfaces'] as JsonValue[])[1]).toBe(eth1);
  });

  it('sets a whole item, filling in its key', () => {
    expect(apply(web, 'interfaces[eth1]', 'set', { ip: '10.1.2.35' })['interfaces']).toEqual([
      eth0,
      { name: 'eth1', ip: '10.1.2.35' },
    ]);
    expect(apply(web, 'interfaces[eth2]', 'set', { name: 'eth2' })['interfaces']).toEqual([
      eth0,
      eth1,
      { name: 'eth2' },
    ]);
  });

  it('replaces a list whole', () => {
    expect(apply(web, 'puppet_roles', 'set', ['haproxy'])['puppet_roles']).toEqual(['haproxy']);
    expect(apply(web, 'interfaces', 'set', [eth1])['interfaces']).toEqual([eth1]);
  });

  it('refuses an item whose key contradicts the path', () => {
    expectThrows(
      () => apply(web, 'interfaces[eth0]', 'set', { name: 'eth1' }),
      InputError,
      'item "interfaces[eth0]" cannot have name="eth1": the key is "eth0"',
    );
    expectThrows(
      () => apply(web, 'interfaces[eth0].name', 'set', 'eth9'),
      InputError,
      'item "interfaces[eth0]" cannot have name="eth9": the key is "eth0"',
    );
  });

  it('refuses values that do not fit the shape at the path', () => {
    expectThrows(
      () => apply(web, 'interfaces[eth0]', 'set', 'eth0'),
      InputError,
      'items of "interfaces" must be objects',
    );
    expectThrows(
      () => apply(web, 'hostname.short', 'set', 'web'),
      InputError,
      'cannot set "hostname.short": "hostname" is not an object',
    );
    expectThrows(
      () => apply({ interfaces: { eth0: {} } }, 'interfaces[eth0].mac', 'set', '52:54:00:aa:bb:cc'),
      InputError,
      'cannot set "interfaces[eth0].mac": "interfaces" is not a list',
    );
    expectThrows(
      () => apply(web, 'puppet_roles[base]', 'set', 'x'),
      InputError,
      '"puppet_roles" is not a map list, so "puppet_roles[base]" has no item key',
    );
    expectThrows(() => apply(web, 'hostname', 'set'), InputError, '"set" on "hostname" needs a value');
  });

  it('can set null, which is a value', () => {
    expect(apply(web, 'hostname', 'set', null)['hostname']).toBeNull();
  });
});

describe('applyUpdate: unset', () => {
  it('removes an attribute or a field', () => {
    expect(apply(web, 'hwspec', 'unset')).not.toHaveProperty('hwspec');
    expect(apply(web, 'bmc.user', 'unset')['bmc']).toEqual({ address: '10.9.0.7' });
  });

  it('removes a map-list item', () => {
    const next = apply(web, 'interfaces[eth0]', 'unset');
    expect(next['interfaces']).toEqual([eth1]);
    expect((next['interfaces'] as JsonValue[])[0]).toBe(eth1);
  });

  it('removes a field of an item and keeps the item', () => {
    expect(apply(web, 'interfaces[eth0].ip', 'unset')['interfaces']).toEqual([
      { name: 'eth0', mac: eth0.mac },
      eth1,
    ]);
  });

  it.each([['power'], ['bmc.password'], ['interfaces[eth9]'], ['interfaces[eth1].ip'], ['hypervisor']])(
    'returns the very same attributes when %s is already absent',
    (path) => {
      expect(apply(web, path, 'unset')).toBe(web);
    },
  );
});

describe('applyUpdate: add and remove', () => {
  it('adds an item to a set list, at the end', () => {
    expect(apply(web, 'puppet_roles', 'add', 'haproxy')['puppet_roles']).toEqual([
      'base',
      'nginx',
      'haproxy',
    ]);
  });

  it('creates the list when it is absent', () => {
    expect(apply({}, 'puppet_roles', 'add', 'base')).toEqual({ puppet_roles: ['base'] });
  });

  it('is a no-op, returning the same object, to add an item that is there', () => {
    expect(apply(web, 'puppet_roles', 'add', 'nginx')).toBe(web);
  });

  it('removes an item from a set list', () => {
    expect(apply(web, 'puppet_roles', 'remove', 'base')['puppet_roles']).toEqual(['nginx']);
    expect(apply({ puppet_roles: ['a', 'b', 'a'] }, 'puppet_roles', 'remove', 'a')['puppet_roles']).toEqual([
      'b',
    ]);
  });

  it('is a no-op, returning the same object, to remove an item that is not there', () => {
    expect(apply(web, 'puppet_roles', 'remove', 'haproxy')).toBe(web);
    expect(apply({}, 'puppet_roles', 'remove', 'haproxy')).toEqual({});
  });

  it('compares items structurally', () => {
    const roles = { puppet_roles: [{ a: 1, b: 2 }] } as unknown as Attrs;
    expect(apply(roles, 'puppet_roles', 'add', { b: 2, a: 1 })).toBe(roles);
    expect(apply(roles, 'puppet_roles', 'remove', { b: 2, a: 1 })).toEqual({ puppet_roles: [] });
  });

  it.each<[UpdateOp, string]>([
    ['add', 'interfaces'],
    ['add', 'ntp_servers'],
    ['add', 'hostname'],
    ['remove', 'interfaces'],
    ['remove', 'ntp_servers'],
    ['add', 'nope'],
  ])('refuses %s on %s, which is not a set list', (op, path) => {
    expectThrows(
      () => apply(web, path, op, 'x'),
      InputError,
      `"${op}" needs a set list (x-list-type: set) but "${path}" is not one`,
    );
  });

  it('needs a value', () => {
    expectThrows(
      () => apply(web, 'puppet_roles', 'add'),
      InputError,
      '"add" on "puppet_roles" needs a value',
    );
    expectThrows(
      () => apply(web, 'puppet_roles', 'remove'),
      InputError,
      '"remove" on "puppet_roles" needs a value',
    );
  });
});

describe('applyUpdate: merge', () => {
  it('merges an object field by field; null deletes a field', () => {
    expect(apply(web, 'bmc', 'merge', { user: 'root', password: 'hunter2hunter2' })['bmc']).toEqual({
      address: '10.9.0.7',
      user: 'root',
      password: 'hunter2hunter2',
    });
    expect(apply(web, 'bmc', 'merge', { user: null })['bmc']).toEqual({ address: '10.9.0.7' });
    expect(apply({}, 'bmc', 'merge', { user: 'root', address: null })).toEqual({ bmc: { user: 'root' } });
  });

  it('merges a map list by key: existing items field by field, new items appended', () => {
    const next = apply(web, 'interfaces', 'merge', [
      { name: 'eth2', mac: '52:54:00:00:00:03' },
      { name: 'eth0', mac: '52:54:00:aa:bb:cc', ip: null },
    ]);
    expect(next['interfaces']).toEqual([
      { name: 'eth0', mac: '52:54:00:aa:bb:cc' },
      eth1,
      { name: 'eth2', mac: '52:54:00:00:00:03' },
    ]);
    expect((next['interfaces'] as JsonValue[])[1]).toBe(eth1);
  });

  it('merges map-list items nested in an object merge', () => {
    const next = apply(web, 'interfaces', 'merge', [{ name: 'eth1', ip: '10.1.2.35' }]);
    expect(next['interfaces']).toEqual([eth0, { ...eth1, ip: '10.1.2.35' }]);
  });

  it('merges into one item, creating it with its key', () => {
    expect(apply(web, 'interfaces[eth1]', 'merge', { ip: '10.1.2.35' })['interfaces']).toEqual([
      eth0,
      { ...eth1, ip: '10.1.2.35' },
    ]);
    expect(apply({}, 'interfaces[eth3]', 'merge', { mac: '52:54:00:00:00:04' })).toEqual({
      interfaces: [{ name: 'eth3', mac: '52:54:00:00:00:04' }],
    });
  });

  it('merges a patch with the same key twice into one item', () => {
    expect(
      apply({}, 'interfaces', 'merge', [
        { name: 'eth0', mac: '52:54:00:00:00:01' },
        { name: 'eth0', ip: '10.1.2.34' },
      ]),
    ).toEqual({ interfaces: [eth0] });
  });

  it('replaces set and atomic lists like any other value', () => {
    expect(apply(web, 'bmc', 'merge', { address: ['a'] })['bmc']).toEqual({ address: ['a'], user: 'admin' });
  });

  it('refuses values it cannot merge', () => {
    expectThrows(
      () => apply(web, 'hostname', 'merge', 'web-02'),
      InputError,
      '"merge" on "hostname" needs an object (or items of a map list)',
    );
    expectThrows(
      () => apply(web, 'puppet_roles', 'merge', ['haproxy']),
      InputError,
      '"merge" on "puppet_roles" needs an object (or items of a map list)',
    );
    expectThrows(
      () => apply(web, 'interfaces', 'merge', [{ mac: '52:54:00:00:00:09' }]),
      InputError,
      'merge into "interfaces" needs items with a string "name"',
    );
    expectThrows(
      () => apply(web, 'interfaces', 'merge', ['eth0']),
      InputError,
      'merge into "interfaces" needs items with a string "name"',
    );
    expectThrows(
      () => apply(web, 'interfaces[eth0]', 'merge', { name: 'eth1' }),
      InputError,
      'item "interfaces[eth0]" cannot have name="eth1": the key is "eth0"',
    );
    expectThrows(() => apply(web, 'bmc', 'merge'), InputError, '"merge" on "bmc" needs a value');
  });
});

describe('applyUpdate: sync', () => {
  it('changes nothing', () => {
    expect(apply(web, 'interfaces', 'sync')).toBe(web);
  });
});

describe('satisfies and updateHolds', () => {
  const at = (path: string) => parsePath(path);

  it('compares objects by the fields the desired value names', () => {
    expect(satisfies({ a: 1, b: 2 }, { a: 1 }, at('bmc'), host)).toBe(true);
    expect(satisfies({ a: 1 }, { a: 2 }, at('bmc'), host)).toBe(false);
    expect(satisfies({ a: 1 }, { b: null }, at('bmc'), host)).toBe(true);
    expect(satisfies({ a: 1, b: 2 }, { b: null }, at('bmc'), host)).toBe(false);
    expect(satisfies('x', { a: 1 }, at('bmc'), host)).toBe(false);
    expect(satisfies(undefined, { a: 1 }, at('bmc'), host)).toBe(false);
  });

  it('compares map lists by key, allowing fields other owners added', () => {
    const desired = [{ name: 'eth1' }, { name: 'eth0' }];
    expect(satisfies([eth0, eth1], desired, at('interfaces'), host)).toBe(true);
    expect(satisfies([eth0], desired, at('interfaces'), host)).toBe(false);
    expect(satisfies([eth0, eth1, { name: 'eth2' }], desired, at('interfaces'), host)).toBe(false);
    expect(satisfies([eth0, { name: 'eth2' }], desired, at('interfaces'), host)).toBe(false);
    expect(
      satisfies([eth0, eth1], [{ name: 'eth0', mac: 'other' }, { name: 'eth1' }], at('interfaces'), host),
    ).toBe(false);
    expect(satisfies([eth0, eth1], ['eth0', 'eth1'], at('interfaces'), host)).toBe(false);
  });

  it('compares set lists as sets and atomic lists in order', () => {
    expect(satisfies(['a', 'b'], ['b', 'a'], at('puppet_roles'), host)).toBe(true);
    expect(satisfies(['a', 'b'], ['a', 'c'], at('puppet_roles'), host)).toBe(false);
    expect(satisfies(['a', 'b'], ['a'], at('puppet_roles'), host)).toBe(false);
    expect(satisfies(['a', 'b'], ['a', 'b'], at('ntp_servers'), host)).toBe(true);
    expect(satisfies(['a', 'b'], ['b', 'a'], at('ntp_servers'), host)).toBe(false);
    expect(satisfies('a', ['a'], at('ntp_servers'), host)).toBe(false);
  });

  it('compares scalars exactly', () => {
    expect(satisfies('small', 'small', at('hwspec'), host)).toBe(true);
    expect(satisfies('large', 'small', at('hwspec'), host)).toBe(false);
    expect(satisfies(undefined, null, at('hwspec'), host)).toBe(false);
  });

  it('tells whether each kind of update holds', () => {
    expect(holds(web, 'hwspec', 'set', 'small')).toBe(true);
    expect(holds(web, 'hwspec', 'set', 'large')).toBe(false);
    expect(holds(web, 'hwspec', 'set')).toBe(false);
    expect(holds(web, 'interfaces', 'set', [{ name: 'eth0' }, { name: 'eth1' }])).toBe(true);
    expect(holds(web, 'interfaces[eth0]', 'set', { name: 'eth0', ip: '10.1.2.34' })).toBe(true);
    expect(holds(web, 'power', 'unset')).toBe(true);
    expect(holds(web, 'hwspec', 'unset')).toBe(false);
    expect(holds(web, 'interfaces[eth2]', 'unset')).toBe(true);
    expect(holds(web, 'interfaces[eth1]', 'unset')).toBe(false);
    expect(holds(web, 'puppet_roles', 'add', 'nginx')).toBe(true);
    expect(holds(web, 'puppet_roles', 'add', 'haproxy')).toBe(false);
    expect(holds({}, 'puppet_roles', 'add', 'nginx')).toBe(false);
    expect(holds(web, 'puppet_roles', 'remove', 'haproxy')).toBe(true);
    expect(holds(web, 'puppet_roles', 'remove', 'nginx')).toBe(false);
    expect(holds({}, 'puppet_roles', 'remove', 'nginx')).toBe(true);
    expect(holds(web, 'bmc', 'merge', { user: 'admin', password: null })).toBe(true);
    expect(holds(web, 'bmc', 'merge', { user: 'root' })).toBe(false);
    expect(holds(web, 'interfaces', 'sync')).toBe(true);
  });

  it('holds a map-list merge that names only some of the items', () => {
    expect(holds(web, 'interfaces', 'merge', [{ name: 'eth1', mac: eth1.mac }])).toBe(true);
    expect(holds(web, 'interfaces', 'merge', [{ name: 'eth0', vlan: null }])).toBe(true);
    expect(holds(web, 'interfaces', 'merge', [{ name: 'eth0', ip: null }])).toBe(false);
    expect(holds(web, 'interfaces', 'merge', [{ name: 'eth2' }])).toBe(false);
    expect(holds(web, 'interfaces', 'merge', [])).toBe(true);
    expect(holds({}, 'interfaces', 'merge', [])).toBe(true);
    expect(holds(web, 'interfaces[eth1]', 'merge', { mac: eth1.mac })).toBe(true);
    expect(holds(web, 'interfaces[eth2]', 'merge', {})).toBe(false);
  });

  it('does not hold, rather than throw, a merge that does not fit the attributes', () => {
    expect(holds({ interfaces: { eth0: {} } }, 'interfaces[eth0]', 'merge', { mac: eth0.mac })).toBe(false);
    expect(holds({ hostname: 'web-01' }, 'hostname.short', 'merge', { a: 1 })).toBe(false);
  });

  it('holds after every update is applied', () => {
    const updates: [string, UpdateOp, JsonValue?][] = [
      ['hwspec', 'set', 'large'],
      ['interfaces[eth2].mac', 'set', '52:54:00:00:00:03'],
      ['interfaces[eth0]', 'unset'],
      ['puppet_roles', 'add', 'haproxy'],
      ['puppet_roles', 'remove', 'base'],
      ['bmc', 'merge', { user: null, password: 'hunter2hunter2' }],
      ['interfaces', 'merge', [{ name: 'eth1', ip: '10.1.2.35' }]],
    ];
    for (const [path, op, value] of updates) {
      expect(holds(web, path, op, value), `${op} ${path} before`).toBe(false);
      expect(holds(apply(web, path, op, value), path, op, value), `${op} ${path} after`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------------------

const hex = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const macArb = fc.array(hex, { minLength: 6, maxLength: 6 }).map((parts) => parts.join(':'));
const ipArb = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 })
  .map((parts) => parts.join('.'));
const ifaceNameArb = fc.constantFrom('eth0', 'eth1', 'eth2', 'bond0', 'eth0.100');
const roleArb = fc.constantFrom('base', 'nginx', 'haproxy', 'postgres', 'monitoring', 'ntp');
const passwordArb = fc.string({ minLength: 8, maxLength: 12 });
const rolesArb = fc.uniqueArray(roleArb, { maxLength: 5 });

/** One interface, as a map-list item: its key plus any of the fields its owners fill in. */
const vlanArb = fc.integer({ min: 1, max: 4094 });
const ifaceArb = fc.record(
  { name: ifaceNameArb, vlan: vlanArb, mac: macArb, ip: ipArb },
  { requiredKeys: ['name'] },
);
const interfacesArb = fc.uniqueArray(ifaceArb, { selector: (item) => item.name, maxLength: 4 });
const bmcArb = fc.record(
  { address: ipArb, user: fc.constantFrom('admin', 'root'), password: passwordArb },
  { requiredKeys: [] },
);

/** Valid host attributes, any subset of them. */
const attrsArb: fc.Arbitrary<Attrs> = fc.record(
  {
    present: fc.boolean(),
    hostname: fc.constantFrom('web-01', 'web-02', 'db-01'),
    datacenter: fc.constantFrom('pek1', 'fra2'),
    hwspec: fc.constantFrom('small', 'medium', 'large'),
    power: fc.constantFrom('on', 'off'),
    hypervisor: fc.constantFrom('hv-1', 'hv-2', 'hv-3'),
    subnet: fc.constantFrom('pek1-web', 'pek1-db'),
    netboot: fc.boolean(),
    puppet_roles: rolesArb,
    ntp_servers: fc.array(ipArb, { maxLength: 3 }),
    interfaces: interfacesArb,
    bmc: bmcArb,
  },
  { requiredKeys: [] },
);

/** A `set` update that fits the host schema, with the value `getAt` must then read back. */
interface SetCase {
  readonly path: string;
  readonly value: JsonValue;
  readonly expected: JsonValue;
}

const same =
  (path: string) =>
  (value: JsonValue): SetCase => ({ path, value, expected: value });

const setCaseArb: fc.Arbitrary<SetCase> = fc.oneof(
  fc.constantFrom('web-01', 'db-07').map(same('hostname')),
  fc.constantFrom('small', 'medium', 'large').map(same('hwspec')),
  fc.constantFrom('on', 'off').map(same('power')),
  rolesArb.map(same('puppet_roles')),
  fc.array(ipArb, { maxLength: 3 }).map(same('ntp_servers')),
  interfacesArb.map(same('interfaces')),
  bmcArb.map(same('bmc')),
  passwordArb.map(same('bmc.password')),
  fc.constantFrom('admin', 'root').map(same('bmc.user')),
  fc.tuple(ifaceNameArb, macArb).map(([name, mac]) => same(`interfaces[${name}].mac`)(mac)),
  fc.tuple(ifaceNameArb, ipArb).map(([name, ip]) => same(`interfaces[${name}].ip`)(ip)),
  fc
    .tuple(
      ifaceNameArb,
      fc.record({ vlan: vlanArb, mac: macArb, ip: ipArb }, { requiredKeys: [] }),
      fc.boolean(),
    )
    .map(([name, fields, withKey]) => ({
      path: `interfaces[${name}]`,
      value: withKey ? { name, ...fields } : fields,
      expected: { name, ...fields },
    })),
);

/** Set lists and map lists are unordered: sorts them so that equal sets compare equal. */
function normalise(attrs: Attrs): Attrs {
  const out: Record<string, JsonValue> = { ...attrs };
  const roles = out['puppet_roles'];
  if (Array.isArray(roles)) out['puppet_roles'] = [...(roles as string[])].sort();
  const interfaces = out['interfaces'];
  if (Array.isArray(interfaces)) {
    const nameOf = (item: JsonObject): string => item['name'] as string;
    out['interfaces'] = [...(interfaces as JsonObject[])].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  }
  return out;
}

const nullable = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof(fc.constant(null), arb);

/** RFC 7396 merge patches over the host's scalar, object, set-list, atomic-list and map-list attributes. */
const mergePatchArb: fc.Arbitrary<JsonObject> = fc.record(
  {
    hostname: nullable(fc.constantFrom('web-01', 'web-02', 'db-01')),
    hwspec: nullable(fc.constantFrom('small', 'medium', 'large')),
    power: nullable(fc.constantFrom('on', 'off')),
    netboot: nullable(fc.boolean()),
    puppet_roles: nullable(rolesArb),
    ntp_servers: nullable(fc.array(ipArb, { maxLength: 3 })),
    interfaces: nullable(interfacesArb),
    bmc: nullable(
      fc.record(
        {
          address: nullable(ipArb),
          user: nullable(fc.constantFrom('admin', 'root')),
          password: nullable(passwordArb),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

/** Updates that touch `interfaces` through every path and op that can create or change an item. */
const interfaceUpdateArb: fc.Arbitrary<[string, UpdateOp, JsonValue | undefined]> = fc.oneof(
  fc
    .tuple(ifaceNameArb, macArb)
    .map(([name, mac]): [string, UpdateOp, JsonValue] => [`interfaces[${name}].mac`, 'set', mac]),
  fc
    .tuple(ifaceNameArb, ipArb)
    .map(([name, ip]): [string, UpdateOp, JsonValue] => [`interfaces[${name}].ip`, 'set', ip]),
  fc
    .tuple(ifaceNameArb, fc.record({ vlan: vlanArb, mac: macArb }, { requiredKeys: [] }))
    .map(([name, fields]): [string, UpdateOp, JsonValue] => [`interfaces[${name}]`, 'set', fields]),
  fc
    .tuple(
      ifaceNameArb,
      fc.record(
        { vlan: nullable(vlanArb), mac: nullable(macArb), ip: nullable(ipArb) },
        { requiredKeys: [] },
      ),
    )
    .map(([name, fields]): [string, UpdateOp, JsonValue] => [`interfaces[${name}]`, 'merge', fields]),
  fc
    .array(
      fc.record(
        { name: ifaceNameArb, vlan: nullable(vlanArb), mac: nullable(macArb), ip: nullable(ipArb) },
        { requiredKeys: ['name'] },
      ),
      {
        maxLength: 4,
      },
    )
    .map((items): [string, UpdateOp, JsonValue] => ['interfaces', 'merge', items]),
  interfacesArb.map((items): [string, UpdateOp, JsonValue] => ['interfaces', 'set', items]),
  ifaceNameArb.map((name): [string, UpdateOp, undefined] => [`interfaces[${name}]`, 'unset', undefined]),
  ifaceNameArb.map((name): [string, UpdateOp, undefined] => [`interfaces[${name}].mac`, 'unset', undefined]),
);

/** Any valid update on the host, for checking determinism and immutability. */
const anyUpdateArb: fc.Arbitrary<[string, UpdateOp, JsonValue | undefined]> = fc.oneof(
  interfaceUpdateArb,
  setCaseArb.map(({ path, value }): [string, UpdateOp, JsonValue] => [path, 'set', value]),
  roleArb.map((role): [string, UpdateOp, JsonValue] => ['puppet_roles', 'add', role]),
  roleArb.map((role): [string, UpdateOp, JsonValue] => ['puppet_roles', 'remove', role]),
  fc
    .record({ address: nullable(ipArb), password: nullable(passwordArb) }, { requiredKeys: [] })
    .map((patch): [string, UpdateOp, JsonValue] => ['bmc', 'merge', patch]),
  fc
    .constantFrom('hwspec', 'bmc', 'bmc.user', 'puppet_roles', 'interfaces')
    .map((path): [string, UpdateOp, undefined] => [path, 'unset', undefined]),
);

describe('properties', () => {
  it('generates valid hosts (sanity check of the generators)', () => {
    fc.assert(
      fc.property(attrsArb, (attrs) => {
        host.assertValid(attrs);
      }),
    );
  });

  it('reads back what a set wrote, and leaves everything else alone', () => {
    fc.assert(
      fc.property(attrsArb, setCaseArb, (attrs, { path, value, expected }) => {
        const before = structuredClone(attrs);
        const next = apply(attrs, path, 'set', value);
        expect(get(next, path)).toEqual(expected);
        expect(holds(next, path, 'set', value)).toBe(true);
        const root = parsePath(path)[0] as { prop: string };
        for (const attribute of Object.keys(attrs)) {
          if (attribute !== root.prop) expect(next[attribute]).toBe(attrs[attribute]);
        }
        expect(Object.keys(next).sort()).toEqual([...new Set([...Object.keys(attrs), root.prop])].sort());
        expect(attrs).toEqual(before);
        host.assertValid(next);
      }),
    );
  });

  it('turns a merge patch into updates that, applied in order, give the patched attributes', () => {
    fc.assert(
      fc.property(attrsArb, mergePatchArb, (current, patch) => {
        const target = applyMergePatch(current, patch) as Attrs;
        const updates = mergePatchToUpdates(host, current, patch);
        let attrs = current;
        for (const update of updates) {
          const path = host.resolvePath(update.path);
          attrs = applyUpdate(attrs, path, update.op, update.value, host);
        }
        expect(normalise(attrs)).toEqual(normalise(target));
        for (const update of updates) {
          expect(holds(attrs, update.path, update.op, update.value), `${update.op} ${update.path}`).toBe(
            true,
          );
        }
        if (deepEqual(current, target)) expect(updates).toEqual([]);
      }),
    );
  });

  it('never routes a merge-patch update to a path whose sub-paths other providers own', () => {
    fc.assert(
      fc.property(attrsArb, mergePatchArb, (current, patch) => {
        for (const update of mergePatchToUpdates(host, current, patch)) {
          if (update.op !== 'set' || !isJsonObject(update.value ?? null)) continue;
          const path = host.resolvePath(update.path);
          const owner = host.authorityOf(path);
          for (const field of Object.keys(update.value as JsonObject)) {
            expect(host.authorityOf([...path, { prop: field }]), `${update.path}.${field}`).toBe(owner);
          }
        }
      }),
    );
  });

  it('treats add of an item already in a set list as a no-op returning the same object', () => {
    fc.assert(
      fc.property(
        attrsArb,
        rolesArb.filter((roles) => roles.length > 0),
        fc.nat(),
        (attrs, roles, pick) => {
          const withRoles = { ...attrs, puppet_roles: roles };
          const role = roles[pick % roles.length]!;
          const before = structuredClone(withRoles);
          const next = apply(withRoles, 'puppet_roles', 'add', role);
          expect(next).toBe(withRoles);
          expect(next).toEqual(before);
          const added = apply(apply(attrs, 'puppet_roles', 'add', role), 'puppet_roles', 'add', role);
          expect((added['puppet_roles'] as string[]).filter((r) => r === role)).toHaveLength(1);
        },
      ),
    );
  });

  it('treats remove of an item not in a set list as a no-op returning the same object', () => {
    fc.assert(
      fc.property(attrsArb, roleArb, (attrs, role) => {
        const without = apply(attrs, 'puppet_roles', 'remove', role);
        expect(apply(without, 'puppet_roles', 'remove', role)).toBe(without);
        expect(get(without, 'puppet_roles') ?? []).not.toContain(role);
      }),
    );
  });

  it('never duplicates a map-list key, whatever sequence of merges, sets and unsets', () => {
    fc.assert(
      fc.property(attrsArb, fc.array(interfaceUpdateArb, { maxLength: 12 }), (start, updates) => {
        let attrs = start;
        for (const [path, op, value] of updates) {
          attrs = apply(attrs, path, op, value);
          const items = (attrs['interfaces'] ?? []) as JsonObject[];
          const names = items.map((item) => item['name']);
          expect(names.every((name) => typeof name === 'string')).toBe(true);
          expect(new Set(names).size).toBe(names.length);
          expect(holds(attrs, path, op, value), `${op} ${path}`).toBe(true);
          host.assertValid(attrs);
        }
      }),
    );
  });

  it('is deterministic and never modifies its inputs', () => {
    fc.assert(
      fc.property(attrsArb, anyUpdateArb, (attrs, [path, op, value]) => {
        const attrsCopy = structuredClone(attrs);
        const valueCopy = structuredClone(value);
        deepFreeze(attrs);
        deepFreeze(value);
        const first = apply(attrs, path, op, value);
        const second = apply(attrs, path, op, value);
        expect(second).toEqual(first);
        expect(apply(attrsCopy, path, op, valueCopy)).toEqual(first);
        expect(attrs).toEqual(attrsCopy);
        expect(value).toEqual(valueCopy);
      }),
    );
  });

  it('is idempotent for merges: merging the same patch twice changes nothing more', () => {
    const mergeArb = anyUpdateArb.filter(([, op]) => op === 'merge');
    fc.assert(
      fc.property(attrsArb, mergeArb, (attrs, [path, , value]) => {
        const once = apply(attrs, path, 'merge', value);
        expect(apply(once, path, 'merge', value)).toEqual(once);
      }),
    );
  });
});

describe('AttrsDraft and unheldUpdates agree with applyUpdate and updateHolds', () => {
  const item = fc.oneof(
    fc.constantFrom('base', 'nginx', 'ntp'),
    fc.constantFrom<JsonValue>({ a: 1, b: 2 }, { b: 2, a: 1 }, [1, 2], 3),
  );
  const update = fc.oneof(
    fc.tuple(fc.constant('puppet_roles'), fc.constantFrom<UpdateOp>('add', 'remove'), item),
    fc.tuple(fc.constant('puppet_roles'), fc.constant<UpdateOp>('set'), fc.array(item, { maxLength: 3 })),
    fc.tuple(fc.constant('puppet_roles'), fc.constant<UpdateOp>('unset'), fc.constant(undefined)),
    fc.tuple(fc.constant('hostname'), fc.constant<UpdateOp>('set'), fc.constantFrom('a', 'b')),
    fc.tuple(fc.constant('interfaces[eth0].mac'), fc.constant<UpdateOp>('set'), fc.constantFrom('m1', 'm2')),
  );
  const base = fc.constantFrom<Attrs>(
    {},
    { puppet_roles: ['base', { a: 1, b: 2 }] },
    { puppet_roles: ['ntp', 'ntp'] },
    { puppet_roles: 'not a list', hostname: 'a' },
  );

  it('applies any sequence of updates to the same result, saying which changed their path', () => {
    fc.assert(
      fc.property(base, fc.array(update, { maxLength: 12 }), (start, updates) => {
        const draft = new AttrsDraft(deepFreeze(start), host);
        let expected = start;
        for (const [path, op, value] of updates) {
          const parsed = parsePath(path);
          const before = getAt(expected, parsed, host);
          expected = applyUpdate(expected, parsed, op, value, host);
          const changed = !deepEqual(before, getAt(expected, parsed, host));
          expect(draft.apply(parsed, op, value as JsonValue | undefined)).toBe(changed);
        }
        expect(draft.result()).toEqual(expected);
      }),
    );
  });

  it('finds the same unheld updates', () => {
    fc.assert(
      fc.property(base, fc.array(update, { maxLength: 12 }), (attrs, updates) => {
        const entries = updates.map(([path, op, value]) => ({
          update: { op, ...(value === undefined ? {} : { value: value }) },
          path: parsePath(path),
        }));
        const expected = entries.filter(
          ({ update, path }) => !updateHolds(attrs, path, update.op, update.value, host),
        );
        expect(unheldUpdates(attrs, entries, host)).toEqual(expected.map((e) => e.update));
      }),
    );
  });

  it('refuses what applyUpdate refuses, with the same error, and changes nothing', () => {
    const draft = new AttrsDraft({ hostname: 'a' }, host);
    expectThrows(
      () => draft.apply(parsePath('hostname'), 'add', 'x'),
      InputError,
      '"add" needs a set list (x-list-type: set) but "hostname" is not one',
    );
    expectThrows(
      () => draft.apply(parsePath('puppet_roles'), 'add', undefined),
      InputError,
      '"add" on "puppet_roles" needs a value',
    );
    expect(draft.result()).toEqual({ hostname: 'a' });
  });
});
