/**
 * The filter cases every store adapter must answer alike: hosts with odd values on purpose, the nodes of other kinds
 * that reference hops lead to, and each filter with the hosts it finds. The store contract runs them against a real
 * store; the ArangoDB adapter also runs them through its compiler where no ArangoDB server is at hand.
 */
import type { Attrs, Filter } from '@consortium/core';

/** Hosts to search; `cache-01` holds the odd cases (a string rack, empty lists). */
export const FILTER_HOSTS: Readonly<Record<string, Attrs>> = {
  'web-01': {
    datacenter: 'pek1',
    rack: 3,
    enabled: true,
    hwspec: 'small',
    note: null,
    puppet_roles: ['nginx', 'base'],
    interfaces: [{ name: 'eth0', ip: '10.1.0.5', tags: ['uplink'] }, { name: 'eth1' }],
    labels: { team: 'web', tier: 1 },
    tag: 'a[b]c',
    subnet: 'net-a',
  },
  'web-02': {
    datacenter: 'pek1',
    rack: 7,
    enabled: false,
    hwspec: 'medium',
    puppet_roles: ['base'],
    interfaces: [{ name: 'eth0', ip: '10.1.0.6' }],
    labels: { team: 'web', tier: 2 },
    tag: 'abc',
    subnet: 'net-a',
  },
  'db-01': {
    datacenter: 'sha2',
    rack: 12,
    score: 2.5,
    hwspec: 'large',
    puppet_roles: ['postgres', 'base'],
    interfaces: [{ name: 'eth0', ip: null }],
    labels: { team: 'db', tier: 1 },
    disks: [{ partitions: [{ fs: 'ext4' }, { fs: 'xfs' }] }, { partitions: [] }],
    subnet: 'net-b',
  },
  'cache-01': {
    datacenter: 'sha2',
    rack: '3',
    hwspec: 'small',
    puppet_roles: [],
    interfaces: [],
    subnet: 'net-gone',
    peers: ['web-01', 'db-01'],
  },
};

/** Every host of `FILTER_HOSTS`, in name order. */
export const FILTER_ALL_HOSTS = ['cache-01', 'db-01', 'web-01', 'web-02'];

/** Nodes of other kinds beside the hosts: a referenced name in two kinds, and the subnets hops lead to. */
export const FILTER_OTHER_NODES: readonly (readonly [string, string, Attrs])[] = [
  ['vm', 'web-01', { datacenter: 'pek1' }],
  ['subnet', 'net-a', { vlan: 100, cidr: '10.1.0.0/24' }],
  ['subnet', 'net-b', { vlan: 200, cidr: '10.2.0.0/24' }],
  ['vm', 'net-b', { vlan: 100 }],
];

