import { describe, expect, it } from 'vitest';
import type { Operation } from 'fast-json-patch';
import {
  InputError,
  PreconditionFailedError,
  SchemaViolationError,
  UnknownAttributeError,
} from './errors.js';
import { expectThrows, hostSchema } from '@consortium/testkit';
import type { Attrs, JsonValue, UpdateRequest } from './model.js';
import { applyMergePatch, diffToUpdates, jsonPatchToUpdates, mergePatchToUpdates } from './patch.js';

/** Freezes a JSON value and everything in it, so that any mutation throws. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const host = hostSchema();

const MAC0 = '52:54:00:00:00:01';
const MAC1 = '52:54:00:00:00:02';

const current: Attrs = deepFreeze({
  present: true,
  hostname: 'web-01',
  hwspec: 'small',
  power: 'on',
  puppet_roles: ['base', 'nginx'],
  ntp_servers: ['10.0.0.1', '10.0.0.2'],
  interfaces: [{ name: 'eth0', vlan: 20, mac: MAC0, ip: '10.1.2.34' }],
  bmc: { address: '10.9.0.7', user: 'admin' },
});

const eth0 = { name: 'eth0', vlan: 20, mac: MAC0, ip: '10.1.2.34' };
const eth1 = { name: 'eth1', vlan: 30, mac: MAC1, ip: '10.1.2.35' };

/** The provider each update is routed to, as the planner would route it. */
const ownersOf = (updates: readonly UpdateRequest[]): string[] =>
  updates.map((update) => host.authorityOf(host.resolvePath(update.path)));

