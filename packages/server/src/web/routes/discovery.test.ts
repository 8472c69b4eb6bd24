/** How discovery merges what several providers observed under one name into the node an adoption makes. */
import type { Attrs } from '@consortium/core';
import { provisioningWorld } from '@consortium/testkit';
import { describe, expect, it } from 'vitest';
import { adoptedAttrs } from './discovery.js';

const { schema } = provisioningWorld();

describe('adoptedAttrs', () => {
  it('merges map-list items field by field, each field from the provider with authority over it', () => {
    const observed = new Map<string, Attrs>([
      ['ipam', { subnet: 's1', interfaces: [{ name: 'eth0', ip: '10.1.2.34', mac: '52:54:00:00:00:99' }] }],
      [
        'libvirt',
        {
          hwspec: 'small',
          interfaces: [
            { name: 'eth0', mac: '52:54:00:00:00:01', ip: '10.9.9.9' },
            { name: 'eth1', mac: '52:54:00:00:00:02' },
          ],
        },
      ],
    ]);
    expect(adoptedAttrs(schema, observed)).toEqual({
      present: true,
      subnet: 's1',
      hwspec: 'small',
      interfaces: [
        { name: 'eth0', ip: '10.1.2.34', mac: '52:54:00:00:00:01' },
        { name: 'eth1', mac: '52:54:00:00:00:02' },
      ],
    });
  });

  it('takes an attribute from its authority whichever provider answered first, else from the first', () => {
    const first = new Map<string, Attrs>([
      ['libvirt', { datacenter: 'sha2', power: 'on', nickname: 'a' }],
      ['cmdb', { datacenter: 'pek1', power: 'off', nickname: 'b' }],
    ]);
    expect(adoptedAttrs(schema, first)).toEqual({
      present: true,
      datacenter: 'pek1',
      power: 'on',
      nickname: 'a',
    });
  });
});
