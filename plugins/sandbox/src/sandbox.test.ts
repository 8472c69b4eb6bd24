import type {
  ApplyOutcome,
  Attrs,
  NodeProvider,
  PluginServices,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
} from '@consortium/plugin-api';
import { CancelledError, macFor, silentLogger } from '@consortium/plugin-api';
import { describe, expect, it } from 'vitest';
import type { SandboxConfig } from './index.js';
import { plugin } from './index.js';

const services = { logger: silentLogger, now: () => 0 } as unknown as PluginServices;

function context(signal = new AbortController().signal, now: () => number = () => 0): ProviderContext {
  return { logger: silentLogger, signal, fencingToken: '0', now };
}

function sandbox(config: SandboxConfig = {}): { vm: NodeProvider; pxe: NodeProvider } {
  const [vm, pxe] = plugin.providers({ delayMs: 0, ...config }, services);
  return { vm: vm!, pxe: pxe! };
}

let nextId = 0;
const set = (path: string, value: ProposedUpdate['value']): ProposedUpdate => ({
  id: `u${++nextId}`,
  path,
  op: 'set',
  origin: 'user',
  ...(value === undefined ? {} : { value }),
});
const sync = (path: string): ProposedUpdate => ({
  id: `s${++nextId}`,
  path,
  op: 'sync',
  origin: 'ipam',
  reason: `${path} changed`,
});

function task(
  provider: NodeProvider,
  name: string,
  updates: ProposedUpdate[],
  node: Attrs = { present: true },
  later?: Record<string, string>,
): ProviderTask {
  return {
    id: `job/r1/${provider.name}`,
    jobId: 'job',
    round: 1,
    attempt: 1,
    provider: provider.name,
    kind: 'host',
    name,
    node,
    updates,
    ...(later === undefined ? {} : { later }),
  };
}

const MAC = /^52:54:00(:[0-9a-f]{2}){3}$/;

/** Every operation of the outcomes is labelled as simulated. */
function expectSimulated(...outcomes: ApplyOutcome[]): void {
  for (const op of outcomes.flatMap((o) => o.operations ?? [])) expect(op.detail).toMatch(/^\[simulated\] /);
}

describe('the sandbox plugin', () => {
  it('is labelled as a simulation and has two providers', () => {
    const { vm, pxe } = sandbox();
    expect(plugin.id).toBe('sandbox');
    expect(String(plugin.configSchema['description'])).toMatch(/^SIMULATION ONLY/);
    expect([vm.name, pxe.name]).toEqual(['sandbox-vm', 'sandbox-pxe']);
    expect(vm.claims.map((c) => c.path)).toEqual(['hwspec', 'power', 'hypervisor', 'interfaces[*].mac']);
    expect(pxe.claims.map((c) => c.path)).toEqual(['profile', 'netboot']);
    expect(pxe.watches).toEqual(['interfaces', 'hostname']);
    for (const claim of [...vm.claims, ...pxe.claims])
      expect(String(claim.schema?.['description'])).toMatch(/^\[simulated\]/);
  });
});

