/**
 * The response schemas of the NetBox REST API for the endpoints the netbox plugin uses, as JSON Schema (draft-07,
 * for ajv), written for this repository from NetBox's published OpenAPI description.
 *
 * Source: `contrib/openapi.json` of github.com/netbox-community/netbox. Checked against release v4.6.8: the only
 * stored copy of that 14.5 MB file is the one at v4.7.0-beta1 (commit 2efc39f4), and the serializers behind these
 * components (`dcim/api/serializers_/sites.py`, `virtualization/api/serializers_/clusters.py` and
 * `virtualmachines.py`, `tenancy/api/serializers_/tenants.py`, `extras/api/serializers_/tags.py`,
 * `netbox/api/serializers/nested.py`) differ between v4.6.8 and v4.7.0-beta1 only in that 4.7 folds
 * `VirtualMachineWithConfigContext` into `VirtualMachine`, with the same fields.
 *
 * Transcribed from openapi.json: `Site`, `Cluster`, `Tenant`, `Tag`, `VirtualMachine(WithConfigContext)` (property
 * types, nullability and `required`). Derived from the v4.6.8 serializers with drf-spectacular's rule as those
 * components show it (required = read-only fields and fields required on write): `BriefSite`, `BriefCluster`,
 * `BriefClusterType`, `BriefTenant`, `NestedTag`, and the `Paginated<X>List` wrapper. Nested objects the test server
 * never fills (region, owner, platform, ...) are checked as "an object or null".
 *
 * Two deliberate differences from the OpenAPI text: objects are closed (`additionalProperties: false`), because a
 * serializer sends exactly its fields and the test server must not send others; and `Cluster.allocated_*` may be
 * null, because NetBox annotates them with `Sum()` over the cluster's VMs, which is NULL for a cluster without VMs
 * (the OpenAPI does not say nullable there).
 */

