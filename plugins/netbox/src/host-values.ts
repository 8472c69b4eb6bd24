/**
 * The host attributes netbox provides and how each maps to a NetBox virtual machine: `datacenter` is the site's
 * slug, `subcluster` the cluster's name, `owner` the tenant's slug, `status` the VM status value, and
 * `puppet_roles` a set of tags (or a custom field).
 */
import type { AttributeClaim, Attrs, JsonValue, ProposedUpdate } from '@consortium/plugin-api';
import type { RolesStorage } from './config.js';
import type { NetboxVm } from './netbox-objects.js';

/** The paths netbox has authority over. */
export const NETBOX_PATHS = ['datacenter', 'subcluster', 'owner', 'status', 'puppet_roles'] as const;

/** One of the paths netbox has authority over. */
export type NetboxPath = (typeof NETBOX_PATHS)[number];

/**
 * Host status values and the NetBox virtual machine status each one is. They are NetBox's own values
 * (virtualization/choices.py `VirtualMachineStatusChoices`), so the map is the identity; it is spelled out so that
 * a NetBox with renamed choices (FIELD_CHOICES) is one edit away.
 */
export const STATUS_TO_NETBOX = {
  planned: 'planned',
  staged: 'staged',
  active: 'active',
  offline: 'offline',
  failed: 'failed',
  decommissioning: 'decommissioning',
} as const;

/** A host status value. */
export type HostStatus = keyof typeof STATUS_TO_NETBOX;

const HOST_STATUSES = Object.keys(STATUS_TO_NETBOX) as HostStatus[];

/** NetBox's VM status value as a host status, or undefined for a value Consortium does not know. */
export function statusFromNetbox(value: string | undefined): HostStatus | undefined {
  return HOST_STATUSES.find((s) => STATUS_TO_NETBOX[s] === value);
}

/** NetBox's names for tags and slugs allow 100 characters. */
const NAME_MAX = 100;

/** What netbox claims on hosts. */
export const NETBOX_CLAIMS: readonly AttributeClaim[] = [
  {
    path: 'datacenter',
    schema: {
      type: 'string',
      minLength: 1,
      maxLength: 100,
      description: 'the NetBox site (slug) the host is in',
    },
  },
  {
    path: 'subcluster',
    schema: {
      type: 'string',
      minLength: 1,
      maxLength: 100,
      description: 'the NetBox cluster (name) the host belongs to',
    },
  },
  {
    path: 'owner',
    schema: {
      type: 'string',
      minLength: 1,
      maxLength: 100,
      description: 'the NetBox tenant (slug) responsible for the host',
    },
  },
  {
    path: 'status',
    schema: {
      type: 'string',
      enum: HOST_STATUSES,
      description: 'the lifecycle status (the NetBox virtual machine status)',
    },
  },
  {
    path: 'puppet_roles',
    schema: {
      type: 'array',
      'x-list-type': 'set',
      items: { type: 'string', minLength: 1, maxLength: NAME_MAX },
      description: 'the Puppet roles applied to the host (NetBox tags, or a custom field)',
    },
  },
];

/** The values of netbox's paths for one host; roles are a sorted set, absent when empty. */
export interface HostValues {
  datacenter?: string;
  subcluster?: string;
  owner?: string;
  status?: HostStatus;
  puppet_roles?: string[];
}

const sortRoles = (roles: Iterable<string>): string[] => [...new Set(roles)].sort();

function text(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function roleList(value: JsonValue | undefined): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const roles = sortRoles((value as readonly JsonValue[]).filter((r): r is string => typeof r === 'string'));
  return roles.length === 0 ? undefined : roles;
}

