/**
 * The DESIGN.md §2 provisioning example as in-memory providers (inventory, cmdb, ipam, libvirt, cobbler), shared
 * by the planner tests and the planner benchmark. Each provider keeps a tiny fake backend so tests can assert
 * what was done, and behaves as the design describes: libvirt defers `power` until netboot is ready, cobbler
 * watches interfaces and needs a MAC and an IP before it registers a system.
 */
import type {
  ApplyOutcome,
  AttributeClaim,
  Attrs,
  ExplainOutcome,
  JsonObject,
  JsonValue,
  KindDefinition,
  NodeProvider,
  PlannerOptions,
  ProposedUpdate,
  ProviderTask,
} from '@consortium/core';
import { DEFAULT_PLANNER_OPTIONS, TransitionPlanner, buildKindSchemas, isJsonObject } from '@consortium/core';

/** The host kind of the example. */
export const HOST_KIND: KindDefinition = { name: 'host', description: 'a machine' };

type Handler = (task: ProviderTask, update: ProposedUpdate, out: OutcomeRecorder) => void;

/** Collects one task's answers for the fixture's handlers (the plugin API's `OutcomeBuilder` is the one providers use). */
export class OutcomeRecorder {
  /** In explain: decide as usual but change no backend. */
  constructor(readonly dry = false) {}
  accepted: string[] = [];
  deferred: { id: string; reason: string; waitFor?: string[] }[] = [];
  rejected: { id: string; reason: string }[] = [];
  set: Record<string, JsonValue> = {};
  unset: string[] = [];
  later: string[] = [];
  propose: { path: string; op: ProposedUpdate['op']; value?: JsonValue }[] = [];
  operations: { action: string; target: string; detail?: string; durationMs: number }[] = [];

  /** The outcome, with empty lists left out. */
  build(): ExplainOutcome {
    const entries = Object.entries({
      accepted: this.accepted,
      deferred: this.deferred,
      rejected: this.rejected,
      set: this.set,
      unset: this.unset,
      later: this.later,
      propose: this.propose,
      operations: this.operations,
    }).filter(([, v]) => (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0));
    return Object.fromEntries(entries);
  }
}

/** A provider built from a per-update handler; apply and explain share it, explain turns `set` into `later`. */
export function handlerProvider(
  name: string,
  claims: readonly AttributeClaim[],
  handle: Handler,
  watches: readonly string[] = [],
): NodeProvider & { calls: ProviderTask[] } {
  const calls: ProviderTask[] = [];
  const run = (task: ProviderTask): ApplyOutcome => {
    calls.push(task);
    const out = new OutcomeRecorder();
    for (const update of task.updates) handle(task, update, out);
    return out.build();
  };
  return {
    name,
    kind: HOST_KIND.name,
    claims,
    watches,
    calls,
    apply: (task) => Promise.resolve(run(task)),
    explain: (task) => {
      const out = new OutcomeRecorder(true);
      for (const update of task.updates) handle(task, update, out);
      out.later.push(...Object.keys(out.set).filter((path) => !isKnownInExplain(path)));
      out.set = Object.fromEntries(Object.entries(out.set).filter(([path]) => isKnownInExplain(path)));
      return Promise.resolve(out.build());
    },
  };
}

// Generated values (MACs, IPs, placement) are only known once applied.
function isKnownInExplain(path: string): boolean {
  return !/\.(mac|ip)$/.test(path) && path !== 'hypervisor';
}

const interfaces = (node: Attrs): JsonObject[] =>
  Array.isArray(node['interfaces']) ? (node['interfaces'] as JsonValue[]).filter(isJsonObject) : [];

/** The fake backends, to assert on what the providers did. */
export interface Backends {
  cmdb: Map<string, JsonObject>;
  ipam: { next: number; allocated: Map<string, string> };
  libvirt: Map<string, { hwspec: string; mac: string; running: boolean }>;
  cobbler: Map<string, { mac: string; ip: string; netboot: boolean }>;
}

