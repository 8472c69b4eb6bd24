/**
 * Discovery and adoption against real backends (issue 15's must-show): a domain defined by hand in the libvirt lab
 * (virsh define, not through Consortium) and a system added by hand to the Cobbler test server are listed as
 * adoptable, one entry listing both providers where both hold the name; adopting writes neither backend (the lab
 * counts libvirtd's domain events, the Cobbler server its calls per method) and the next observe shows no drift;
 * the node deleted behind Consortium's back is listed as orphaned. Other test files share the lab's libvirtd, so
 * this one looks only at its own names (prefix `dsl-`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '@consortium/core';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import type { LabDomainEvents, LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Observer } from './observer.js';
import type { ProcessParts } from './process.js';
import type { Api } from './test-support/dev-server.js';
import { startInProcess, tempDir } from './test-support/dev-server.js';

const PREFIX = 'dsl-';
const VM = `${PREFIX}web-09`;
const PXE_ONLY = `${PREFIX}pxe-01`;
const MAC = '52:54:00:d5:10:09';
const dir = tempDir('consortium-discovery-lab-');
let lab: LibvirtLab;
let events: LabDomainEvents;
let cobbler: CobblerTestServer;
/** What afterAll undoes, in reverse order: only what beforeAll got to start. */
const cleanups: (() => Promise<void>)[] = [];
let api: Api;
let parts: ProcessParts;

/** A domain as an operator defines one by hand: no Consortium metadata, 48 MiB and one vCPU (hwspec small). */
const handMadeDomain = `<domain type='qemu'>
  <name>${VM}</name>
  <memory unit='MiB'>48</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices><interface type='user'><mac address='${MAC}'/><model type='virtio'/></interface></devices>
</domain>`;

beforeAll(async () => {
  lab = await startLibvirtLab();
  cleanups.push(async () => {
    for (const name of await lab.domains()) if (name.startsWith(PREFIX)) await lab.removeDomain(name);
    await lab.stop();
  });
  events = await lab.watchDomainEvents();
  cleanups.push(() => events.stop());
  cobbler = await startCobblerServer({ users: { consortium: 'pxe-secret' }, profiles: ['debian12'] });
  cleanups.push(() => cobbler.stop());
  const config = join(dir.dir, 'discovery.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      plugins: [
        { module: '@consortium/plugin-inventory', config: { hostAttributes: [] } },
        { module: '@consortium/plugin-ipam' },
        {
          module: '@consortium/plugin-cobbler',
          config: {
            url: cobbler.url,
            username: 'consortium',
            password: 'pxe-secret',
            defaultProfile: 'debian12',
          },
        },
        {
          module: '@consortium/plugin-libvirt',
          config: {
            hypervisors: [
              {
                name: 'lab',
                host: lab.host,
                port: lab.port,
                user: lab.user,
                privateKey: lab.privateKey,
                hostKey: lab.hostKey,
                memoryMib: 100_000,
                domainType: 'qemu',
                network: { type: 'user' },
              },
            ],
            hwspecs: { small: { vcpus: 1, memoryMib: 48 }, large: { vcpus: 1, memoryMib: 96 } },
          },
        },
      ],
    }),
  );
  // No periodic observe: the test runs the one observe pass it checks.
  const started = await startInProcess({ CONSORTIUM_CONFIG: config, CONSORTIUM_OBSERVE_SECONDS: '0' });
  api = started.api;
  parts = started.parts;
  cleanups.push(() => started.stop());
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  dir.remove();
}, 60_000);

/** The Cobbler calls since `before` (a copy of `callCounts()`), by method. */
function callsSince(before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(cobbler.callCounts())
      .map(([method, count]): [string, number] => [method, count - (before[method] ?? 0)])
      .filter(([, count]) => count > 0),
  );
}

const named = (group: { name: string }[], name: string) => group.find((entry) => entry.name === name);