describe('sandbox-vm', () => {
  it('defines a VM on the hypervisor with the most free memory and reports it with a generated MAC', async () => {
    const { vm } = sandbox();
    const update = set('hwspec', 'small');
    const outcome = await vm.apply(task(vm, 'web-01', [update]), context());
    const mac = outcome.set?.['interfaces[eth0].mac'] as string;
    expect(mac).toMatch(MAC);
    expect(outcome).toEqual({
      accepted: [update.id],
      set: { hypervisor: 'sandbox-hv-1', 'interfaces[eth0].mac': mac },
      operations: [
        {
          action: 'define',
          target: 'sandbox-hv-1/web-01',
          detail: '[simulated] defined VM web-01 (small: 2 vcpus, 4096 MiB) on sandbox-hv-1',
          durationMs: 0,
        },
      ],
    });
    expect(await vm.observe?.({ kind: 'host', name: 'web-01' }, context())).toEqual({
      hwspec: 'small',
      power: 'off',
      hypervisor: 'sandbox-hv-1',
      interfaces: [{ name: 'eth0', mac }],
    });
    // The MAC comes from the name: another process (another simulated world) derives the same one.
    const other = sandbox().vm;
    expect(
      (await other.apply(task(other, 'web-01', [set('hwspec', 'large')]), context())).set?.[
        'interfaces[eth0].mac'
      ],
    ).toBe(mac);
    const web02 = (await vm.apply(task(vm, 'web-02', [set('hwspec', 'small')]), context())).set?.[
      'interfaces[eth0].mac'
    ];
    expect(web02).toMatch(MAC);
    expect(web02).not.toBe(mac);
  });

  it('is idempotent: the same task again defines nothing new', async () => {
    const { vm } = sandbox();
    const t = task(vm, 'web-01', [set('hwspec', 'small')]);
    const first = await vm.apply(t, context());
    const again = await vm.apply(t, context());
    expect(again).toEqual({ accepted: t.updates.map((u) => u.id), set: first.set });
    const node = {
      present: true,
      hwspec: 'small',
      hypervisor: 'sandbox-hv-1',
      interfaces: [{ name: 'eth0', mac: first.set?.['interfaces[eth0].mac'] ?? null }],
    };
    const converged = set('hwspec', 'small');
    expect(await vm.apply(task(vm, 'web-01', [converged], node), context())).toEqual({
      accepted: [converged.id],
    });
  });

  it('spreads VMs over hypervisors by free memory, the first one on ties', async () => {
    const { vm } = sandbox();
    const placed: unknown[] = [];
    for (const [name, hwspec] of [
      ['a', 'large'],
      ['b', 'small'],
      ['c', 'small'],
      ['d', 'medium'],
    ] as const) {
      placed.push((await vm.apply(task(vm, name, [set('hwspec', hwspec)]), context())).set?.['hypervisor']);
    }
    // hv-1: 32768 - 16384 = 16384 free after a; b goes to hv-2 (28672 free); c to hv-2 (24576 > 16384); d to hv-2.
    expect(placed).toEqual(['sandbox-hv-1', 'sandbox-hv-2', 'sandbox-hv-2', 'sandbox-hv-2']);
  });

  it('rejects a VM that fits on no simulated hypervisor', async () => {
    const { vm } = sandbox({ hypervisors: ['tiny-hv'], capacity: { vcpus: 4, memory_mib: 8192 } });
    await vm.apply(task(vm, 'a', [set('hwspec', 'small')]), context());
    const update = set('hwspec', 'medium');
    const power = set('power', 'on');
    expect(await vm.apply(task(vm, 'b', [update, power]), context())).toEqual({
      rejected: [
        { id: update.id, reason: 'no simulated hypervisor has room for a medium: 4 vcpus, 8192 MiB VM' },
        { id: power.id, reason: 'no simulated hypervisor has room for a medium: 4 vcpus, 8192 MiB VM' },
      ],
    });
    expect(await vm.observe?.({ kind: 'host', name: 'b' }, context())).toBeNull();
  });

  it('resizes a VM where it is, if it fits', async () => {
    const { vm } = sandbox({ hypervisors: ['hv'], capacity: { vcpus: 10, memory_mib: 20480 } });
    await vm.apply(task(vm, 'a', [set('hwspec', 'small')]), context());
    const node = { present: true, hwspec: 'small' };
    const large = await vm.apply(task(vm, 'a', [set('hwspec', 'large')], node), context());
    expect(large.operations?.map((o) => o.detail)).toEqual([
      '[simulated] resized VM a (large: 8 vcpus, 16384 MiB) on hv',
    ]);
    await vm.apply(task(vm, 'b', [set('hwspec', 'small')]), context());
    const medium = set('hwspec', 'medium');
    expect((await vm.apply(task(vm, 'b', [medium], node), context())).rejected).toEqual([
      { id: medium.id, reason: 'simulated hypervisor hv has no room for a medium: 4 vcpus, 8192 MiB VM' },
    ]);
    expect((await vm.observe?.({ kind: 'host', name: 'b' }, context()))?.['hwspec']).toBe('small');
  });

  it('defers power on until PXE registration, then starts the VM once', async () => {
    const { vm } = sandbox();
    const hwspec = set('hwspec', 'small');
    const power = set('power', 'on');
    const first = await vm.apply(task(vm, 'web-01', [hwspec, power]), context());
    expect(first.accepted).toEqual([hwspec.id]);
    expect(first.deferred).toEqual([
      { id: power.id, reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] },
    ]);

    const node = { present: true, hwspec: 'small', netboot: true };
    const started = await vm.apply(task(vm, 'web-01', [power], node), context());
    expect(started).toEqual({
      accepted: [power.id],
      set: first.set,
      operations: [
        {
          action: 'start',
          target: 'sandbox-hv-1/web-01',
          detail: '[simulated] started VM web-01',
          durationMs: 0,
        },
      ],
    });
    expect((await vm.observe?.({ kind: 'host', name: 'web-01' }, context()))?.['power']).toBe('on');
    const again = await vm.apply(task(vm, 'web-01', [power], node), context());
    expect(again.operations).toBeUndefined();
    expect(again.accepted).toEqual([power.id]);
  });

  it('stops a VM, and boots it again from disk without waiting for PXE', async () => {
    const { vm } = sandbox();
    await vm.apply(task(vm, 'web-01', [set('hwspec', 'small')]), context());
    await vm.apply(
      task(vm, 'web-01', [set('power', 'on')], { present: true, hwspec: 'small', netboot: true }),
      context(),
    );
    const node = { present: true, hwspec: 'small', netboot: false };
    const off = await vm.apply(task(vm, 'web-01', [set('power', 'off')], node), context());
    expect(off.operations?.map((o) => o.action)).toEqual(['stop']);
    expect((await vm.observe?.({ kind: 'host', name: 'web-01' }, context()))?.['power']).toBe('off');
    const on = await vm.apply(task(vm, 'web-01', [set('power', 'on')], node), context());
    expect(on.operations?.map((o) => o.action)).toEqual(['start']);
    expect(on.deferred).toBeUndefined();
  });

  it('waits for hwspec before powering on a host without a VM', async () => {
    const { vm } = sandbox();
    const power = set('power', 'on');
    expect(await vm.apply(task(vm, 'web-01', [power]), context())).toEqual({
      deferred: [
        { id: power.id, reason: 'waiting for hwspec to define the simulated VM', waitFor: ['hwspec'] },
      ],
    });
  });

  it('refuses values the simulated hypervisor chooses', async () => {
    const { vm } = sandbox();
    const first = await vm.apply(task(vm, 'web-01', [set('hwspec', 'small')]), context());
    const node = { present: true, hwspec: 'small', ...first.set };
    const mac = set('interfaces[eth0].mac', '52:54:00:00:00:01');
    const hypervisor = set('hypervisor', 'sandbox-hv-2');
    const same = set('hypervisor', 'sandbox-hv-1');
    const outcome = await vm.apply(task(vm, 'web-01', [mac, hypervisor], node), context());
    expect(outcome.rejected?.map((r) => r.reason)).toEqual([
      'web-01 is defined on sandbox-hv-1; moving a VM to another hypervisor is not supported (delete the host and create it again)',
      `the MAC of web-01 is ${first.set?.['interfaces[eth0].mac'] as string}; the MAC of an existing VM cannot be changed`,
    ]);
    expect((await vm.apply(task(vm, 'web-01', [same], node), context())).accepted).toEqual([same.id]);
  });

  it('on delete stops and undefines the VM and unsets its values; again, there is nothing left', async () => {
    const { vm } = sandbox();
    const first = await vm.apply(task(vm, 'web-01', [set('hwspec', 'small')]), context());
    await vm.apply(
      task(vm, 'web-01', [set('power', 'on')], { present: true, hwspec: 'small', netboot: true }),
      context(),
    );
    const node = {
      hwspec: 'small',
      power: 'on',
      hypervisor: 'sandbox-hv-1',
      interfaces: [{ name: 'eth0', mac: first.set?.['interfaces[eth0].mac'] ?? null, ip: '10.1.2.4' }],
    };
    const removal = sync('present');
    const outcome = await vm.apply(task(vm, 'web-01', [removal], node), context());
    expect(outcome).toEqual({
      accepted: [removal.id],
      unset: ['hwspec', 'power', 'hypervisor', 'interfaces[eth0].mac'],
      operations: [
        {
          action: 'stop',
          target: 'sandbox-hv-1/web-01',
          detail: '[simulated] stopped VM web-01',
          durationMs: 0,
        },
        {
          action: 'undefine',
          target: 'sandbox-hv-1/web-01',
          detail: '[simulated] undefined VM web-01',
          durationMs: 0,
        },
      ],
    });
    expect(await vm.observe?.({ kind: 'host', name: 'web-01' }, context())).toBeNull();
    expect(await vm.apply(task(vm, 'web-01', [removal], {}), context())).toEqual({ accepted: [removal.id] });
    expectSimulated(first, outcome);
  });

  it('takes its time and honours the signal: a cancelled start leaves the VM stopped', async () => {
    const { vm } = sandbox({ delayMs: 40 });
    const t0 = Date.now();
    const defined = await vm.apply(
      task(vm, 'web-01', [set('hwspec', 'small')]),
      context(undefined, () => Date.now() - t0),
    );
    expect(defined.operations?.[0]?.durationMs).toBeGreaterThanOrEqual(35);

    const controller = new AbortController();
    const node = { present: true, hwspec: 'small', netboot: true };
    const pending = vm.apply(task(vm, 'web-01', [set('power', 'on')], node), context(controller.signal));
    setTimeout(() => {
      controller.abort();
    }, 5);
    await expect(pending).rejects.toThrow(CancelledError);
    await expect(pending).rejects.toThrow('[simulated] operation cancelled');
    expect((await vm.observe?.({ kind: 'host', name: 'web-01' }, context()))?.['power']).toBe('off');
  });

  it('explains without defining anything, predicting the hypervisor and the MAC that apply reports', async () => {
    const { vm } = sandbox();
    const hwspec = set('hwspec', 'small');
    const power = set('power', 'on');
    expect(await vm.explain(task(vm, 'web-01', [hwspec, power]), context())).toEqual({
      accepted: [hwspec.id],
      deferred: [{ id: power.id, reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] }],
      set: { hypervisor: 'sandbox-hv-1', 'interfaces[eth0].mac': macFor('web-01', new Set()) },
      operations: [
        {
          action: 'define',
          target: 'sandbox-hv-1/web-01',
          detail: '[simulated] defined VM web-01 (small: 2 vcpus, 4096 MiB) on sandbox-hv-1',
          durationMs: 0,
        },
      ],
    });
    expect(await vm.observe?.({ kind: 'host', name: 'web-01' }, context())).toBeNull();
    // A later round of the same plan: the VM is promised on the predicted hypervisor, so it is started, not
    // defined again.
    const node = { present: true, hwspec: 'small', hypervisor: 'sandbox-hv-1', netboot: true };
    const round3 = await vm.explain(task(vm, 'web-01', [power], node), context());
    expect(round3.accepted).toEqual([power.id]);
    expect(round3.operations?.map((o) => o.action)).toEqual(['start']);
  });
});

