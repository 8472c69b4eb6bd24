import { describe, expect, it } from 'vitest';
import {
  ClaimConflictError,
  InputError,
  InvalidClaimError,
  InvalidNameError,
  NotFoundError,
  SchemaViolationError,
  UnknownAttributeError,
} from './errors.js';
import {
  HOST,
  INTERFACES_SCHEMA,
  IPV4_PATTERN,
  MAC_PATTERN,
  expectThrows,
  hostDeclarations,
  hostSchema,
} from '@consortium/testkit';
import type { Attrs } from './model.js';
import type { Path } from './paths.js';
import { formatPath, parsePath } from './paths.js';
import type { AttributeClaim, JsonSchema, ProviderDeclaration } from './schema.js';
import {
  buildKindSchemas,
  closestMatch,
  DEFAULT_MAX_ITEMS,
  DEFAULT_MAX_LENGTH,
  DEFAULT_MAX_PROPERTIES,
  formatSchemaErrors,
  kindSchemaOf,
} from './schema.js';

/** The host declarations with `claim` added to the claims of `provider`. */
function withClaim(provider: string, claim: AttributeClaim): ProviderDeclaration[] {
  return hostDeclarations().map((d) => (d.name === provider ? { ...d, claims: [...d.claims, claim] } : d));
}

const host = hostSchema();
const path = (text: string): Path => parsePath(text);
const property = (schema: JsonSchema, name: string): JsonSchema =>
  (schema['properties'] as Record<string, JsonSchema>)[name]!;

const webHost: Attrs = {
  present: true,
  hostname: 'web-01',
  datacenter: 'pek1',
  hwspec: 'small',
  power: 'on',
  hypervisor: 'hv-3',
  subnet: 'pek1-web',
  netboot: true,
  profile: 'debian-12',
  puppet_roles: ['base', 'nginx'],
  ntp_servers: ['10.0.0.1', '10.0.0.2'],
  interfaces: [{ name: 'eth0', vlan: 20, mac: '52:54:00:12:34:56', ip: '10.1.2.34' }],
  bmc: { address: '10.9.0.7', user: 'admin', password: 'correct horse' },
};