describe('discovery against the libvirt lab and the Cobbler test server', () => {
  it('lists hand-made objects as adoptable, adopts them without a backend write, and no drift follows', async () => {
    const xml = join(dir.dir, `${VM}.xml`);
    writeFileSync(xml, handMadeDomain);
    await lab.virsh(['define', xml]);
    cobbler.addSystem({
      name: VM,
      profile: 'debian12',
      netboot_enabled: true,
      interfaces: { eth0: { mac_address: MAC, ip_address: '10.1.2.9' } },
    });
    cobbler.addSystem({ name: PXE_ONLY, profile: 'debian12' });
    await events.settle();
    // The lab's counter sees a write: the hand-made define.
    expect(events.of(VM).map((e) => e.line)).toEqual([`event 'lifecycle' for domain '${VM}': Defined Added`]);

    const listed = await api.request('GET', '/api/discovery?kind=host');
    expect(listed.status).toBe(200);
    expect(named(listed.body.adoptable, VM)).toEqual({
      name: VM,
      providers: ['cobbler', 'libvirt'],
      attrs: {
        present: true,
        hwspec: 'small',
        power: 'off',
        hypervisor: 'lab',
        interfaces: [{ name: 'eth0', mac: MAC }],
        profile: 'debian12',
        netboot: true,
      },
    });
    expect(named(listed.body.adoptable, PXE_ONLY)).toEqual({
      name: PXE_ONLY,
      providers: ['cobbler'],
      attrs: { present: true, profile: 'debian12', netboot: false },
    });
    expect(named(listed.body.known, VM) ?? named(listed.body.orphaned, VM)).toBeUndefined();

    const before = cobbler.callCounts();
    const writes = events.events.length;
    const adopted = await api.request('POST', '/api/discovery/adopt', {
      body: { kind: 'host', names: [VM, PXE_ONLY] },
    });
    expect(adopted.status).toBe(201);
    expect(adopted.body.adopted.map((o: { name: string }) => o.name)).toEqual([VM, PXE_ONLY]);
    await events.settle();
    // No write to libvirt (no domain event) and only reads of Cobbler.
    expect(events.of(VM)).toHaveLength(1);
    expect(events.events.slice(writes).filter((e) => e.domain.startsWith(PREFIX))).toEqual([]);
    expect(callsSince(before)).toEqual({ get_systems: 1 });

    // Adoption stored what discovery saw: libvirt has nothing of the Cobbler-only host yet.
    const adoptedOnly = await api.request('GET', `/api/inventory/host/${PXE_ONLY}?show=authority`);
    expect(Object.keys(adoptedOnly.body.observed)).toEqual(['cobbler']);
    // The next observe (every provider, every node) records what the backends hold: no drift.
    const observed = cobbler.callCounts();
    const observer = new Observer({ ...parts, clock: systemClock, intervalMs: 0 });
    expect((await observer.pass(AbortSignal.timeout(60_000))).failures).toBe(0);
    expect(Object.keys(callsSince(observed))).toEqual(['get_system']);
    for (const name of [VM, PXE_ONLY]) {
      const node = await api.request('GET', `/api/inventory/host/${name}?show=authority`);
      expect(node.status).toBe(200);
      expect(Object.keys(node.body.observed).sort()).toEqual(['cobbler', 'libvirt']);
      expect(node.body.drift).toEqual([]);
    }
    const pxeOnly = await api.request('GET', `/api/inventory/host/${PXE_ONLY}?show=authority`);
    expect(pxeOnly.body.observed.libvirt.attrs).toBeNull();
    const vm = await api.request('GET', `/api/inventory/host/${VM}`);
    expect(vm.body.attrs).toMatchObject({
      hwspec: 'small',
      power: 'off',
      hypervisor: 'lab',
      profile: 'debian12',
    });
    await events.settle();
    expect(events.of(VM)).toHaveLength(1);

    const again = await api.request('GET', '/api/discovery?kind=host');
    expect(named(again.body.known, VM)).toEqual({ name: VM, providers: ['cobbler', 'libvirt'], drift: [] });
    expect(named(again.body.adoptable, VM)).toBeUndefined();
  }, 120_000);

  it("lists a node deleted behind Consortium's back, its domain and system still there, as orphaned", async () => {
    await parts.store.deleteNode('host', VM);
    const listed = await api.request('GET', '/api/discovery?kind=host');
    expect(named(listed.body.orphaned, VM)).toMatchObject({ name: VM, providers: ['cobbler', 'libvirt'] });
    expect(named(listed.body.known, VM) ?? named(listed.body.adoptable, VM)).toBeUndefined();
    // `all` adopts the adoptable only; an orphan is adopted by name.
    const again = await api.request('POST', '/api/discovery/adopt', { body: { kind: 'host', names: [VM] } });
    expect(again.status).toBe(201);
    const missing = await api.request('POST', '/api/discovery/adopt', {
      body: { kind: 'host', names: [`${PREFIX}nowhere`] },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toBe(`no backend holds a host named ${PREFIX}nowhere`);
    await events.settle();
    expect(events.of(VM)).toHaveLength(1);
  }, 120_000);
});