/** Builds the example world: kind schema, planner and providers over fresh fake backends. */
export function provisioningWorld(options: Partial<PlannerOptions> = {}) {
  const backends: Backends = {
    cmdb: new Map(),
    ipam: { next: 34, allocated: new Map() },
    libvirt: new Map(),
    cobbler: new Map(),
  };
  const removed = (task: ProviderTask): boolean => task.node['present'] === undefined;
  const inventory = handlerProvider(
    'inventory',
    [
      { path: 'hostname', schema: { type: 'string' } },
      {
        path: 'interfaces',
        schema: {
          type: 'array',
          'x-list-type': 'map',
          'x-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
        },
      },
    ],
    (_task, update, out) => {
      out.accepted.push(update.id);
    },
  );
  const cmdb = handlerProvider(
    'cmdb',
    [
      { path: 'datacenter', schema: { type: 'string' } },
      { path: 'subcluster', schema: { type: 'string' } },
      { path: 'puppet_roles', schema: { type: 'array', 'x-list-type': 'set', items: { type: 'string' } } },
    ],
    (task, update, out) => {
      if (update.op === 'sync' && removed(task)) {
        if (!out.dry && backends.cmdb.delete(task.name))
          out.operations.push({ action: 'delete-record', target: task.name, durationMs: 1 });
      } else if (update.op !== 'sync') {
        const record = backends.cmdb.get(task.name) ?? {};
        if (!out.dry) backends.cmdb.set(task.name, { ...record, [update.path]: update.value ?? null });
        out.operations.push({
          action: 'upsert-record',
          target: task.name,
          detail: update.path,
          durationMs: 1,
        });
      }
      out.accepted.push(update.id);
    },
  );
  const ipam = handlerProvider(
    'ipam',
    [
      { path: 'subnet', schema: { type: 'string' } },
      { path: 'interfaces[*].ip', schema: { type: 'string', pattern: '^[0-9.]+$' } },
    ],
    (task, update, out) => {
      if (update.op === 'sync' && removed(task)) {
        if (!out.dry) backends.ipam.allocated.delete(task.name);
      } else if (update.path === 'subnet') {
        const ip = backends.ipam.allocated.get(task.name) ?? `10.1.2.${backends.ipam.next}`;
        if (!out.dry) {
          backends.ipam.next++;
          backends.ipam.allocated.set(task.name, ip);
        }
        out.set['interfaces[eth0].ip'] = ip;
        out.operations.push({
          action: 'allocate-ip',
          target: JSON.stringify(update.value),
          detail: ip,
          durationMs: 1,
        });
      }
      out.accepted.push(update.id);
    },
  );
  const libvirt = handlerProvider(
    'libvirt',
    [
      { path: 'hwspec', schema: { type: 'string', enum: ['small', 'medium', 'large'] } },
      { path: 'power', schema: { type: 'string', enum: ['on', 'off'] } },
      { path: 'hypervisor', schema: { type: 'string' } },
      { path: 'interfaces[*].mac', schema: { type: 'string', pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' } },
    ],
    (task, update, out) => {
      const domain = backends.libvirt.get(task.name);
      if (update.op === 'sync' && removed(task)) {
        if (!out.dry && backends.libvirt.delete(task.name))
          out.operations.push({ action: 'undefine', target: task.name, durationMs: 1 });
        out.accepted.push(update.id);
      } else if (update.path === 'hwspec') {
        const mac = domain?.mac ?? '52:54:00:00:00:01';
        if (!out.dry)
          backends.libvirt.set(task.name, {
            hwspec: update.value as string,
            mac,
            running: domain?.running ?? false,
          });
        out.set['hypervisor'] = 'hv-3';
        out.set['interfaces[eth0].mac'] = mac;
        out.operations.push({ action: 'define', target: `hv-3/${task.name}`, durationMs: 1 });
        out.accepted.push(update.id);
      } else if (update.path === 'power') {
        if (update.value === 'on' && task.node['netboot'] !== true) {
          out.deferred.push({ id: update.id, reason: 'netboot not ready', waitFor: ['netboot'] });
        } else if (domain === undefined && !out.dry) {
          out.deferred.push({ id: update.id, reason: 'no domain defined yet', waitFor: ['hwspec'] });
        } else {
          if (domain !== undefined && !out.dry) domain.running = update.value === 'on';
          out.operations.push({
            action: update.value === 'on' ? 'start' : 'destroy',
            target: task.name,
            durationMs: 1,
          });
          out.accepted.push(update.id);
        }
      } else out.accepted.push(update.id);
    },
  );
  const cobbler = handlerProvider(
    'cobbler',
    [
      { path: 'netboot', schema: { type: 'boolean' } },
      { path: 'profile', schema: { type: 'string' } },
    ],
    (task, update, out) => {
      if (update.op === 'sync' && removed(task)) {
        if (!out.dry && backends.cobbler.delete(task.name))
          out.operations.push({ action: 'remove_system', target: task.name, durationMs: 1 });
        out.accepted.push(update.id);
        return;
      }
      const eth0 = interfaces(task.node).find((i) => i['name'] === 'eth0');
      // In explain, a value another provider fills in later stands as a placeholder naming that provider.
      const field = (name: string): string | undefined => {
        const value = eth0?.[name];
        if (typeof value === 'string') return value;
        const from = task.later?.[`interfaces[eth0].${name}`];
        return from === undefined ? undefined : `<${name} from ${from}>`;
      };
      const mac = field('mac');
      const ip = field('ip');
      if (mac === undefined || ip === undefined) {
        out.deferred.push({ id: update.id, reason: 'waiting for a MAC and an IP', waitFor: ['interfaces'] });
        return;
      }
      if (!out.dry) backends.cobbler.set(task.name, { mac, ip, netboot: true });
      out.operations.push({
        action: 'save_system',
        target: task.name,
        detail: `${mac} ${ip}`,
        durationMs: 1,
      });
      if (task.node['netboot'] !== true) out.set['netboot'] = true;
      out.accepted.push(update.id);
    },
    ['hostname', 'interfaces'],
  );
  const providers = [inventory, cmdb, ipam, libvirt, cobbler];
  const schemas = buildKindSchemas([HOST_KIND], providers);
  const schema = schemas.get(HOST_KIND.name);
  if (schema === undefined) throw new Error('host schema missing');
  const planner = new TransitionPlanner(schema, { ...DEFAULT_PLANNER_OPTIONS, ...options });
  return {
    backends,
    schema,
    planner,
    providers: new Map<string, NodeProvider>(providers.map((p) => [p.name, p])),
    inventory,
    cmdb,
    ipam,
    libvirt,
    cobbler,
  };
}

/** The request of the example: `create host web-01 hwspec=small datacenter=pek1 ... power=on`. */
export const CREATE_WEB_01 = [
  { path: 'present', op: 'set', value: true },
  { path: 'hwspec', op: 'set', value: 'small' },
  { path: 'datacenter', op: 'set', value: 'pek1' },
  { path: 'subcluster', op: 'set', value: 'web' },
  { path: 'subnet', op: 'set', value: 'pek1-web' },
  { path: 'puppet_roles', op: 'add', value: 'nginx' },
  { path: 'power', op: 'set', value: 'on' },
] as const;
