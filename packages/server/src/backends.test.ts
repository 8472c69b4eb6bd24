/**
 * The mission, end to end: one `consort create host` against `consortium dev` whose plugins talk to the NetBox and
 * Cobbler test servers, to a real libvirtd over a real sshd and to a real PowerDNS (asked with dig); then faults,
 * re-runs, drift and delete.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backends } from './test-support/backends.js';
import { PEK1_ZONE, startBackends } from './test-support/backends.js';
import type { BinaryServer } from './test-support/dev-server.js';
import { spawnBinary, tempDir } from './test-support/dev-server.js';

const CONSORT = fileURLToPath(new URL('../../consort/bin/consort.js', import.meta.url));
const data = tempDir('consortium-e2e-');
let backends: Backends;
let server: BinaryServer;

beforeAll(async () => {
  backends = await startBackends(data.dir);
  server = await spawnBinary(data.dir, ['--config', backends.configFile], {
    CONSORTIUM_OBSERVE_SECONDS: '1',
  });
}, 120_000);
afterAll(async () => {
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.once('exit', r));
  await backends.stop();
  data.remove();
}, 60_000);

/** Runs the real consort; asynchronously, because the NetBox and Cobbler test servers live in this process. */
function consort(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CONSORT, ...args],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          PATH: process.env['PATH'],
          HOME: data.dir,
          CONSORT_URL: server.api.url,
          CONSORT_TOKEN: server.api.token,
        },
      },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** The PTR name of an address. */
