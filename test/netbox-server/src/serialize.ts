/**
 * NetBox's JSON representations of the served models (NetBox 4.2 serializers): full objects on their own
 * endpoints, "brief" nested objects where another object refers to them, choice fields as `{value, label}`.
 */
import type {
  ClusterRecord,
  ClusterTypeRecord,
  NetboxState,
  SiteRecord,
  TagRecord,
  TenantRecord,
  VirtualMachineRecord,
} from './state.js';
import { CLUSTER_STATUSES, SITE_STATUSES, VM_STATUSES } from './state.js';

type Json = Record<string, unknown>;

/** Builds representations with absolute URLs under one base URL. */
export class Serializer {
  /** Serializes objects of `state` with URLs under `baseUrl` (no trailing slash). */
  constructor(
    private readonly state: NetboxState,
    private readonly baseUrl: string,
  ) {}

  private links(apiPath: string, uiPath: string, id: number): Json {
    return {
      id,
      url: `${this.baseUrl}/api/${apiPath}/${id}/`,
      display_url: `${this.baseUrl}/${uiPath}/${id}/`,
    };
  }

  private choice(labels: Readonly<Record<string, string>>, value: string): Json {
    return { value, label: labels[value] ?? '' };
  }

  private brief(full: Json, fields: readonly string[]): Json {
    return Object.fromEntries(fields.filter((f) => f in full).map((f) => [f, full[f]]));
  }

  /** A site, in full. */
  site(s: SiteRecord): Json {
    return {
      ...this.links('dcim/sites', 'dcim/sites', s.id),
      display: s.name,
      name: s.name,
      slug: s.slug,
      status: this.choice(SITE_STATUSES, s.status),
      region: null,
      group: null,
      tenant: null,
      facility: '',
      time_zone: null,
      description: s.description,
      physical_address: '',
      shipping_address: '',
      latitude: null,
      longitude: null,
      comments: '',
      asns: [],
      tags: [],
      custom_fields: {},
      created: s.created,
      last_updated: s.last_updated,
      virtualmachine_count: [...this.state.virtualMachines.rows.values()].filter((v) => v.siteId === s.id)
        .length,
    };
  }

  /** A site, nested: `id, url, display, name, slug, description`. */
  siteBrief(s: SiteRecord): Json {
    return this.brief(this.site(s), ['id', 'url', 'display', 'name', 'slug', 'description']);
  }

  /** A cluster type, nested. */
  clusterTypeBrief(t: ClusterTypeRecord): Json {
    return {
      id: t.id,
      url: `${this.baseUrl}/api/virtualization/cluster-types/${t.id}/`,
      display: t.name,
      name: t.name,
      slug: t.slug,
      description: t.description,
    };
  }

  /** A cluster, in full; scoped to a site as NetBox 4.2 scopes clusters (`scope_type`, `scope_id`, `scope`). */
  cluster(c: ClusterRecord): Json {
    const type = this.state.clusterTypes.get(c.typeId);
    const site = this.state.sites.get(c.siteId);
    return {
      ...this.links('virtualization/clusters', 'virtualization/clusters', c.id),
      display: c.name,
      name: c.name,
      type: type === undefined ? null : this.clusterTypeBrief(type),
      group: null,
      status: this.choice(CLUSTER_STATUSES, c.status),
      tenant: null,
      scope_type: site === undefined ? null : 'dcim.site',
      scope_id: site?.id ?? null,
      scope: site === undefined ? null : this.siteBrief(site),
      description: c.description,
      comments: '',
      tags: [],
      custom_fields: {},
      created: c.created,
      last_updated: c.last_updated,
      device_count: 0,
      virtualmachine_count: [...this.state.virtualMachines.rows.values()].filter((v) => v.clusterId === c.id)
        .length,
    };
  }

  /** A cluster, nested: `id, url, display, name, description`. */
  clusterBrief(c: ClusterRecord): Json {
    return this.brief(this.cluster(c), ['id', 'url', 'display', 'name', 'description']);
  }

  /** A tenant, in full. */
  tenant(t: TenantRecord): Json {
    return {
      ...this.links('tenancy/tenants', 'tenancy/tenants', t.id),
      display: t.name,
      name: t.name,
      slug: t.slug,
      group: null,
      description: t.description,
      comments: '',
      tags: [],
      custom_fields: {},
      created: t.created,
      last_updated: t.last_updated,
    };
  }

  /** A tenant, nested: `id, url, display, name, slug, description`. */
  tenantBrief(t: TenantRecord): Json {
    return this.brief(this.tenant(t), ['id', 'url', 'display', 'name', 'slug', 'description']);
  }

  /** A tag, in full. */
  tag(t: TagRecord): Json {
    return {
      ...this.links('extras/tags', 'extras/tags', t.id),
      display: t.name,
      name: t.name,
      slug: t.slug,
      color: t.color,
      description: t.description,
      object_types: [],
      tagged_items: [...this.state.virtualMachines.rows.values()].filter((v) => v.tagIds.includes(t.id))
        .length,
      created: t.created,
      last_updated: t.last_updated,
    };
  }

  /** A tag, nested: `id, url, display, name, slug, color, description`. */
  tagBrief(t: TagRecord): Json {
    return this.brief(this.tag(t), ['id', 'url', 'display', 'name', 'slug', 'color', 'description']);
  }

  /** A virtual machine, in full; `custom_fields` lists every field assigned to the model, null when unset. */
  virtualMachine(v: VirtualMachineRecord): Json {
    const site = this.state.sites.get(v.siteId);
    const cluster = this.state.clusters.get(v.clusterId);
    const tenant = this.state.tenants.get(v.tenantId);
    const tags = v.tagIds
      .map((id) => this.state.tags.get(id))
      .filter((t): t is TagRecord => t !== undefined)
      .sort((a, b) => a.name.localeCompare(b.name));
    const customFields = Object.fromEntries(
      this.state.customFields.all().map((f) => [f.name, v.customFields[f.name] ?? null]),
    );
    return {
      ...this.links('virtualization/virtual-machines', 'virtualization/virtual-machines', v.id),
      display: v.name,
      name: v.name,
      status: this.choice(VM_STATUSES, v.status),
      site: site === undefined ? null : this.siteBrief(site),
      cluster: cluster === undefined ? null : this.clusterBrief(cluster),
      device: null,
      serial: '',
      role: null,
      tenant: tenant === undefined ? null : this.tenantBrief(tenant),
      platform: null,
      primary_ip: null,
      primary_ip4: null,
      primary_ip6: null,
      vcpus: null,
      memory: null,
      disk: null,
      description: v.description,
      comments: v.comments,
      config_template: null,
      local_context_data: null,
      tags: tags.map((t) => this.tagBrief(t)),
      custom_fields: customFields,
      created: v.created,
      last_updated: v.last_updated,
      interface_count: 0,
      virtual_disk_count: 0,
    };
  }
}