describe('sandbox-pxe', () => {
  const eth0 = (mac: string, ip: string) => [{ name: 'eth0', mac, ip }];

  it('registers nothing on a watched change without both addresses; a requested netboot waits for them', async () => {
    const { pxe } = sandbox();
    const update = sync('interfaces');
    const netboot = { id: 'u9', path: 'netboot', op: 'set' as const, value: true, origin: 'user' };
    expect(
      await pxe.apply(
        task(pxe, 'web-01', [update, netboot], {
          present: true,
          interfaces: [{ name: 'eth0', ip: '10.1.2.4' }],
        }),
        context(),
      ),
    ).toEqual({
      accepted: [update.id],
      deferred: [{ id: 'u9', reason: 'waiting for a MAC and an IP', waitFor: ['interfaces'] }],
    });
  });

  it('registers the system and reports netboot and the default profile; again, nothing changes', async () => {
    const { pxe } = sandbox({ profile: 'debian-12-sandbox' });
    const update = sync('interfaces');
    const node = {
      present: true,
      hostname: 'web-01.example.com',
      interfaces: eth0('52:54:00:aa:bb:cc', '10.1.2.4'),
    };
    expect(await pxe.apply(task(pxe, 'web-01', [update], node), context())).toEqual({
      accepted: [update.id],
      set: { profile: 'debian-12-sandbox', netboot: true },
      operations: [
        {
          action: 'add-system',
          target: 'system/web-01',
          detail:
            '[simulated] registered system web-01 (mac 52:54:00:aa:bb:cc, ip 10.1.2.4, profile debian-12-sandbox, netboot on)',
          durationMs: 0,
        },
      ],
    });
    expect(await pxe.observe?.({ kind: 'host', name: 'web-01' }, context())).toEqual({
      profile: 'debian-12-sandbox',
      netboot: true,
    });
    const converged = { ...node, profile: 'debian-12-sandbox', netboot: true };
    expect(await pxe.apply(task(pxe, 'web-01', [update], converged), context())).toEqual({
      accepted: [update.id],
    });
  });

  it('updates the system when the address or the profile changes', async () => {
    const { pxe } = sandbox();
    const node = {
      present: true,
      profile: 'sandbox-debian-12',
      netboot: true,
      interfaces: eth0('52:54:00:aa:bb:cc', '10.1.2.4'),
    };
    await pxe.apply(task(pxe, 'web-01', [sync('interfaces')], node), context());
    const moved = { ...node, interfaces: eth0('52:54:00:aa:bb:cc', '10.1.3.1') };
    const edit = await pxe.apply(task(pxe, 'web-01', [sync('interfaces')], moved), context());
    expect(edit.operations?.map((o) => o.action)).toEqual(['edit-system']);
    expect(edit.set).toBeUndefined();
    const profile = set('profile', 'rocky-9');
    const changed = await pxe.apply(task(pxe, 'web-01', [profile], moved), context());
    expect(changed.accepted).toEqual([profile.id]);
    expect(changed.set).toBeUndefined();
    expect(await pxe.observe?.({ kind: 'host', name: 'web-01' }, context())).toEqual({
      profile: 'rocky-9',
      netboot: true,
    });
  });

  it('defers a profile until the host has addresses', async () => {
    const { pxe } = sandbox();
    const profile = set('profile', 'rocky-9');
    expect((await pxe.apply(task(pxe, 'web-01', [profile]), context())).deferred).toEqual([
      { id: profile.id, reason: 'waiting for a MAC and an IP', waitFor: ['interfaces'] },
    ]);
  });

  it('refuses a MAC or an IP that another system has', async () => {
    const { pxe } = sandbox();
    await pxe.apply(
      task(pxe, 'a', [sync('interfaces')], {
        present: true,
        interfaces: eth0('52:54:00:aa:bb:cc', '10.1.2.4'),
      }),
      context(),
    );
    const update = sync('interfaces');
    expect(
      (
        await pxe.apply(
          task(pxe, 'b', [update], { present: true, interfaces: eth0('52:54:00:aa:bb:cd', '10.1.2.4') }),
          context(),
        )
      ).rejected,
    ).toEqual([{ id: update.id, reason: '[simulated] IP 10.1.2.4 is already registered to system a' }]);
  });

  it('on delete removes the system and unsets its values; again, there is nothing left', async () => {
    const { pxe } = sandbox();
    const created = await pxe.apply(
      task(pxe, 'web-01', [sync('interfaces')], {
        present: true,
        interfaces: eth0('52:54:00:aa:bb:cc', '10.1.2.4'),
      }),
      context(),
    );
    const removal = sync('present');
    const node = {
      profile: 'sandbox-debian-12',
      netboot: true,
      interfaces: eth0('52:54:00:aa:bb:cc', '10.1.2.4'),
    };
    const removed = await pxe.apply(task(pxe, 'web-01', [removal], node), context());
    expect(removed).toEqual({
      accepted: [removal.id],
      unset: ['profile', 'netboot'],
      operations: [
        {
          action: 'remove-system',
          target: 'system/web-01',
          detail: '[simulated] removed system web-01',
          durationMs: 0,
        },
      ],
    });
    expect(await pxe.observe?.({ kind: 'host', name: 'web-01' }, context())).toBeNull();
    expect(await pxe.apply(task(pxe, 'web-01', [removal], {}), context())).toEqual({
      accepted: [removal.id],
    });
    expectSimulated(created, removed);
  });

  it('explains with placeholders for values other providers fill in later, registering nothing', async () => {
    const { pxe } = sandbox();
    const update = sync('interfaces');
    const later = { 'interfaces[eth0].mac': 'sandbox-vm', 'interfaces[eth0].ip': 'ipam' };
    const outcome = await pxe.explain(task(pxe, 'web-01', [update], { present: true }, later), context());
    expect(outcome).toEqual({
      accepted: [update.id],
      set: { profile: 'sandbox-debian-12', netboot: true },
      operations: [
        {
          action: 'add-system',
          target: 'system/web-01',
          detail:
            '[simulated] registered system web-01 (mac <mac from sandbox-vm>, ip <ip from ipam>, profile sandbox-debian-12, netboot on)',
          durationMs: 0,
        },
      ],
    });
    expect(await pxe.observe?.({ kind: 'host', name: 'web-01' }, context())).toBeNull();
  });
});
