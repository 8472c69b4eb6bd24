import { describe, expect, it } from 'vitest';
import { interfaceFieldOf, interfaceOf } from './interfaces.js';

describe('interfaceOf', () => {
  it('finds the named item of the interfaces list, ignoring anything that is not one', () => {
    const node = { interfaces: [{ name: 'eth0', ip: '10.1.2.3' }, 'junk', { name: 'eth1' }] };
    expect(interfaceOf(node, 'eth0')).toEqual({ name: 'eth0', ip: '10.1.2.3' });
    expect(interfaceOf(node, 'eth1')).toEqual({ name: 'eth1' });
    expect(interfaceOf(node, 'eth2')).toBeUndefined();
    expect(interfaceOf({ interfaces: 'eth0' }, 'eth0')).toBeUndefined();
    expect(interfaceOf({}, 'eth0')).toBeUndefined();
  });
});

describe('interfaceFieldOf', () => {
  it.each([
    ['interfaces[eth0].mac', 'mac', 'eth0'],
    ['interfaces[eth1].mac', 'mac', 'eth1'],
    ['interfaces[eth0].ip', 'mac', undefined],
    ['interfaces[eth0]', 'mac', undefined],
    ['interfaces', 'mac', undefined],
    ['hwspec', 'mac', undefined],
    ['interfaces[eth0].mac.extra', 'mac', undefined],
  ])('%s, %s → %s', (path, field, expected) => {
    expect(interfaceFieldOf(path, field)).toBe(expected);
  });
});
