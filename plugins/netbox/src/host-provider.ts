/**
 * The `netbox` provider of hosts: one NetBox virtual machine per host, named like the host. `apply` reads the VM
 * first and writes only what differs, so a task that runs again after a crash converges instead of duplicating
 * (create only when absent, PATCH only changed fields, a 404 on delete is "already gone"). After a write it
 * reports NetBox's values of every path it owns, because NetBox is the authority: a site NetBox inferred from the
 * cluster, or a role someone added in NetBox's UI, ends up in the node.
 */
import type {
  DiscoveredObject,
  JsonValue,
  NodeProvider,
  Observation,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
  TaskRun,
} from '@consortium/plugin-api';
import { BackendError, BackendUnavailableError, decisionProvider, isNodeName } from '@consortium/plugin-api';
import type { CallOptions } from './client.js';
import { NetboxClient } from './client.js';
import type { NetboxSettings } from './config.js';
import type { HostValues, NetboxPath } from './host-values.js';
import {
  applyUpdates,
  isRoleTag,
  NETBOX_CLAIMS,
  NETBOX_PATHS,
  sameValue,
  STATUS_TO_NETBOX,
  toAttrs,
  valuesOfNode,
  valuesOfVm,
} from './host-values.js';
import type { NetboxCluster, NetboxRef, NetboxVm } from './netbox-objects.js';
import { toCluster, toSlugged, toVm } from './netbox-objects.js';

/** The name of the provider. */
export const NETBOX_PROVIDER = 'netbox';

const API = {
  sites: '/api/dcim/sites/',
  clusters: '/api/virtualization/clusters/',
  tenants: '/api/tenancy/tenants/',
  tags: '/api/extras/tags/',
  vms: '/api/virtualization/virtual-machines/',
} as const;

/** NetBox's `VirtualMachine.name` is a CharField of 64. */
const VM_NAME_MAX = 64;

const SCALAR_OPS = new Set(['set', 'unset']);
const ROLE_OPS = new Set(['set', 'unset', 'add', 'remove']);

/** A tag slug for a tag name: lowercase letters, digits, '-' and '_' (NetBox accepts no other). */
export function tagSlug(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 100);
  if (slug !== '') return slug;
  let hash = 0;
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  return `tag-${hash.toString(16)}`;
}

/** Why an update cannot be taken at all, or undefined. */
function refusal(update: ProposedUpdate): string | undefined {
  const path = NETBOX_PATHS.find((p) => p === update.path);
  if (path === undefined) return `netbox provides only ${NETBOX_PATHS.join(', ')}; not ${update.path}`;
  const ops = path === 'puppet_roles' ? ROLE_OPS : SCALAR_OPS;
  if (!ops.has(update.op)) return `netbox cannot "${update.op}" ${path}`;
  if (path === 'status' && update.op === 'unset') {
    return `a NetBox virtual machine always has a status; set one of ${Object.keys(STATUS_TO_NETBOX).join(', ')} instead`;
  }
  return undefined;
}

const describeRef = (label: string, value: string | undefined): string =>
  value === undefined ? `no ${label}` : `${label} ${value}`;

/** The wanted NetBox references of a host, resolved to ids (null clears the field). */
interface Resolved {
  site?: number | null;
  cluster?: number | null;
  tenant?: number | null;
  /** Tag ids for the role tags plus the VM's other tags, when roles are stored as tags. */
  tags?: number[];
  /** The site a cluster belongs to, for explain's prediction of the VM's site. */
  clusterSite?: NetboxRef | undefined;
}

/** A refusal from resolving: which path failed, and why. */
interface Unresolvable {
  readonly path: NetboxPath;
  readonly reason: string;
}

