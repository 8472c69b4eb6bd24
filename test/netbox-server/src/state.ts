/**
 * The test server's data: the NetBox objects the subset serves, kept in plain maps so tests can inspect and
 * change them directly. Ids grow per model from 1, as NetBox's primary keys do.
 */

/** Site status values (`dcim.choices.SiteStatusChoices`). */
export const SITE_STATUSES = {
  planned: 'Planned',
  staging: 'Staging',
  active: 'Active',
  decommissioning: 'Decommissioning',
  retired: 'Retired',
} as const;

/** Virtual machine status values (`virtualization.choices.VirtualMachineStatusChoices`). */
export const VM_STATUSES = {
  offline: 'Offline',
  active: 'Active',
  planned: 'Planned',
  staged: 'Staged',
  failed: 'Failed',
  decommissioning: 'Decommissioning',
} as const;

/** Cluster status values (`virtualization.choices.ClusterStatusChoices`). */
export const CLUSTER_STATUSES = {
  planned: 'Planned',
  staging: 'Staging',
  active: 'Active',
  decommissioning: 'Decommissioning',
  offline: 'Offline',
} as const;

/** The custom field types the test server validates. */
export type CustomFieldType = 'text' | 'longtext' | 'integer' | 'boolean' | 'json' | 'select' | 'multiselect';

/** Fields every stored object has. */
export interface BaseRecord {
  readonly id: number;
  created: string;
  last_updated: string;
}

/** A `dcim.Site`. */
export interface SiteRecord extends BaseRecord {
  name: string;
  slug: string;
  status: string;
  description: string;
}

/** A `virtualization.ClusterType`. */
export interface ClusterTypeRecord extends BaseRecord {
  name: string;
  slug: string;
  description: string;
}

/** A `virtualization.Cluster`, scoped to a site or to nothing (NetBox 4.2 scopes). */
export interface ClusterRecord extends BaseRecord {
  name: string;
  typeId: number;
  siteId: number | null;
  status: string;
  description: string;
}

/** A `tenancy.Tenant`. */
export interface TenantRecord extends BaseRecord {
  name: string;
  slug: string;
  description: string;
}

/** An `extras.Tag`. */
export interface TagRecord extends BaseRecord {
  name: string;
  slug: string;
  color: string;
  description: string;
}

/** An `extras.CustomField` assigned to virtual machines. */
export interface CustomFieldRecord extends BaseRecord {
  name: string;
  type: CustomFieldType;
  /** For select and multiselect: the values of the field's choice set. */
  choices: string[];
  required: boolean;
}

/** A `virtualization.VirtualMachine`. */
export interface VirtualMachineRecord extends BaseRecord {
  name: string;
  status: string;
  siteId: number | null;
  clusterId: number | null;
  tenantId: number | null;
  tagIds: number[];
  customFields: Record<string, unknown>;
  description: string;
  comments: string;
}

/** What `seed` takes: objects by their natural keys (slugs and names), ids are assigned. */
export interface SeedData {
  readonly sites?: readonly { name: string; slug: string; status?: keyof typeof SITE_STATUSES }[];
  readonly clusterTypes?: readonly { name: string; slug: string }[];
  /** `type` is a cluster type slug (created when missing); `site` a site slug. */
  readonly clusters?: readonly { name: string; type?: string; site?: string }[];
  readonly tenants?: readonly { name: string; slug: string }[];
  readonly tags?: readonly { name: string; slug: string; color?: string }[];
  readonly customFields?: readonly {
    name: string;
    type: CustomFieldType;
    choices?: readonly string[];
    required?: boolean;
  }[];
  /** `site` is a site slug, `cluster` a cluster name, `tenant` a tenant slug, `tags` tag names. */
  readonly virtualMachines?: readonly {
    name: string;
    status?: keyof typeof VM_STATUSES;
    site?: string;
    cluster?: string;
    tenant?: string;
    tags?: readonly string[];
    customFields?: Record<string, unknown>;
  }[];
}

/** Sorts like NetBox's `natural_sort` collation closely enough: numbers inside names compare as numbers. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0);
}

/** A table of one model: records by id and the next id. */
export class Table<R extends BaseRecord> {
  readonly rows = new Map<number, R>();
  private nextId = 1;

  /** Inserts a record built from its new id. */
  insert(make: (id: number, now: string) => R): R {
    const record = make(this.nextId++, new Date().toISOString());
    this.rows.set(record.id, record);
    return record;
  }

  /** The record with this id. */
  get(id: number | null | undefined): R | undefined {
    return id === null || id === undefined ? undefined : this.rows.get(id);
  }

  /** Every record, ordered by name then id (NetBox's default ordering of these models). */
  all(): R[] {
    return [...this.rows.values()].sort((a, b) => {
      const an = (a as unknown as { name?: string }).name ?? '';
      const bn = (b as unknown as { name?: string }).name ?? '';
      return naturalCompare(an, bn) || a.id - b.id;
    });
  }

  /** Removes a record; true when it existed. */
  delete(id: number): boolean {
    return this.rows.delete(id);
  }
}