describe('applyMergePatch (RFC 7396, appendix A)', () => {
  it.each<[JsonValue, JsonValue, JsonValue]>([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('%j patched with %j is %j', (target, patch, result) => {
    const frozen = deepFreeze(structuredClone(target));
    expect(applyMergePatch(frozen, patch)).toEqual(result);
    expect(frozen).toEqual(target);
  });

  it('patches an absent target', () => {
    expect(applyMergePatch(undefined, { a: { b: null, c: 1 } })).toEqual({ a: { c: 1 } });
  });
});

describe('mergePatchToUpdates', () => {
  it('sets and unsets scalar attributes, in attribute order', () => {
    expect(mergePatchToUpdates(host, current, { power: null, hwspec: 'large', subnet: 'pek1-web' })).toEqual([
      { path: 'hwspec', op: 'set', value: 'large' },
      { path: 'power', op: 'unset' },
      { path: 'subnet', op: 'set', value: 'pek1-web' },
    ]);
  });

  it.each<[string, Record<string, JsonValue>]>([
    ['an empty patch', {}],
    ['an unchanged value', { hwspec: 'small', bmc: { user: 'admin' } }],
    ['removing what is absent', { hypervisor: null, bmc: { password: null } }],
    ['reordering a set list', { puppet_roles: ['nginx', 'base'] }],
    ['the same map list', { interfaces: [eth0] }],
  ])('yields nothing for %s', (_, patch) => {
    expect(mergePatchToUpdates(host, current, patch)).toEqual([]);
  });

  it('turns a changed set list into remove and add', () => {
    expect(mergePatchToUpdates(host, current, { puppet_roles: ['base', 'haproxy', 'ntp'] })).toEqual([
      { path: 'puppet_roles', op: 'remove', value: 'nginx' },
      { path: 'puppet_roles', op: 'add', value: 'haproxy' },
      { path: 'puppet_roles', op: 'add', value: 'ntp' },
    ]);
    expect(mergePatchToUpdates(host, current, { puppet_roles: [] })).toEqual([
      { path: 'puppet_roles', op: 'remove', value: 'base' },
      { path: 'puppet_roles', op: 'remove', value: 'nginx' },
    ]);
  });

  it('sets a set list whole when there was none, and unsets it with null', () => {
    const bare: Attrs = { hostname: 'web-01' };
    expect(mergePatchToUpdates(host, bare, { puppet_roles: ['base'] })).toEqual([
      { path: 'puppet_roles', op: 'set', value: ['base'] },
    ]);
    expect(mergePatchToUpdates(host, current, { puppet_roles: null })).toEqual([
      { path: 'puppet_roles', op: 'unset' },
    ]);
  });

  it('replaces an atomic list whole', () => {
    expect(mergePatchToUpdates(host, current, { ntp_servers: ['10.0.0.2', '10.0.0.1'] })).toEqual([
      { path: 'ntp_servers', op: 'set', value: ['10.0.0.2', '10.0.0.1'] },
    ]);
  });

  it('routes a changed sub-owned field of a map-list item to its owner', () => {
    const updates = mergePatchToUpdates(host, current, {
      interfaces: [{ ...eth0, mac: '52:54:00:aa:bb:cc' }],
    });
    expect(updates).toEqual([{ path: 'interfaces[eth0].mac', op: 'set', value: '52:54:00:aa:bb:cc' }]);
    expect(ownersOf(updates)).toEqual(['libvirt']);
  });

  it('splits changes to one item into one update per field and owner', () => {
    const updates = mergePatchToUpdates(host, current, {
      interfaces: [{ name: 'eth0', vlan: 21, ip: '10.1.2.99' }],
    });
    expect(updates).toEqual([
      { path: 'interfaces[eth0].ip', op: 'set', value: '10.1.2.99' },
      { path: 'interfaces[eth0].mac', op: 'unset' },
      { path: 'interfaces[eth0].vlan', op: 'set', value: 21 },
    ]);
    expect(ownersOf(updates)).toEqual(['ipam', 'libvirt', 'inventory']);
  });

  it('creates a new item with the fields its owner keeps, then the sub-owned fields', () => {
    const updates = mergePatchToUpdates(host, current, { interfaces: [eth0, eth1] });
    expect(updates).toEqual([
      { path: 'interfaces[eth1]', op: 'merge', value: { name: 'eth1', vlan: 30 } },
      { path: 'interfaces[eth1].ip', op: 'set', value: '10.1.2.35' },
      { path: 'interfaces[eth1].mac', op: 'set', value: MAC1 },
    ]);
    expect(ownersOf(updates)).toEqual(['inventory', 'ipam', 'libvirt']);
  });

  it('creates the items of a new map list one by one', () => {
    expect(
      mergePatchToUpdates(host, { hostname: 'web-01' }, { interfaces: [{ name: 'eth0', mac: MAC0 }] }),
    ).toEqual([
      { path: 'interfaces[eth0]', op: 'merge', value: { name: 'eth0' } },
      { path: 'interfaces[eth0].mac', op: 'set', value: MAC0 },
    ]);
  });

  it('sets an empty map list where there was none', () => {
    expect(mergePatchToUpdates(host, { hostname: 'web-01' }, { interfaces: [] })).toEqual([
      { path: 'interfaces', op: 'set', value: [] },
    ]);
  });

  it('unsets removed items and removed lists', () => {
    expect(mergePatchToUpdates(host, current, { interfaces: [eth1] })).toEqual([
      { path: 'interfaces[eth0]', op: 'unset' },
      { path: 'interfaces[eth1]', op: 'merge', value: { name: 'eth1', vlan: 30 } },
      { path: 'interfaces[eth1].ip', op: 'set', value: '10.1.2.35' },
      { path: 'interfaces[eth1].mac', op: 'set', value: MAC1 },
    ]);
    expect(mergePatchToUpdates(host, current, { interfaces: [] })).toEqual([
      { path: 'interfaces[eth0]', op: 'unset' },
    ]);
    expect(mergePatchToUpdates(host, current, { interfaces: null })).toEqual([
      { path: 'interfaces', op: 'unset' },
    ]);
  });

  it('splits objects with sub-owned fields too', () => {
    expect(mergePatchToUpdates(host, current, { bmc: { user: 'root' } })).toEqual([
      { path: 'bmc.user', op: 'set', value: 'root' },
    ]);
    expect(mergePatchToUpdates(host, current, { bmc: { password: 'hunter2hunter2' } })).toEqual([
      { path: 'bmc.password', op: 'set', value: 'hunter2hunter2' },
    ]);
    const updates = mergePatchToUpdates(
      host,
      { hostname: 'web-01' },
      { bmc: { address: '10.9.0.8', password: 'hunter2hunter2' } },
    );
    expect(updates).toEqual([
      { path: 'bmc', op: 'merge', value: { address: '10.9.0.8' } },
      { path: 'bmc.password', op: 'set', value: 'hunter2hunter2' },
    ]);
    expect(ownersOf(updates)).toEqual(['inventory', 'vault']);
  });

  it('refuses a set list with the same item twice', () => {
    expectThrows(
      () => mergePatchToUpdates(host, current, { puppet_roles: ['base', 'ntp', 'ntp'] }),
      InputError,
      '"puppet_roles" is a set list and cannot hold the same item twice',
    );
  });

  const roles = Array.from({ length: 50_000 }, (_, i) => `role-${i}`);
  it.each<[string, () => unknown, string]>([
    [
      'a merge patch of a set list',
      () => mergePatchToUpdates(host, current, { puppet_roles: roles }),
      'puppet_roles',
    ],
    [
      'a JSON patch of an atomic list',
      () => jsonPatchToUpdates(host, current, [{ op: 'replace', path: '/ntp_servers', value: roles }]),
      'ntp_servers',
    ],
  ])('refuses a list over its limit in %s before comparing its items', (_, translate, attribute) => {
    expectThrows(
      translate,
      SchemaViolationError,
      `host attributes violate the schema: /${attribute}: must NOT have more than 1000 items`,
    );
  });

  it('refuses map-list items with a duplicate or missing key', () => {
    expectThrows(
      () => mergePatchToUpdates(host, current, { interfaces: [eth0, { ...eth1, name: 'eth0' }] }),
      InputError,
      '"interfaces" has two items with the same name',
    );
    expectThrows(
      () => mergePatchToUpdates(host, current, { interfaces: [eth0, { mac: MAC1 }] }),
      InputError,
      'items of "interfaces" need a string "name"',
    );
    expectThrows(
      () => mergePatchToUpdates(host, current, { interfaces: [{ name: 7 }] }),
      InputError,
      'items of "interfaces" need a string "name"',
    );
  });

  it('refuses unknown attributes, suggesting the closest one', () => {
    const error = expectThrows(
      () => mergePatchToUpdates(host, current, { hwsepc: 'large' }),
      UnknownAttributeError,
      'unknown attribute "hwsepc" for kind host (did you mean "hwspec"?)',
    );
    expect(error.details).toEqual({ kind: 'host', path: 'hwsepc', suggestion: 'hwspec' });
    expectThrows(
      () => mergePatchToUpdates(host, current, { colour: 'red' }),
      UnknownAttributeError,
      'unknown attribute "colour" for kind host',
    );
  });

  it('refuses unknown fields of known attributes', () => {
    expectThrows(
      () => mergePatchToUpdates(host, current, { bmc: { adress: '10.9.0.8' } }),
      UnknownAttributeError,
      'unknown path "bmc.adress" for kind host',
    );
    expectThrows(
      () => mergePatchToUpdates(host, current, { interfaces: [{ ...eth0, speed: 1000 }] }),
      UnknownAttributeError,
      'unknown path "interfaces[eth0].speed" for kind host',
    );
  });

  it('refuses to patch present', () => {
    for (const present of [false, null, 'yes']) {
      expectThrows(
        () => mergePatchToUpdates(host, current, { hostname: 'web-02', present }),
        InputError,
        '"present" cannot be patched: create or delete the node instead',
      );
    }
    expect(mergePatchToUpdates(host, current, { present: true })).toEqual([]);
  });

  it.each([[null], [[]], ['hwspec=small'], [42]])('refuses the non-object patch %j', (patch) => {
    expectThrows(
      () => mergePatchToUpdates(host, current, patch),
      InputError,
      'a merge patch must be a JSON object',
    );
  });
});

describe('jsonPatchToUpdates', () => {
  it('routes a replaced MAC of a map-list item to libvirt', () => {
    const updates = jsonPatchToUpdates(host, current, [
      { op: 'replace', path: '/interfaces/0/mac', value: '52:54:00:aa:bb:cc' },
    ]);
    expect(updates).toEqual([{ path: 'interfaces[eth0].mac', op: 'set', value: '52:54:00:aa:bb:cc' }]);
    expect(ownersOf(updates)).toEqual(['libvirt']);
  });

  it('splits an appended interface per owner', () => {
    const updates = jsonPatchToUpdates(host, current, [{ op: 'add', path: '/interfaces/-', value: eth1 }]);
    expect(updates).toEqual([
      { path: 'interfaces[eth1]', op: 'merge', value: { name: 'eth1', vlan: 30 } },
      { path: 'interfaces[eth1].ip', op: 'set', value: '10.1.2.35' },
      { path: 'interfaces[eth1].mac', op: 'set', value: MAC1 },
    ]);
    expect(ownersOf(updates)).toEqual(['inventory', 'ipam', 'libvirt']);
  });

  it('unsets a removed interface and a removed field', () => {
    expect(jsonPatchToUpdates(host, current, [{ op: 'remove', path: '/interfaces/0' }])).toEqual([
      { path: 'interfaces[eth0]', op: 'unset' },
    ]);
    expect(jsonPatchToUpdates(host, current, [{ op: 'remove', path: '/interfaces/0/ip' }])).toEqual([
      { path: 'interfaces[eth0].ip', op: 'unset' },
    ]);
  });

  it.each([
    [{ op: 'replace', path: '/puppet_roles/01', value: 'haproxy' }, '/puppet_roles/01', '01'],
    [{ op: 'remove', path: '/puppet_roles/00' }, '/puppet_roles/00', '00'],
    [{ op: 'add', path: '/interfaces/00/mac', value: MAC1 }, '/interfaces/00/mac', '00'],
    [{ op: 'copy', from: '/puppet_roles/01', path: '/puppet_roles/-' }, '/puppet_roles/01', '01'],
  ])('refuses array indexes with leading zeros (RFC 6901): %j', (operation, pointer, segment) => {
    expectThrows(
      () => jsonPatchToUpdates(host, current, [operation as Operation]),
      InputError,
      `invalid JSON patch: operation 0 path ${JSON.stringify(pointer)}: "${segment}" is not an array index (digits without leading zeros, or -)`,
    );
  });

  it('checks each pointer against the document as the operations before it left it', () => {
    expect(
      jsonPatchToUpdates(host, current, [
        { op: 'add', path: '/puppet_roles', value: ['a'] },
        { op: 'add', path: '/puppet_roles/1', value: 'b' },
      ]),
    ).toEqual([
      { path: 'puppet_roles', op: 'remove', value: 'base' },
      { path: 'puppet_roles', op: 'remove', value: 'nginx' },
      { path: 'puppet_roles', op: 'add', value: 'a' },
      { path: 'puppet_roles', op: 'add', value: 'b' },
    ]);
  });

  it('ignores the order of map-list items', () => {
    const withTwo: Attrs = { ...current, interfaces: [eth0, eth1] };
    expect(
      jsonPatchToUpdates(host, withTwo, [{ op: 'move', from: '/interfaces/0', path: '/interfaces/-' }]),
    ).toEqual([]);
  });

  it('turns set-list edits into add and remove', () => {
    expect(
      jsonPatchToUpdates(host, current, [{ op: 'add', path: '/puppet_roles/-', value: 'haproxy' }]),
    ).toEqual([{ path: 'puppet_roles', op: 'add', value: 'haproxy' }]);
    expect(jsonPatchToUpdates(host, current, [{ op: 'remove', path: '/puppet_roles/0' }])).toEqual([
      { path: 'puppet_roles', op: 'remove', value: 'base' },
    ]);
    expect(
      jsonPatchToUpdates(host, current, [{ op: 'replace', path: '/puppet_roles/1', value: 'haproxy' }]),
    ).toEqual([
      { path: 'puppet_roles', op: 'remove', value: 'nginx' },
      { path: 'puppet_roles', op: 'add', value: 'haproxy' },
    ]);
  });

  it('handles add, replace, remove, copy and a passing test together', () => {
    expect(
      jsonPatchToUpdates(host, current, [
        { op: 'test', path: '/hwspec', value: 'small' },
        { op: 'replace', path: '/hwspec', value: 'medium' },
        { op: 'remove', path: '/power' },
        { op: 'add', path: '/subnet', value: 'pek1-web' },
        { op: 'copy', from: '/hostname', path: '/profile' },
      ]),
    ).toEqual([
      { path: 'hwspec', op: 'set', value: 'medium' },
      { path: 'power', op: 'unset' },
      { path: 'profile', op: 'set', value: 'web-01' },
      { path: 'subnet', op: 'set', value: 'pek1-web' },
    ]);
  });

  it('yields nothing for an empty patch', () => {
    expect(jsonPatchToUpdates(host, current, [])).toEqual([]);
  });

  it('does not modify the current attributes', () => {
    const frozen = deepFreeze(structuredClone(current));
    jsonPatchToUpdates(host, frozen, [
      { op: 'replace', path: '/interfaces/0/mac', value: '52:54:00:aa:bb:cc' },
      { op: 'add', path: '/puppet_roles/-', value: 'haproxy' },
      { op: 'remove', path: '/bmc/user' },
    ]);
    expect(frozen).toEqual(current);
  });

  it('throws PreconditionFailedError when a test fails', () => {
    const error = expectThrows(
      () =>
        jsonPatchToUpdates(host, current, [
          { op: 'test', path: '/hwspec', value: 'large' },
          { op: 'replace', path: '/hwspec', value: 'medium' },
        ]),
      PreconditionFailedError,
      'JSON patch test failed: Test operation failed',
    );
    expect(error.httpStatus).toBe(412);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it.each<[string, unknown, string]>([
    [
      'an unknown op',
      [{ op: 'frobnicate', path: '/hwspec', value: 'x' }],
      'Operation `op` property is not one of operations defined in RFC-6902',
    ],
    [
      'a path without a leading slash',
      [{ op: 'add', path: 'hwspec', value: 'x' }],
      'Operation `path` property must start with "/"',
    ],
    [
      'a replace without a value',
      [{ op: 'replace', path: '/hwspec' }],
      'Operation `value` property is not present (applicable in `add`, `replace` and `test` operations)',
    ],
    ['an operation that is not an object', ['replace'], 'Operation is not an object'],
    [
      'removing what is absent',
      [{ op: 'remove', path: '/hypervisor' }],
      'Cannot perform the operation at a path that does not exist',
    ],
    [
      'replacing below what is absent',
      [{ op: 'replace', path: '/bmc/password/x', value: 'x' }],
      'Cannot perform the operation at a path that does not exist',
    ],
  ])('throws InputError for %s', (_, patch, why) => {
    const error = expectThrows(
      () => jsonPatchToUpdates(host, current, patch),
      InputError,
      `invalid JSON patch: ${why}`,
    );
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('throws InputError for a patch that is not an array or leaves no object', () => {
    expectThrows(
      () => jsonPatchToUpdates(host, current, { op: 'replace', path: '/hwspec', value: 'large' }),
      InputError,
      'a JSON patch must be an array of operations',
    );
    expectThrows(
      () => jsonPatchToUpdates(host, current, [{ op: 'replace', path: '', value: ['hwspec'] }]),
      InputError,
      'a JSON patch must leave the attributes an object',
    );
  });

  it('throws UnknownAttributeError for an unknown attribute or field', () => {
    expectThrows(
      () => jsonPatchToUpdates(host, current, [{ op: 'add', path: '/hwsepc', value: 'large' }]),
      UnknownAttributeError,
      'unknown attribute "hwsepc" for kind host (did you mean "hwspec"?)',
    );
    expectThrows(
      () => jsonPatchToUpdates(host, current, [{ op: 'add', path: '/interfaces/0/speed', value: 1000 }]),
      UnknownAttributeError,
      'unknown path "interfaces[eth0].speed" for kind host',
    );
  });

  it('refuses to patch present', () => {
    for (const patch of [
      [{ op: 'remove', path: '/present' }],
      [{ op: 'replace', path: '/present', value: false }],
    ]) {
      expectThrows(
        () => jsonPatchToUpdates(host, current, patch),
        InputError,
        '"present" cannot be patched: create or delete the node instead',
      );
    }
  });
});

describe('diffToUpdates', () => {
  it('unsets attributes that are gone without checking them against the schema', () => {
    expect(diffToUpdates(host, { hostname: 'web-01', hwspec: 'small' }, { hostname: 'web-01' })).toEqual([
      { path: 'hwspec', op: 'unset' },
    ]);
  });

  it('refuses to remove an attribute the kind does not have', () => {
    expectThrows(
      () => diffToUpdates(host, { legacy_id: 7 }, {}),
      UnknownAttributeError,
      'unknown attribute "legacy_id" for kind host',
    );
  });
});