/** The NetBox release these schemas describe. */
export const OPENAPI_NETBOX_VERSION = '4.6.8';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/definitions/${name}` });
const nullable = (schema: Schema): Schema => ({ anyOf: [schema, { type: 'null' }] });
const object = (properties: Record<string, Schema>, required: readonly string[]): Schema => ({
  type: 'object',
  properties,
  required: [...required],
  additionalProperties: false,
});
const string = (maxLength?: number): Schema =>
  maxLength === undefined ? { type: 'string' } : { type: 'string', maxLength };
const integer: Schema = { type: 'integer' };
const uri: Schema = { type: 'string', pattern: '^https?://' };
const dateTime: Schema = {
  type: 'string',
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
};
const slug: Schema = { type: 'string', maxLength: 100, pattern: '^[-a-zA-Z0-9_]+$' };
/** A nested object the test server never fills: NetBox's Brief component, or null. */
const someObjectOrNull: Schema = nullable({ type: 'object' });
/** A ChoiceField as it reads: `{value, label}` (neither listed as required in the OpenAPI). */
const choice = (values: readonly string[], labels: readonly string[]): Schema => ({
  type: 'object',
  properties: { value: { enum: values }, label: { enum: labels } },
  additionalProperties: false,
});
/** `id`, `url`, `display_url`, `display`: read-only, so required. */
const identity = { id: integer, url: uri, display_url: uri, display: string() };
const stamps = { created: nullable(dateTime), last_updated: nullable(dateTime) };
const customFields: Schema = { type: 'object' };
const tags: Schema = { type: 'array', items: ref('NestedTag') };

/** The components, by their OpenAPI names. */
export const NETBOX_SCHEMAS: Readonly<Record<string, Schema>> = {
  NestedTag: object(
    { ...identity, name: string(100), slug: { type: 'string', maxLength: 100 }, color: string(6) },
    ['id', 'url', 'display_url', 'display', 'name', 'slug'],
  ),
  BriefSite: object(
    { id: integer, url: uri, display: string(), name: string(100), slug, description: string(200) },
    ['id', 'url', 'display', 'name', 'slug'],
  ),
  BriefClusterType: object(
    {
      id: integer,
      url: uri,
      display: string(),
      name: string(100),
      slug,
      description: string(200),
      cluster_count: integer,
    },
    ['id', 'url', 'display', 'name', 'slug', 'cluster_count'],
  ),
  BriefCluster: object(
    {
      id: integer,
      url: uri,
      display: string(),
      name: string(100),
      description: string(200),
      virtualmachine_count: integer,
    },
    ['id', 'url', 'display', 'name', 'virtualmachine_count'],
  ),
  BriefTenant: object(
    { id: integer, url: uri, display: string(), name: string(100), slug, description: string(200) },
    ['id', 'url', 'display', 'name', 'slug'],
  ),
  Site: object(
    {
      ...identity,
      name: string(100),
      slug,
      status: choice(
        ['planned', 'staging', 'active', 'decommissioning', 'retired'],
        ['Planned', 'Staging', 'Active', 'Decommissioning', 'Retired'],
      ),
      region: someObjectOrNull,
      group: someObjectOrNull,
      tenant: nullable(ref('BriefTenant')),
      facility: string(50),
      time_zone: nullable(string()),
      description: string(200),
      physical_address: string(200),
      shipping_address: string(200),
      latitude: nullable({ type: 'number' }),
      longitude: nullable({ type: 'number' }),
      owner: someObjectOrNull,
      comments: string(),
      asns: { type: 'array', items: { type: 'object' } },
      tags,
      custom_fields: customFields,
      ...stamps,
      circuit_count: integer,
      device_count: integer,
      prefix_count: integer,
      rack_count: integer,
      virtualmachine_count: integer,
      vlan_count: integer,
    },
    [
      'circuit_count',
      'created',
      'device_count',
      'display',
      'display_url',
      'id',
      'last_updated',
      'name',
      'prefix_count',
      'rack_count',
      'slug',
      'url',
      'virtualmachine_count',
      'vlan_count',
    ],
  ),
  Cluster: object(
    {
      ...identity,
      name: string(100),
      type: ref('BriefClusterType'),
      group: someObjectOrNull,
      status: choice(
        ['planned', 'staging', 'active', 'decommissioning', 'offline'],
        ['Planned', 'Staging', 'Active', 'Decommissioning', 'Offline'],
      ),
      tenant: nullable(ref('BriefTenant')),
      scope_type: nullable(string()),
      scope_id: nullable(integer),
      // `scope` is read-only and nullable, with no schema: for a site scope it is the BriefSite.
      scope: nullable(ref('BriefSite')),
      description: string(200),
      owner: someObjectOrNull,
      comments: string(),
      tags,
      custom_fields: customFields,
      ...stamps,
      device_count: integer,
      virtualmachine_count: integer,
      allocated_vcpus: nullable({ type: 'number' }),
      allocated_memory: nullable(integer),
      allocated_disk: nullable(integer),
    },
    [
      'allocated_disk',
      'allocated_memory',
      'allocated_vcpus',
      'created',
      'device_count',
      'display',
      'display_url',
      'id',
      'last_updated',
      'name',
      'scope',
      'type',
      'url',
      'virtualmachine_count',
    ],
  ),
  Tenant: object(
    {
      ...identity,
      name: string(100),
      slug,
      group: someObjectOrNull,
      description: string(200),
      owner: someObjectOrNull,
      comments: string(),
      tags,
      custom_fields: customFields,
      ...stamps,
      circuit_count: integer,
      device_count: integer,
      ipaddress_count: integer,
      prefix_count: integer,
      rack_count: integer,
      site_count: integer,
      virtualmachine_count: integer,
      vlan_count: integer,
      vrf_count: integer,
      cluster_count: integer,
    },
    [
      'circuit_count',
      'cluster_count',
      'created',
      'device_count',
      'display',
      'display_url',
      'id',
      'ipaddress_count',
      'last_updated',
      'name',
      'prefix_count',
      'rack_count',
      'site_count',
      'slug',
      'url',
      'virtualmachine_count',
      'vlan_count',
      'vrf_count',
    ],
  ),
  Tag: object(
    {
      ...identity,
      name: string(100),
      slug: { type: 'string', maxLength: 100, pattern: '^[-\\w]+$' },
      color: { type: 'string', maxLength: 6, pattern: '^[0-9a-f]{6}$' },
      description: string(200),
      weight: { type: 'integer', minimum: 0, maximum: 32767 },
      object_types: { type: 'array', items: string() },
      tagged_items: integer,
      ...stamps,
    },
    ['created', 'display', 'display_url', 'id', 'last_updated', 'name', 'slug', 'tagged_items', 'url'],
  ),
  VirtualMachineWithConfigContext: object(
    {
      ...identity,
      name: string(64),
      virtual_machine_type: someObjectOrNull,
      role: someObjectOrNull,
      status: choice(
        ['offline', 'active', 'planned', 'staged', 'failed', 'decommissioning', 'paused'],
        ['Offline', 'Active', 'Planned', 'Staged', 'Failed', 'Decommissioning', 'Paused'],
      ),
      start_on_boot: choice(['on', 'off', 'laststate'], ['On', 'Off', 'Last State']),
      site: nullable(ref('BriefSite')),
      cluster: nullable(ref('BriefCluster')),
      device: someObjectOrNull,
      platform: someObjectOrNull,
      primary_ip: someObjectOrNull,
      primary_ip4: someObjectOrNull,
      primary_ip6: someObjectOrNull,
      vcpus: nullable({ type: 'number' }),
      memory: nullable(integer),
      disk: nullable(integer),
      description: string(200),
      serial: string(50),
      tenant: nullable(ref('BriefTenant')),
      owner: someObjectOrNull,
      comments: string(),
      tags,
      local_context_data: {},
      config_template: someObjectOrNull,
      custom_fields: customFields,
      ...stamps,
      interface_count: integer,
      virtual_disk_count: integer,
      config_context: {},
    },
    [
      'config_context',
      'created',
      'display',
      'display_url',
      'id',
      'interface_count',
      'last_updated',
      'name',
      'primary_ip',
      'url',
      'virtual_disk_count',
    ],
  ),
};

/** drf-spectacular's `Paginated<X>List`: `count` and `results` required, `next`/`previous` absolute URLs or null. */
export function paginated(component: string): Schema {
  return {
    type: 'object',
    properties: {
      count: integer,
      next: nullable(uri),
      previous: nullable(uri),
      results: { type: 'array', items: ref(component) },
    },
    required: ['count', 'results'],
    additionalProperties: false,
    definitions: NETBOX_SCHEMAS,
  };
}

/** One component as a standalone schema (with every component as definitions for its `$ref`s). */
export function component(name: string): Schema {
  return { ...ref(name), definitions: NETBOX_SCHEMAS };
}

/** The operations the netbox plugin uses (`plugins/netbox/src/host-provider.ts`), with NetBox's answer schema. */
export const PLUGIN_OPERATIONS: readonly {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly status: number;
  /** Undefined: no body (204). */
  readonly schema: Schema | undefined;
}[] = [
  { method: 'GET', path: '/api/dcim/sites/', status: 200, schema: paginated('Site') },
  { method: 'GET', path: '/api/virtualization/clusters/', status: 200, schema: paginated('Cluster') },
  { method: 'GET', path: '/api/tenancy/tenants/', status: 200, schema: paginated('Tenant') },
  { method: 'GET', path: '/api/extras/tags/', status: 200, schema: paginated('Tag') },
  { method: 'POST', path: '/api/extras/tags/', status: 201, schema: component('Tag') },
  {
    method: 'GET',
    path: '/api/virtualization/virtual-machines/',
    status: 200,
    schema: paginated('VirtualMachineWithConfigContext'),
  },
  {
    method: 'POST',
    path: '/api/virtualization/virtual-machines/',
    status: 201,
    schema: component('VirtualMachineWithConfigContext'),
  },
  {
    method: 'PATCH',
    path: '/api/virtualization/virtual-machines/{id}/',
    status: 200,
    schema: component('VirtualMachineWithConfigContext'),
  },
  { method: 'DELETE', path: '/api/virtualization/virtual-machines/{id}/', status: 204, schema: undefined },
];