/** One request as the server saw it, for tests that count calls. */
export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly status: number;
}

/** Everything the test server holds. */
export class NetboxState {
  readonly sites = new Table<SiteRecord>();
  readonly clusterTypes = new Table<ClusterTypeRecord>();
  readonly clusters = new Table<ClusterRecord>();
  readonly tenants = new Table<TenantRecord>();
  readonly tags = new Table<TagRecord>();
  readonly customFields = new Table<CustomFieldRecord>();
  readonly virtualMachines = new Table<VirtualMachineRecord>();
  /** Every request answered, oldest first. */
  readonly requests: RequestRecord[] = [];
  /** NetBox's MAINTENANCE_MODE: reads work, writes fail in the read-only database session. */
  maintenance = false;

  /** The site with this slug. */
  siteBySlug(slug: string): SiteRecord | undefined {
    return this.sites.all().find((s) => s.slug === slug);
  }

  /** The clusters with this name. */
  clustersByName(name: string): ClusterRecord[] {
    return this.clusters.all().filter((c) => c.name === name);
  }

  /** The tenant with this slug. */
  tenantBySlug(slug: string): TenantRecord | undefined {
    return this.tenants.all().find((t) => t.slug === slug);
  }

  /** The tag with this name. */
  tagByName(name: string): TagRecord | undefined {
    return this.tags.all().find((t) => t.name === name);
  }

  /** The virtual machines with this name (case-insensitive, as NetBox's `name` filter matches). */
  vmsByName(name: string): VirtualMachineRecord[] {
    return this.virtualMachines.all().filter((v) => v.name.toLowerCase() === name.toLowerCase());
  }

  /** The one virtual machine with this name; throws when there is none or more than one. */
  vm(name: string): VirtualMachineRecord {
    const found = this.vmsByName(name);
    if (found.length !== 1)
      throw new Error(`expected one virtual machine named ${name}, found ${found.length}`);
    return found[0] as VirtualMachineRecord;
  }

  /** The tag names of a virtual machine, sorted. */
  tagNames(vm: VirtualMachineRecord): string[] {
    return vm.tagIds.map((id) => this.tags.get(id)?.name ?? `#${id}`).sort((a, b) => naturalCompare(a, b));
  }

  /** Creates objects by natural keys; throws on a reference to something that does not exist. */
  seed(data: SeedData): void {
    for (const s of data.sites ?? []) {
      this.sites.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name: s.name,
        slug: s.slug,
        status: s.status ?? 'active',
        description: '',
      }));
    }
    for (const t of data.clusterTypes ?? []) this.clusterType(t.slug, t.name);
    for (const c of data.clusters ?? []) {
      const type = this.clusterType(c.type ?? 'kvm');
      const site = c.site === undefined ? undefined : this.siteBySlug(c.site);
      if (c.site !== undefined && site === undefined) throw new Error(`seed: no site ${c.site}`);
      this.clusters.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name: c.name,
        typeId: type.id,
        siteId: site?.id ?? null,
        status: 'active',
        description: '',
      }));
    }
    for (const t of data.tenants ?? []) {
      this.tenants.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name: t.name,
        slug: t.slug,
        description: '',
      }));
    }
    for (const t of data.tags ?? []) {
      this.tags.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name: t.name,
        slug: t.slug,
        color: t.color ?? '9e9e9e',
        description: '',
      }));
    }
    for (const f of data.customFields ?? []) {
      this.customFields.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name: f.name,
        type: f.type,
        choices: [...(f.choices ?? [])],
        required: f.required ?? false,
      }));
    }
    for (const v of data.virtualMachines ?? []) {
      const site = v.site === undefined ? undefined : this.siteBySlug(v.site);
      if (v.site !== undefined && site === undefined) throw new Error(`seed: no site ${v.site}`);
      const cluster = v.cluster === undefined ? undefined : this.clustersByName(v.cluster)[0];
      if (v.cluster !== undefined && cluster === undefined) throw new Error(`seed: no cluster ${v.cluster}`);
      const tenant = v.tenant === undefined ? undefined : this.tenantBySlug(v.tenant);
      if (v.tenant !== undefined && tenant === undefined) throw new Error(`seed: no tenant ${v.tenant}`);
      const tagIds = (v.tags ?? []).map((name) => {
        const tag = this.tagByName(name);
        if (tag === undefined) throw new Error(`seed: no tag ${name}`);
        return tag.id;
      });
      this.virtualMachines.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name: v.name,
        status: v.status ?? 'active',
        siteId: site?.id ?? cluster?.siteId ?? null,
        clusterId: cluster?.id ?? null,
        tenantId: tenant?.id ?? null,
        tagIds,
        customFields: { ...(v.customFields ?? {}) },
        description: '',
        comments: '',
      }));
    }
  }

  private clusterType(slug: string, name = slug): ClusterTypeRecord {
    return (
      this.clusterTypes.all().find((t) => t.slug === slug) ??
      this.clusterTypes.insert((id, now) => ({
        id,
        created: now,
        last_updated: now,
        name,
        slug,
        description: '',
      }))
    );
  }
}