/** The values of netbox's paths in a node's attributes. */
export function valuesOfNode(attrs: Attrs): HostValues {
  const values: HostValues = {};
  const datacenter = text(attrs['datacenter']);
  const subcluster = text(attrs['subcluster']);
  const owner = text(attrs['owner']);
  const status = HOST_STATUSES.find((s) => s === attrs['status']);
  const roles = roleList(attrs['puppet_roles']);
  if (datacenter !== undefined) values.datacenter = datacenter;
  if (subcluster !== undefined) values.subcluster = subcluster;
  if (owner !== undefined) values.owner = owner;
  if (status !== undefined) values.status = status;
  if (roles !== undefined) values.puppet_roles = roles;
  return values;
}

/** Whether a tag is a role tag under the storage's prefix. */
export function isRoleTag(name: string, roles: RolesStorage): boolean {
  return roles.kind === 'tags' && name.startsWith(roles.prefix) && name.length > roles.prefix.length;
}

/** The roles recorded on a virtual machine, sorted. */
export function rolesOfVm(vm: NetboxVm, roles: RolesStorage): string[] {
  if (roles.kind === 'tags') {
    return sortRoles(
      vm.tags.filter((t) => isRoleTag(t.name, roles)).map((t) => t.name.slice(roles.prefix.length)),
    );
  }
  const value = vm.customFields[roles.field];
  if (Array.isArray(value))
    return sortRoles(value.filter((r): r is string => typeof r === 'string' && r !== ''));
  // A text custom field holds them comma-separated.
  if (typeof value === 'string')
    return sortRoles(
      value
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r !== ''),
    );
  return [];
}

/** The values of netbox's paths as a virtual machine records them. */
export function valuesOfVm(vm: NetboxVm, roles: RolesStorage): HostValues {
  const values: HostValues = {};
  if (vm.site?.slug !== undefined) values.datacenter = vm.site.slug;
  if (vm.cluster !== undefined) values.subcluster = vm.cluster.name;
  if (vm.tenant?.slug !== undefined) values.owner = vm.tenant.slug;
  const status = statusFromNetbox(vm.status);
  if (status !== undefined) values.status = status;
  const list = rolesOfVm(vm, roles);
  if (list.length > 0) values.puppet_roles = list;
  return values;
}

/** The values after applying updates in order, as the planner merges them (set lists add and remove items). */
export function applyUpdates(base: HostValues, updates: readonly ProposedUpdate[]): HostValues {
  const values: HostValues = {
    ...base,
    ...(base.puppet_roles === undefined ? {} : { puppet_roles: [...base.puppet_roles] }),
  };
  for (const update of updates) {
    const path = update.path as NetboxPath;
    if (path === 'puppet_roles') {
      const current = values.puppet_roles ?? [];
      const value = update.value;
      let next: string[] | undefined;
      if (update.op === 'set') next = roleList(value);
      else if (update.op === 'unset') next = undefined;
      else if (update.op === 'add' && typeof value === 'string') next = sortRoles([...current, value]);
      else if (update.op === 'remove') next = current.filter((r) => r !== value);
      else next = current;
      if (next === undefined || next.length === 0) delete values.puppet_roles;
      else values.puppet_roles = next;
    } else if (path === 'status') {
      const status = HOST_STATUSES.find((s) => s === update.value);
      if (update.op === 'set' && status !== undefined) values.status = status;
      else if (update.op === 'unset') delete values.status;
    } else {
      const value = text(update.value);
      if (update.op === 'set' && value !== undefined) values[path] = value;
      else if (update.op === 'unset') delete values[path];
    }
  }
  return values;
}

/** Whether two values of a path are the same (roles compare as sets, an empty set as no roles). */
export function sameValue(path: NetboxPath, a: HostValues, b: HostValues): boolean {
  if (path === 'puppet_roles') {
    const x = a.puppet_roles ?? [];
    const y = b.puppet_roles ?? [];
    return x.length === y.length && x.every((r) => y.includes(r));
  }
  return a[path] === b[path];
}

/** A host's values as node attributes (for `observe`). */
export function toAttrs(values: HostValues): Attrs {
  return { ...values };
}
