import { describe, expect, it } from 'vitest';
import type { JsonSchema } from '@consortium/core';
import {
  canonicalReferences,
  edgeDocuments,
  namesAt,
  nodeKey,
  referenceEdges,
  referencesOf,
} from './references.js';

const host: { kind: string; document: JsonSchema } = {
  kind: 'host',
  document: {
    type: 'object',
    properties: {
      datacenter: { type: 'string' },
      subnet: { type: 'string', 'x-ref': 'subnet' },
      peers: { type: 'array', items: { type: 'string', 'x-ref': 'host' } },
      interfaces: {
        type: 'array',
        items: {
          type: 'object',
          properties: { name: { type: 'string' }, vlan: { type: 'string', 'x-ref': 'vlan' } },
        },
      },
      labels: { type: 'object', properties: { rack: { type: 'string', 'x-ref': 'rack' } } },
    },
  },
};
const subnet = { kind: 'subnet', document: { type: 'object', properties: { vlan: { type: 'integer' } } } };

describe('referencesOf', () => {
  it('finds x-ref on strings, on list items and under objects and lists of objects', () => {
    expect(referencesOf([host, subnet])).toStrictEqual({
      host: { subnet: 'subnet', peers: 'host', 'interfaces.vlan': 'vlan', 'labels.rack': 'rack' },
    });
  });
});

describe('namesAt', () => {
  const attrs = {
    subnet: 'net-a',
    peers: ['web-01', 3, null, 'db-01'],
    interfaces: [{ vlan: 'v100' }, { vlan: null }, 'eth9', { vlan: ['v200', 'v300'] }],
    labels: { rack: 7 },
  };

  it.each<[string, string[]]>([
    ['subnet', ['net-a']],
    ['peers', ['web-01', 'db-01']],
    ['interfaces.vlan', ['v100', 'v200', 'v300']],
    ['labels.rack', []],
    ['missing', []],
    ['subnet.deeper', []],
  ])('%s holds %j', (field, names) => {
    expect(namesAt(attrs, field)).toStrictEqual(names);
  });
});

describe('referenceEdges', () => {
  it('gives one edge per name found at each reference field, duplicates once, fields in order', () => {
    const attrs = { subnet: 'net-a', peers: ['db-01', 'db-01', 'web-02'], interfaces: [{ vlan: 'v1' }] };
    expect(referenceEdges('host', attrs, referencesOf([host]))).toStrictEqual([
      { field: 'interfaces.vlan', toKind: 'vlan', toName: 'v1' },
      { field: 'peers', toKind: 'host', toName: 'db-01' },
      { field: 'peers', toKind: 'host', toName: 'web-02' },
      { field: 'subnet', toKind: 'subnet', toName: 'net-a' },
    ]);
  });

  it('gives none for a kind without references or without a map', () => {
    expect(referenceEdges('subnet', { vlan: 'x' }, referencesOf([host]))).toEqual([]);
    expect(referenceEdges('host', { subnet: 'net-a' }, undefined)).toEqual([]);
  });

  it('builds edge documents to the target node’s key, whether or not it exists', () => {
    expect(
      edgeDocuments('nodes', 'host', 'nodes/abc', { subnet: 'net-gone' }, { host: { subnet: 'subnet' } }),
    ).toStrictEqual([
      {
        _from: 'nodes/abc',
        _to: `nodes/${nodeKey('subnet', 'net-gone')}`,
        fromKind: 'host',
        field: 'subnet',
        toKind: 'subnet',
        toName: 'net-gone',
      },
    ]);
  });
});

describe('nodeKey', () => {
  it('is a valid _key that keeps kind and name apart', () => {
    expect(nodeKey('host', 'web-01')).toMatch(/^[0-9a-f]{64}$/);
    expect(nodeKey('ab', 'c')).not.toBe(nodeKey('a', 'bc'));
    expect(nodeKey('host', 'web/01 ü')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('canonicalReferences', () => {
  it('ignores key order and sees any change', () => {
    const a = { host: { subnet: 'subnet', peers: 'host' }, vm: { subnet: 'subnet' } };
    const b = { vm: { subnet: 'subnet' }, host: { peers: 'host', subnet: 'subnet' } };
    expect(canonicalReferences(a)).toBe(canonicalReferences(b));
    expect(canonicalReferences(a)).not.toBe(canonicalReferences({ ...a, vm: { subnet: 'vlan' } }));
  });
});