/** Filter cases over `FILTER_HOSTS` and `FILTER_OTHER_NODES`: a title, the filter, the host names it finds. */
export const FILTER_CASES: readonly (readonly [string, Filter, readonly string[]])[] = [
  ['eq on name', { op: 'eq', field: 'name', value: 'web-01' }, ['web-01']],
  ['eq on a string', { op: 'eq', field: 'datacenter', value: 'pek1' }, ['web-01', 'web-02']],
  ['eq on a number is type-strict', { op: 'eq', field: 'rack', value: 3 }, ['web-01']],
  ['eq on a string is type-strict', { op: 'eq', field: 'rack', value: '3' }, ['cache-01']],
  ['eq true', { op: 'eq', field: 'enabled', value: true }, ['web-01']],
  ['eq 1 is not true', { op: 'eq', field: 'enabled', value: 1 }, []],
  ['eq false', { op: 'eq', field: 'enabled', value: false }, ['web-02']],
  ['eq null matches null and missing', { op: 'eq', field: 'note', value: null }, FILTER_ALL_HOSTS],
  ['eq on an object path', { op: 'eq', field: 'labels.team', value: 'db' }, ['db-01']],
  ['eq on a number in an object', { op: 'eq', field: 'labels.tier', value: 1 }, ['db-01', 'web-01']],
  ['ne on a string', { op: 'ne', field: 'datacenter', value: 'pek1' }, ['cache-01', 'db-01']],
  [
    'ne includes missing values',
    { op: 'ne', field: 'enabled', value: true },
    ['cache-01', 'db-01', 'web-02'],
  ],
  ['ne on name', { op: 'ne', field: 'name', value: 'web-01' }, ['cache-01', 'db-01', 'web-02']],
  ['lt on a number', { op: 'lt', field: 'rack', value: 7 }, ['web-01']],
  ['le on a number', { op: 'le', field: 'rack', value: 7 }, ['web-01', 'web-02']],
  ['gt on a number', { op: 'gt', field: 'rack', value: 3 }, ['db-01', 'web-02']],
  ['ge on a number', { op: 'ge', field: 'rack', value: 12 }, ['db-01']],
  ['gt on a real', { op: 'gt', field: 'score', value: 2 }, ['db-01']],
  ['lt on a string compares strings only', { op: 'lt', field: 'rack', value: '5' }, ['cache-01']],
  ['gt on a string', { op: 'gt', field: 'datacenter', value: 'pek1' }, ['cache-01', 'db-01']],
  ['lt on name', { op: 'lt', field: 'name', value: 'db' }, ['cache-01']],
  ['ge on name', { op: 'ge', field: 'name', value: 'web-02' }, ['web-02']],
  [
    'in on a string',
    { op: 'in', field: 'hwspec', values: ['small', 'medium'] },
    ['cache-01', 'web-01', 'web-02'],
  ],
  ['in on name', { op: 'in', field: 'name', values: ['db-01', 'web-02', 'nope'] }, ['db-01', 'web-02']],
  ['in on numbers', { op: 'in', field: 'rack', values: [3, 12] }, ['db-01', 'web-01']],
  ['in with mixed types', { op: 'in', field: 'hwspec', values: [true, 'large', 3] }, ['db-01']],
  ['in nothing', { op: 'in', field: 'hwspec', values: [] }, []],
  ['has on a list', { op: 'has', field: 'puppet_roles', value: 'nginx' }, ['web-01']],
  [
    'has on several lists',
    { op: 'has', field: 'puppet_roles', value: 'base' },
    ['db-01', 'web-01', 'web-02'],
  ],
  ['has on a value that is not a list', { op: 'has', field: 'hwspec', value: 'small' }, []],
  ['has through an array', { op: 'has', field: 'interfaces.tags', value: 'uplink' }, ['web-01']],
  ['glob on name', { op: 'glob', field: 'name', pattern: 'web-*' }, ['web-01', 'web-02']],
  ['glob with ?', { op: 'glob', field: 'name', pattern: '?b-01' }, ['db-01']],
  ['glob is case-sensitive', { op: 'glob', field: 'name', pattern: 'WEB-*' }, []],
  ['glob treats [ literally', { op: 'glob', field: 'tag', pattern: 'a[b]*' }, ['web-01']],
  ['glob ? is one character', { op: 'glob', field: 'tag', pattern: 'a?c' }, ['web-02']],
  ['glob applies to strings only', { op: 'glob', field: 'rack', pattern: '*' }, ['cache-01']],
  [
    'glob through an array',
    { op: 'glob', field: 'interfaces.ip', pattern: '10.1.0.*' },
    ['web-01', 'web-02'],
  ],
  ['exists', { op: 'exists', field: 'rack' }, FILTER_ALL_HOSTS],
  ['exists holds for false', { op: 'exists', field: 'enabled' }, ['web-01', 'web-02']],
  ['exists fails for null', { op: 'exists', field: 'note' }, []],
  ['exists on name', { op: 'exists', field: 'name' }, FILTER_ALL_HOSTS],
  ['exists on an object path', { op: 'exists', field: 'labels.tier' }, ['db-01', 'web-01', 'web-02']],
  ['eq through an array', { op: 'eq', field: 'interfaces.ip', value: '10.1.0.6' }, ['web-02']],
  ['eq through an array, any item', { op: 'eq', field: 'interfaces.name', value: 'eth1' }, ['web-01']],
  ['eq null through an array', { op: 'eq', field: 'interfaces.ip', value: null }, ['db-01', 'web-01']],
  ['exists through an array', { op: 'exists', field: 'interfaces.ip' }, ['web-01', 'web-02']],
  [
    'ne through an array means no item equals',
    { op: 'ne', field: 'interfaces.name', value: 'eth1' },
    ['cache-01', 'db-01', 'web-02'],
  ],
  ['in through an array', { op: 'in', field: 'interfaces.ip', values: ['10.1.0.5', 'x'] }, ['web-01']],
  ['lt through an array', { op: 'lt', field: 'interfaces.ip', value: '10.1.0.6' }, ['web-01']],
  ['through two arrays', { op: 'eq', field: 'disks.partitions.fs', value: 'xfs' }, ['db-01']],
  ['exists through two arrays', { op: 'exists', field: 'disks.partitions.fs' }, ['db-01']],
  ['a path into a string finds nothing', { op: 'exists', field: 'hwspec.size' }, []],
  ['a path into strings in an array finds nothing', { op: 'exists', field: 'puppet_roles.x' }, []],
  ['a long path into a string finds null', { op: 'eq', field: 'hwspec.a.b', value: null }, FILTER_ALL_HOSTS],
  [
    'a path into strings in an array finds null once there is an item',
    { op: 'eq', field: 'puppet_roles.x', value: null },
    ['db-01', 'web-01', 'web-02'],
  ],
  [
    'and',
    {
      op: 'and',
      args: [
        { op: 'eq', field: 'datacenter', value: 'pek1' },
        { op: 'has', field: 'puppet_roles', value: 'nginx' },
      ],
    },
    ['web-01'],
  ],
  [
    'or',
    {
      op: 'or',
      args: [
        { op: 'eq', field: 'hwspec', value: 'large' },
        { op: 'eq', field: 'rack', value: 7 },
      ],
    },
    ['db-01', 'web-02'],
  ],
  ['not', { op: 'not', arg: { op: 'eq', field: 'datacenter', value: 'pek1' } }, ['cache-01', 'db-01']],
  [
    'not exists through an array',
    { op: 'not', arg: { op: 'exists', field: 'interfaces.ip' } },
    ['cache-01', 'db-01'],
  ],
  ['empty and holds', { op: 'and', args: [] }, FILTER_ALL_HOSTS],
  ['empty or fails', { op: 'or', args: [] }, []],
  [
    'nested and, or, not',
    {
      op: 'and',
      args: [
        {
          op: 'or',
          args: [
            { op: 'glob', field: 'name', pattern: 'web-*' },
            { op: 'eq', field: 'labels.team', value: 'db' },
          ],
        },
        { op: 'not', arg: { op: 'eq', field: 'enabled', value: false } },
        { op: 'has', field: 'puppet_roles', value: 'base' },
      ],
    },
    ['db-01', 'web-01'],
  ],
  ['values are never SQL', { op: 'eq', field: 'name', value: "' OR '1'='1" }, []],
  ['cidr through an array', { op: 'cidr', field: 'interfaces.ip', cidr: '10.0.0.0/8' }, ['web-01', 'web-02']],
  ['cidr on a small network', { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.4/31' }, ['web-01']],
  ['cidr /32', { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.6/32' }, ['web-02']],
  [
    'cidr with host bits set',
    { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.7/30' },
    ['web-01', 'web-02'],
  ],
  ['cidr outside', { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.0/30' }, []],
  ['cidr on strings that are not addresses', { op: 'cidr', field: 'datacenter', cidr: '0.0.0.0/0' }, []],
  [
    'not cidr includes nodes without addresses',
    { op: 'not', arg: { op: 'cidr', field: 'interfaces.ip', cidr: '10.1.0.6/32' } },
    ['cache-01', 'db-01', 'web-01'],
  ],
  [
    'ref: one hop to the named node',
    { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value: 100 } },
    ['web-01', 'web-02'],
  ],
  [
    'ref to a node that does not exist holds for nothing',
    { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'and', args: [] } },
    ['db-01', 'web-01', 'web-02'],
  ],
  [
    'ref finds nodes of the named kind only',
    { op: 'ref', field: 'subnet', kind: 'vm', filter: { op: 'eq', field: 'vlan', value: 100 } },
    ['db-01'],
  ],
  [
    'ref through a list of names',
    {
      op: 'ref',
      field: 'peers',
      kind: 'host',
      filter: { op: 'eq', field: 'datacenter', value: 'sha2' },
    },
    ['cache-01'],
  ],
  [
    'ref with cidr on the referenced node',
    {
      op: 'ref',
      field: 'subnet',
      kind: 'subnet',
      filter: { op: 'glob', field: 'cidr', pattern: '10.2.*' },
    },
    ['db-01'],
  ],
  [
    'not ref',
    {
      op: 'not',
      arg: {
        op: 'ref',
        field: 'subnet',
        kind: 'subnet',
        filter: { op: 'eq', field: 'vlan', value: 100 },
      },
    },
    ['cache-01', 'db-01'],
  ],
];