const reverse = (ip: string): string => `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
const cobblerSystem = (name: string) => backends.cobbler.system(name) as Record<string, unknown> | undefined;
const domstate = async (name: string) => (await backends.lab.tryVirsh(['domstate', name])).stdout.trim();

describe('one command provisions a real VM', () => {
  it('creates the CMDB record, the address, the PXE system and the running domain; delete removes all of it', async () => {
    expect((await consort('create', 'subnet', 'pek1-web', 'cidr=10.1.2.0/24', 'gateway=10.1.2.1')).code).toBe(
      0,
    );
    const created = await consort(
      'create',
      'host',
      'e2e-web-01',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
      'puppet_roles+=nginx',
      'power=on',
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/round 1: .*ipam.*libvirt.*netbox/);
    expect(created.stdout).toMatch(/round \d\s+cobbler\s+/);
    expect(created.stdout).toMatch(/round \d\s+libvirt\s+start /);
    expect(created.stdout).toMatch(/^succeeded in \S+ \(3 rounds\)$/m);

    const host = JSON.parse((await consort('get', 'host', 'e2e-web-01', '-o', 'json')).stdout);
    const eth0 = host.attrs.interfaces.find((i: any) => i.name === 'eth0');
    expect(eth0.ip).toMatch(/^10\.1\.2\.\d+$/);
    expect(eth0.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(host.attrs).toMatchObject({
      hypervisor: 'lab',
      netboot: true,
      power: 'on',
      datacenter: 'pek1',
      puppet_roles: ['nginx'],
    });

    const vms = backends.netbox.state.vmsByName('e2e-web-01');
    expect(vms).toHaveLength(1);
    const system = cobblerSystem('e2e-web-01');
    expect(system?.['netboot_enabled']).toBe(true);
    expect(JSON.stringify(system)).toContain(eth0.mac);
    expect(JSON.stringify(system)).toContain(eth0.ip);
    expect(await domstate('e2e-web-01')).toBe('running');
    expect(await backends.lab.virsh(['domiflist', 'e2e-web-01'])).toContain(eth0.mac);
    // The name resolves, and the address back to the name.
    expect(host.attrs.fqdn).toBe(`e2e-web-01.${PEK1_ZONE}`);
    expect(await backends.powerdns.dig(`e2e-web-01.${PEK1_ZONE}`)).toEqual([eth0.ip]);
    expect(await backends.powerdns.dig(reverse(eth0.ip), 'PTR')).toEqual([`e2e-web-01.${PEK1_ZONE}.`]);

    const deleted = await consort('delete', 'host', 'e2e-web-01');
    expect(deleted.code).toBe(0);
    expect(backends.netbox.state.vmsByName('e2e-web-01')).toHaveLength(0);
    expect(cobblerSystem('e2e-web-01')).toBeUndefined();
    expect((await backends.lab.tryVirsh(['dominfo', 'e2e-web-01'])).code).not.toBe(0);
    expect(await backends.powerdns.dig(`e2e-web-01.${PEK1_ZONE}`)).toEqual([]);
    expect(await backends.powerdns.dig(reverse(eth0.ip), 'PTR')).toEqual([]);
    expect((await consort('get', 'host', 'e2e-web-01')).code).toBe(4); // not found
  }, 180_000);

  it("DNS follows the host: a new address moves the A and PTR records, a record edited behind Consortium's back is drift from powerdns, delete removes them", async () => {
    const name = `e2e-web-05.${PEK1_ZONE}`;
    const created = await consort(
      'create',
      'host',
      'e2e-web-05',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
      'power=on',
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/round 2\s+powerdns\s+patch-zone /);
    const ipOf = async (): Promise<string> => {
      const host = JSON.parse((await consort('get', 'host', 'e2e-web-05', '-o', 'json')).stdout);
      return host.attrs.interfaces.find((i: any) => i.name === 'eth0').ip;
    };
    const first = await ipOf();
    expect(await backends.powerdns.dig(name)).toEqual([first]);
    expect(await backends.powerdns.dig(reverse(first), 'PTR')).toEqual([`${name}.`]);

    const moved = await consort('set', 'host', 'e2e-web-05', 'interfaces[eth0].ip=10.1.2.200');
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(await ipOf()).toBe('10.1.2.200');
    expect(await backends.powerdns.dig(name)).toEqual(['10.1.2.200']);
    expect(await backends.powerdns.dig(reverse('10.1.2.200'), 'PTR')).toEqual([`${name}.`]);
    expect(await backends.powerdns.dig(reverse(first), 'PTR')).toEqual([]);

    // Someone points the name elsewhere through PowerDNS's own API.
    const edited = await backends.powerdns.api('PATCH', `/zones/${PEK1_ZONE}.`, {
      rrsets: [
        {
          name: `${name}.`,
          type: 'A',
          ttl: 300,
          changetype: 'REPLACE',
          records: [{ content: '10.1.2.99', disabled: false }],
        },
      ],
    });
    expect(edited.status).toBe(204);
    let drift: any[] = [];
    for (let i = 0; i < 100 && !drift.some((d) => d.provider === 'powerdns'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      drift = (await server.api.request('GET', '/api/inventory/host/e2e-web-05?show=authority')).body.drift;
    }
    expect(drift).toContainEqual(
      expect.objectContaining({
        path: 'dns_records',
        provider: 'powerdns',
        expected: [`200.2.1.10.in-addr.arpa PTR ${name}`, `${name} A 10.1.2.200`],
        observed: [`200.2.1.10.in-addr.arpa PTR ${name}`, `${name} A 10.1.2.99`],
      }),
    );

    const deleted = await consort('delete', 'host', 'e2e-web-05');
    expect(deleted.code).toBe(0);
    expect(await backends.powerdns.dig(name)).toEqual([]);
    expect(await backends.powerdns.dig(reverse('10.1.2.200'), 'PTR')).toEqual([]);
  }, 180_000);

  it('NetBox answering 503 twice: the job retries and succeeds', async () => {
    backends.netbox.injectFault({ path: '/api/virtualization/virtual-machines/', status: 503, times: 2 });
    const created = await consort(
      'create',
      'host',
      'e2e-web-02',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
    );
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/netbox\s+error: .*(will retry)/);
    expect(backends.netbox.state.vmsByName('e2e-web-02')).toHaveLength(1);
  }, 120_000);

  it("NetBox refusing a value (400): the job fails with NetBox's reason; fixed, the same command converges without duplicates", async () => {
    backends.netbox.injectFault({
      method: 'POST',
      path: '/api/virtualization/virtual-machines/',
      status: 400,
      body: { name: ['Virtual machine name must be unique per cluster.'] },
      times: 1,
    });
    const failed = await consort(
      'create',
      'host',
      'e2e-web-03',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /^consort: job \S+ failed: netbox failed: .*Virtual machine name must be unique per cluster/m,
    );
    // A failed create is rolled back, so the same command (create) runs again.
    const again = await consort(
      'create',
      'host',
      'e2e-web-03',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
    );
    expect(again.code).toBe(0);
    expect(backends.netbox.state.vmsByName('e2e-web-03')).toHaveLength(1);
  }, 120_000);

  it('a Cobbler fault on save fails the job with the fault; re-running converges without a second system or VM', async () => {
    backends.cobbler.injectFault('save_system', 'storage is read-only', 1);
    const failed = await consort(
      'create',
      'host',
      'e2e-web-04',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
      'power=on',
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/cobbler failed: Cobbler fault in save_system: .*storage is read-only/);
    // A failed create is rolled back, so the same command (create) runs again.
    const again = await consort(
      'create',
      'host',
      'e2e-web-04',
      'hwspec=small',
      'datacenter=pek1',
      'subnet=pek1-web',
      'power=on',
    );
    expect(again.code).toBe(0);
    expect(backends.cobbler.systems().filter((s: any) => s.name === 'e2e-web-04')).toHaveLength(1);
    expect((await backends.lab.domains()).filter((d) => d === 'e2e-web-04')).toHaveLength(1);
    expect(await domstate('e2e-web-04')).toBe('running');
  }, 120_000);

  it("drift: a VM stopped behind Consortium's back is reported on power by libvirt", async () => {
    await backends.lab.virsh(['destroy', 'e2e-web-04']);
    let drift: any[] = [];
    for (let i = 0; i < 100 && !drift.some((d) => d.path === 'power'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      drift = (await server.api.request('GET', '/api/inventory/host/e2e-web-04?show=authority')).body.drift;
    }
    expect(drift).toContainEqual(
      expect.objectContaining({ path: 'power', provider: 'libvirt', expected: 'on', observed: 'off' }),
    );
  }, 60_000);
});