describe('the compiled host document', () => {
  const doc = host.document;
  const props = doc['properties'] as Record<string, JsonSchema>;

  it('is a closed 2020-12 object schema named after the kind', () => {
    expect(doc['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(doc['title']).toBe('host');
    expect(doc['description']).toBe('a physical or virtual machine');
    expect(doc['type']).toBe('object');
    expect(doc['additionalProperties']).toBe(false);
  });

  it('has every claimed attribute plus the core-owned present', () => {
    expect(Object.keys(props).sort()).toEqual([
      'bmc',
      'datacenter',
      'hostname',
      'hwspec',
      'hypervisor',
      'interfaces',
      'netboot',
      'ntp_servers',
      'power',
      'present',
      'profile',
      'puppet_roles',
      'subnet',
    ]);
    expect(host.attributes).toEqual(Object.keys(props).sort());
    expect(host.providers).toEqual(['cobbler', 'inventory', 'ipam', 'libvirt', 'vault']);
    expect(host.kind).toBe('host');
  });

  it.each([
    ['present', 'core'],
    ['hostname', 'inventory'],
    ['datacenter', 'inventory'],
    ['puppet_roles', 'inventory'],
    ['interfaces', 'inventory'],
    ['bmc', 'inventory'],
    ['hwspec', 'libvirt'],
    ['power', 'libvirt'],
    ['hypervisor', 'libvirt'],
    ['subnet', 'ipam'],
    ['netboot', 'cobbler'],
    ['profile', 'cobbler'],
  ])('annotates %s with x-authority %s', (name, owner) => {
    expect(props[name]!['x-authority']).toBe(owner);
  });

  it('annotates sub-path claims where they are inserted', () => {
    const items = props['interfaces']!['items'] as JsonSchema;
    expect(property(items, 'mac')).toEqual({
      type: 'string',
      pattern: MAC_PATTERN,
      maxLength: DEFAULT_MAX_LENGTH,
      'x-authority': 'libvirt',
    });
    expect(property(items, 'ip')).toEqual({
      type: 'string',
      pattern: IPV4_PATTERN,
      maxLength: DEFAULT_MAX_LENGTH,
      'x-authority': 'ipam',
    });
    expect(property(items, 'name')).toEqual({ type: 'string', maxLength: DEFAULT_MAX_LENGTH });
    expect(Object.keys(items['properties'] as object)).toEqual(['name', 'vlan', 'ip', 'mac']);
    expect(property(props['bmc']!, 'password')).toEqual({
      type: 'string',
      minLength: 8,
      maxLength: DEFAULT_MAX_LENGTH,
      'x-authority': 'vault',
    });
  });

  it('annotates watchers, observers and the implicit watch of every provider on present', () => {
    expect(props['hostname']!['x-watchers']).toEqual(['cobbler']);
    expect(props['hostname']!['x-observers']).toEqual(['libvirt']);
    expect(props['interfaces']!['x-watchers']).toEqual(['cobbler']);
    expect(props['present']!['x-watchers']).toEqual(['cobbler', 'inventory', 'ipam', 'libvirt', 'vault']);
    expect(props['hwspec']).not.toHaveProperty('x-watchers');
    expect(props['hwspec']).not.toHaveProperty('x-observers');
  });

  it('does not modify the claims it was built from', () => {
    const declarations = hostDeclarations();
    const before = structuredClone(declarations);
    buildKindSchemas([HOST], declarations);
    expect(declarations).toEqual(before);
    expect(INTERFACES_SCHEMA).not.toHaveProperty('x-authority');
    expect(Object.keys((INTERFACES_SCHEMA['items'] as JsonSchema)['properties'] as object)).toEqual([
      'name',
      'vlan',
    ]);
  });

  it('builds an independent document for each kind', () => {
    const schemas = buildKindSchemas(
      [{ name: 'host' }, { name: 'subnet' }],
      [
        ...hostDeclarations(),
        { name: 'ipam', kind: 'subnet', claims: [{ path: 'cidr', schema: { type: 'string' } }] },
      ],
    );
    const subnet = kindSchemaOf(schemas, 'subnet');
    expect(subnet.attributes).toEqual(['cidr', 'present']);
    expect(subnet.providers).toEqual(['ipam']);
    expect(subnet.document['title']).toBe('subnet');
    expect(subnet.document).not.toHaveProperty('description');
    expect(kindSchemaOf(schemas, 'host').attributes).toContain('hwspec');
  });
});

describe('authorityOf', () => {
  it.each([
    ['hwspec', 'libvirt'],
    ['present', 'core'],
    ['hostname', 'inventory'],
    ['interfaces', 'inventory'],
    ['interfaces[eth0]', 'inventory'],
    ['interfaces[eth0].name', 'inventory'],
    ['interfaces[eth0].vlan', 'inventory'],
    ['interfaces[eth0].mac', 'libvirt'],
    ['interfaces[bond0.100].mac', 'libvirt'],
    ['interfaces[eth0].ip', 'ipam'],
    ['bmc', 'inventory'],
    ['bmc.address', 'inventory'],
    ['bmc.password', 'vault'],
    ['subnet', 'ipam'],
    ['netboot', 'cobbler'],
  ])('%s is owned by %s', (text, owner) => {
    expect(host.authorityOf(path(text))).toBe(owner);
  });

  it('gives a pattern the same owner as the concrete path', () => {
    expect(host.authorityOf(parsePath('interfaces[*].mac', { allowWildcard: true }))).toBe('libvirt');
  });

  it('throws UnknownAttributeError for a path nobody owns', () => {
    const error = expectThrows(
      () => host.authorityOf(path('colour')),
      UnknownAttributeError,
      'no provider has authority over "colour" for kind host',
    );
    expect(error.details).toEqual({ kind: 'host', path: 'colour' });
  });
});

describe('subAuthorities', () => {
  it.each([
    ['interfaces', ['ipam', 'libvirt']],
    ['interfaces[eth0]', ['ipam', 'libvirt']],
    ['interfaces[eth0].mac', []],
    ['bmc', ['vault']],
    ['hwspec', []],
    ['present', []],
  ])('below %s: %j', (text, owners) => {
    expect(host.subAuthorities(path(text))).toEqual(owners);
  });
});

describe('watchersOf', () => {
  const watchers = (text: string): string[] =>
    host.watchersOf(path(text)).map((watch) => `${watch.provider}:${watch.path}`);

  it('lists every declared watch, including the implicit ones on present', () => {
    expect(host.watches.map((watch) => `${watch.provider}:${watch.path}`)).toEqual([
      'inventory:present',
      'libvirt:present',
      'ipam:present',
      'cobbler:present',
      'cobbler:hostname',
      'cobbler:interfaces',
      'vault:present',
    ]);
  });

  it.each([
    ['hostname', ['cobbler:hostname']],
    ['interfaces', ['cobbler:interfaces']],
    ['interfaces[eth0]', ['cobbler:interfaces']],
    ['interfaces[eth0].mac', ['cobbler:interfaces']],
    ['interfaces[eth1].ip', ['cobbler:interfaces']],
    ['hwspec', []],
    ['bmc.password', []],
    ['present', ['inventory:present', 'libvirt:present', 'ipam:present', 'cobbler:present', 'vault:present']],
  ])('a change at %s triggers %j', (text, expected) => {
    expect(watchers(text)).toEqual(expected);
  });

  it('fires for a change above a sub-path watch', () => {
    const schema = hostSchema(
      hostDeclarations().map((d) => (d.name === 'cobbler' ? { ...d, watches: ['interfaces[*].mac'] } : d)),
    );
    const fired = (text: string): string[] =>
      schema.watchersOf(path(text)).map((w) => `${w.provider}:${w.path}`);
    expect(fired('interfaces[eth0].mac')).toEqual(['cobbler:interfaces[*].mac']);
    expect(fired('interfaces[eth0]')).toEqual(['cobbler:interfaces[*].mac']);
    expect(fired('interfaces')).toEqual(['cobbler:interfaces[*].mac']);
    expect(fired('interfaces[eth0].ip')).toEqual([]);
    const items = property(schema.document, 'interfaces')['items'] as JsonSchema;
    expect(property(items, 'mac')['x-watchers']).toEqual(['cobbler']);
  });
});

describe('schemaAt and listSemanticsAt', () => {
  it('walks properties and map items', () => {
    expect(host.schemaAt(path('interfaces[eth0].mac'))).toEqual({
      type: 'string',
      pattern: MAC_PATTERN,
      maxLength: DEFAULT_MAX_LENGTH,
      'x-authority': 'libvirt',
    });
    expect(host.schemaAt(path('interfaces[eth0]'))?.['type']).toBe('object');
    expect(host.schemaAt(path('bmc.user'))).toEqual({ type: 'string', maxLength: DEFAULT_MAX_LENGTH });
  });

  it.each([
    ['nope'],
    ['hwspec.size'],
    ['interfaces[eth0].speed'],
    ['puppet_roles[web]'],
    ['bmc[x]'],
    ['hostname.short'],
  ])('has no schema at %s', (text) => {
    expect(host.schemaAt(path(text))).toBeUndefined();
  });

  it.each([
    ['puppet_roles', { type: 'set' }],
    ['interfaces', { type: 'map', key: 'name' }],
    ['ntp_servers', { type: 'atomic' }],
    ['hwspec', undefined],
    ['bmc', undefined],
    ['interfaces[eth0]', undefined],
    ['interfaces[eth0].mac', undefined],
    ['nope', undefined],
  ])('%s merges as %j', (text, semantics) => {
    expect(host.listSemanticsAt(path(text))).toEqual(semantics);
  });

  it('honours an explicit x-list-type: atomic', () => {
    const schema = hostSchema(
      withClaim('cobbler', {
        path: 'kernel_options',
        schema: { type: 'array', items: { type: 'string' }, 'x-list-type': 'atomic' },
      }),
    );
    expect(schema.listSemanticsAt(path('kernel_options'))).toEqual({ type: 'atomic' });
  });
});

describe('checkValue', () => {
  it.each<[string, unknown]>([
    ['hwspec', 'small'],
    ['power', 'off'],
    ['interfaces[eth0].mac', '52:54:00:12:34:56'],
    ['interfaces[eth0].ip', '10.1.2.34'],
    ['interfaces[eth0].vlan', 4094],
    ['interfaces[eth0]', { name: 'eth0', mac: '52:54:00:12:34:56', ip: '10.1.2.34' }],
    ['interfaces', [{ name: 'eth0' }, { name: 'eth1', ip: '10.1.2.35' }]],
    ['puppet_roles', ['base']],
    ['bmc', { address: '10.9.0.7', password: 'long enough' }],
    ['present', false],
  ])('accepts %s = %j', (text, value) => {
    expect(host.checkValue(path(text), value as Attrs)).toEqual([]);
  });

  it.each<[string, unknown, string[]]>([
    ['hwspec', 'huge', ['/hwspec: must be equal to one of the allowed values (["small","medium","large"])']],
    ['interfaces[eth0].mac', 'not-a-mac', [`/interfaces[eth0].mac: must match pattern "${MAC_PATTERN}"`]],
    [
      'interfaces[eth0]',
      { name: 'eth0', speed: 10 },
      ['/interfaces[eth0]: must NOT have additional properties (speed)'],
    ],
    [
      'interfaces[eth0]',
      { mac: 1 },
      ["/interfaces[eth0]: must have required property 'name'", '/interfaces[eth0]/mac: must be string'],
    ],
    ['interfaces[eth0].vlan', 4095, ['/interfaces[eth0].vlan: must be <= 4094']],
    ['puppet_roles', 'nginx', ['/puppet_roles: must be array']],
    ['bmc.password', 'short', ['/bmc.password: must NOT have fewer than 8 characters']],
    ['nope', 1, ['unknown path nope']],
  ])('rejects %s = %j', (text, value, problems) => {
    expect(host.checkValue(path(text), value as Attrs)).toEqual(problems);
  });

  it('uses one validator per pattern, whatever the item key', () => {
    expect(host.checkValue(path('interfaces[eth0].mac'), 'zz')).toHaveLength(1);
    expect(host.checkValue(path('interfaces[eth1].mac'), '52:54:00:12:34:56')).toEqual([]);
    expect(host.checkValue(path('interfaces[eth1].mac'), 'zz')).toEqual([
      `/interfaces[eth1].mac: must match pattern "${MAC_PATTERN}"`,
    ]);
  });
});

describe('assertValid', () => {
  it('accepts a complete host, including fields inserted by sub-path claims', () => {
    expect(() => {
      host.assertValid(webHost);
    }).not.toThrow();
    expect(() => {
      host.assertValid({});
    }).not.toThrow();
  });

  it('throws SchemaViolationError listing every violation', () => {
    const attrs = {
      ...webHost,
      hwspec: 'huge',
      hwsepc: 'small',
      interfaces: [{ name: 'eth0', mac: 'nope', speed: 10 }],
    };
    const error = expectThrows(
      () => {
        host.assertValid(attrs);
      },
      SchemaViolationError,
      'host attributes violate the schema: /: must NOT have additional properties (hwsepc); ' +
        '/hwspec: must be equal to one of the allowed values (["small","medium","large"]); ' +
        '/interfaces/0: must NOT have additional properties (speed); ' +
        `/interfaces/0/mac: must match pattern "${MAC_PATTERN}"`,
    );
    expect(error.details).toEqual({
      kind: 'host',
      errors: [
        '/: must NOT have additional properties (hwsepc)',
        '/hwspec: must be equal to one of the allowed values (["small","medium","large"])',
        '/interfaces/0: must NOT have additional properties (speed)',
        `/interfaces/0/mac: must match pattern "${MAC_PATTERN}"`,
      ],
    });
  });

  it('rejects a map-list item without its key and a wrong type for present', () => {
    expectThrows(
      () => {
        host.assertValid({ present: 'yes', interfaces: [{ mac: '52:54:00:12:34:56' }] });
      },
      SchemaViolationError,
      "host attributes violate the schema: /present: must be boolean; /interfaces/0: must have required property 'name'",
    );
  });
});

describe('resolvePath', () => {
  it('parses a known path', () => {
    expect(formatPath(host.resolvePath('interfaces[eth0].mac'))).toBe('interfaces[eth0].mac');
    expect(host.resolvePath('hwspec')).toEqual([{ prop: 'hwspec' }]);
  });

  it('suggests the attribute an operator probably meant', () => {
    const error = expectThrows(
      () => host.resolvePath('hwsepc'),
      UnknownAttributeError,
      'unknown attribute "hwsepc" for kind host (did you mean "hwspec"?)',
    );
    expect(error.details).toEqual({ kind: 'host', path: 'hwsepc', suggestion: 'hwspec' });
    expectThrows(
      () => host.resolvePath('hostnme'),
      UnknownAttributeError,
      'unknown attribute "hostnme" for kind host (did you mean "hostname"?)',
    );
    expectThrows(
      () => host.resolvePath('interface[eth0].mac'),
      UnknownAttributeError,
      'unknown attribute "interface" for kind host (did you mean "interfaces"?)',
    );
  });

  it('makes no suggestion when nothing is close', () => {
    const error = expectThrows(
      () => host.resolvePath('colour'),
      UnknownAttributeError,
      'unknown attribute "colour" for kind host',
    );
    expect(error.details).toEqual({ kind: 'host', path: 'colour' });
  });

  it.each([['interfaces[eth0].speed'], ['hwspec.size'], ['puppet_roles[nginx]'], ['bmc.pasword']])(
    'rejects the unknown path %s under a known attribute',
    (text) => {
      expectThrows(
        () => host.resolvePath(text),
        UnknownAttributeError,
        `unknown path "${text}" for kind host`,
      );
    },
  );

  it('rejects malformed paths and wildcards with InputError', () => {
    expectThrows(
      () => host.resolvePath('interfaces[*].mac'),
      InputError,
      `invalid path "interfaces[*].mac": wildcard '[*]' is only allowed in patterns at offset 10`,
    );
    expectThrows(
      () => host.resolvePath('HWSPEC'),
      InputError,
      `invalid path "HWSPEC": expected an attribute name (a-z, 0-9, '_') but found "HWSPEC" at offset 0`,
    );
  });
});

describe('closestMatch', () => {
  it.each<[string, string | undefined]>([
    ['hwsepc', 'hwspec'],
    ['hwspce', 'hwspec'],
    ['hwspec', 'hwspec'],
    ['powr', 'power'],
    ['subnets', 'subnet'],
    ['xyz', undefined],
    ['', undefined],
  ])('%j -> %j', (word, expected) => {
    expect(closestMatch(word, host.attributes)).toBe(expected);
  });

  it('allows more edits for longer words', () => {
    expect(closestMatch('puppetroels', ['puppet_roles'])).toBe('puppet_roles');
    expect(closestMatch('ab', ['xy'])).toBe('xy');
    expect(closestMatch('ab', ['xyz'])).toBeUndefined();
  });
});

describe('formatSchemaErrors', () => {
  it('formats nothing as nothing', () => {
    expect(formatSchemaErrors(null)).toEqual([]);
    expect(formatSchemaErrors(undefined)).toEqual([]);
  });
});

describe('kindSchemaOf', () => {
  it('throws NotFoundError naming the known kinds', () => {
    const schemas = buildKindSchemas([{ name: 'host' }, { name: 'vip' }], hostDeclarations());
    const error = expectThrows(
      () => kindSchemaOf(schemas, 'vm'),
      NotFoundError,
      'unknown kind "vm" (known: host, vip)',
    );
    expect(error.details).toEqual({ kind: 'vm' });
  });
});

describe('start-up errors', () => {
  it('names both providers when two claim authority over one attribute', () => {
    const error = expectThrows(
      () =>
        hostSchema([
          ...hostDeclarations(),
          { name: 'cmdb', kind: 'host', claims: [{ path: 'hwspec', schema: { type: 'string' } }] },
        ]),
      ClaimConflictError,
      'kind host: providers cmdb and libvirt both claim authority over "hwspec"',
    );
    expect(error.details).toEqual({ kind: 'host', path: 'hwspec', providers: ['cmdb', 'libvirt'] });
  });

  it('names both providers when two claim authority over one sub-path', () => {
    expectThrows(
      () => hostSchema(withClaim('ipam', { path: 'interfaces[*].mac', schema: { type: 'string' } })),
      ClaimConflictError,
      'kind host: providers ipam and libvirt both claim authority over "interfaces[*].mac"',
    );
  });

  it('accepts a second provider on a path when it only observes', () => {
    const schema = hostSchema(withClaim('cobbler', { path: 'hwspec', authority: false }));
    expect(schema.authorityOf(path('hwspec'))).toBe('libvirt');
    expect(property(schema.document, 'hwspec')['x-observers']).toEqual(['cobbler']);
  });

  it('rejects an invalid schema', () => {
    const error = expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'kernel', schema: { type: 'string', maxLen: 3 } })),
      InvalidClaimError,
      'provider cobbler: claim "kernel" has an invalid schema: strict mode: unknown keyword: "maxLen"',
    );
    expect(error.details).toEqual({ provider: 'cobbler', path: 'kernel' });
    expect(error.cause).toBeInstanceOf(Error);
    expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'kernel', schema: { type: 'strin' } })),
      InvalidClaimError,
      'provider cobbler: claim "kernel" has an invalid schema: schema is invalid: data/type must be equal to one of the allowed values, data/type must be array, data/type must match a schema in anyOf',
    );
  });

  it('rejects a watch on a path nobody provides', () => {
    const watching = (watches: string[]): ProviderDeclaration[] =>
      hostDeclarations().map((d) => (d.name === 'cobbler' ? { ...d, watches } : d));
    const error = expectThrows(
      () => hostSchema(watching(['hostnme'])),
      InvalidClaimError,
      'kind host: provider cobbler watches "hostnme", which no provider provides',
    );
    expect(error.details).toEqual({ kind: 'host', provider: 'cobbler', path: 'hostnme' });
    expectThrows(
      () => hostSchema(watching(['interfaces[*].speed'])),
      InvalidClaimError,
      'kind host: provider cobbler watches "interfaces[*].speed", which no provider provides',
    );
    expectThrows(
      () => hostSchema(watching(['interfaces[eth0'])),
      InvalidClaimError,
      `provider cobbler: watch invalid path "interfaces[eth0": unclosed '[' at offset 10`,
    );
  });

  it('rejects a sub-path claim with no parent', () => {
    const error = expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'dns.zone', schema: { type: 'string' } })),
      InvalidClaimError,
      'provider cobbler: claim "dns.zone" cannot be placed: its parent "dns" is not provided',
    );
    expect(error.details).toEqual({ provider: 'cobbler', path: 'dns.zone' });
  });

  it('rejects a sub-path claim under a list that is not a map list, or under a non-object', () => {
    expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'puppet_roles[*].name', schema: { type: 'string' } })),
      InvalidClaimError,
      'provider cobbler: claim "puppet_roles[*].name" cannot be placed: [*] is only allowed on map lists (x-list-type: map)',
    );
    expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'hostname.short', schema: { type: 'string' } })),
      InvalidClaimError,
      'provider cobbler: claim "hostname.short" cannot be placed: its parent is not an object',
    );
  });

  it('rejects a path with only observers and no owner', () => {
    const error = expectThrows(
      () =>
        hostSchema([
          ...hostDeclarations(),
          {
            name: 'monitoring',
            kind: 'host',
            claims: [{ path: 'serial', schema: { type: 'string' }, authority: false }],
          },
          { name: 'dcim', kind: 'host', claims: [{ path: 'serial', authority: false }] },
        ]),
      InvalidClaimError,
      'kind host: no provider has authority over "serial" (observed by dcim, monitoring)',
    );
    expect(error.details).toEqual({ kind: 'host', path: 'serial', providers: ['dcim', 'monitoring'] });
  });

  it('rejects an authority claim without a schema', () => {
    expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'kernel' })),
      InvalidClaimError,
      'provider cobbler: claim "kernel" has authority but no schema',
    );
  });

  it('rejects claims for an unknown kind', () => {
    const error = expectThrows(
      () => buildKindSchemas([HOST], [...hostDeclarations(), { name: 'libvirt', kind: 'vm', claims: [] }]),
      InvalidClaimError,
      'provider libvirt declares claims for unknown kind "vm"',
    );
    expect(error.details).toEqual({ provider: 'libvirt', kind: 'vm' });
  });

  it('rejects a map list with two map keys', () => {
    const schema = {
      ...INTERFACES_SCHEMA,
      'x-list-map-keys': ['name', 'mac'],
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, mac: { type: 'string' } },
        required: ['name', 'mac'],
      },
    };
    expectThrows(
      () => hostSchema([{ name: 'inventory', kind: 'host', claims: [{ path: 'interfaces', schema }] }]),
      InvalidClaimError,
      'provider inventory: claim "interfaces": x-list-map-keys at interfaces must name exactly one key field',
    );
  });

  it.each<[string, JsonSchema, string]>([
    [
      'no map keys',
      { type: 'array', 'x-list-type': 'map', items: { type: 'object' } },
      'x-list-map-keys at interfaces must name exactly one key field',
    ],
    [
      'a key that is not required',
      {
        type: 'array',
        'x-list-type': 'map',
        'x-list-map-keys': ['name'],
        items: { type: 'object', properties: { name: { type: 'string' } } },
      },
      'map list at interfaces needs items with a required string property "name"',
    ],
    [
      'a key that is not a string',
      {
        type: 'array',
        'x-list-type': 'map',
        'x-list-map-keys': ['index'],
        items: { type: 'object', properties: { index: { type: 'integer' } }, required: ['index'] },
      },
      'map list at interfaces needs items with a required string property "index"',
    ],
    [
      'x-list-type on a non-array',
      { type: 'string', 'x-list-type': 'set' },
      'x-list-type at interfaces needs "type": "array"',
    ],
    [
      'an unknown list type',
      { type: 'array', items: { type: 'string' }, 'x-list-type': 'bag' },
      'x-list-type at interfaces must be atomic, set or map',
    ],
    [
      'a nested list with a bad annotation',
      {
        type: 'array',
        'x-list-type': 'map',
        'x-list-map-keys': ['name'],
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            vlans: { type: 'array', items: { type: 'integer' }, 'x-list-type': 'map' },
          },
          required: ['name'],
        },
      },
      'x-list-map-keys at interfaces[].vlans must name exactly one key field',
    ],
    [
      'a reference that is not a string',
      { type: 'integer', 'x-ref': 'host' },
      'x-ref at interfaces needs "type": "string" (a node name)',
    ],
    [
      'a reference to an unknown kind',
      { type: 'array', items: { type: 'string', 'x-ref': 'rack' } },
      'x-ref at interfaces[] must name a kind',
    ],
  ])('rejects list annotations with %s', (_, schema, why) => {
    expectThrows(
      () => hostSchema([{ name: 'inventory', kind: 'host', claims: [{ path: 'interfaces', schema }] }]),
      InvalidClaimError,
      `provider inventory: claim "interfaces": ${why}`,
    );
  });

  it('rejects claims on present, on a list item, and with a malformed path', () => {
    expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'present', schema: { type: 'boolean' } })),
      InvalidClaimError,
      'provider cobbler: "present" belongs to the core',
    );
    expectThrows(
      () => hostSchema(withClaim('libvirt', { path: 'interfaces[*]', schema: { type: 'object' } })),
      InvalidClaimError,
      'provider libvirt: claim "interfaces[*]" must end in a field, not a list item',
    );
    const error = expectThrows(
      () => hostSchema(withClaim('cobbler', { path: 'Kernel', schema: { type: 'string' } })),
      InvalidClaimError,
      `provider cobbler: invalid path "Kernel": expected an attribute name (a-z, 0-9, '_') but found "Kernel" at offset 0`,
    );
    expect(error.cause).toBeInstanceOf(InputError);
  });

  it('rejects reserved and duplicate provider names', () => {
    for (const name of ['core', 'user']) {
      expectThrows(
        () => hostSchema([...hostDeclarations(), { name, kind: 'host', claims: [] }]),
        InvalidClaimError,
        `provider name "${name}" is reserved`,
      );
    }
    expectThrows(
      () => hostSchema([...hostDeclarations(), { name: 'ipam', kind: 'host', claims: [] }]),
      InvalidClaimError,
      'provider ipam is declared twice for kind host',
    );
  });

  it('rejects an invalid kind name', () => {
    expectThrows(
      () => buildKindSchemas([{ name: 'Host' }], []),
      InvalidNameError,
      `invalid kind "Host": must start with a letter and use only a-z, 0-9 and '-' (at most 63 characters)`,
    );
  });
});