/** Makes the netbox provider of hosts. */
export function netboxHostProvider(settings: NetboxSettings): NodeProvider {
  const client = new NetboxClient(settings);
  const roles = settings.roles;

  /** The options of a NetBox call made for `context`; `action` names it in errors and logs. */
  const call = (context: ProviderContext, action: string): CallOptions => ({
    signal: context.signal,
    action,
    logger: context.logger,
  });

  /**
   * The VM of a host: NetBox's `name` filter, every page, exact name. When NetBox has several VMs of that name
   * (one per cluster is allowed), the hinted clusters pick one; throws `BackendError` when they cannot.
   */
  async function findVm(
    run: Pick<TaskRun, 'context'>,
    name: string,
    hints: readonly (string | undefined)[],
  ): Promise<NetboxVm | undefined> {
    const found = (await client.list(API.vms, { name }, call(run.context, `look up virtual machine ${name}`)))
      .map(toVm)
      .filter((vm) => vm.name.toLowerCase() === name.toLowerCase());
    if (found.length <= 1) return found[0];
    for (const hint of hints) {
      if (hint === undefined) continue;
      const inCluster = found.filter((vm) => vm.cluster?.name === hint);
      if (inCluster.length === 1) return inCluster[0];
    }
    const where = found.map((vm) => vm.cluster?.name ?? 'no cluster').join(', ');
    throw new BackendError(
      `NetBox has ${found.length} virtual machines named ${name} (clusters: ${where}); set subcluster to the cluster of the one that is this host`,
      { details: { name, ids: found.map((vm) => vm.id) } },
    );
  }

  async function resolveSite(run: TaskRun, slug: string): Promise<NetboxRef | Unresolvable> {
    const sites = await client.list(API.sites, { slug }, call(run.context, `look up site ${slug}`));
    const site = sites.map((s) => toSlugged(s, 'site')).find((s) => s.slug === slug);
    return site ?? { path: 'datacenter', reason: `NetBox has no site with slug "${slug}" (datacenter)` };
  }

  async function resolveCluster(
    run: TaskRun,
    name: string,
    siteId: number | undefined,
  ): Promise<NetboxCluster | Unresolvable> {
    const query = { name, ...(settings.clusterType === undefined ? {} : { type: settings.clusterType }) };
    const clusters = (await client.list(API.clusters, query, call(run.context, `look up cluster ${name}`)))
      .map(toCluster)
      .filter((c) => c.name === name);
    const ofType = settings.clusterType === undefined ? '' : ` of type "${settings.clusterType}"`;
    if (clusters.length === 0) {
      return { path: 'subcluster', reason: `NetBox has no cluster named "${name}"${ofType} (subcluster)` };
    }
    if (clusters.length === 1) return clusters[0] as NetboxCluster;
    const inSite = clusters.filter((c) => c.site?.id === siteId);
    if (siteId !== undefined && inSite.length === 1) return inSite[0] as NetboxCluster;
    const sites = clusters.map((c) => c.site?.slug ?? c.site?.name ?? 'no site').join(', ');
    return {
      path: 'subcluster',
      reason: `NetBox has ${clusters.length} clusters named "${name}"${ofType} (sites: ${sites}); set datacenter to the site of the one to use`,
    };
  }

  async function resolveTenant(run: TaskRun, slug: string): Promise<NetboxRef | Unresolvable> {
    const tenants = await client.list(API.tenants, { slug }, call(run.context, `look up tenant ${slug}`));
    const tenant = tenants.map((t) => toSlugged(t, 'tenant')).find((t) => t.slug === slug);
    return tenant ?? { path: 'owner', reason: `NetBox has no tenant with slug "${slug}" (owner)` };
  }

  /** Creates a tag; when another job created it first (NetBox refuses the duplicate), takes that one. */
  async function createTag(run: TaskRun, name: string, slug: string): Promise<NetboxRef> {
    try {
      return toSlugged(
        await client.create(API.tags, { name, slug }, call(run.context, `create tag ${name}`)),
        'tag',
      );
    } catch (error) {
      if (!(error instanceof BackendError)) throw error;
      const again = await client.list(API.tags, { name }, call(run.context, `look up tag ${name}`));
      const tag = again.map((t) => toSlugged(t, 'tag')).find((t) => t.name === name);
      if (tag === undefined) throw error;
      return tag;
    }
  }

  /** The ids of the role tags, creating tags NetBox does not have yet (one operation each). */
  async function roleTagIds(run: TaskRun, wanted: readonly string[]): Promise<number[]> {
    if (roles.kind !== 'tags' || wanted.length === 0) return [];
    const names = wanted.map((role) => `${roles.prefix}${role}`);
    const existing = (
      await client.list(API.tags, { name: names }, call(run.context, 'look up role tags'))
    ).map((t) => toSlugged(t, 'tag'));
    const ids: number[] = [];
    for (const name of names) {
      const tag = existing.find((t) => t.name === name);
      if (tag !== undefined) {
        ids.push(tag.id);
        continue;
      }
      const slug = tagSlug(name);
      const created = await run.operation(
        { action: 'create-tag', target: `netbox/tag/${name}` },
        `tag ${name} (slug ${slug}) for a Puppet role`,
        () => createTag(run, name, slug),
      );
      if (created !== undefined) ids.push(created.id);
    }
    return ids;
  }

  /** Resolves the references of `paths` in `target`; the first path NetBox cannot resolve comes back instead. */
  async function resolve(
    run: TaskRun,
    paths: ReadonlySet<NetboxPath>,
    target: HostValues,
    vm: NetboxVm | undefined,
  ): Promise<Resolved | Unresolvable> {
    const resolved: Resolved = {};
    let siteId: number | undefined = vm?.site?.id;
    if (paths.has('datacenter')) {
      if (target.datacenter === undefined) resolved.site = null;
      else {
        const site = await resolveSite(run, target.datacenter);
        if ('reason' in site) return site;
        resolved.site = siteId = site.id;
      }
    }
    if (paths.has('subcluster')) {
      if (target.subcluster === undefined) resolved.cluster = null;
      else {
        const cluster = await resolveCluster(run, target.subcluster, siteId);
        if ('reason' in cluster) return cluster;
        resolved.cluster = cluster.id;
        resolved.clusterSite = cluster.site;
      }
    }
    if (paths.has('owner')) {
      if (target.owner === undefined) resolved.tenant = null;
      else {
        const tenant = await resolveTenant(run, target.owner);
        if ('reason' in tenant) return tenant;
        resolved.tenant = tenant.id;
      }
    }
    if (paths.has('puppet_roles') && roles.kind === 'tags') {
      const kept = (vm?.tags ?? []).filter((t) => !isRoleTag(t.name, roles)).map((t) => t.id);
      resolved.tags = [...kept, ...(await roleTagIds(run, target.puppet_roles ?? []))];
    }
    return resolved;
  }

  /** The fields of a VM create or PATCH body for the given paths. */
  function body(
    paths: ReadonlySet<NetboxPath>,
    target: HostValues,
    resolved: Resolved,
  ): Record<string, JsonValue> {
    const fields: Record<string, JsonValue> = {};
    if (resolved.site !== undefined) fields['site'] = resolved.site;
    if (resolved.cluster !== undefined) fields['cluster'] = resolved.cluster;
    if (resolved.tenant !== undefined) fields['tenant'] = resolved.tenant;
    if (paths.has('status') && target.status !== undefined)
      fields['status'] = STATUS_TO_NETBOX[target.status];
    if (paths.has('puppet_roles')) {
      if (roles.kind === 'tags') fields['tags'] = resolved.tags ?? [];
      else fields['custom_fields'] = { [roles.field]: target.puppet_roles ?? null };
    }
    return fields;
  }

  /** A change as an operation's detail: `cluster web → db; roles +redis −nginx`. */
  function describeChange(paths: ReadonlySet<NetboxPath>, before: HostValues, after: HostValues): string {
    const parts: string[] = [];
    for (const path of paths) {
      if (path === 'puppet_roles') {
        const was = before.puppet_roles ?? [];
        const now = after.puppet_roles ?? [];
        const added = now.filter((r) => !was.includes(r)).map((r) => `+${r}`);
        const removed = was.filter((r) => !now.includes(r)).map((r) => `−${r}`);
        parts.push(`roles ${[...added, ...removed].join(' ')}`);
      } else parts.push(`${path} ${before[path] ?? '(none)'} → ${after[path] ?? '(none)'}`);
    }
    return parts.join('; ');
  }

  function describeCreate(target: HostValues): string {
    return [
      describeRef('site', target.datacenter),
      describeRef('cluster', target.subcluster),
      describeRef('tenant', target.owner),
      `status ${target.status ?? 'active'}`,
      target.puppet_roles === undefined ? 'no roles' : `roles ${target.puppet_roles.join(', ')}`,
    ].join(', ');
  }

  /**
   * Creates the VM. When NetBox refuses because a VM of that name appeared since the look-up (another worker,
   * an operator), throws a retryable error so that the next attempt finds it and updates it instead.
   */
  async function createVm(
    run: TaskRun,
    name: string,
    fields: Record<string, JsonValue>,
    hints: readonly (string | undefined)[],
  ): Promise<unknown> {
    try {
      return await client.create(
        API.vms,
        { name, ...fields },
        call(run.context, `create virtual machine ${name}`),
      );
    } catch (error) {
      if (!(error instanceof BackendError) || (await findVm(run, name, hints)) === undefined) throw error;
      throw new BackendUnavailableError(
        `virtual machine ${name} appeared in NetBox while it was being created; trying again`,
        { cause: error },
      );
    }
  }

  /** The host is being deleted: delete its VM (a 404 means someone already did) and forget the values. */
  async function remove(run: TaskRun, task: ProviderTask): Promise<void> {
    const node = valuesOfNode(task.node);
    const vm = await findVm(run, task.name, [node.subcluster]);
    if (vm !== undefined) {
      const target = `netbox/vm/${task.name}`;
      await run.operation(
        { action: 'delete-vm', target: target },
        (result) =>
          result === 'gone' ? `virtual machine #${vm.id} was already gone` : `virtual machine #${vm.id}`,
        () => client.delete(`${API.vms}${vm.id}/`, call(run.context, `delete virtual machine ${task.name}`)),
      );
      if (!run.explain) run.logger.info('deleted NetBox virtual machine', { name: task.name, id: vm.id });
    }
    for (const path of NETBOX_PATHS) if (task.node[path] !== undefined) run.out.unset.push(path);
    run.out.accept(...task.updates);
  }

  async function decide(run: TaskRun): Promise<void> {
    const { task, out, explain: dry } = run;
    if (task.node['present'] === undefined) {
      await remove(run, task);
      return;
    }
    const work: ProposedUpdate[] = [];
    for (const update of task.updates) {
      const refused = update.op === 'sync' ? undefined : refusal(update);
      if (update.op === 'sync') out.accept(update);
      else if (refused !== undefined) out.reject(refused, update);
      else work.push(update);
    }
    if (work.length === 0) return;
    if (task.name.length > VM_NAME_MAX) {
      out.reject(
        `NetBox virtual machine names have at most ${VM_NAME_MAX} characters; ${task.name} has ${task.name.length}`,
        ...work,
      );
      return;
    }

    const node = valuesOfNode(task.node);
    const expected = applyUpdates(node, work);
    const vm = await findVm(run, task.name, [node.subcluster, expected.subcluster]);
    // Deltas (add/remove a role) apply to what NetBox has, so roles added in NetBox are not lost.
    const before = vm === undefined ? node : valuesOfVm(vm, roles);
    const target = applyUpdates(before, work);
    const touched = new Set(work.map((u) => u.path as NetboxPath));
    const paths = new Set(
      vm === undefined
        ? NETBOX_PATHS.filter((p) => target[p] !== undefined)
        : [...touched].filter((p) => !sameValue(p, before, target)),
    );

    if (vm === undefined && target.datacenter === undefined && target.subcluster === undefined) {
      out.reject(
        `NetBox needs a datacenter (site) or a subcluster (cluster) to create virtual machine ${task.name}`,
        ...work,
      );
      return;
    }
    const resolved = await resolve(run, paths, target, vm);
    if ('reason' in resolved) {
      const failed = work.filter((u) => u.path === resolved.path);
      out.reject(resolved.reason, ...(failed.length > 0 ? failed : work));
      out.reject(`not written to NetBox because ${resolved.reason}`, ...work);
      return;
    }

    let after: NetboxVm | undefined = vm;
    const fields = body(paths, target, resolved);
    if (vm === undefined) {
      const created = await run.operation(
        { action: 'create-vm', target: `netbox/vm/${task.name}` },
        describeCreate(target),
        () => createVm(run, task.name, fields, [node.subcluster, expected.subcluster]),
      );
      if (created !== undefined) {
        after = toVm(created);
        run.logger.info('created NetBox virtual machine', { name: task.name, id: after.id });
      }
    } else if (Object.keys(fields).length > 0) {
      const patched = await run.operation(
        { action: 'update-vm', target: `netbox/vm/${task.name}` },
        describeChange(paths, before, target),
        () =>
          client.patch(
            `${API.vms}${vm.id}/`,
            fields,
            call(run.context, `update virtual machine ${task.name}`),
          ),
      );
      if (!dry && patched === undefined) {
        // Deleted by someone else between the look-up and the PATCH: the next attempt creates it again.
        throw new BackendUnavailableError(
          `virtual machine ${task.name} (#${vm.id}) disappeared from NetBox while it was updated; trying again`,
        );
      }
      if (patched !== undefined) {
        after = toVm(patched);
        run.logger.info('updated NetBox virtual machine', {
          name: task.name,
          id: after.id,
          fields: Object.keys(fields),
        });
      }
    }
    out.accept(...work);

    // NetBox is the authority: report its values where they differ from what the node will hold.
    let actual: HostValues;
    if (dry) {
      actual = { ...target };
      if (vm === undefined) actual.status ??= 'active';
      if (target.datacenter === undefined && resolved.clusterSite?.slug !== undefined) {
        actual.datacenter = resolved.clusterSite.slug;
      }
    } else actual = valuesOfVm(after as NetboxVm, roles);
    for (const path of NETBOX_PATHS) {
      if (sameValue(path, expected, actual)) continue;
      const value = actual[path];
      if (value !== undefined) out.set[path] = value;
      else if (expected[path] !== undefined || task.node[path] !== undefined) out.unset.push(path);
    }
  }

  return decisionProvider(
    {
      name: NETBOX_PROVIDER,
      kind: 'host',
      claims: NETBOX_CLAIMS,
      observe: async (ref, context): Promise<Observation> => {
        if (ref.kind !== 'host') return null;
        const vm = await findVm({ context }, ref.name, []);
        return vm === undefined ? null : toAttrs(valuesOfVm(vm, roles));
      },
      discover: async (kind, context): Promise<DiscoveredObject[]> => {
        if (kind !== 'host') return [];
        const vms = await client.list(API.vms, {}, call(context, 'list virtual machines'));
        // A node name is a lowercase DNS name; a VM named otherwise in NetBox maps to no node.
        return vms
          .map(toVm)
          .filter((vm) => isNodeName(vm.name))
          .map((vm) => ({ name: vm.name, attrs: toAttrs(valuesOfVm(vm, roles)) }));
      },
    },
    decide,
  );
}
