/**
 * NetBox's JSON representations of the served models (NetBox 4.6.8 serializers, checked against its OpenAPI
 * schemas in `openapi-subset.ts`): full objects on their own endpoints with every serializer field in the
 * serializer's order, "brief" nested objects where another object refers to them, choice fields as `{value, label}`.
 * Counts of models this server does not keep (circuits, devices, racks, prefixes, ...) are 0.
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
      owner: null,
      comments: '',
      asns: [],
      tags: [],
      custom_fields: {},
      created: s.created,
      last_updated: s.last_updated,
      circuit_count: 0,
      device_count: 0,
      prefix_count: 0,
      rack_count: 0,
      virtualmachine_count: [...this.state.virtualMachines.rows.values()].filter((v) => v.siteId === s.id)
        .length,
      vlan_count: 0,
    };
  }

  /** A site, nested: `id, url, display, name, slug, description`. */
  siteBrief(s: SiteRecord): Json {
    return this.brief(this.site(s), ['id', 'url', 'display', 'name', 'slug', 'description']);
  }

  /** A cluster type, nested: `id, url, display, name, slug, description, cluster_count`. */
  clusterTypeBrief(t: ClusterTypeRecord): Json {
    return {
      id: t.id,
      url: `${this.baseUrl}/api/virtualization/cluster-types/${t.id}/`,
      display: t.name,
      name: t.name,
      slug: t.slug,
      description: t.description,
      cluster_count: [...this.state.clusters.rows.values()].filter((c) => c.typeId === t.id).length,
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
      owner: null,
      comments: '',
      tags: [],
      custom_fields: {},
      created: c.created,
      last_updated: c.last_updated,
      device_count: 0,
      virtualmachine_count: [...this.state.virtualMachines.rows.values()].filter((v) => v.clusterId === c.id)
        .length,
      // `Sum()` over the cluster's VMs' vcpus, memory and disk, which this server keeps null: NULL.
      allocated_vcpus: null,
      allocated_memory: null,
      allocated_disk: null,
    };
  }

  /** A cluster, nested: `id, url, display, name, description, virtualmachine_count`. */
  clusterBrief(c: ClusterRecord): Json {
    return this.brief(this.cluster(c), [
      'id',
      'url',
      'display',
      'name',
      'description',
      'virtualmachine_count',
    ]);
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
      owner: null,
      comments: '',
      tags: [],
      custom_fields: {},
      created: t.created,
      last_updated: t.last_updated,
      circuit_count: 0,
      device_count: 0,
      ipaddress_count: 0,
      prefix_count: 0,
      rack_count: 0,
      site_count: 0,
      virtualmachine_count: [...this.state.virtualMachines.rows.values()].filter((v) => v.tenantId === t.id)
        .length,
      vlan_count: 0,
      vrf_count: 0,
      cluster_count: 0,
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
      weight: 1000,
      object_types: [],
      tagged_items: [...this.state.virtualMachines.rows.values()].filter((v) => v.tagIds.includes(t.id))
        .length,
      created: t.created,
      last_updated: t.last_updated,
    };
  }

  /** A tag, nested (`NestedTagSerializer`): `id, url, display_url, display, name, slug, color`. */
  tagBrief(t: TagRecord): Json {
    return this.brief(this.tag(t), ['id', 'url', 'display_url', 'display', 'name', 'slug', 'color']);
  }

  /**
   * A virtual machine as `VirtualMachineWithConfigContextSerializer` writes it (lists, detail, create, update);
   * `custom_fields` lists every field assigned to the model, null when unset.
   */
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
      virtual_machine_type: null,
      role: null,
      status: this.choice(VM_STATUSES, v.status),
      // The model's default, STATUS_OFF; this server does not let it be changed.
      start_on_boot: { value: 'off', label: 'Off' },
      site: site === undefined ? null : this.siteBrief(site),
      cluster: cluster === undefined ? null : this.clusterBrief(cluster),
      device: null,
      platform: null,
      primary_ip: null,
      primary_ip4: null,
      primary_ip6: null,
      vcpus: null,
      memory: null,
      disk: null,
      description: v.description,
      serial: '',
      tenant: tenant === undefined ? null : this.tenantBrief(tenant),
      owner: null,
      comments: v.comments,
      tags: tags.map((t) => this.tagBrief(t)),
      local_context_data: null,
      config_template: null,
      custom_fields: customFields,
      created: v.created,
      last_updated: v.last_updated,
      interface_count: 0,
      virtual_disk_count: 0,
      // VirtualMachineWithConfigContextSerializer: the rendered config context; no config contexts here.
      config_context: {},
    };
  }
}