describe('limits on what a node may hold', () => {
  /** A host kind like the real inventory's: open interface items composed from sub-path claims, a free-form map. */
  const open = hostSchema([
    ...hostDeclarations().filter((d) => d.name !== 'inventory'),
    {
      name: 'inventory',
      kind: 'host',
      claims: [
        { path: 'hostname', schema: { type: 'string' } },
        { path: 'puppet_roles', schema: { type: 'array', items: { type: 'string' }, 'x-list-type': 'set' } },
        { path: 'ntp_servers', schema: { type: 'array', items: { type: 'string' }, maxItems: 5_000 } },
        { path: 'notes', schema: { type: 'string', maxLength: 4_096 } },
        { path: 'labels', schema: { type: 'object', additionalProperties: { type: 'string' } } },
        {
          path: 'interfaces',
          schema: {
            type: 'array',
            'x-list-type': 'map',
            'x-list-map-keys': ['name'],
            items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
          },
        },
        { path: 'bmc', schema: { type: 'object', properties: { user: { type: 'string' } } } },
      ],
    },
  ]);
  const names = (n: number, prefix = 'x'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it('has documented defaults', () => {
    expect([DEFAULT_MAX_ITEMS, DEFAULT_MAX_LENGTH, DEFAULT_MAX_PROPERTIES]).toEqual([1_000, 1_024, 256]);
  });

  it.each<[string, Attrs, string]>([
    ['a set list', { puppet_roles: names(1_001) }, '/puppet_roles: must NOT have more than 1000 items'],
    ['a string', { hostname: 'h'.repeat(1_025) }, '/hostname: must NOT have more than 1024 characters'],
    [
      'a string inside list items',
      { puppet_roles: ['r'.repeat(1_025)] },
      '/puppet_roles/0: must NOT have more than 1024 characters',
    ],
    [
      'a free-form object',
      { labels: Object.fromEntries(names(257).map((k) => [k, 'v'])) },
      '/labels: must NOT have more than 256 properties',
    ],
    [
      'a claim’s own maxItems',
      { ntp_servers: names(5_001) },
      '/ntp_servers: must NOT have more than 5000 items',
    ],
    [
      'a claim’s own maxLength',
      { notes: 'n'.repeat(4_097) },
      '/notes: must NOT have more than 4096 characters',
    ],
    [
      'a map list’s items',
      { interfaces: names(1_001, 'eth').map((name) => ({ name })) },
      '/interfaces: must NOT have more than 1000 items',
    ],
  ])('refuses more than the limit in %s, naming the attribute and the limit', (_, attrs, problem) => {
    expectThrows(
      () => {
        open.assertValid(attrs);
      },
      SchemaViolationError,
      `host attributes violate the schema: ${problem}`,
    );
  });

  it('accepts exactly the limit, and a claim’s own larger limit', () => {
    expect(() => {
      open.assertValid({
        puppet_roles: names(1_000),
        hostname: 'h'.repeat(1_024),
        ntp_servers: names(5_000),
        notes: 'n'.repeat(4_096),
        labels: Object.fromEntries(names(256).map((k) => [k, 'v'])),
      });
    }).not.toThrow();
  });

  it('lists the first 20 violations and counts the rest', () => {
    const error = expectThrows(
      () => {
        open.assertValid({ puppet_roles: names(50).map((n) => n.padEnd(1_025, '-')) });
      },
      SchemaViolationError,
      `host attributes violate the schema: ${names(20)
        .map((_, i) => `/puppet_roles/${i}: must NOT have more than 1024 characters`)
        .join('; ')}; and 30 more violations`,
    );
    expect((error.details as { errors: string[] }).errors).toHaveLength(21);
  });

  it('refuses fields nobody claims inside items composed from sub-path claims, naming the field', () => {
    expect(() => {
      open.assertValid({ interfaces: [{ name: 'eth0', mac: '52:54:00:12:34:56', ip: '10.0.0.5' }] });
    }).not.toThrow();
    expectThrows(
      () => {
        open.assertValid({ interfaces: [{ name: 'eth0', ip: '10.0.0.5', speed: 10 }] });
      },
      SchemaViolationError,
      'host attributes violate the schema: /interfaces/0: must NOT have unevaluated properties (speed)',
    );
    expectThrows(
      () => {
        open.assertValid({ bmc: { user: 'admin', password: 'secret-password', port: 623 } });
      },
      SchemaViolationError,
      'host attributes violate the schema: /bmc: must NOT have unevaluated properties (port)',
    );
  });

  it('shows the limits in the compiled document', () => {
    const props = open.document['properties'] as Record<string, JsonSchema>;
    expect(props['puppet_roles']).toMatchObject({ maxItems: DEFAULT_MAX_ITEMS });
    expect(props['ntp_servers']).toMatchObject({ maxItems: 5_000 });
    expect(props['labels']).toMatchObject({ maxProperties: DEFAULT_MAX_PROPERTIES });
    expect(props['interfaces']?.['items']).toMatchObject({ unevaluatedProperties: false });
  });
});
