/**
 * The NetBox objects the plugin reads, checked as they arrive: only the fields it uses, tolerant of the
 * differences between NetBox releases (a cluster's site is `scope` since 4.2 and `site` before).
 */
import { BackendError, isJsonObject } from '@consortium/plugin-api';

/** A nested reference to another object. */
export interface NetboxRef {
  readonly id: number;
  readonly name: string;
  readonly slug?: string;
}

/** A `dcim.Site`. */
export interface NetboxSite extends NetboxRef {
  readonly slug: string;
}

/** A `tenancy.Tenant`. */
export interface NetboxTenant extends NetboxRef {
  readonly slug: string;
}

/** An `extras.Tag`. */
export interface NetboxTag extends NetboxRef {
  readonly slug: string;
}

/** A `virtualization.Cluster` with the site it belongs to, if any. */
export interface NetboxCluster extends NetboxRef {
  readonly site: NetboxRef | undefined;
}

/** A `virtualization.VirtualMachine`. */
export interface NetboxVm extends NetboxRef {
  readonly status: string | undefined;
  readonly site: NetboxRef | undefined;
  readonly cluster: NetboxRef | undefined;
  readonly tenant: NetboxRef | undefined;
  readonly tags: readonly NetboxTag[];
  readonly customFields: Readonly<Record<string, unknown>>;
}

function unexpected(what: string): BackendError {
  return new BackendError(`NetBox answered with an unexpected ${what}`);
}

/** A reference (`{id, name, slug?}`), or undefined for null. Throws `BackendError` for anything else. */
export function toRef(value: unknown, what: string): NetboxRef | undefined {
  if (value === null || value === undefined) return undefined;
  if (!isJsonObject(value) || typeof value['id'] !== 'number') throw unexpected(what);
  const name = value['name'] ?? value['display'];
  const slug = value['slug'];
  return {
    id: value['id'],
    name: typeof name === 'string' ? name : String(value['id']),
    ...(typeof slug === 'string' ? { slug } : {}),
  };
}

/** An object with a slug (site, tenant, tag). Throws `BackendError` when it has none. */
export function toSlugged(value: unknown, what: string): NetboxRef & { readonly slug: string } {
  const ref = toRef(value, what);
  if (ref?.slug === undefined) throw unexpected(what);
  return { ...ref, slug: ref.slug };
}

/** A cluster, with its site from `scope` (NetBox 4.2+) or `site` (before). */
export function toCluster(value: unknown): NetboxCluster {
  const ref = toRef(value, 'cluster');
  if (ref === undefined || !isJsonObject(value)) throw unexpected('cluster');
  const scoped = value['scope_type'] === 'dcim.site' ? value['scope'] : undefined;
  return { ...ref, site: toRef(scoped ?? value['site'], 'cluster site') };
}

/** A virtual machine. */
export function toVm(value: unknown): NetboxVm {
  const ref = toRef(value, 'virtual machine');
  if (ref === undefined || !isJsonObject(value)) throw unexpected('virtual machine');
  const status = value['status'];
  const tags = value['tags'];
  const customFields = value['custom_fields'];
  return {
    ...ref,
    // A choice is `{value, label}` on read; very old releases sent the bare value.
    status: isJsonObject(status)
      ? typeof status['value'] === 'string'
        ? status['value']
        : undefined
      : typeof status === 'string'
        ? status
        : undefined,
    site: toRef(value['site'], 'virtual machine site'),
    cluster: toRef(value['cluster'], 'virtual machine cluster'),
    tenant: toRef(value['tenant'], 'virtual machine tenant'),
    tags: Array.isArray(tags) ? tags.map((t) => toSlugged(t, 'tag')) : [],
    customFields: isJsonObject(customFields) ? customFields : {},
  };
}
